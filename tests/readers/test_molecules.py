"""MoleculeNet graph files: atoms become nodes, bonds undirected edges; bad lines fail with their line number."""

import json

import pytest

from seqattn.errors import InputError
from seqattn.featurise.graph import batch_molecules
from seqattn.readers.molecules import ATOM_FEATURES, ELEMENTS, atom_features, read_molecules
from tests.conftest import require_shared

ETHANOL = {"row": 0, "valid": True, "atoms": ["C", "C", "O"], "charge": [0, 0, 0], "aromatic": [0, 0, 0],
           "num_hs": [3, 2, 1], "bonds": [[0, 1, 1], [1, 2, 1]], "y": -0.77}


def _write(tmp_path, records, splits):
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "s.csv").write_text("row,scaffold,random\n" + "".join(f"{r},{s},train\n" for r, s in splits))
    return tmp_path / "g.jsonl", tmp_path / "s.csv"


def test_atom_features_one_hot_blocks():
    x = atom_features(ETHANOL)
    assert x.shape == (3, ATOM_FEATURES)
    assert (x.sum(1) == 4).all()  # one 1 in each block: element, charge, H count, degree (not aromatic)
    assert x[2, ELEMENTS.index("O")] == 1 and x[0, ELEMENTS.index("C")] == 1


def test_read_and_batch(tmp_path):
    invalid = {"row": 2, "valid": False}
    records = [ETHANOL, {**ETHANOL, "row": 1, "y": 1.5}, invalid]
    data = read_molecules(*_write(tmp_path, records, [(0, "train"), (1, "test"), (2, "invalid")]))
    assert [len(data[s]) for s in ("train", "valid", "test")] == [1, 0, 1]
    molecule = data["train"][0]
    assert molecule.edge_index.tolist() == [[0, 1, 1, 2], [1, 2, 0, 1]] and molecule.bond_type.tolist() == [1, 1, 1, 1]
    batch = batch_molecules(data["train"] + data["test"])
    assert batch["batch"].tolist() == [0, 0, 0, 1, 1, 1] and batch["edge_index"][:, 4:].tolist() == [[3, 4, 4, 5], [4, 5, 3, 4]]
    assert batch["y"].tolist() == pytest.approx([-0.77, 1.5])


def test_errors(tmp_path):
    graphs, splits = _write(tmp_path, [ETHANOL], [(0, "train")])
    with pytest.raises(InputError, match="no split column 'cluster'"):
        read_molecules(graphs, splits, "cluster")
    graphs.write_text(json.dumps(ETHANOL) + "\n{oops\n")
    with pytest.raises(InputError, match="g.jsonl: line 2: malformed JSON"):
        read_molecules(graphs, splits)
    graphs.write_text(json.dumps({**ETHANOL, "bonds": [[0, 7, 1]]}) + "\n")
    with pytest.raises(InputError, match="line 1: a bond names a missing atom"):
        read_molecules(graphs, splits)
    graphs.write_text(json.dumps({**ETHANOL, "row": 5}) + "\n")
    with pytest.raises(InputError, match="row 5 is not in"):
        read_molecules(graphs, splits)


def test_shared_scaffold_split_sizes():
    root = require_shared("moleculenet")
    esol = read_molecules(root / "esol_graphs.jsonl", root / "esol_splits.csv")
    assert [len(esol[s]) for s in ("train", "valid", "test")] == [902, 113, 113]
    bbbp = read_molecules(root / "bbbp_graphs.jsonl", root / "bbbp_splits.csv")
    assert [len(bbbp[s]) for s in ("train", "valid", "test")] == [1631, 204, 204]
    assert sum(m.y for m in bbbp["test"]) == 107
