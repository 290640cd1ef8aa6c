"""Edge-masked attention: the sparse path equals dense attention with an adjacency mask."""

import math

import pytest
import torch
import torch.nn.functional as F

from seqattn.nn.attention import MASK_VALUE, additive_scores, dot_product_scores
from seqattn.nn.graph_attention import (
    GraphMultiHeadAttention, add_self_loops, edge_scores, graph_attention, segment_softmax,
)


def _random_graph(n: int, e: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (2, e), generator=g)


def _dense_reference(q, k, v, edge_index, score, v_score=None, a_src=None, a_dst=None):
    """Dense attention over all N x N pairs with A[i, j] = 1 for each edge j -> i (the O(N^2) path)."""
    n = q.shape[0]
    qh, kh, vh = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))  # (1, H, N, Dh)
    if score == "dot":
        scores = dot_product_scores(qh, kh)[0]  # (H, N, N)
    elif score == "additive":
        scores = additive_scores(qh, kh, v_score)[0]
    else:
        scores = F.leaky_relu((qh[0] * a_dst[:, None]).sum(-1)[:, :, None]
                              + (kh[0] * a_src[:, None]).sum(-1)[:, None, :], 0.2)
    allowed = torch.zeros(n, n, dtype=torch.bool)
    allowed[edge_index[1], edge_index[0]] = True
    weights = torch.softmax(scores.masked_fill(~allowed, MASK_VALUE), dim=-1) * allowed.any(-1, keepdim=True)
    return torch.matmul(weights, vh[0]).transpose(0, 1), weights  # (N, H, Dh), (H, N, N)


@pytest.mark.parametrize("score", ["dot", "additive", "gat"])
@pytest.mark.parametrize("n,e,seed", [(1, 0, 0), (7, 12, 1), (30, 90, 2), (60, 400, 3)])
@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_sparse_equals_dense_with_adjacency_mask(score, n, e, seed, chunk):
    g = torch.Generator().manual_seed(seed)
    h, d = 3, 4
    q, k, v = (torch.randn(n, h, d, generator=g) for _ in range(3))
    params = {name: torch.randn(h, d, generator=g) for name in ("v_score", "a_src", "a_dst")}
    # unique edges: the dense mask cannot represent a duplicated edge
    edge_index = torch.unique(_random_graph(n, e, seed), dim=1) if e else torch.zeros(2, 0, dtype=torch.long)
    edge_index = add_self_loops(edge_index, n)
    out, weights = graph_attention(q, k, v, edge_index, score=score, edge_chunk=chunk, **params)
    ref, ref_w = _dense_reference(q, k, v, edge_index, score, **params)
    assert (out - ref).abs().max() <= 1e-5
    dense_w = ref_w[:, edge_index[1], edge_index[0]].T  # (E, H) read off the dense matrix
    assert (weights - dense_w).abs().max() <= 1e-5


@pytest.mark.parametrize("score", ["dot", "additive", "gat"])
def test_softmax_over_incoming_edges_sums_to_one(score):
    n = 50
    edge_index = add_self_loops(_random_graph(n, 300, 4), n)  # with duplicate edges
    layer = GraphMultiHeadAttention(8, 4, 3, score=score).eval()
    _, weights = layer(torch.randn(n, 8), edge_index)
    sums = torch.zeros(n, 3).index_add_(0, edge_index[1], weights)
    assert torch.allclose(sums, torch.ones(n, 3), atol=1e-6)
    assert (weights >= 0).all()


def test_isolated_nodes_attend_to_themselves():
    n = 6
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])  # nodes 3, 4, 5 have no edges
    looped = add_self_loops(edge_index, n)
    q, k, v = (torch.randn(n, 2, 3) for _ in range(3))
    out, weights = graph_attention(q, k, v, looped)
    for node in (3, 4, 5):
        edges = (looped[1] == node).nonzero().flatten()
        assert looped[0, edges].tolist() == [node]
        assert torch.allclose(weights[edges], torch.ones(1, 2))
        assert torch.allclose(out[node], v[node])
    # without self-loops, a node without incoming edges receives nothing
    out, _ = graph_attention(q, k, v, edge_index)
    assert torch.equal(out[3], torch.zeros(2, 3))


def test_add_self_loops_replaces_existing_loops():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 1, 0, 2]])
    looped = add_self_loops(edge_index, 3)
    assert looped.tolist() == [[0, 1, 0, 1, 2], [1, 0, 0, 1, 2]]


def test_segment_softmax_is_stable_for_large_scores():
    scores = torch.tensor([[1000.0], [1001.0], [-1000.0]])
    weights = segment_softmax(scores, torch.tensor([0, 0, 1]), 2)
    assert torch.isfinite(weights).all()
    assert torch.allclose(weights[:, 0], torch.tensor([1 / (1 + math.e), math.e / (1 + math.e), 1.0]))


def test_gradients_match_dense():
    n, h, d = 20, 2, 4
    edge_index = add_self_loops(torch.unique(_random_graph(n, 60, 5), dim=1), n)
    g = torch.Generator().manual_seed(5)
    base = [torch.randn(n, h, d, generator=g, dtype=torch.float64) for _ in range(3)]
    sparse_in = [t.clone().requires_grad_() for t in base]
    dense_in = [t.clone().requires_grad_() for t in base]
    graph_attention(*sparse_in, edge_index, edge_chunk=7)[0].square().sum().backward()
    _dense_reference(*dense_in, edge_index, "dot")[0].square().sum().backward()
    for a, b in zip(sparse_in, dense_in):
        assert (a.grad - b.grad).abs().max() <= 1e-9


def test_module_heads_concat_and_mean():
    n = 10
    edge_index = add_self_loops(_random_graph(n, 20, 6), n)
    x = torch.randn(n, 5)
    out, weights = GraphMultiHeadAttention(5, 4, 3, score="dot")(x, edge_index)
    assert out.shape == (n, 12) and weights.shape == (edge_index.shape[1], 3)
    out, _ = GraphMultiHeadAttention(5, 4, 3, score="gat", concat=False)(x, edge_index)
    assert out.shape == (n, 4)


def test_permuting_nodes_permutes_outputs():
    """Without positions, attention along edges is equivariant to renumbering the nodes."""
    n = 15
    edge_index = add_self_loops(_random_graph(n, 40, 7), n)
    layer = GraphMultiHeadAttention(6, 3, 2, score="gat").eval()
    x = torch.randn(n, 6)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(7))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    out, _ = layer(x, edge_index)
    out_perm, _ = layer(x[perm], inverse[edge_index])
    assert torch.allclose(out_perm, out[perm], atol=1e-6)


@pytest.mark.parametrize("bad,message", [
    (torch.tensor([0, 1]), r"\(2, E\)"),
    (torch.tensor([[0], [9]]), "outside"),
    (torch.tensor([[0.0], [1.0]]), "integer"),
])
def test_bad_edge_index(bad, message):
    q = torch.randn(3, 1, 2)
    with pytest.raises(ValueError, match=message):
        graph_attention(q, q, q, bad)


def test_unknown_score_and_missing_parameters():
    q = torch.randn(3, 1, 2)
    edges = add_self_loops(torch.zeros(2, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="unknown score"):
        edge_scores(q, q, edges, score="cosine")
    with pytest.raises(ValueError, match="v_score"):
        edge_scores(q, q, edges, score="additive")
    with pytest.raises(ValueError, match="a_src"):
        edge_scores(q, q, edges, score="gat")
    with pytest.raises(ValueError, match="unknown score"):
        GraphMultiHeadAttention(2, 2, 1, score="cosine")


def test_edge_bias_and_propagation_steps_match_dense():
    n, h, d = 12, 2, 3
    edge_index = add_self_loops(torch.unique(_random_graph(n, 30, 8), dim=1), n)
    g = torch.Generator().manual_seed(8)
    q, k, v = (torch.randn(n, h, d, generator=g, dtype=torch.float64) for _ in range(3))
    bias = torch.randn(edge_index.shape[1], h, generator=g, dtype=torch.float64)
    out, weights = graph_attention(q, k, v, edge_index, edge_bias=bias, steps=3, teleport=0.2)
    scores = dot_product_scores(q.transpose(0, 1), k.transpose(0, 1))  # (H, N, N)
    dense_bias = torch.zeros(h, n, n, dtype=torch.float64)
    dense_bias[:, edge_index[1], edge_index[0]] = bias.T
    allowed = torch.zeros(n, n, dtype=torch.bool)
    allowed[edge_index[1], edge_index[0]] = True
    a = torch.softmax((scores + dense_bias).masked_fill(~allowed, MASK_VALUE), dim=-1)  # (H, N, N)
    expected = v.transpose(0, 1)  # (H, N, Dh)
    for _ in range(3):
        expected = 0.8 * torch.matmul(a, expected) + 0.2 * v.transpose(0, 1)
    assert (out - expected.transpose(0, 1)).abs().max() <= 1e-9
    assert (weights - a[:, edge_index[1], edge_index[0]].T).abs().max() <= 1e-9
    with pytest.raises(ValueError, match="edge_bias"):
        graph_attention(q, k, v, edge_index, edge_bias=bias[:-1])
    with pytest.raises(ValueError, match="teleport"):
        graph_attention(q, k, v, edge_index, steps=0)
