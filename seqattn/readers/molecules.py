"""Molecular graphs: MoleculeNet ``*_graphs.jsonl`` + ``*_splits.csv`` -> atom features and bond edges.

One JSON object per molecule (derived with RDKit, see ../shared/data/moleculenet/README.md):
``row``, ``valid``, ``atoms`` (element symbols, heavy atoms), ``charge``, ``aromatic`` (0/1),
``num_hs``, ``bonds`` = [[i, j, type], ...] with type 1 single, 2 double, 3 triple, 4 aromatic,
and ``y``.  Atoms are the nodes; every bond is an undirected edge (both directions).

Atom features (one-hot blocks, the usual choice of graph baselines such as DeepChem's GraphConv
and dgl-lifesci's CanonicalAtomFeaturizer, restricted to what the files carry):
    element (ELEMENTS + other) | formal charge -1, 0, +1, other | aromatic | H count 0..4+ |
    heavy-atom degree 0..5+
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqattn.errors import InputError

ELEMENTS = ("C", "N", "O", "S", "F", "Cl", "Br", "I", "P", "B", "Si", "Se", "Na", "K", "Ca")
BOND_TYPES = (1, 2, 3, 4)  # single, double, triple, aromatic; id 0 is the self-loop
ATOM_FEATURES = len(ELEMENTS) + 1 + 4 + 1 + 5 + 6
SPLIT_NAMES = ("train", "valid", "test")


@dataclass
class Molecule:
    """One molecular graph.

    Attributes:
        row: 0-based row of the source CSV.
        x: (N, ATOM_FEATURES) float32 atom features.
        edge_index: (2, E) int64 bonds in both directions.
        bond_type: (E,) int64 in 1..4 (see BOND_TYPES).
        y: the target (regression value or 0/1 class).
    """

    row: int
    x: np.ndarray
    edge_index: np.ndarray
    bond_type: np.ndarray
    y: float


def _one_hot(value: int, size: int) -> list[float]:
    out = [0.0] * size
    out[min(value, size - 1)] = 1.0
    return out


def atom_features(record: dict) -> np.ndarray:
    """(N, ATOM_FEATURES) one-hot atom features of one molecule record (see the module docstring)."""
    n = len(record["atoms"])
    degree = [0] * n
    for i, j, _ in record["bonds"]:
        degree[i] += 1
        degree[j] += 1
    rows = []
    for a in range(n):
        symbol = record["atoms"][a]
        element = ELEMENTS.index(symbol) if symbol in ELEMENTS else len(ELEMENTS)
        charge = {-1: 0, 0: 1, 1: 2}.get(int(record["charge"][a]), 3)
        rows.append(_one_hot(element, len(ELEMENTS) + 1) + _one_hot(charge, 4) + [float(record["aromatic"][a])]
                    + _one_hot(int(record["num_hs"][a]), 5) + _one_hot(degree[a], 6))
    return np.asarray(rows, dtype=np.float32).reshape(n, ATOM_FEATURES)


def _molecule(record: dict, where: str) -> Molecule:
    try:
        n = len(record["atoms"])
        if n == 0:
            raise InputError(f"{where}: a molecule without atoms")
        for key in ("charge", "aromatic", "num_hs"):
            if len(record[key]) != n:
                raise InputError(f"{where}: '{key}' has {len(record[key])} entries for {n} atoms")
        bonds = np.asarray(record["bonds"], dtype=np.int64).reshape(-1, 3)
        if bonds.size and (bonds[:, :2].min() < 0 or bonds[:, :2].max() >= n or not np.isin(bonds[:, 2], BOND_TYPES).all()):
            raise InputError(f"{where}: a bond names a missing atom or an unknown bond type")
        y = float(record["y"])
        x = atom_features(record)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{where}: not a molecule record ({type(err).__name__}: {err})") from None
    edge_index = np.concatenate([bonds[:, :2].T, bonds[:, [1, 0]].T], axis=1)  # (2, 2B)
    return Molecule(int(record["row"]), x, edge_index, np.concatenate([bonds[:, 2], bonds[:, 2]]), y)


def read_molecules(graphs: str | Path, splits: str | Path, split_column: str = "scaffold") -> dict[str, list[Molecule]]:
    """Read a MoleculeNet graph file and its split file into train / valid / test molecules.

    Molecules marked ``valid: false`` (RDKit could not parse them) or split ``invalid`` are left out.

    Returns:
        {"train": [...], "valid": [...], "test": [...]}
    Raises:
        InputError: unreadable files, malformed JSON lines (with line number), a split column that
            does not exist, rows of the split file without a molecule.
    """
    graphs, splits = Path(graphs), Path(splits)
    for path in (graphs, splits):
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    with splits.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if split_column not in (reader.fieldnames or []):
            raise InputError(f"{splits}: no split column {split_column!r} (columns: {', '.join(reader.fieldnames or [])})")
        split_of = {int(r["row"]): r[split_column] for r in reader}
    out: dict[str, list[Molecule]] = {name: [] for name in SPLIT_NAMES}
    with graphs.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{graphs}: line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{where}: malformed JSON ({err.msg})") from None
            if not isinstance(record, dict) or not record.get("valid", False):
                continue
            split = split_of.get(int(record.get("row", -1)))
            if split is None:
                raise InputError(f"{where}: row {record.get('row')} is not in {splits}")
            if split in out:
                out[split].append(_molecule(record, where))
    if not out["train"]:
        raise InputError(f"{graphs}: no training molecules in split column {split_column!r}")
    return out

