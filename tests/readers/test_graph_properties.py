"""Property tests (hypothesis) for the graph readers: edge lists, node-link JSON, GraphML, GML,
CSV/NPZ features and labels.  Any input either reads into a consistent ``Graph`` or raises the
project's own InputError naming the file."""

from __future__ import annotations

import io
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from seqattn.errors import InputError
from seqattn.readers.graph import (read_edge_list, read_features, read_gml, read_graphml, read_labels,
                                   read_node_link_json)

CI = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# Pieces that trip parsers: ids that look numeric but are not int()-able, separators inside a
# line, comments, header words, NaN weights, BOMs, CR, NUL.
TOKENS = ["0", "1", "2", "10", "a", "b", "é", "\u00b2", "\u0663", "-1", "1.5", "nan", "inf", "1e400", "#", ",",
          "\t", " ", "source", "target", "weight", "\u2028", "\u0085", "\r", "\x00", "\ufeff", '"', ""]
LINE = st.lists(st.sampled_from(TOKENS), max_size=6).map("".join)
TEXT = st.one_of(st.lists(LINE, max_size=12).map("\n".join), st.text(max_size=200))


def _with_file(data: bytes, name: str, read):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return read(path), path
        except InputError as err:
            assert str(err).startswith(str(path)), err
            assert "\n" not in str(err)
            return None, path


def _check_graph(graph) -> None:
    if graph is None:
        return
    n, edges = graph.n_nodes, graph.edge_index
    assert n >= 1 and edges.shape[0] == 2 and edges.dtype == np.int64
    assert ((edges >= 0) & (edges < n)).all()
    assert (edges[0] != edges[1]).all(), "self-loops are the attention's, not the file's"
    pairs = list(zip(*edges.tolist()))
    assert len(set(pairs)) == len(pairs), "duplicates are merged"
    if not graph.directed:
        assert set(pairs) == {(b, a) for a, b in pairs}
    if graph.labels is not None:
        assert len(graph.labels) == n


@CI
@given(st.one_of(TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=200)), st.booleans())
def test_edge_lists_read_or_raise_input_error(data, directed):
    graph, _ = _with_file(data, "g.tsv", lambda p: read_edge_list(p, directed=directed))
    _check_graph(graph)


@CI
@given(TEXT, st.lists(st.sampled_from(["0", "1", "2", "a"]), min_size=1, max_size=4, unique=True))
def test_edge_lists_against_known_nodes(text, nodes):
    graph, _ = _with_file(text.encode("utf-8"), "g.tsv", lambda p: read_edge_list(p, known_nodes=nodes))
    _check_graph(graph)
    assert graph is None or graph.nodes == nodes


JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                        st.sampled_from(["0", "1", "a", "", "_"]))
NODE = st.fixed_dictionaries({"id": st.one_of(st.integers(0, 4), st.sampled_from(["0", "a", "b"]))},
                             optional={"class": JSON_SCALAR, "label": JSON_SCALAR,
                                       "features": st.lists(JSON_SCALAR, max_size=3)})
LINK = st.fixed_dictionaries({}, optional={"source": st.integers(-1, 5), "target": st.sampled_from([0, 1, "a", 9]),
                                           "weight": JSON_SCALAR})
NODE_LINK = st.fixed_dictionaries({"nodes": st.lists(st.one_of(NODE, JSON_SCALAR), max_size=5)},
                                  optional={"links": st.one_of(st.lists(st.one_of(LINK, JSON_SCALAR), max_size=6),
                                                               JSON_SCALAR),
                                            "directed": JSON_SCALAR})


@CI
@given(st.one_of(NODE_LINK, st.recursive(JSON_SCALAR, lambda inner: st.lists(inner) | st.dictionaries(
    st.sampled_from(["nodes", "links", "edges", "id"]), inner), max_leaves=10)))
def test_node_link_json_reads_or_raises_input_error(document):
    graph, _ = _with_file(json.dumps(document).encode(), "g.json", read_node_link_json)
    _check_graph(graph)
    if graph is not None and graph.features is not None:
        assert graph.features.shape[0] == graph.n_nodes and np.isfinite(graph.features).all()


@CI
@given(st.binary(max_size=300).map(lambda b: b"{" + b), st.integers(0, 200))
def test_malformed_json_bytes_raise_input_error(data, depth):
    graph, _ = _with_file(data + b"[" * depth, "g.json", read_node_link_json)
    assert graph is None


def _networkx_text(kind: str) -> str:
    import networkx as nx

    g = nx.Graph()
    g.add_node("a", label="x")
    g.add_node("b", label="y")
    g.add_edge("a", "b", weight=2.0)
    g.add_edge("b", "c")
    buffer = io.BytesIO()
    (nx.write_graphml if kind == "graphml" else nx.write_gml)(g, buffer)
    return buffer.getvalue().decode()


VALID_XML = {"graphml": _networkx_text("graphml"), "gml": _networkx_text("gml")}


@CI
@given(st.sampled_from(["graphml", "gml"]), st.integers(0, 2000), st.integers(0, 2000),
       st.sampled_from(["", "<", ">", "[", "]", '"', "&", "id", "node", "edge", "\x00", "é", "-1", "nan", "\n"]))
def test_damaged_graphml_and_gml_read_or_raise_input_error(kind, cut, where, insert):
    """A valid file cut short, or with one piece inserted anywhere."""
    text = VALID_XML[kind]
    text = (text[: where % (len(text) + 1)] + insert + text[where % (len(text) + 1):])[: max(cut, 1) * 3]
    reader = read_graphml if kind == "graphml" else read_gml
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would reach the user's stderr
        graph, _ = _with_file(text.encode("utf-8"), f"g.{kind}", reader)
    _check_graph(graph)


@CI
@given(st.one_of(TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=200)), st.sampled_from(["f.csv", "f.npz"]))
def test_features_read_or_raise_input_error(data, name):
    read, _ = _with_file(data, name, read_features)
    if read is not None:
        nodes, matrix, classes = read
        assert matrix.shape[0] >= 1 and (nodes is None or len(nodes) == matrix.shape[0])


@CI
@given(st.lists(st.integers(0, 3), min_size=1, max_size=3), st.sampled_from(["f4", "f8", "i4", "U1", "O", "c8"]),
       st.booleans(), st.booleans())
def test_npz_arrays_of_any_shape_and_dtype(shape, dtype, named_nodes, nan):
    array = np.zeros(shape, dtype=object if dtype == "O" else dtype)
    if nan and dtype.startswith("f") and array.size:
        array.flat[0] = np.nan
    buffer = io.BytesIO()
    extra = {"nodes": np.arange(shape[0]).astype(str)} if named_nodes else {}
    np.savez(buffer, features=array, **extra)
    read, _ = _with_file(buffer.getvalue(), "f.npz", read_features)
    if read is not None:
        assert np.isfinite(read[1]).all() and read[1].ndim == 2 and read[1].shape[0] >= 1


@CI
@given(TEXT, st.lists(st.sampled_from(["0", "1", "2", "a"]), min_size=1, max_size=4, unique=True))
def test_labels_read_or_raise_input_error(text, nodes):
    labels, _ = _with_file(text.encode("utf-8"), "labels.txt", lambda p: read_labels(p, nodes))
    assert labels is None or len(labels) == len(nodes)
