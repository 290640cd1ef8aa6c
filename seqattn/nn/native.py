"""The C++ truncated-attention kernel (seqattn/nn/csrc/banded_attention.cpp) through ctypes.

``banded_attention`` is the inference path of ``seqattn.nn.attention.fused_attention`` where it
applies: fp32 tensors on an AVX-512 CPU, head size 16, 32, 64 or 128, no gradients.  Everywhere
else (training, GPUs, other CPUs, a machine where setup.py found no compiler) it returns None
and the caller runs its torch path, so the kernel is an accelerator, never a requirement.

Set ``SEQATTN_NATIVE=0`` to turn it off (A/B measurements, bisecting a difference).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import math
import os
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

HEAD_SIZES = (16, 32, 64, 128)
_BIAS_PAD = 16  # zeros on each side of the reversed bias table (see the .cpp header)


@cache
def _library() -> ctypes.CDLL | None:
    """The built library next to this file, or None (not built, or not an AVX-512 CPU)."""
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return None
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_banded_attention{suffix}"
        if path.exists():
            lib = ctypes.CDLL(str(path))
            fn = lib.seqattn_banded_forward
            ptr, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
            fn.argtypes = [ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, i64, ptr, i64,
                           i32, i32, i32, i32, i32, ctypes.c_float, i32]
            fn.restype = i32
            return lib
    return None


def available() -> bool:
    """Whether the kernel is built, loadable and allowed (``SEQATTN_NATIVE`` not "0")."""
    return os.environ.get("SEQATTN_NATIVE", "1") != "0" and _library() is not None


def _strides(x: Tensor) -> ctypes.Array:
    return (ctypes.c_int64 * 3)(*x.stride()[:3])


def banded_attention(q: Tensor, k: Tensor, v: Tensor, window: int, key_padding_mask: Tensor | None = None,
                     relative_bias: Tensor | None = None) -> Tensor | None:
    """softmax(q k^T / sqrt(Dh) + bias, |i - j| <= w, padding masked) v, or None where not applicable.

    The same function as ``dense_attention(..., window=w)`` (score "dot"): max abs difference
    about 1e-6 in fp32 (tests/nn/test_native.py).  Rows with no allowed key are zeros.
    Lecture: truncated self-attention; Beltagy et al. 2020 (Longformer) for the sliding window.

    Shapes:
        q, k, v: (B, H, N, Dh) fp32 on the CPU, last stride 1 (views of a QKV projection are fine);
        key_padding_mask: (B, N) bool, True at padding; relative_bias: (H, 2w + 1), offset
        j - i + w  ->  (B, H, N, Dh), stored sequence-major ((B, N, H, Dh) memory), or None.
    """
    if not available() or window < 0:
        return None
    tensors = (q, k, v) if relative_bias is None else (q, k, v, relative_bias)
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None  # forward only: training takes the torch path, which has a backward
    bsz, heads, n, d_head = q.shape
    if d_head not in HEAD_SIZES or k.shape != q.shape or v.shape != q.shape:
        return None
    if any(t.stride(-1) != 1 for t in (q, k, v)):
        return None
    out = q.new_empty(bsz, n, heads, d_head).transpose(1, 2)
    pad = pad_row = None
    if key_padding_mask is not None:
        pad = key_padding_mask.to(device="cpu", dtype=torch.uint8).contiguous()
        pad_row = pad.stride(0)
    rbias = rbias_row = None
    if relative_bias is not None:
        rbias = F.pad(relative_bias.detach().flip(-1), (_BIAS_PAD, _BIAS_PAD)).contiguous()
        rbias_row = rbias.stride(0)
    status = _library().seqattn_banded_forward(
        q.data_ptr(), _strides(q), k.data_ptr(), _strides(k), v.data_ptr(), _strides(v),
        out.data_ptr(), _strides(out), None if pad is None else pad.data_ptr(), pad_row or 0,
        None if rbias is None else rbias.data_ptr(), rbias_row or 0,
        bsz, heads, n, d_head, window, 1.0 / math.sqrt(d_head), torch.get_num_threads())
    return out if status == 0 else None
