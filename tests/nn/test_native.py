"""The C++ truncated-attention kernel (seqattn/nn/csrc) against the dense reference."""

import math
import shutil

import pytest
import torch

from seqattn.nn import native
from seqattn.nn.attention import dense_attention, fused_attention

AVX512 = torch.backends.cpu.get_cpu_capability() == "AVX512"
COMPILER = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
pytestmark = pytest.mark.skipif(not (AVX512 and COMPILER),
                                reason="the kernel is built and used only with a C++ compiler on an AVX-512 CPU")


@pytest.fixture(params=["saved", "recomputed"])
def p_for_backward(request, monkeypatch):
    """Both backwards: P saved by the training forward (the default) and P recomputed from the
    log-sum-exp (``SEQATTN_SAVE_PROBS=0``)."""
    monkeypatch.setenv("SEQATTN_SAVE_PROBS", "1" if request.param == "saved" else "0")


def _qkv(b, h, n, d, seed=0):
    """q, k, v as MultiHeadSelfAttention passes them: strided views of one (B, N, 3, H, D) projection."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, 3, h, d, generator=g).permute(2, 0, 3, 1, 4).unbind(0)


def test_kernel_is_built_where_it_can_be():
    """setup.py builds it next to seqattn/nn/native.py on any machine with a compiler (make demo, CI)."""
    assert native.available(), "seqattn/nn/_banded_attention*.so missing: run `pip install -e .` (make test does)"


def test_a_build_from_older_sources_is_not_called(monkeypatch):
    """The C signatures changed once (the backward dropped the forward's output): a library whose
    seqattn_banded_abi() differs, or that has none, is declined with a warning, not called."""
    class Old:
        def seqattn_banded_abi(self):
            return 1

    for lib in (Old(), object()):
        monkeypatch.setattr(native.ctypes, "CDLL", lambda path, lib=lib: lib)
        native._library.cache_clear()
        try:
            with pytest.warns(RuntimeWarning, match="older sources"):
                assert native._library() is None
        finally:
            native._library.cache_clear()
    monkeypatch.undo()
    assert native.available()


@pytest.mark.parametrize("b,h,n,d,window", [
    (1, 4, 300, 64, 16), (2, 2, 257, 32, 5), (1, 4, 1000, 64, 64), (3, 1, 50, 16, 100), (1, 2, 130, 128, 7),
    (2, 3, 17, 64, 0), (1, 1, 5, 32, 1), (2, 2, 333, 64, 256),
])
def test_equals_dense_reference_with_padding_and_relative_bias(b, h, n, d, window):
    q, k, v = _qkv(b, h, n, d)
    pad = torch.zeros(b, n, dtype=torch.bool)
    if b > 1:
        pad[1, n // 3:] = True  # a short sequence
    if b > 2:
        pad[2, n // 2:n // 2 + window + 1] = True  # a hole wider than the window: rows with no key
    bias = torch.randn(h, 2 * window + 1, generator=torch.Generator().manual_seed(2))
    ref, _ = dense_attention(q, k, v, window=window, key_padding_mask=pad, relative_bias=bias)
    out = native.banded_attention(q, k, v, window, pad, bias)
    assert out is not None
    assert (out - ref).abs().max() <= 1e-5
    plain = native.banded_attention(q, k, v, window)
    assert (plain - dense_attention(q, k, v, window=window)[0]).abs().max() <= 1e-5


def test_rows_without_keys_are_zeros():
    q, k, v = _qkv(2, 2, 90, 32)
    everything = torch.ones(2, 90, dtype=torch.bool)
    out = native.banded_attention(q, k, v, 4, everything)
    assert (out == 0).all()


def test_output_rows_not_64_byte_aligned_are_written_too():
    """Aligned output rows take non-temporal stores, the others plain ones: same values."""
    q, k, v = _qkv(1, 2, 100, 32)
    results = []
    for offset in (0, 1, 4):  # 0: 64-byte aligned rows; 1 and 4 floats further: not
        flat = torch.full((offset + 100 * 2 * 32,), float("nan"))
        out = flat[offset:].view(1, 100, 2, 32).transpose(1, 2)
        assert (out.data_ptr() % 64 == 0) == (offset == 0)
        status = native._library().seqattn_banded_forward(
            q.data_ptr(), native._strides(q), k.data_ptr(), native._strides(k), v.data_ptr(), native._strides(v),
            out.data_ptr(), native._strides(out), None, None, None, 0, None, 0, 0.0, 0, 1, 2, 100, 32, 9,
            1 / math.sqrt(32), 2)
        assert status == 0
        assert torch.isnan(flat[:offset]).all()  # nothing written before the output
        results.append(out.clone())
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    assert (results[0] - dense_attention(q, k, v, window=9)[0]).abs().max() <= 1e-5


def test_same_result_on_one_thread_and_two():
    q, k, v = _qkv(1, 4, 700, 64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = native.banded_attention(q, k, v, 20)
        torch.set_num_threads(2)
        two = native.banded_attention(q, k, v, 20)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def _grads(attend, b, h, n, d, window, pad, bias, upstream, layout="projection"):
    """Gradients of <attend(q, k, v, bias), upstream> w.r.t. the QKV projection and the bias.

    layout "projection": q, k, v are strided views of one (B, N, 3, H, D) tensor, as
    MultiHeadSelfAttention passes them; "heads": each is a contiguous (B, H, N, D) tensor, whose
    rows the kernel reads in place instead of packing them."""
    g = torch.Generator().manual_seed(0)
    if layout == "projection":
        x = torch.randn(b, n, 3, h, d, generator=g, requires_grad=True)
        q, k, v = x.permute(2, 0, 3, 1, 4).unbind(0)
    else:
        x = torch.randn(3, b, h, n, d, generator=g, requires_grad=True)
        q, k, v = x.unbind(0)
        assert q.is_contiguous() and k.stride(2) == d
    bias = bias.detach().clone().requires_grad_(True)
    out = attend(q, k, v, bias)
    return out, *torch.autograd.grad((out * upstream).sum(), [x, bias])


@pytest.mark.parametrize("layout", ["projection", "heads"])
@pytest.mark.parametrize("b,h,n,d,window", [
    (1, 4, 300, 64, 16), (2, 2, 257, 32, 5), (1, 2, 1000, 64, 64), (3, 1, 50, 16, 100), (1, 2, 130, 128, 7),
    (2, 3, 17, 64, 0), (1, 1, 5, 32, 1), (2, 2, 333, 64, 256),
])
@pytest.mark.usefixtures("p_for_backward")
def test_gradients_equal_dense_reference(b, h, n, d, window, layout):
    """The backward kernel: q, k, v and relative-bias gradients, with padding and rows without keys,
    for q, k, v cut from a projection and for contiguous ones (read in place)."""
    pad = torch.zeros(b, n, dtype=torch.bool)
    if b > 1:
        pad[1, n // 3:] = True
    if b > 2:
        pad[2, n // 2:n // 2 + window + 1] = True  # a hole wider than the window: rows with no key
    bias = torch.randn(h, 2 * window + 1, generator=torch.Generator().manual_seed(2))
    upstream = torch.randn(b, h, n, d, generator=torch.Generator().manual_seed(3))
    ref, ref_dx, ref_dbias = _grads(lambda q, k, v, bias: dense_attention(
        q, k, v, window=window, key_padding_mask=pad, relative_bias=bias)[0], b, h, n, d, window, pad, bias, upstream,
        layout)
    out, dx, dbias = _grads(lambda q, k, v, bias: native.banded_attention(q, k, v, window, pad, bias),
                            b, h, n, d, window, pad, bias, upstream, layout)
    assert out.grad_fn is not None and "BandedAttention" in type(out.grad_fn).__name__
    assert (out - ref).abs().max() <= 1e-5
    assert (dx - ref_dx).abs().max() <= 1e-5
    # Each bias gradient sums B * N terms (up to ~50 here; ~0 at w = 0, where they cancel): both
    # fp32 sums are ~2e-5 from an fp64 one, so the bound scales with the gradient's size.
    assert (dbias - ref_dbias).abs().max() <= 1e-5 * ref_dbias.abs().max().clamp(min=1)


@pytest.mark.parametrize("threads", [2, 3, 7])
@pytest.mark.usefixtures("p_for_backward")
def test_gradients_do_not_depend_on_the_thread_split(threads):
    """dK/dV rows shared by two threads' panel ranges go through per-thread buffers: short ranges
    (7 threads over a few panels, windows wider than a range) and ranges across sequences and heads."""
    b, h, n, d, window = 2, 2, 90, 32, 40
    pad = torch.zeros(b, n, dtype=torch.bool)
    pad[1, 70:] = True
    bias = torch.randn(h, 2 * window + 1, generator=torch.Generator().manual_seed(2))
    upstream = torch.randn(b, h, n, d, generator=torch.Generator().manual_seed(3))

    def attend(q, k, v, bias):
        return native.banded_attention(q, k, v, window, pad, bias)

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _, one_dx, one_dbias = _grads(attend, b, h, n, d, window, pad, bias, upstream)
        torch.set_num_threads(threads)
        _, dx, dbias = _grads(attend, b, h, n, d, window, pad, bias, upstream)
    finally:
        torch.set_num_threads(old)
    assert (dx - one_dx).abs().max() <= 1e-6
    assert (dbias - one_dbias).abs().max() <= 1e-6 * one_dbias.abs().max().clamp(min=1)


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.usefixtures("p_for_backward")
def test_key_gradients_overwrite_what_the_buffers_held(monkeypatch, threads, with_bias):
    """dK and dV come uninitialised (torch.empty_like): each row is stored by the first panel that
    reaches it, or zeroed after the join where two threads share it.  Filled with NaN here, so a
    row that is only added to, or never written, shows; so is the buffer of saved P, of which the
    backward must read only what the forward wrote.  Without a bias the backward forms dS in its
    own loop."""
    b, h, n, d, window = 2, 2, 90, 32, 40
    pad = torch.zeros(b, n, dtype=torch.bool)
    pad[1, 70:] = True
    bias = torch.randn(h, 2 * window + 1, generator=torch.Generator().manual_seed(2))
    upstream = torch.randn(b, h, n, d, generator=torch.Generator().manual_seed(3))

    def grads(attend):
        if with_bias:
            return _grads(attend, b, h, n, d, window, pad, bias, upstream)[1]
        x = torch.randn(b, n, 3, h, d, generator=torch.Generator().manual_seed(0), requires_grad=True)
        out = attend(*x.permute(2, 0, 3, 1, 4).unbind(0), None)
        return torch.autograd.grad((out * upstream).sum(), x)[0]

    ref = grads(lambda q, k, v, bias: dense_attention(
        q, k, v, window=window, key_padding_mask=pad, relative_bias=bias)[0])
    empty_like = torch.empty_like
    monkeypatch.setattr(torch, "empty_like", lambda x, **kw: empty_like(x, **kw).fill_(math.nan))
    saved_probs = native._saved_probs
    monkeypatch.setattr(native, "_saved_probs", lambda q, window: saved_probs(q, window).fill_(math.nan))
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        dx = grads(lambda q, k, v, bias: native.banded_attention(q, k, v, window, pad, bias))
    finally:
        torch.set_num_threads(old)
    assert (dx - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("setting,saved_shape", [("1", (2, 3, 5, 2 * 6 + 17, 16)), ("0", (2, 3, 70))])
def test_training_forward_saves_p_or_only_the_log_sum_exp(monkeypatch, setting, saved_shape):
    """P of the band per panel of 16 queries (5 panels for N = 70) by default; with
    SEQATTN_SAVE_PROBS=0 one log-sum-exp per query."""
    monkeypatch.setenv("SEQATTN_SAVE_PROBS", setting)
    q, k, v = (t.detach().requires_grad_() for t in _qkv(2, 3, 70, 32))
    out = native.banded_attention(q, k, v, 6)
    assert out.grad_fn.saved_tensors[3].shape == saved_shape


@pytest.mark.usefixtures("p_for_backward")
def test_rows_without_keys_have_zero_gradients():
    x = torch.randn(2, 90, 3, 2, 32, requires_grad=True)
    q, k, v = x.permute(2, 0, 3, 1, 4).unbind(0)
    everything = torch.ones(2, 90, dtype=torch.bool)
    native.banded_attention(q, k, v, 4, everything).sum().backward()
    assert (x.grad == 0).all()


def test_fused_attention_uses_it_for_inference_and_training(monkeypatch):
    """Inference, training and training with attention dropout all go through the kernel."""
    calls = []
    kernel = native.banded_attention
    monkeypatch.setattr(native, "banded_attention", lambda *a: calls.append(1) or kernel(*a))
    q, k, v = _qkv(2, 4, 200, 64)
    with torch.no_grad():
        out = fused_attention(q, k, v, window=8)
    assert len(calls) == 1 and native.available()
    assert (out - dense_attention(q, k, v, window=8)[0]).abs().max() <= 1e-5
    q.requires_grad_(True)
    out = fused_attention(q, k, v, window=8)
    assert len(calls) == 2 and "BandedAttention" in type(out.grad_fn).__name__
    out = fused_attention(q, k, v, window=8, dropout=0.1)
    assert len(calls) == 3 and "BandedAttention" in type(out.grad_fn).__name__
    out.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


# The kernel's dropout mask rebuilt in torch from its definition (struct Dropout in
# seqattn/nn/csrc/banded_attention.cpp): int64 tensors holding unsigned 32-bit values.
_M32 = 0xFFFFFFFF


def _mul32(x, c):
    """x * c mod 2^32 without overflowing int64 (c split into 16-bit halves)."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _fmix32(x):
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


def _dropout_keep(seed, b, h, n, p):
    """(B, H, N, N) bool: whether query i keeps its weight on key j."""
    bh = torch.arange(b * h, dtype=torch.int64)
    key = _fmix32((seed & _M32) ^ _fmix32((_mul32(bh, 0x9E3779B9) + (seed >> 32)) & _M32))
    i = torch.arange(n, dtype=torch.int64)
    row = _fmix32((_mul32(i, 0x85EBCA77)[None] + key[:, None]) & _M32)  # (BH, N)
    draw = _fmix32(row[:, :, None] ^ _mul32(i, 0xC2B2AE3D)[None, None, :])  # (BH, N, N)
    threshold = min(int(float(torch.tensor(p, dtype=torch.float32)) * 2**32), _M32)
    return (draw >= threshold).view(b, h, n, n)


SEED = 0xDEADBEEF12345678


@pytest.mark.parametrize("b,h,n,d,window,p", [
    (1, 4, 300, 64, 16, 0.1), (3, 1, 50, 16, 100, 0.5), (2, 2, 333, 64, 40, 0.3), (1, 2, 130, 128, 0, 0.2),
])
@pytest.mark.usefixtures("p_for_backward")
def test_dropout_equals_dense_reference_with_the_same_mask(monkeypatch, b, h, n, d, window, p):
    """Output and gradients (q, k, v, bias) against dense weights times the rebuilt mask / (1 - p)."""
    monkeypatch.setattr(native, "_seed", lambda: SEED)
    pad = torch.zeros(b, n, dtype=torch.bool)
    if b > 1:
        pad[1, n // 3:] = True
    if b > 2:
        pad[2, n // 2:n // 2 + window + 1] = True
    bias = torch.randn(h, 2 * window + 1, generator=torch.Generator().manual_seed(2))
    upstream = torch.randn(b, h, n, d, generator=torch.Generator().manual_seed(3))
    keep = _dropout_keep(SEED, b, h, n, p)

    def reference(q, k, v, bias):
        _, weights = dense_attention(q, k, v, window=window, key_padding_mask=pad, relative_bias=bias)
        return torch.matmul(weights * keep / (1 - p), v)

    def kernel(q, k, v, bias):
        return native.banded_attention(q, k, v, window, pad, bias, dropout=p)

    ref, ref_dx, ref_dbias = _grads(reference, b, h, n, d, window, pad, bias, upstream)
    out, dx, dbias = _grads(kernel, b, h, n, d, window, pad, bias, upstream)
    assert (out - ref).abs().max() <= 1e-5
    assert (dx - ref_dx).abs().max() <= 1e-5
    # Each bias entry sums B * N terms of dS = P (dP - delta).  With w = 0 every term is exactly 0
    # in the dense reference (P = 1) and of order 1e-7 |dP| in the kernel, hence the scale.
    scale = max(1.0, ref_dbias.abs().max().item(), ref_dx.abs().max().item())
    assert (dbias - ref_dbias).abs().max() <= 1e-5 * scale
    with torch.no_grad():  # the inference-style call (no log-sum-exp) draws the same mask
        q, k, v = _qkv(b, h, n, d)
        assert (native.banded_attention(q, k, v, window, pad, bias, dropout=p)
                - reference(q, k, v, bias)).abs().max() <= 1e-5


def test_dropout_mask_drops_the_right_share_independently():
    """The mask's law: share p dropped, for every head, query and key offset alike, and no two
    heads, queries or seeds with the same pattern."""
    p, n = 0.1, 512
    keep = _dropout_keep(SEED, 2, 4, n, p).float()  # 2M draws
    assert abs(1 - keep.mean().item() - p) < 0.002
    per_head = 1 - keep.mean((2, 3))
    assert (per_head - p).abs().max() < 0.005  # 262k draws each: 5 standard deviations
    offsets = torch.stack([keep.diagonal(o, -2, -1).mean() for o in range(-8, 9)])
    assert (1 - offsets - p).abs().max() < 0.01
    rows = keep.view(-1, n)
    assert torch.unique(rows, dim=0).shape[0] == rows.shape[0]
    assert not torch.equal(_dropout_keep(SEED, 1, 1, n, p), _dropout_keep(SEED + 1, 1, 1, n, p))
    assert not torch.equal(_dropout_keep(SEED, 1, 1, n, p), _dropout_keep(SEED + 2**32, 1, 1, n, p))


def test_dropout_follows_torch_manual_seed():
    q, k, v = _qkv(1, 2, 200, 32)
    torch.manual_seed(5)
    first, second = (native.banded_attention(q, k, v, 8, dropout=0.2) for _ in range(2))
    torch.manual_seed(5)
    again = native.banded_attention(q, k, v, 8, dropout=0.2)
    assert torch.equal(first, again) and not torch.equal(first, second)
    plain = native.banded_attention(q, k, v, 8)
    assert ((first - plain).abs() > 1e-3).float().mean() > 0.5  # dropout changed most outputs


@pytest.mark.usefixtures("p_for_backward")
def test_dropout_gradients_do_not_depend_on_the_thread_split(monkeypatch):
    """The mask is a function of (b, h, i, j), not of which thread computes the panel."""
    threads = 3
    monkeypatch.setattr(native, "_seed", lambda: SEED)
    b, h, n, d, window = 2, 2, 90, 32, 40
    upstream = torch.randn(b, h, n, d, generator=torch.Generator().manual_seed(3))
    bias = torch.zeros(h, 2 * window + 1)

    def attend(q, k, v, bias):
        return native.banded_attention(q, k, v, window, None, bias, dropout=0.3)

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _grads(attend, b, h, n, d, window, None, bias, upstream)
        torch.set_num_threads(threads)
        many = _grads(attend, b, h, n, d, window, None, bias, upstream)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(one[0], many[0])
    assert (one[1] - many[1]).abs().max() <= 1e-6


def test_declines_what_it_does_not_compute(monkeypatch):
    q, k, v = _qkv(1, 2, 64, 8)  # head size 8
    assert native.banded_attention(q, k, v, 4) is None
    q, k, v = _qkv(1, 2, 64, 16)
    assert native.banded_attention(q.double(), k.double(), v.double(), 4) is None
    monkeypatch.setenv("SEQATTN_NATIVE", "0")
    assert native.banded_attention(q, k, v, 4) is None


def _train_encoder(steps: int = 5) -> list[float]:
    """Losses of a small windowed encoder (heads of 16, relative bias, padding) trained with Adam."""
    from seqattn.nn.encoder import Encoder, EncoderConfig

    torch.manual_seed(0)
    cfg = EncoderConfig(d_model=64, n_heads=4, n_layers=2, d_ff=128, dropout=0.0, attention_dropout=0.0,
                        window=8, relative_bias=True, positional="none")
    encoder, head = Encoder(cfg), torch.nn.Linear(64, 5)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 300, 64, generator=g), torch.randint(0, 5, (4, 300), generator=g)
    pad = torch.zeros(4, 300, dtype=torch.bool)
    pad[1, 200:] = pad[3, 120:] = True
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = encoder(x, key_padding_mask=pad)
        loss = torch.nn.functional.cross_entropy(head(out)[~pad], y[~pad])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.usefixtures("p_for_backward")
def test_training_an_encoder_matches_the_torch_path(monkeypatch):
    """End to end: the same losses step after step through the kernel's backward and through torch's."""
    calls = []
    kernel = native._BandedAttention.apply
    monkeypatch.setattr(native._BandedAttention, "apply", lambda *a: calls.append(1) or kernel(*a))
    with_kernel = _train_encoder()
    assert calls, "training did not go through the kernel"
    monkeypatch.setenv("SEQATTN_NATIVE", "0")
    calls.clear()
    with_torch = _train_encoder()
    assert not calls
    assert max(abs(a - b) for a, b in zip(with_kernel, with_torch)) <= 1e-5
    assert with_kernel[-1] < with_kernel[0]
