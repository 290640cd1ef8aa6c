"""Linear layers whose output row m depends on input row m alone, bit for bit, whatever the batch.

The layers behind ``--precision`` (``seqattn.models.precision``; issue 26): a tagger must give a
sentence the same tags, and the same probabilities, alone, in any batch and beside any padding.

``RowwiseInt8Linear`` (int8): int8 weights and per-row int8 activations; the sums are integers,
exact whatever the kernel's blocking.  ``RowPaddedLinear`` (fp32): the fp32 GEMM of torch's CPU
BLAS rounds rows differently when the number of rows M is not a multiple of 4 and small (measured
with torch 2.13's MKL on an AMD EPYC: M in {1-3, 5-7, 9-11} with 2 threads, more with more
threads; a multiple of 4, and every M from 12 up with 2 threads, gave each row the bits it has in
a batch of 4096), so the rows are padded to a multiple of 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INT8_MAX = 127  # symmetric range [-127, 127]: the scale maps the largest |value| to 127
_TINY = torch.finfo(torch.float32).tiny
ROW_MULTIPLE = 4  # fp32: rows padded to a multiple of this (see the module docstring)


class RowPaddedLinear(nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) that runs its GEMM on a multiple of 4 rows.

    Zero rows are appended (at most 3) and their outputs dropped, so that the BLAS takes the same
    kernel for a sentence alone as in a batch (module docstring).

    Shapes:
        x: (..., in_features)  ->  (..., out_features)
    """

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, self.in_features)  # (M, in)
        m = rows.shape[0]
        pad = -m % ROW_MULTIPLE
        y = F.linear(F.pad(rows, (0, 0, 0, pad)) if pad else rows, self.weight, self.bias)[:m]
        return y.view(*x.shape[:-1], self.out_features)


class RowwiseInt8Linear(nn.Module):
    """y = x W^T + b with int8 W (a scale per output channel) and int8 x (a scale per row).

    x_q[m] = round(x[m] / s_x[m]) with s_x[m] = max_k |x[m, k]| / 127, and W_q[n] likewise with
    s_w[n] = max_k |W[n, k]| / 127; then
        y[m, n] = (sum_k x_q[m, k] W_q[n, k]) * s_x[m] * s_w[n] + b[n]
    with the sum in int32 (exact, whatever the kernel's blocking: ``torch._int_mm``, oneDNN with
    VNNI on these CPUs) and each multiply and add a separate fp32 rounding.  So y[m] depends on
    x[m] alone: a row gives the same bits in any batch, beside any padding.  Per-token activation
    scales as in LLM.int8() (Dettmers et al. 2022) and ZeroQuant (Yao et al. 2022), without their
    outlier handling.  torch's dynamic quantisation, used before, takes one activation scale for
    the whole batch (its largest |x|), so a sentence's results depended on its batch-mates.

    Args:
        linear: the fp32 ``nn.Linear`` to copy (left unchanged).
    Shapes:
        x: (..., in_features) fp32  ->  (..., out_features) fp32
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()  # (out, in)
        w_scale = weight.abs().amax(dim=1) / INT8_MAX  # (out,)
        w_scale = torch.where(w_scale > 0, w_scale, torch.ones_like(w_scale))  # an all-zero row: any scale
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # Buffers, not parameters: nothing here trains.  (in, out) contiguous, the right-hand
        # operand of _int_mm as it reads fastest (measured).
        self.register_buffer("weight_int8", torch.round(weight / w_scale[:, None]).to(torch.int8).t().contiguous())
        self.register_buffer("weight_scale", w_scale)
        bias = linear.bias.detach().float() if linear.bias is not None else torch.zeros(linear.out_features)
        self.register_buffer("bias", bias.clone())

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, self.in_features)  # (M, in)
        # max |x| per row as max(max x, -min x), 2x faster than abs().amax() and 20x faster than an
        # inf-norm (measured); the floor keeps an all-zero row at zeros, and |x / s| <= 127 holds
        # under it too (|x| <= 127 * tiny there)
        scale = torch.maximum(rows.amax(dim=-1, keepdim=True), rows.amin(dim=-1, keepdim=True).neg_())
        scale = scale.div_(INT8_MAX).clamp_min_(_TINY)  # (M, 1)
        x_int8 = torch.div(rows, scale).round_().to(torch.int8)  # (M, in)
        # (M, out) int32 -> fp32 (exact below 2^24), then separate in-place ops, no fused
        # multiply-add: one rounding each.  (int32 * fp32 through type promotion took 13x longer.)
        y = torch._int_mm(x_int8, self.weight_int8).to(torch.float32)
        y.mul_(scale).mul_(self.weight_scale).add_(self.bias)
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights and rows"
