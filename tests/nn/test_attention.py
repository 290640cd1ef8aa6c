"""Properties of the attention core, one per lecture claim."""

import pytest
import torch

from seqattn.nn.attention import (
    MultiHeadSelfAttention, attention, band_to_dense, banded_attention, dense_attention, dense_to_band,
)

torch.manual_seed(0)


def _qkv(b=2, h=3, n=70, d=8, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(b, h, n, d, generator=g, dtype=dtype) for _ in range(3)]


@pytest.mark.parametrize("window,block", [(0, 16), (1, 16), (5, 16), (16, 16), (20, 32), (100, 16)])
@pytest.mark.parametrize("score", ["dot", "additive"])
def test_banded_equals_dense_with_band_mask(window, block, score):
    q, k, v = _qkv()
    v_score = torch.randn(3, 8, dtype=torch.float64) if score == "additive" else None
    bias = torch.randn(3, 2 * window + 1, dtype=torch.float64)
    pad = torch.zeros(2, 70, dtype=torch.bool)
    pad[1, 50:] = True
    ref, ref_w = dense_attention(q, k, v, window=window, key_padding_mask=pad, score=score, v_score=v_score,
                                 relative_bias=bias)
    out, band = banded_attention(q, k, v, window, key_padding_mask=pad, score=score, v_score=v_score,
                                 relative_bias=bias, block=block)
    assert (out - ref).abs().max() <= 1e-5
    assert (band_to_dense(band, window) - ref_w).abs().max() <= 1e-5
    assert (dense_to_band(ref_w, window) - band).abs().max() <= 1e-5


def test_banded_float32_tolerance():
    q, k, v = _qkv(n=300, d=16, dtype=torch.float32)
    ref, _ = dense_attention(q, k, v, window=7)
    out, _ = banded_attention(q, k, v, 7)
    assert (out - ref).abs().max() <= 1e-5


def test_banded_memory_is_linear_in_length():
    """No N x N tensor: the weights and every intermediate scale with N * (block + 2w)."""
    q, k, v = _qkv(b=1, h=1, n=4096, d=4, dtype=torch.float32)
    out, band = banded_attention(q, k, v, 8)
    assert band.shape == (1, 1, 4096, 17)
    assert out.shape == q.shape


@pytest.mark.parametrize("window", [None, 3])
def test_rows_sum_to_one(window):
    q, k, v = _qkv(n=40)
    pad = torch.zeros(2, 40, dtype=torch.bool)
    pad[0, 30:] = True
    _, w = attention(q, k, v, window=window, key_padding_mask=pad)
    sums = w.sum(-1)
    assert torch.allclose(sums[1], torch.ones_like(sums[1]))
    assert torch.allclose(sums[0, :, :30], torch.ones_like(sums[0, :, :30]))  # real queries
    # padded keys get no weight
    if window is None:
        assert w[0, :, :, 30:].abs().max() == 0


def test_padding_does_not_change_real_positions():
    torch.manual_seed(0)
    for window in (None, 2):
        mha = MultiHeadSelfAttention(16, 4, window=window).eval()
        x = torch.randn(1, 10, 16)
        padded = torch.cat([x, torch.randn(1, 5, 16)], dim=1)
        mask = torch.zeros(1, 15, dtype=torch.bool)
        mask[0, 10:] = True
        out, _ = mha(x)
        out_padded, _ = mha(padded, mask)
        assert (out - out_padded[:, :10]).abs().max() < 1e-5


def test_fully_masked_rows_are_finite_and_have_finite_gradients():
    q, k, v = [t.requires_grad_() for t in _qkv(n=50, dtype=torch.float32)]
    pad = torch.ones(2, 50, dtype=torch.bool)
    out, w = banded_attention(q, k, v, 4, key_padding_mask=pad, block=16)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(k.grad).all() and torch.isfinite(v.grad).all()
    assert w.abs().max() == 0


def test_bad_arguments():
    q, k, v = _qkv(n=5)
    with pytest.raises(ValueError):
        banded_attention(q, k, v, -1)
    with pytest.raises(ValueError):
        dense_attention(q, k[:, :, :4], v)
    with pytest.raises(ValueError):
        dense_attention(q, k, v, score="cosine")
    with pytest.raises(ValueError):
        MultiHeadSelfAttention(10, 3)
    with pytest.raises(ValueError):
        MultiHeadSelfAttention(12, 3, relative_bias=True)


@pytest.mark.parametrize("window", [None, 0, 3, 20])
@pytest.mark.parametrize("n", [9, 100])
def test_fused_path_equals_the_weight_returning_path(window, n):
    """The fast path (torch SDPA, no weights) and the reference path agree, padding included."""
    from seqattn.nn.attention import fused_attention

    q, k, v = _qkv(n=n, dtype=torch.float32)
    pad = torch.zeros(2, n, dtype=torch.bool)
    pad[1, n // 2:] = True
    bias = torch.randn(3, 2 * window + 1) if window is not None else None
    ref, _ = attention(q, k, v, window=window, key_padding_mask=pad, relative_bias=bias)
    fast = fused_attention(q, k, v, window=window, key_padding_mask=pad, relative_bias=bias)
    assert (fast - ref).abs().max() <= 1e-5


def test_module_fast_path_has_no_weights_and_same_output():
    mha = MultiHeadSelfAttention(16, 4, window=3, relative_bias=True).eval()
    torch.nn.init.normal_(mha.relative_bias)
    x = torch.randn(2, 90, 16)
    out, weights = mha(x)
    fast, none = mha(x, need_weights=False)
    assert none is None and weights is not None
    assert (fast - out).abs().max() <= 1e-5


@pytest.mark.parametrize("window", [None, 0, 1, 5, 16, 100])
@pytest.mark.parametrize("n", [9, 70])
def test_fused_path_has_the_gradients_of_the_weight_returning_path(window, n):
    """Speech models train through the fast path: its gradients must be the reference's (float64)."""
    q, k, v = _qkv(n=n)
    for t in (q, k, v):
        t.requires_grad_(True)
    bias = torch.randn(3, 2 * window + 1, dtype=torch.float64, requires_grad=True) if window is not None else None
    pad = torch.zeros(2, n, dtype=torch.bool)
    pad[1, n // 2:] = True
    slow, weights = attention(q, k, v, window=window, key_padding_mask=pad, relative_bias=bias)
    fast, none = attention(q, k, v, window=window, key_padding_mask=pad, relative_bias=bias, need_weights=False)
    assert none is None and weights is not None
    assert (fast - slow).abs().max() <= 1e-10
    leaves = [q, k, v] + ([bias] if bias is not None else [])
    real = lambda out: out[0].sum() + out[1, :, : n // 2].sum()  # noqa: E731 (padded queries do not count)
    for a, b in zip(torch.autograd.grad(real(slow), leaves), torch.autograd.grad(real(fast), leaves)):
        assert (a - b).abs().max() <= 1e-9


def test_fused_path_gives_zero_rows_where_every_key_is_padding():
    everything = torch.ones(1, 40, dtype=torch.bool)
    out, _ = attention(*_qkv(b=1, n=40), window=3, key_padding_mask=everything, need_weights=False)
    assert torch.isfinite(out).all() and (out == 0).all()


@pytest.mark.parametrize("window,block", [(3, 4), (3, 7), (10, 4), (10, 16), (2, 32)])
def test_fused_path_gradients_for_any_block_size(window, block):
    """The block windows' own backward (strided adds) equals autograd through the dense reference."""
    from seqattn.nn.attention import fused_attention

    q, k, v = _qkv(n=61)
    for t in (q, k, v):
        t.requires_grad_(True)
    dense, _ = dense_attention(q, k, v, window=window)
    fast = fused_attention(q, k, v, window=window, block=block)
    assert (fast - dense).abs().max() <= 1e-10
    probe = torch.randn_like(dense)
    for a, b in zip(torch.autograd.grad((dense * probe).sum(), (q, k, v)),
                    torch.autograd.grad((fast * probe).sum(), (q, k, v))):
        assert (a - b).abs().max() <= 1e-9


def test_default_block_size_is_larger_on_a_gpu():
    """The GPU's rule (measured on an H200, docs/performance.md) leaves the CPU's alone."""
    from seqattn.nn.attention import default_block_size

    assert [default_block_size(w) for w in (16, 17, 64, 256)] == [16, 32, 32, 32]
    assert [default_block_size(w, "cpu") for w in (16, 64)] == [16, 32]
    assert [default_block_size(w, torch.device("cuda", 0)) for w in (16, 64, 65, 256)] == [64, 64, 128, 128]


def test_dense_sdpa_only_for_short_sequences_on_a_gpu():
    """The GPU's dense rule (measured on an H200 at N = 1024 and 4096) leaves the CPU alone."""
    from seqattn.nn.attention import dense_is_faster

    gpu = torch.device("cuda", 0)
    assert dense_is_faster(gpu, 1024, 4 * 1024 ** 2) and dense_is_faster("cuda", 2048, 16 * 2048 ** 2)
    assert not dense_is_faster(gpu, 2049, 2049 ** 2) and not dense_is_faster(gpu, 4096, 4 * 4096 ** 2)
    assert not dense_is_faster(gpu, 2048, 32 * 4 * 2048 ** 2)  # a batch of 32: 32x the N^2 work
    assert not any(dense_is_faster("cpu", n, n * n) for n in (100, 1024, 2048))


def test_the_gpus_dense_path_equals_the_reference_with_padding_and_bias(monkeypatch):
    """The branch ``dense_is_faster`` sends a GPU's short sequences to, forced on the CPU's torch
    path: the band mask, padding (zero rows) and relative bias over the whole sequence."""
    from seqattn.nn import attention as module

    monkeypatch.setenv("SEQATTN_NATIVE", "0")
    asked = []
    monkeypatch.setattr(module, "dense_is_faster", lambda device, n, elements: asked.append((n, elements)) or True)
    window, n = 5, 90  # the banded layout's length (n > block + 2w) unless dense is faster
    q, k, v = _qkv(n=n)
    bias = torch.randn(3, 2 * window + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    pad = torch.zeros(2, n, dtype=torch.bool)
    pad[1, n // 2:] = True
    leaves = [t.clone().requires_grad_() for t in (q, k, v, bias)]
    dense, _ = dense_attention(*leaves[:3], window=window, key_padding_mask=pad, relative_bias=leaves[3])
    fast = module.fused_attention(*leaves[:3], window=window, key_padding_mask=pad, relative_bias=leaves[3])
    assert asked == [(n, 2 * 3 * n * n)]  # batch x heads x N x N scores
    assert (fast - dense).abs().max() <= 1e-10
    probe = torch.randn_like(dense)
    for a, b in zip(torch.autograd.grad((dense * probe).sum(), leaves),
                    torch.autograd.grad((fast * probe).sum(), leaves)):
        assert (a - b).abs().max() <= 1e-9


@pytest.mark.parametrize("window,block", [(16, 64), (64, 64), (65, 128)])
def test_fused_path_with_the_gpu_block_sizes_equals_dense_with_padding_and_bias(window, block, monkeypatch):
    """The block sizes a GPU takes by default, on the CPU's torch path: training (window copies)
    and inference (strided views), padding and relative bias included, gradients too."""
    from seqattn.nn.attention import fused_attention

    monkeypatch.setenv("SEQATTN_NATIVE", "0")  # the torch path, which CUDA tensors take
    n = block + 2 * window + 150  # more than one block plus its band: the banded layout
    q, k, v = _qkv(n=n)
    bias = torch.randn(3, 2 * window + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    pad = torch.zeros(2, n, dtype=torch.bool)
    pad[1, n // 2:] = True  # its last queries see no key in their band: zero rows
    leaves = [t.clone().requires_grad_() for t in (q, k, v, bias)]
    dense, _ = dense_attention(*leaves[:3], window=window, key_padding_mask=pad, relative_bias=leaves[3])
    fast = fused_attention(*leaves[:3], window=window, key_padding_mask=pad, relative_bias=leaves[3], block=block)
    assert (fast - dense).abs().max() <= 1e-10
    probe = torch.randn_like(dense)
    for a, b in zip(torch.autograd.grad((dense * probe).sum(), leaves),
                    torch.autograd.grad((fast * probe).sum(), leaves)):
        assert (a - b).abs().max() <= 1e-9
    with torch.no_grad():  # one sequence: K and V read in place (``_banded_sdpa_views``)
        views = fused_attention(q[1:], k[1:], v[1:], window=window, key_padding_mask=pad[1:], relative_bias=bias,
                                block=block)
    assert (views - dense[1:]).abs().max() <= 1e-10


@pytest.mark.parametrize("b,n,window,block", [(3, 200, 3, 4), (3, 130, 10, 4), (3, 97, 40, 2), (3, 150, 2, 4),
                                               (1, 64, 16, 16), (1, 200, 20, 32), (3, 64, 16, 16)])
def test_inference_views_path_equals_dense_reference_with_padding(b, n, window, block, monkeypatch):
    """Without gradients the banded layout reads K and V through strided views (ends padded,
    interior in place) for one sequence or for sequences of >= VIEWS_MIN_BLOCKS blocks; it must
    equal the dense reference, padding and relative bias included, on the strided q, k, v that
    MultiHeadSelfAttention passes in."""
    from seqattn.nn import attention as module

    monkeypatch.setenv("SEQATTN_NATIVE", "0")  # the torch path (the C++ kernel: tests/nn/test_native.py)
    calls = []
    views = module._banded_sdpa_views
    monkeypatch.setattr(module, "_banded_sdpa_views", lambda *a: calls.append(1) or views(*a))
    torch.manual_seed(1)
    q, k, v = torch.randn(b, n, 3, 2, 8).permute(2, 0, 3, 1, 4)  # 3 x (B, H=2, N, Dh=8), not contiguous
    pad = torch.zeros(b, n, dtype=torch.bool)
    if b == 3:
        pad[1, n // 3:] = True  # a short sequence
        pad[2, n // 2:n // 2 + window + 1] = True  # a hole wider than the window: some rows see no key
    bias = torch.randn(2, 2 * window + 1)
    ref, _ = dense_attention(q, k, v, window=window, key_padding_mask=pad, relative_bias=bias)
    with torch.no_grad():
        fast = module.fused_attention(q, k, v, window=window, key_padding_mask=pad, relative_bias=bias, block=block)
        plain = module.fused_attention(q, k, v, window=window, block=block)
    assert (fast - ref).abs().max() <= 1e-5
    assert (plain - dense_attention(q, k, v, window=window)[0]).abs().max() <= 1e-5
    took_views = b == 1 or -(-n // block) >= module.VIEWS_MIN_BLOCKS
    assert len(calls) == (2 if took_views else 0)


@pytest.mark.parametrize("activation", ["softmax", "relu", "sigmoid", "sparsemax"])
def test_every_activation_agrees_between_dense_and_banded_paths_and_respects_the_mask(activation):
    from seqattn.nn.attention import banded_attention, dense_attention, dense_to_band

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 40, 8, dtype=torch.float64) for _ in range(3))
    padding = torch.zeros(2, 40, dtype=torch.bool)
    padding[1, 30:] = True
    dense_out, dense_w = dense_attention(q, k, v, window=3, key_padding_mask=padding, activation=activation)
    band_out, band_w = banded_attention(q, k, v, 3, key_padding_mask=padding, activation=activation, block=8)
    assert torch.allclose(dense_out[0], band_out[0], atol=1e-10)
    assert torch.allclose(dense_out[1, :, :30], band_out[1, :, :30], atol=1e-10)
    assert torch.allclose(dense_to_band(dense_w, 3)[1, :, :30], band_w[1, :, :30], atol=1e-10)
    assert (dense_w[1, :, :, 30:] == 0).all()  # padded keys get no weight
    outside = ~torch.ones(40, 40, dtype=torch.bool).triu(-3).tril(3)
    assert (dense_w[..., outside] == 0).all()  # nor keys outside the band
    if activation in ("softmax", "sparsemax"):
        assert torch.allclose(dense_w[0].sum(-1), torch.ones(2, 40, dtype=torch.float64))
    if activation == "sparsemax":
        assert (dense_w[0] == 0).any()  # exact zeros inside the band


def test_an_unknown_activation_is_a_value_error():
    from seqattn.nn.attention import MultiHeadSelfAttention

    with pytest.raises(ValueError, match="activation"):
        MultiHeadSelfAttention(8, 2, activation="tanh")
