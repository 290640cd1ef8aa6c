"""Attention rollout (seqattn.analysis.rollout): rows sum to 1, identity in, identity out, a hand
computation, and the banded path held to the dense one."""

import pytest
import torch

from seqattn.analysis.rollout import attention_rollout, band_matmul
from seqattn.nn.attention import band_mask, band_to_dense, dense_to_band


def _softmax_weights(layers, heads, n, seed=0, window=None):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(layers, heads, n, n, generator=g)
    if window is not None:
        scores = scores.masked_fill(~band_mask(n, n, window), float("-inf"))
    return list(torch.softmax(scores, dim=-1))


def test_rows_sum_to_one_at_every_depth():
    for r in attention_rollout(_softmax_weights(3, 4, 7)):
        assert r.shape == (7, 7)
        assert torch.allclose(r.sum(-1), torch.ones(7), atol=1e-6)


def test_identity_attention_rolls_out_to_the_identity():
    eye = torch.eye(5).expand(2, 5, 5)  # two heads that each look only at themselves
    assert torch.equal(attention_rollout([eye])[0], torch.eye(5))
    assert torch.allclose(attention_rollout([eye, eye, eye])[-1], torch.eye(5))


def test_matches_a_hand_computation():
    # One head, two positions.  Layer 1: row 0 looks at 1, row 1 half/half; layer 2: both look at 0.
    a1 = torch.tensor([[[0.0, 1.0], [0.5, 0.5]]])
    a2 = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    # Ã1 = 0.5 A1 + 0.5 I = [[0.5, 0.5], [0.25, 0.75]];  Ã2 = [[1, 0], [0.5, 0.5]]
    # R2 = Ã2 Ã1 = [[0.5, 0.5], [0.375, 0.625]]
    r1, r2 = attention_rollout([a1, a2])
    assert torch.allclose(r1, torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    assert torch.allclose(r2, torch.tensor([[0.5, 0.5], [0.375, 0.625]]))


def test_heads_are_averaged_before_the_product():
    h0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    h1 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    (r,) = attention_rollout([torch.stack([h0, h1])])
    assert torch.allclose(r, torch.tensor([[0.75, 0.25], [0.25, 0.75]]))  # 0.5 * [[.5, .5], [.5, .5]] + 0.5 I


def test_rows_that_do_not_sum_to_one_are_renormalised_and_padding_becomes_identity():
    relu_like = torch.tensor([[[2.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 3.0]]])
    (r,) = attention_rollout([relu_like])
    assert torch.allclose(r.sum(-1), torch.ones(3))
    assert torch.equal(r[1], torch.tensor([0.0, 1.0, 0.0]))


def test_residual_one_is_the_plain_product():
    a = _softmax_weights(2, 1, 4, seed=3)
    assert torch.allclose(attention_rollout(a, residual=1.0)[-1], a[1][0] @ a[0][0], atol=1e-6)


@pytest.mark.parametrize("window", [0, 1, 2])
def test_banded_rollout_equals_the_dense_rollout_and_widens_by_w_per_layer(window):
    n, layers = 9, 3
    dense = _softmax_weights(layers, 2, n, seed=window, window=window)
    bands = [dense_to_band(w[None], window)[0] for w in dense]  # (H, N, 2w + 1)
    for depth, (r_dense, r_band) in enumerate(zip(attention_rollout(dense), attention_rollout(bands, window)), 1):
        assert r_band.shape == (n, 2 * depth * window + 1)
        assert torch.allclose(band_to_dense(r_band, depth * window), r_dense, atol=1e-6)


def test_band_matmul_is_the_dense_product():
    g = torch.Generator().manual_seed(5)
    n = 6
    a = torch.rand(2, n, n, generator=g) * band_mask(n, n, 1)
    b = torch.rand(2, n, n, generator=g) * band_mask(n, n, 2)
    c = band_matmul(dense_to_band(a[None], 1)[0], 1, dense_to_band(b[None], 2)[0], 2)
    assert torch.allclose(band_to_dense(c, 3), a @ b, atol=1e-6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])
    with pytest.raises(ValueError, match="residual"):
        attention_rollout([torch.eye(2)[None]], residual=0.0)
    with pytest.raises(ValueError, match="not"):
        attention_rollout([torch.ones(1, 3, 4)])
