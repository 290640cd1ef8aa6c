"""Graph readers: edge lists, node-link JSON, GraphML, GML, node features, labels, Planetoid.

A graph becomes a ``Graph``: node ids, an ``edge_index`` (2, E) of directed edges j -> i, and
optionally node features (N, F), a class per node and named node splits.  What every reader does
the same way (documented in docs/graph.md):

- Undirected graphs (edge lists by default, GraphML/GML/JSON that say so) store each edge in both
  directions, so that both ends attend to each other.
- Self-loops in the file are dropped: the attention adds exactly one self-loop per node itself
  (``seqattn.nn.graph_attention.add_self_loops``), and a second copy would count twice in the
  softmax.  Duplicate edges are merged (the first weight is kept): attention weights belong to
  neighbours, not to lines of a file.  ``Graph.self_loops_dropped`` and ``duplicates_dropped``
  count them.
- Node order: the node list of the file (JSON, GraphML, GML, features); for an edge list alone,
  numeric order when every id is a non-negative integer, else order of first appearance.
- Where the node set is known (features, JSON nodes, Planetoid), an edge that names another node
  is an error, as are bad numbers, empty graphs and malformed files: ``InputError`` with one line
  naming the file (and the line where there is one).
- Node ids are text of any length (a 5,000-digit JSON number is read as its digits).
- Memory is bounded by ``GraphLimits`` (file bytes, nodes, edges, feature columns and values;
  ``SEQATTN_MAX_GRAPH_*`` override them): a file past a limit is an ``InputError`` raised while
  reading, before memory grows with it.  Edge lists are read line by line into int64 arrays.

Planetoid layout (Yang et al. 2016; the GCN/GAT split): a directory with features.npz (scipy
CSR), labels.txt (one class id per node, -1 unlabelled), edges.txt (undirected ``u v``) and
train_idx.txt / val_idx.txt / test_idx.txt; an optional classes.txt names the class ids.
"""

from __future__ import annotations

import csv
import json
import math
import re
from array import array
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from seqattn.errors import InputError
from seqattn.readers.npz import read_npz

EDGE_LIST_SUFFIXES = (".tsv", ".txt", ".edges", ".edgelist", ".el", ".csv")
FORMATS = ("edgelist", "json", "graphml", "gml")
PLANETOID_FILES = ("features.npz", "labels.txt", "edges.txt")
SPLITS = ("train", "val", "test")
LABEL_KEYS = ("class", "label", "y")  # node attribute that holds the class (first found wins)
FEATURE_KEYS = ("features", "x")  # node attribute (JSON) / NPZ array that holds the features
UNLABELLED = ("", "_", "?", "-1")
_HEADER_NAMES = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2", "weight"}
MAX_JSON_INT_DIGITS = 4_000  # longer JSON integers stay text (Python's int() refuses more than 4,300 digits)


@dataclass(frozen=True)
class GraphLimits:
    """The most a graph reader takes; each can be raised with its environment variable.

    Memory of reading stays within about 1-2 GB at these defaults (an edge costs 16 bytes while
    reading an edge list, a node id its text; whole-document formats, parsed at once by json and
    networkx, cost 10-20x their size).  The model itself needs about 300 bytes per edge
    (docs/graph.md, Scale).
    """

    bytes: int = 1 << 30  # edge list, CSV features, labels, features.npz: file size
    document_bytes: int = 128 << 20  # node-link JSON, GraphML, GML: file size
    nodes: int = 10_000_000
    edges: int = 10_000_000  # edges in the file (an undirected edge counts once)
    features: int = 100_000  # feature columns
    feature_values: int = 1 << 28  # nodes x columns of dense features (1 GiB of float32)

    ENV = {"bytes": "SEQATTN_MAX_GRAPH_BYTES", "document_bytes": "SEQATTN_MAX_GRAPH_DOCUMENT_BYTES",
           "nodes": "SEQATTN_MAX_GRAPH_NODES", "edges": "SEQATTN_MAX_GRAPH_EDGES",
           "features": "SEQATTN_MAX_GRAPH_FEATURES", "feature_values": "SEQATTN_MAX_GRAPH_FEATURE_VALUES"}

    @classmethod
    def from_env(cls) -> "GraphLimits":
        """The defaults, with each ``SEQATTN_MAX_GRAPH_*`` variable that is set in its place.

        Raises:
            InputError: a variable that is not a positive integer.
        """
        from seqattn.readers.limits import env_positive_int

        values = {f.name: env_positive_int(cls.ENV[f.name], None) for f in fields(cls)}
        return cls(**{name: value for name, value in values.items() if value is not None})

    def refuse(self, source: object, what: str, name: str) -> InputError:
        """The error for ``source`` holding more ``what`` than limit ``name`` allows."""
        return InputError(f"{source}: more than {getattr(self, name):,} {what}, the most seqattn reads "
                          f"(set {self.ENV[name]} to allow more)")


def _check_file_size(path: Path, limits: GraphLimits, name: str = "bytes") -> None:
    """Raise before reading a file larger than the limit ``name`` ("bytes" or "document_bytes")."""
    try:
        size = path.stat().st_size
    except OSError:
        return  # missing or unreadable: the reader says so in its own words
    if path.is_file() and size > getattr(limits, name):
        raise limits.refuse(path, "bytes", name)


@dataclass
class Graph:
    """A graph as the models read it.

    Attributes:
        nodes: node ids as written in the file; node number n is ``nodes[n]``.
        edge_index: (2, E) int64 node numbers, row 0 source j, row 1 target i of each edge j -> i;
            no self-loops, no duplicates; an undirected edge appears in both directions.
        edge_weight: (E,) float32 weights from the file, or None (the attention learns its own
            weights and does not read these; they are kept for callers that want them).
        features: (N, F) float32, dense ``numpy.ndarray`` or ``scipy.sparse.csr_matrix``; or None.
        labels: the class of each node as a string (None = unlabelled); or None without labels.
        splits: split name -> node numbers (Planetoid: train / val / test).
        class_names: names of Planetoid class ids when a classes.txt gives them.
        directed: whether the file's edges were read as directed.
        source: the path read, for messages.
    """

    nodes: list[str]
    edge_index: np.ndarray
    edge_weight: np.ndarray | None = None
    features: object | None = None
    labels: list[str | None] | None = None
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: list[str] | None = None
    directed: bool = False
    source: str = ""
    self_loops_dropped: int = 0
    duplicates_dropped: int = 0

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def index_of(self, node: str) -> int:
        """Node number of the id ``node`` (as written in the file).

        Raises:
            InputError: no such node.
        """
        lookup = getattr(self, "_lookup", None)
        if lookup is None:
            lookup = self._lookup = {n: i for i, n in enumerate(self.nodes)}
        if node not in lookup:
            shown = repr(node) if len(node) <= 40 else f"'{node[:40]}...' ({len(node):,} characters)"
            raise InputError(f"{self.source}: no node {shown} in the graph ({self.n_nodes:,} nodes)")
        return lookup[node]


# --------------------------------------------------------------------------- helpers


def _number(text: str, where: str, what: str = "number") -> float:
    shown = repr(text) if len(text) <= 40 else f"'{text[:40]}...' ({len(text):,} characters)"
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {shown} is not a {what}") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {shown} is not a finite {what}")
    return value


def _numeric_order(ids: list[str]) -> list[str]:
    """Ids in numeric order when all are non-negative integers, else as given.

    Compared as digit strings (length without leading zeros, then text), not with int(): ids of
    any length, and in any script's decimal digits (which int() reads as their values).
    """
    if ids and all(i.isdecimal() for i in ids):  # isdigit() passes "²", which int() rejects
        return sorted(ids, key=_decimal_key)
    return ids


def _decimal_key(text: str) -> tuple[int, str, str]:
    import unicodedata

    digits = text if text.isascii() else "".join(str(unicodedata.decimal(c)) for c in text)
    digits = digits.lstrip("0")
    return len(digits), digits, text


def _open_text(path: Path):
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    try:
        return path.open(encoding="utf-8-sig", newline="")  # -sig: a BOM is not data
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None


def _read_lines(path: Path, max_lines: int | None = None) -> list[str]:
    """The file's lines: UTF-8, a leading BOM dropped, split at LF only (CRLF ends are stripped).

    U+2028, U+0085 and friends stay inside their line, so line numbers in messages are the ones
    an editor and ``sed -n`` count.
    Raises:
        InputError: missing, a directory, unreadable, larger than ``GraphLimits.bytes``, more than
            ``max_lines`` lines, or not UTF-8 (with line and byte offset).
    """
    from seqattn.readers.text import open_text

    limits = GraphLimits.from_env()
    _check_file_size(Path(path), limits)
    with open_text(path) as lines:
        if max_lines is None:
            return list(lines)
        kept = []
        for line in lines:
            if len(kept) >= max_lines:
                raise limits.refuse(path, "lines", "nodes")
            kept.append(line)
        return kept


def _finish(nodes: list[str], pairs: list[tuple[int, int]], weights: list[float] | None, directed: bool,
            source: str) -> Graph:
    """Drop self-loops and duplicates, add reverse edges when undirected, build the ``Graph``."""
    if not nodes:
        raise InputError(f"{source}: empty graph (no nodes)")
    if isinstance(pairs, tuple):  # (sources, targets) arrays from the edge-list reader
        src, dst = (np.asarray(a, dtype=np.int64).reshape(-1) for a in pairs)
    else:
        both = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        src, dst = both[:, 0], both[:, 1]
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    real = src != dst
    loops = int(len(src) - real.sum())
    src, dst, w = src[real], dst[real], (None if w is None else w[real])
    lo, hi = (src, dst) if directed else (np.minimum(src, dst), np.maximum(src, dst))
    _, first = np.unique(lo * len(nodes) + hi, return_index=True)  # the first of each duplicate, in file order
    first.sort()
    duplicates = int(len(src) - len(first))
    src, dst = lo[first], hi[first]
    w = None if w is None else w[first].astype(np.float32)
    if not directed:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        w = None if w is None else np.concatenate([w, w])
    return Graph(nodes, np.stack([src, dst]).astype(np.int64), w, directed=directed, source=source,
                 self_loops_dropped=loops, duplicates_dropped=duplicates)


# --------------------------------------------------------------------------- edge lists


def read_edge_list(path: str | Path, known_nodes: list[str] | None = None, directed: bool = False) -> Graph:
    """Read ``source target [weight]`` lines (tab, comma or spaces), '#' comments, blank lines.

    A first line of column names (source/target/weight, from/to, u/v ...) is skipped.

    Args:
        known_nodes: the node ids (from a features file); an edge naming another id is an error.
            Without it the nodes are the ids the edges name (see the module docstring for order).
        directed: read ``a b`` as the edge a -> b only (default: undirected, both directions).
    Raises:
        InputError: unreadable file, a line without two or three fields, a bad weight, an unknown
            node, no edges and no known nodes.
    """
    from seqattn.readers.text import open_text

    path = Path(path)
    limits = GraphLimits.from_env()
    _check_file_size(path, limits)
    lookup = None if known_nodes is None else {n: i for i, n in enumerate(known_nodes)}
    order: dict[str, int] = {} if lookup is None else lookup
    sources, targets, weights = array("q"), array("q"), array("d")  # 8 bytes per value, not a tuple per edge
    has_weight = None
    splitter = re.compile(r"[\t ,]+")
    with open_text(path) as lines:
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            fields = splitter.split(text)
            where = f"{path}: line {number}"
            if not sources and {f.lower() for f in fields} <= _HEADER_NAMES:
                continue
            if len(fields) not in (2, 3):
                raise InputError(f"{where}: expected 'source target [weight]', got {len(fields)} fields")
            if has_weight is None:
                has_weight = len(fields) == 3
            elif has_weight != (len(fields) == 3):
                raise InputError(f"{where}: {len(fields)} fields, but earlier lines have {3 if has_weight else 2}")
            ends = []
            for node in fields[:2]:
                k = order.get(node)
                if k is None:
                    if lookup is not None:
                        raise InputError(f"{where}: edge names node {node!r}, which is not in the features "
                                         f"({len(lookup):,} nodes)")
                    if len(order) >= limits.nodes:
                        raise limits.refuse(path, "nodes", "nodes")
                    k = order[node] = len(order)
                ends.append(k)
            if len(sources) >= limits.edges:
                raise limits.refuse(path, "edges", "edges")
            sources.append(ends[0])
            targets.append(ends[1])
            if has_weight:
                weights.append(_number(fields[2], where, "weight"))
    if not sources and known_nodes is None:
        raise InputError(f"{path}: empty graph (no edges)")
    src, dst = np.frombuffer(sources, dtype=np.int64), np.frombuffer(targets, dtype=np.int64)
    if known_nodes is not None:
        nodes = known_nodes
    else:
        appearance = list(order)
        nodes = _numeric_order(appearance)
        if nodes is not appearance:  # renumber: first-appearance number -> position in numeric order
            position = {n: i for i, n in enumerate(nodes)}
            renumber = np.fromiter((position[n] for n in appearance), dtype=np.int64, count=len(appearance))
            src, dst = renumber[src], renumber[dst]
    return _finish(nodes, (src, dst), weights if has_weight else None, directed, str(path))


# --------------------------------------------------------------------------- JSON, GraphML, GML


def _node_class(data: dict) -> str | None:
    for key in LABEL_KEYS:
        if key in data and data[key] is not None:
            value = str(data[key])
            return None if value in UNLABELLED else value
    return None


def _from_networkx(g, source: str, known_nodes: list[str] | None = None) -> Graph:
    """A networkx graph -> ``Graph`` (node ids become strings; 'weight' and class attributes kept)."""
    limits = GraphLimits.from_env()
    if g.number_of_nodes() > limits.nodes:
        raise limits.refuse(source, "nodes", "nodes")
    if g.number_of_edges() > limits.edges:
        raise limits.refuse(source, "edges", "edges")
    ids = [str(n) for n in g.nodes]
    if len(set(ids)) != len(ids):
        raise InputError(f"{source}: node ids collide once written as text")
    if known_nodes is not None:
        missing = [n for n in ids if n not in set(known_nodes)]
        if missing:
            raise InputError(f"{source}: node {missing[0]!r} is not in the features ({len(known_nodes):,} nodes)")
        nodes = list(known_nodes)
    else:
        nodes = ids
    index = {n: i for i, n in enumerate(nodes)}
    pairs, weights, weighted = [], [], any("weight" in d for _, _, d in g.edges(data=True))
    for a, b, data in g.edges(data=True):
        pairs.append((index[str(a)], index[str(b)]))
        if weighted:
            weights.append(_number(str(data.get("weight", 1.0)), f"{source}: edge {a} - {b}", "weight"))
    graph = _finish(nodes, pairs, weights if weighted else None, g.is_directed(), source)
    classes = {str(n): _node_class(d) for n, d in g.nodes(data=True)}
    if any(c is not None for c in classes.values()):
        graph.labels = [classes.get(n) for n in nodes]
    return graph


def read_node_link_json(path: str | Path, known_nodes: list[str] | None = None) -> Graph:
    """Read networkx's node-link JSON: {"directed", "nodes": [{"id", ...}], "links" or "edges": [...]}.

    A node's class is its "class", "label" or "y" attribute; its features a "features" or "x" list.
    Raises:
        InputError: malformed JSON, missing keys, links to unknown nodes, ragged or bad features.
    """
    path = Path(path)
    limits = GraphLimits.from_env()
    _check_file_size(path, limits, "document_bytes")
    with _open_text(path) as handle:
        try:
            data = json.load(handle, parse_int=_json_int)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {err.lineno}: malformed JSON ({err.msg})") from None
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None
        except RecursionError:  # [[[[...]]]] deeper than Python's stack
            raise InputError(f"{path}: malformed JSON (nested too deeply)") from None
        except ValueError as err:  # anything else json's number parsing refuses
            raise InputError(f"{path}: malformed JSON ({_first_line(err)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise InputError(f"{path}: not node-link JSON (expected an object with a 'nodes' list)")
    links = data.get("links", data.get("edges", []))
    if not isinstance(links, list):
        raise InputError(f"{path}: 'links' must be a list")
    directed = data.get("directed", False)
    if not isinstance(directed, bool):  # "false" is a true value in Python: never guess
        raise InputError(f"{path}: 'directed' must be true or false (a JSON boolean), got {directed!r}")
    if len(data["nodes"]) > limits.nodes:
        raise limits.refuse(path, "nodes", "nodes")
    if len(links) > limits.edges:
        raise limits.refuse(path, "edges", "edges")
    for k, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            raise InputError(f"{path}: node {k} has no 'id'")
    ids = [str(node["id"]) for node in data["nodes"]]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: duplicate node id in 'nodes'")
    nodes = ids if known_nodes is None else list(known_nodes)
    if known_nodes is not None and not set(ids) <= set(known_nodes):
        extra = next(n for n in ids if n not in set(known_nodes))
        raise InputError(f"{path}: node {extra!r} is not in the features ({len(known_nodes):,} nodes)")
    index = {n: i for i, n in enumerate(nodes)}
    pairs, weights = [], []
    weighted = any(isinstance(link, dict) and "weight" in link for link in links)
    for k, link in enumerate(links):
        if not isinstance(link, dict) or "source" not in link or "target" not in link:
            raise InputError(f"{path}: link {k} needs 'source' and 'target'")
        a, b = str(link["source"]), str(link["target"])
        for end in (a, b):
            if end not in index:
                raise InputError(f"{path}: link {k} names node {end!r}, which is not in 'nodes'")
        pairs.append((index[a], index[b]))
        if weighted:
            weights.append(_number(str(link.get("weight", 1.0)), f"{path}: link {k}", "weight"))
    graph = _finish(nodes, pairs, weights if weighted else None, directed, str(path))
    by_id = {str(node["id"]): node for node in data["nodes"]}
    classes = [_node_class(by_id.get(n, {})) for n in nodes]
    if any(c is not None for c in classes):
        graph.labels = classes
    rows = [next((by_id.get(n, {})[key] for key in FEATURE_KEYS if key in by_id.get(n, {})), None) for n in nodes]
    if any(r is not None for r in rows):
        graph.features = _dense_rows(rows, nodes, str(path))
    return graph


def _json_int(text: str) -> int | str:
    """A JSON integer as an int, or as its digits when too long for int() (a node id, say)."""
    return int(text) if len(text) <= MAX_JSON_INT_DIGITS else text


def _dense_rows(rows: list, nodes: list[str], source: str) -> np.ndarray:
    width = next(len(r) for r in rows if r is not None)
    _check_feature_shape(len(nodes), width if isinstance(width, int) else 0, source)
    for node, row in zip(nodes, rows):
        if not isinstance(row, list) or len(row) != width:
            raise InputError(f"{source}: node {node!r} has no feature list of length {width}")
        for value in row:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{source}: node {node!r} has a bad feature value {value!r}")
    return np.asarray(rows, dtype=np.float32)


def read_graphml(path: str | Path, known_nodes: list[str] | None = None) -> Graph:
    """Read GraphML through networkx (node class attribute "class", "label" or "y"; edge "weight").

    Raises:
        InputError: unreadable or malformed GraphML, unknown nodes, bad weights.
    """
    import networkx as nx

    return _read_through_networkx(Path(path), "GraphML", nx.read_graphml, known_nodes)


def read_gml(path: str | Path, known_nodes: list[str] | None = None) -> Graph:
    """Read GML through networkx; nodes are named by their ``label`` (by ``id`` where they have none).

    Raises:
        InputError: unreadable or malformed GML, unknown nodes, bad weights.
    """
    import networkx as nx

    def read(p: Path):
        try:
            return nx.read_gml(p, label="label")
        except nx.NetworkXError as err:
            if "label" not in str(err):
                raise
            return nx.read_gml(p, label="id")

    return _read_through_networkx(Path(path), "GML", read, known_nodes)


def _read_through_networkx(path: Path, kind: str, read, known_nodes: list[str] | None) -> Graph:
    import warnings

    _open_text(path).close()  # a missing or unreadable file gets the usual message
    _check_file_size(path, GraphLimits.from_env(), "document_bytes")
    try:
        with warnings.catch_warnings():  # networkx warns about odd keys; the user sees errors, not chatter
            warnings.simplefilter("ignore")
            g = read(path)
    except Exception as err:  # noqa: BLE001 - networkx raises ParseError, NetworkXError, KeyError ...
        raise InputError(f"{path}: malformed {kind} ({_first_line(err)})") from None
    return _from_networkx(g, str(path), known_nodes)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# --------------------------------------------------------------------------- features and labels


def read_features(path: str | Path) -> tuple[list[str] | None, object, list[str | None] | None]:
    """Read node features from CSV or NPZ.

    CSV: one row per node, ``node,f1,f2,...``; an optional header row names the columns, and a
    column named "class", "label" or "y" holds the node's class instead of a feature.
    NPZ (loaded with allow_pickle=False): a scipy sparse matrix saved with ``save_npz``, or a
    dense array named "features" or "x" (or the only array); an optional "nodes" array gives
    the node id of each row, else row i is node "i".

    Returns:
        (node ids or None, features (N, F) float32 ndarray or scipy CSR, classes or None)
    Raises:
        InputError: unreadable file, ragged rows, a non-numeric or non-finite value, no rows.
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return _read_npz_features(path)
    return _read_csv_features(path)


def _check_feature_shape(rows: int, columns: int, source: object) -> None:
    """Raise for more feature columns, or (dense) values, than ``GraphLimits`` allows."""
    limits = GraphLimits.from_env()
    if rows > limits.nodes:
        raise limits.refuse(source, "nodes (feature rows)", "nodes")
    if columns > limits.features:
        raise limits.refuse(source, "feature columns", "features")
    if rows * columns > limits.feature_values:
        raise limits.refuse(source, "feature values", "feature_values")


def _read_npz_features(path: Path):
    import scipy.sparse as sp

    _check_file_size(path, GraphLimits.from_env())
    content = read_npz(path)
    nodes = [str(n) for n in content.pop("nodes").tolist()] if "nodes" in content else None
    if {"data", "indices", "indptr", "shape", "format"} <= set(content):
        fmt = content["format"].item()
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        builders = {"csr": sp.csr_matrix, "csc": sp.csc_matrix}
        if fmt not in builders:
            raise InputError(f"{path}: sparse format {fmt!r} is not supported (save as csr or csc)")
        shape = content["shape"]
        if shape.shape != (2,) or not np.issubdtype(shape.dtype, np.integer) or (shape < 0).any():
            raise InputError(f"{path}: inconsistent sparse matrix (shape {shape.tolist()!r})")
        limits = GraphLimits.from_env()
        if int(shape[0]) > limits.nodes:
            raise limits.refuse(path, "nodes (feature rows)", "nodes")
        if int(shape[1]) > limits.features:
            raise limits.refuse(path, "feature columns", "features")
        try:
            matrix = builders[fmt]((content["data"], content["indices"], content["indptr"]),
                                   shape=tuple(int(s) for s in shape)).tocsr().astype(np.float32)
        except (ValueError, TypeError) as err:
            raise InputError(f"{path}: inconsistent sparse matrix ({_first_line(err)})") from None
        values = matrix.data
    else:
        key = next((k for k in FEATURE_KEYS if k in content), None)
        if key is None and len(content) == 1:
            key = next(iter(content))
        if key is None:
            raise InputError(f"{path}: no feature array (name it 'features' or 'x'; found {sorted(content)})")
        matrix = content[key]
        real = np.issubdtype(matrix.dtype, np.integer) or np.issubdtype(matrix.dtype, np.floating)  # not complex
        if matrix.ndim != 2 or not real:
            raise InputError(f"{path}: features must be a 2-D numeric array, got {matrix.ndim}-D {matrix.dtype}")
        _check_feature_shape(matrix.shape[0], matrix.shape[1], path)
        matrix = matrix.astype(np.float32)
        values = matrix
    if matrix.shape[0] == 0:
        raise InputError(f"{path}: no rows (empty graph)")
    if not np.isfinite(values).all():
        raise InputError(f"{path}: features contain NaN or infinite values")
    if nodes is not None and len(nodes) != matrix.shape[0]:  # noqa: SIM102
        raise InputError(f"{path}: 'nodes' has {len(nodes)} ids for {matrix.shape[0]} feature rows")
    return nodes, matrix, None


def _read_csv_features(path: Path):
    lines = _read_lines(path)
    delimiter = "\t" if lines and "\t" in lines[0] else ","
    rows = []
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append((reader.line_num, row))
    except csv.Error as err:  # a stray CR or an open quote
        raise InputError(f"{path}: line {reader.line_num}: malformed CSV ({err})") from None
    if not rows:
        raise InputError(f"{path}: no rows (empty graph)")
    header = None
    first = rows[0][1]
    if any(not _is_number(c) for c in first[1:]):
        header, rows = [c.strip() for c in first], rows[1:]
        if not rows:
            raise InputError(f"{path}: a header but no rows (empty graph)")
    width = len(rows[0][1])
    _check_feature_shape(len(rows), width - 1, path)
    class_column = None
    if header is not None:
        class_column = next((k for k, name in enumerate(header) if k and name.lower() in LABEL_KEYS), None)
        if len(header) != width:
            raise InputError(f"{path}: line 1: {len(header)} columns in the header, {width} in the rows")
    nodes, values, classes = [], [], []
    for number, row in rows:
        where = f"{path}: line {number}"
        if len(row) != width:
            raise InputError(f"{where}: {len(row)} columns, expected {width}")
        nodes.append(row[0].strip())
        values.append([_number(c.strip(), where) for k, c in enumerate(row[1:], 1) if k != class_column])
        if class_column is not None:
            value = row[class_column].strip()
            classes.append(None if value in UNLABELLED else value)
    if len(set(nodes)) != len(nodes):
        raise InputError(f"{path}: a node appears on two rows")
    return nodes, np.asarray(values, dtype=np.float32), classes if class_column is not None else None


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_labels(path: str | Path, nodes: list[str]) -> list[str | None]:
    """Read node classes: ``node<TAB>class`` lines, or one class per line in node order.

    '', '_', '?' and '-1' mean unlabelled.
    Raises:
        InputError: unknown node, a node twice, a line count that does not match the nodes.
    """
    path = Path(path)
    lines = [(n, line.strip()) for n, line in enumerate(_read_lines(path, max_lines=2 * len(nodes) + 1000), 1)
             if line.strip()]
    if not lines:
        raise InputError(f"{path}: no labels")
    split = [(n, re.split(r"[\t,]| +", text)) for n, text in lines]
    if all(len(fields) == 1 for _, fields in split):
        if len(lines) != len(nodes):
            raise InputError(f"{path}: {len(lines):,} labels for {len(nodes):,} nodes (one class per line "
                             "in node order, or 'node<TAB>class' lines)")
        return [None if text in UNLABELLED else text for _, text in lines]
    index = {n: i for i, n in enumerate(nodes)}
    labels: list[str | None] = [None] * len(nodes)
    seen = set()
    for number, fields in split:
        where = f"{path}: line {number}"
        if len(fields) != 2:
            raise InputError(f"{where}: expected 'node<TAB>class', got {len(fields)} fields")
        node, value = fields
        if node not in index:
            raise InputError(f"{where}: node {node!r} is not in the graph")
        if node in seen:
            raise InputError(f"{where}: node {node!r} labelled twice")
        seen.add(node)
        labels[index[node]] = None if value in UNLABELLED else value
    return labels


# --------------------------------------------------------------------------- Planetoid


def is_planetoid_dir(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in PLANETOID_FILES)


def _read_ids(path: Path, n_nodes: int) -> np.ndarray:
    ids = []
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        if not line.strip().lstrip("-").isdecimal() or len(line.strip()) > 18:  # int() of 5,000 digits fails
            raise InputError(f"{where}: {line.strip()[:40]!r} is not a node id")
        value = int(line)
        if not 0 <= value < n_nodes:
            raise InputError(f"{where}: node {value} is outside 0..{n_nodes - 1}")
        ids.append(value)
    return np.asarray(ids, dtype=np.int64)


def read_planetoid(path: str | Path) -> Graph:
    """Read a Planetoid-layout directory (see the module docstring); nodes are "0".."N-1".

    Raises:
        InputError: a missing file, features and labels of different lengths, bad ids or classes.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a directory")
    missing = [name for name in PLANETOID_FILES if not (path / name).is_file()]
    if missing:
        raise InputError(f"{path}: not a Planetoid directory ({', '.join(missing)} missing)")
    _, features, _ = _read_npz_features(path / "features.npz")
    n = features.shape[0]
    nodes = [str(i) for i in range(n)]
    labels = read_labels(path / "labels.txt", nodes)
    for k, label in enumerate(labels):
        if label is not None and not (label.isdecimal() and len(label) <= 18):
            raise InputError(f"{path / 'labels.txt'}: line {k + 1}: class {label[:40]!r} is not a class id")
    graph = read_edge_list(path / "edges.txt", known_nodes=nodes)
    graph.features, graph.labels, graph.source = features, labels, str(path)
    for split in SPLITS:
        if (path / f"{split}_idx.txt").is_file():
            graph.splits[split] = _read_ids(path / f"{split}_idx.txt", n)
    if (path / "classes.txt").is_file():
        graph.class_names = [line.strip() for line in _read_lines(path / "classes.txt") if line.strip()]
    return graph


# --------------------------------------------------------------------------- any of them


def detect_format(path: Path) -> str:
    """"edgelist", "json", "graphml" or "gml" from the file name (edge list for anything else)."""
    suffix = path.suffix.lower()
    return {".json": "json", ".graphml": "graphml", ".xml": "graphml", ".gml": "gml"}.get(suffix, "edgelist")


def read_graph(path: str | Path, features: str | Path | None = None, labels: str | Path | None = None,
               fmt: str | None = None, directed: bool = False) -> Graph:
    """Read a graph from a Planetoid directory or a file, with optional features and labels files.

    Args:
        fmt: "edgelist", "json", "graphml" or "gml"; default from the file name.
        features: CSV or NPZ node features (they also fix the node set; see ``read_features``).
        labels: a labels file (see ``read_labels``); overrides labels found elsewhere.
        directed: read an edge list as directed.
    Raises:
        InputError: anything a reader rejects; features whose rows do not cover the graph's nodes.
    """
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown graph format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if path.is_dir():
        graph = read_planetoid(path)
        known = graph.nodes
        if features is not None:
            graph.features = _align_features(read_features(features), known, Path(features))[0]
    else:
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")
        feature_nodes, matrix, feature_classes = (None, None, None) if features is None else read_features(features)
        if matrix is not None and feature_nodes is None:
            feature_nodes = [str(i) for i in range(matrix.shape[0])]
        readers = {"edgelist": lambda p, k: read_edge_list(p, k, directed), "json": read_node_link_json,
                   "graphml": read_graphml, "gml": read_gml}
        graph = readers[fmt or detect_format(path)](path, feature_nodes)
        if matrix is not None:
            graph.features = matrix
            if feature_classes is not None:
                graph.labels = feature_classes
    if labels is not None:
        graph.labels = read_labels(labels, graph.nodes)
    return graph


def _align_features(read: tuple, nodes: list[str], path: Path):
    ids, matrix, classes = read
    if matrix.shape[0] != len(nodes):
        raise InputError(f"{path}: {matrix.shape[0]:,} feature rows for {len(nodes):,} nodes")
    if ids is not None and ids != nodes:
        raise InputError(f"{path}: feature rows name other nodes than the graph's")
    return matrix, classes
