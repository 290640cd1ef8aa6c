"""N -> 1 pooling head: per-graph softmax, invariance to node order, graphs never mix."""

import torch

from seqattn.heads.pooling import AttentionPoolingHead, segment_max, segment_sum


def test_segment_sum_and_max():
    h = torch.tensor([[1.0, -2.0], [3.0, -1.0], [5.0, -7.0]])
    batch = torch.tensor([0, 0, 2])
    assert segment_sum(h, batch, 3).tolist() == [[4.0, -3.0], [0.0, 0.0], [5.0, -7.0]]
    assert segment_max(h, batch, 3).tolist() == [[3.0, -1.0], [0.0, 0.0], [5.0, -7.0]]


def test_attention_weights_sum_to_one_per_graph():
    head = AttentionPoolingHead(6, 1).eval()
    batch = torch.tensor([0, 0, 0, 1, 1, 2])
    outputs, weights = head(torch.randn(6, 6), batch, 3)
    assert outputs.shape == (3, 1)
    assert torch.allclose(torch.zeros(3).index_add_(0, batch, weights), torch.ones(3), atol=1e-6)


def test_node_order_does_not_matter_and_graphs_do_not_mix():
    head = AttentionPoolingHead(4, 2).eval()
    h = torch.randn(5, 4)
    batch = torch.tensor([0, 0, 0, 1, 1])
    out, _ = head(h, batch, 2)
    perm = torch.tensor([4, 2, 0, 3, 1])
    out_perm, _ = head(h[perm], batch[perm], 2)
    assert torch.allclose(out, out_perm, atol=1e-6)
    h2 = h.clone()
    h2[3:] += 10  # change graph 1 only
    out2, _ = head(h2, batch, 2)
    assert torch.allclose(out[0], out2[0]) and not torch.allclose(out[1], out2[1])


def test_losses():
    outputs = torch.tensor([[0.0], [2.0]])
    assert torch.isclose(AttentionPoolingHead.loss(outputs, torch.tensor([1.0, 2.0]), "regression"), torch.tensor(0.5))
    assert AttentionPoolingHead.loss(outputs, torch.tensor([0.0, 1.0]), "binary") > 0
