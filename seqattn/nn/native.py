"""The C++ truncated-attention kernel (seqattn/nn/csrc/banded_attention.cpp) through ctypes.

``banded_attention`` is the path of ``seqattn.nn.attention.fused_attention`` for truncated
attention where it applies: fp32 tensors on an AVX-512 CPU, head size 16, 32, 64 or 128, with or
without attention dropout.  With gradients it runs as an autograd Function whose backward is the
kernel's backward (FlashAttention-2's, Dao 2023, with the dropout mask regenerated from its seed).
The training forward saves the attention weights P of the band for it: (2w + 17) / Dh times the
memory of q, O(N w), which spares the backward recomputing Q K^T and the exponentials (a training
step 8-11% faster at N = 16384, w = 64; docs/performance.md).  Everywhere else (GPUs, other
CPUs, a machine where setup.py found no compiler) it returns None and the caller runs its torch
path, so the kernel is an accelerator, never a requirement.

Environment (read on every call):
    SEQATTN_NATIVE=0       the torch path instead (A/B measurements, bisecting a difference)
    SEQATTN_SAVE_PROBS=0   save only the log-sum-exp (N floats per head) and recompute P in the
                           backward, FlashAttention's way: training memory O(N Dh), a slower step
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import math
import os
import warnings
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

HEAD_SIZES = (16, 32, 64, 128)
_ABI = 3  # seqattn_banded_abi() of the sources this module calls
_BIAS_PAD = 16  # zeros on each side of the reversed bias table (see the .cpp header)
_PANEL = 16  # queries per panel of the kernel (its PANEL)


@cache
def _library() -> ctypes.CDLL | None:
    """The built library next to this file, or None (not built, built from older sources, or not an
    AVX-512 CPU)."""
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return None
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_banded_attention{suffix}"
        if path.exists():
            lib = ctypes.CDLL(str(path))
            if getattr(lib, "seqattn_banded_abi", None) is None or lib.seqattn_banded_abi() != _ABI:
                warnings.warn(f"{path.name} was built from older sources and is not used (the torch path "
                              "runs instead); `pip install -e .` or `make` rebuilds it", RuntimeWarning, stacklevel=2)
                return None
            ptr, i64, i32, f32, u64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float, ctypes.c_uint64
            sizes = [f32, u64, i32, i32, i32, i32, i32, f32, i32]  # dropout, seed, B, H, N, D, w, scale, threads
            lib.seqattn_banded_forward.argtypes = [ptr] * 10 + [ptr, i64, ptr, i64] + sizes
            lib.seqattn_banded_backward.argtypes = [ptr] * 16 + [ptr, i64, ptr, i64, ptr] + sizes
            lib.seqattn_banded_forward.restype = lib.seqattn_banded_backward.restype = i32
            return lib
    return None


def available() -> bool:
    """Whether the kernel is built, loadable and allowed (``SEQATTN_NATIVE`` not "0")."""
    return os.environ.get("SEQATTN_NATIVE", "1") != "0" and _library() is not None


def saves_probs() -> bool:
    """Whether a training forward saves P for the backward (``SEQATTN_SAVE_PROBS`` not "0")."""
    return os.environ.get("SEQATTN_SAVE_PROBS", "1") != "0"


def _saved_probs(q: Tensor, window: int) -> Tensor:
    """The buffer the kernel saves P in: (B, H, ceil(N / 16), 2w + 17, 16), per panel of 16 queries
    the weights of its 2w + 16 keys and a row of normalisers (the .cpp's saved_panel)."""
    bsz, heads, n, _ = q.shape
    return q.new_empty(bsz, heads, -(-n // _PANEL), 2 * window + _PANEL + 1, _PANEL)


def _strides(x: Tensor) -> ctypes.Array:
    return (ctypes.c_int64 * 3)(*x.stride()[:3])


def _seq_major(like: Tensor) -> Tensor:
    """An uninitialised (B, H, N, Dh) tensor stored as (B, N, H, Dh), the layout heads are merged from."""
    bsz, heads, n, d_head = like.shape
    return like.new_empty(bsz, n, heads, d_head).transpose(1, 2)


def _masks(key_padding_mask: Tensor | None, relative_bias: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """The padding mask as (B, N) uint8 and the bias as the kernel's reversed, zero-padded table."""
    pad = rbias = None
    if key_padding_mask is not None:
        pad = key_padding_mask.to(device="cpu", dtype=torch.uint8).contiguous()
    if relative_bias is not None:
        rbias = F.pad(relative_bias.detach().flip(-1), (_BIAS_PAD, _BIAS_PAD)).contiguous()
    return pad, rbias


def _ptr(x: Tensor | None) -> int | None:
    return None if x is None else x.data_ptr()


def _row(x: Tensor | None) -> int:
    return 0 if x is None else x.stride(0)


def _seed() -> int:
    """A 64-bit seed for the kernel's dropout mask, drawn from torch's default generator, so that
    ``torch.manual_seed`` makes training runs repeatable as it does on the torch path."""
    return int(torch.randint(-2**63, 2**63 - 1, (), dtype=torch.int64)) % 2**64


def _forward(q: Tensor, k: Tensor, v: Tensor, window: int, pad: Tensor | None, rbias: Tensor | None,
             lse: Tensor | None = None, probs: Tensor | None = None, dropout: float = 0.0,
             seed: int = 0) -> Tensor | None:
    """The kernel's forward; fills ``lse`` (B, H, N) or ``probs`` (``_saved_probs``) when given, for
    the backward.  None for an unsupported head size."""
    bsz, heads, n, d_head = q.shape
    out = _seq_major(q)
    status = _library().seqattn_banded_forward(
        q.data_ptr(), _strides(q), k.data_ptr(), _strides(k), v.data_ptr(), _strides(v),
        out.data_ptr(), _strides(out), _ptr(lse), _ptr(probs), _ptr(pad), _row(pad), _ptr(rbias), _row(rbias),
        dropout, seed, bsz, heads, n, d_head, window, 1.0 / math.sqrt(d_head), torch.get_num_threads())
    return out if status == 0 else None


class _BandedAttention(torch.autograd.Function):
    """The kernel with its backward (FlashAttention-2's, Dao 2023): P saved by the forward
    (O(N * w) memory) or, under ``SEQATTN_SAVE_PROBS=0``, recomputed per panel from the saved
    log-sum-exp (O(N) beyond q, k, v); the dropout mask regenerated from its seed."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, relative_bias: Tensor | None, window: int,
                pad: Tensor | None, rbias: Tensor | None, dropout: float, seed: int) -> Tensor:
        probs = _saved_probs(q, window) if saves_probs() else None
        lse = q.new_empty(q.shape[:3]) if probs is None else None  # (B, H, N)
        out = _forward(q, k, v, window, pad, rbias, lse, probs, dropout, seed)
        ctx.save_for_backward(q, k, v, lse if probs is None else probs)
        ctx.probs_saved = probs is not None
        ctx.window, ctx.pad, ctx.rbias, ctx.dropout, ctx.seed = window, pad, rbias, dropout, seed
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        q, k, v, saved = ctx.saved_tensors
        lse, probs = (None, saved) if ctx.probs_saved else (saved, None)
        window, pad, rbias = ctx.window, ctx.pad, ctx.rbias
        if grad.stride(-1) != 1:
            grad = grad.contiguous()
        bsz, heads, n, d_head = q.shape
        # In the inputs' layouts, so that autograd can take them as they are.
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)  # all overwritten
        dbias = None
        if rbias is not None and ctx.needs_input_grad[3]:
            dbias = torch.zeros_like(rbias)
        _library().seqattn_banded_backward(
            q.data_ptr(), _strides(q), k.data_ptr(), _strides(k), v.data_ptr(), _strides(v),
            _ptr(lse), _ptr(probs), grad.data_ptr(), _strides(grad),
            dq.data_ptr(), _strides(dq), dk.data_ptr(), _strides(dk), dv.data_ptr(), _strides(dv),
            _ptr(pad), _row(pad), _ptr(rbias), _row(rbias), _ptr(dbias), ctx.dropout, ctx.seed,
            bsz, heads, n, d_head, window, 1.0 / math.sqrt(d_head), torch.get_num_threads())
        grad_bias = None
        if dbias is not None:  # the reversed table back to (H, 2w + 1)
            grad_bias = dbias[:, _BIAS_PAD:_BIAS_PAD + 2 * window + 1].flip(-1)
        return dq, dk, dv, grad_bias, None, None, None, None, None


def banded_attention(q: Tensor, k: Tensor, v: Tensor, window: int, key_padding_mask: Tensor | None = None,
                     relative_bias: Tensor | None = None, dropout: float = 0.0) -> Tensor | None:
    """dropout(softmax(q k^T / sqrt(Dh) + bias, |i - j| <= w, padding masked)) v, or None where not applicable.

    The same function as ``dense_attention(..., window=w)`` (score "dot"): max abs difference
    about 1e-6 in fp32 (tests/nn/test_native.py), gradients included (q, k, v and the bias)
    when any input requires them.  Rows with no allowed key are zeros.  ``dropout`` p in [0, 1)
    zeroes each attention weight with probability p and scales the others by 1 / (1 - p)
    (inverted dropout, Srivastava et al. 2014), with a mask drawn from a seed that
    ``torch.manual_seed`` fixes; the kernel's mask differs from ``F.dropout``'s, not its law.
    Lecture: truncated self-attention; Beltagy et al. 2020 (Longformer) for the sliding window.

    Shapes:
        q, k, v: (B, H, N, Dh) fp32 on the CPU, last stride 1 (views of a QKV projection are fine);
        key_padding_mask: (B, N) bool, True at padding; relative_bias: (H, 2w + 1), offset
        j - i + w  ->  (B, H, N, Dh), stored sequence-major ((B, N, H, Dh) memory), or None.
    """
    if not available() or window < 0 or not 0.0 <= dropout < 1.0:
        return None
    tensors = (q, k, v) if relative_bias is None else (q, k, v, relative_bias)
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    d_head = q.shape[-1]
    if d_head not in HEAD_SIZES or k.shape != q.shape or v.shape != q.shape:
        return None
    if any(t.stride(-1) != 1 for t in (q, k, v)):
        return None
    pad, rbias = _masks(key_padding_mask, relative_bias)
    seed = _seed() if dropout else 0
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _BandedAttention.apply(q, k, v, relative_bias, window, pad, rbias, dropout, seed)
    return _forward(q, k, v, window, pad, rbias, dropout=dropout, seed=seed)
