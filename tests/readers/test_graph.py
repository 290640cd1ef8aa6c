"""Graph readers: every format, the documented edge rules, and one clear InputError per bad input."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from seqattn.errors import InputError
from seqattn.readers.graph import (
    read_edge_list, read_features, read_gml, read_graph, read_graphml, read_labels, read_node_link_json,
    read_planetoid,
)
from tests.conftest import require_shared


def _edges(graph):
    return sorted(zip(graph.edge_index[0].tolist(), graph.edge_index[1].tolist()))


def test_edge_list_undirected_with_weights_loops_and_duplicates(tmp_path):
    path = tmp_path / "g.tsv"
    path.write_text("# a comment\nsource\ttarget\tweight\n2\t10\t0.5\n10\t2\t9\n10 10 1\n\n3,2,2.0\n")
    g = read_edge_list(path)
    assert g.nodes == ["2", "3", "10"]  # numeric order
    assert _edges(g) == [(0, 1), (0, 2), (1, 0), (2, 0)]
    assert g.self_loops_dropped == 1 and g.duplicates_dropped == 1
    weight = {(a, b): w for a, b, w in zip(*g.edge_index.tolist(), g.edge_weight.tolist())}
    assert weight[(0, 2)] == weight[(2, 0)] == 0.5  # the first weight is kept


def test_edge_list_directed_and_string_ids(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("b a\na c\nc a\n")
    g = read_edge_list(path, directed=True)
    assert g.nodes == ["b", "a", "c"]  # order of first appearance
    assert _edges(g) == [(0, 1), (1, 2), (2, 1)]
    assert g.edge_weight is None


@pytest.mark.parametrize("text,message", [
    ("1 2\n3\n", "line 2: expected 'source target"),
    ("1 2 x\n", "line 1: 'x' is not a weight"),
    ("1 2 nan\n", "not a finite weight"),
    ("1 2 1\n2 3\n", "line 2: 2 fields, but earlier lines have 3"),
    ("# nothing\n\n", "empty graph"),
])
def test_edge_list_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_edge_list(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_unknown_node_against_features(tmp_path):
    (tmp_path / "g.tsv").write_text("0 1\n1 7\n")
    np.savez(tmp_path / "x.npz", features=np.ones((3, 2)))
    with pytest.raises(InputError, match=r"g.tsv: line 2: edge names node '7', which is not in the features"):
        read_graph(tmp_path / "g.tsv", features=tmp_path / "x.npz")


def test_features_fix_the_node_set(tmp_path):
    (tmp_path / "g.tsv").write_text("0 1\n")
    np.savez(tmp_path / "x.npz", features=np.arange(6, dtype=np.float32).reshape(3, 2))
    g = read_graph(tmp_path / "g.tsv", features=tmp_path / "x.npz")
    assert g.nodes == ["0", "1", "2"]  # node 2 is isolated but present
    assert g.features.shape == (3, 2)


def test_node_link_json_with_classes_and_features(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"directed": False, "nodes": [
        {"id": "a", "class": "x", "features": [1, 0]}, {"id": "b", "features": [0, 1]},
        {"id": "c", "label": "y", "features": [1, 1]}],
        "links": [{"source": "a", "target": "b", "weight": 2}, {"source": "b", "target": "c"}]}))
    g = read_node_link_json(path)
    assert g.nodes == ["a", "b", "c"] and g.labels == ["x", None, "y"]
    assert g.features.tolist() == [[1, 0], [0, 1], [1, 1]]
    assert _edges(g) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert sorted(g.edge_weight.tolist()) == [1, 1, 2, 2]


@pytest.mark.parametrize("text,message", [
    ('{"nodes": [{"id": 1}], "links": [', "line 1: malformed JSON"),
    ('[1, 2]', "not node-link JSON"),
    ('{"nodes": [{"id": 1}], "links": [{"source": 1, "target": 5}]}', "link 0 names node '5'"),
    ('{"nodes": [{"id": 1, "x": [1]}, {"id": 2, "x": [1, 2]}], "links": []}', "no feature list of length 1"),
    ('{"nodes": [], "links": []}', "empty graph"),
])
def test_node_link_json_errors(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_node_link_json(path)


def test_graphml_and_gml_through_networkx(tmp_path):
    import networkx as nx

    g = nx.Graph()
    g.add_node("n0", **{"class": "A"})
    g.add_node("n1", **{"class": "B"})
    g.add_edge("n0", "n1", weight=3.0)
    g.add_edge("n1", "n1")
    nx.write_graphml(g, tmp_path / "g.graphml")
    nx.write_gml(g, tmp_path / "g.gml")
    for graph in (read_graphml(tmp_path / "g.graphml"), read_gml(tmp_path / "g.gml"), read_graph(tmp_path / "g.gml")):
        assert graph.nodes == ["n0", "n1"] and graph.labels == ["A", "B"]
        assert _edges(graph) == [(0, 1), (1, 0)] and graph.self_loops_dropped == 1
        assert graph.edge_weight.tolist() == [3.0, 3.0]


def test_gml_without_labels_uses_ids(tmp_path):
    path = tmp_path / "g.gml"
    path.write_text("graph [ directed 1 node [ id 1 ] node [ id 2 ] edge [ source 1 target 2 ] ]")
    g = read_gml(path)
    assert g.nodes == ["1", "2"] and g.directed and _edges(g) == [(0, 1)]


@pytest.mark.parametrize("name,text", [("bad.graphml", "<graphml><graph"), ("bad.gml", "graph [ node [ id 1 ")])
def test_malformed_graphml_gml(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=f"{name}: malformed"):
        read_graph(path)


def test_csv_features_with_header_and_class_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("node,f1,class,f2\na,1,x,2\nb,3,_,4.5\n")
    nodes, features, classes = read_features(path)
    assert nodes == ["a", "b"] and features.tolist() == [[1, 2], [3, 4.5]] and classes == ["x", None]


@pytest.mark.parametrize("text,message", [
    ("a,1,2\nb,3\n", "line 2: 2 columns, expected 3"),
    ("a,1,2\nb,3,zz\n", r"line 2: 'zz' is not a number"),
    ("a,1\na,2\n", "a node appears on two rows"),
    ("", "no rows"),
])
def test_csv_feature_errors(tmp_path, text, message):
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_features(path)


def test_npz_features_dense_sparse_and_ids(tmp_path):
    dense = np.array([[0, 1], [2, 0]], dtype=np.float32)
    sp.save_npz(tmp_path / "s.npz", sp.csr_matrix(dense))
    nodes, matrix, _ = read_features(tmp_path / "s.npz")
    assert nodes is None and sp.issparse(matrix) and (matrix.toarray() == dense).all()
    np.savez(tmp_path / "d.npz", x=dense, nodes=np.array(["p", "q"]))
    nodes, matrix, _ = read_features(tmp_path / "d.npz")
    assert nodes == ["p", "q"] and (matrix == dense).all()


def test_npz_feature_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable NPZ"):
        read_features(tmp_path / "junk.npz")
    np.savez(tmp_path / "nan.npz", x=np.array([[np.nan]]))
    with pytest.raises(InputError, match="NaN"):
        read_features(tmp_path / "nan.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="not a readable NPZ"):  # allow_pickle=False refuses objects
        read_features(tmp_path / "obj.npz")


def test_labels_two_column_and_one_per_line(tmp_path):
    (tmp_path / "l2.tsv").write_text("b\tB\na\tA\n")
    assert read_labels(tmp_path / "l2.tsv", ["a", "b", "c"]) == ["A", "B", None]
    (tmp_path / "l1.txt").write_text("A\n-1\nC\n")
    assert read_labels(tmp_path / "l1.txt", ["a", "b", "c"]) == ["A", None, "C"]
    with pytest.raises(InputError, match="line 1: node 'z' is not in the graph"):
        (tmp_path / "l3.tsv").write_text("z\tA\n")
        read_labels(tmp_path / "l3.tsv", ["a"])
    with pytest.raises(InputError, match="2 labels for 3 nodes"):
        (tmp_path / "l4.txt").write_text("A\nB\n")
        read_labels(tmp_path / "l4.txt", ["a", "b", "c"])


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_graph(tmp_path / "nothing.tsv")
    with pytest.raises(InputError, match="unknown graph format"):
        read_graph(tmp_path, fmt="dot")


def test_planetoid_layout_checks(tmp_path):
    with pytest.raises(InputError, match="not a Planetoid directory"):
        read_planetoid(tmp_path)
    sp.save_npz(tmp_path / "features.npz", sp.csr_matrix(np.eye(3, dtype=np.float32)))
    (tmp_path / "labels.txt").write_text("0\n1\n-1\n")
    (tmp_path / "edges.txt").write_text("0 1\n1 2\n")
    (tmp_path / "train_idx.txt").write_text("0\n5\n")
    with pytest.raises(InputError, match=r"train_idx.txt: line 2: node 5 is outside 0..2"):
        read_planetoid(tmp_path)
    (tmp_path / "train_idx.txt").write_text("0\n1\n")
    (tmp_path / "classes.txt").write_text("red\nblue\n")
    g = read_planetoid(tmp_path)
    assert g.labels == ["0", "1", None] and g.splits["train"].tolist() == [0, 1] and g.class_names == ["red", "blue"]
    (tmp_path / "edges.txt").write_text("0 1\n1 3\n")
    with pytest.raises(InputError, match="edges.txt: line 2: edge names node '3'"):
        read_planetoid(tmp_path)


def test_shared_cora_counts():
    cora = read_planetoid(require_shared("planetoid", "cora"))
    assert (cora.n_nodes, cora.features.shape[1], cora.n_edges) == (2708, 1433, 2 * 5278)
    assert [len(cora.splits[s]) for s in ("train", "val", "test")] == [140, 500, 1000]
    assert sorted({c for c in cora.labels}) == [str(i) for i in range(7)]
