"""Attention rollout: how much each input position flows into each position after L layers.

Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers" (ACL), section 3.  Raw
attention of one layer says what a position mixes from the layer below, not from the input;
rollout follows the mixing down through the stack.  With a residual connection around each
attention layer, half of a position's new vector is itself, so layer l mixes with

    A_l   = mean over heads of the layer's weights              (N, N), rows sum to 1
    Ã_l   = r A_l + (1 - r) I,  each row divided by its sum       r = 0.5 in the paper
    R_l   = Ã_l Ã_(l-1) ... Ã_1                                   rollout through layer l

R_l[i, j] is the share of input position j in position i after layer l.  The rows of R_l sum
to 1.  Dividing each row of Ã_l by its sum makes this hold also for scores -> weights other
than softmax (relu, sigmoid: rows that need not sum to 1), and turns a row with no weight at
all (padding) into the identity row.

Banded (truncated) attention: a product of band matrices of half-widths a and b is a band of
half-width a + b, so R_l of attention with window w is a band of half-width l * w: after l
layers a position has heard from l * w positions on each side and never from further.  The
band layout is kept throughout (memory O(N * l * w), never N x N), so rollout of a long clip
costs about as much as its attention.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _mixing(weights: Tensor, residual: float, window: int | None) -> Tensor:
    """Ã of one layer: mean of heads, r A + (1 - r) I, rows renormalised.

    Shapes:
        weights: (..., H, N, N) or band (..., H, N, 2w + 1)  ->  (..., N, N) or (..., N, 2w + 1)
    """
    a = weights.float().mean(-3)
    identity = torch.zeros_like(a)
    if window is None:
        identity.diagonal(dim1=-2, dim2=-1).fill_(1.0)
    else:
        identity[..., window] = 1.0  # offset 0 is the middle column of the band
    mixed = residual * a + (1.0 - residual) * identity
    total = mixed.sum(-1, keepdim=True)
    return mixed / torch.where(total > 0, total, torch.ones_like(total))  # r = 1: a padding row stays 0


def band_matmul(a: Tensor, window_a: int, b: Tensor, window_b: int) -> Tensor:
    """A @ B for two band matrices kept in band layout.

    ``a[..., i, t]`` is A[i, i + t - window_a] (zero where that key is outside the sequence), the
    layout of ``seqattn.nn.attention.banded_attention``'s weights.  C[i, i + s] sums
    A[i, i + t] B[i + t, i + s] over t: one shifted product per column of A.

    Shapes:
        a: (..., N, 2 wa + 1), b: (..., N, 2 wb + 1)  ->  (..., N, 2 (wa + wb) + 1)
    """
    n = a.shape[-2]
    width_b = 2 * window_b + 1
    out = a.new_zeros(*a.shape[:-1], 2 * (window_a + window_b) + 1)
    rows = F.pad(b, (0, 0, window_a, window_a))  # row k of B is row k + wa here; rows outside are 0
    for t in range(2 * window_a + 1):  # key offset t - wa
        out[..., t:t + width_b] += a[..., t:t + 1] * rows[..., t:t + n, :]
    return out


def attention_rollout(weights: Sequence[Tensor], window: int | None = None, residual: float = 0.5) -> list[Tensor]:
    """Attention rollout through each layer of a stack: [R_1, R_2, ..., R_L] (module docstring).

    The last element is the rollout of the whole stack; element l - 1 is the rollout through
    layer l (what ``--layer l --attention-kind rollout`` shows).  Heads are averaged in each
    layer first, as in the paper: a head of one layer has no counterpart in the next.

    Args:
        weights: per layer, the attention weights of every head, from the first layer up.
        window: None for full attention; w for truncated attention in band layout.
        residual: r, the share of attention in Ã (0.5: the paper's weighting of a residual
            connection; 1.0: the plain product of the attention matrices).
    Shapes:
        weights: L x (..., H, N, N)  ->  L x (..., N, N)
        weights (window w): L x (..., H, N, 2w + 1)  ->  [(..., N, 2w + 1), (..., N, 4w + 1), ...]
        (R_l in band layout of half-width l * w)
    Raises:
        ValueError: no layers, a residual outside (0, 1], or a layer whose shape is not
            (..., H, N, N) / (..., H, N, 2w + 1).
    """
    if not weights:
        raise ValueError("attention_rollout needs the weights of at least one layer")
    if not 0.0 < residual <= 1.0:
        raise ValueError(f"residual must be in (0, 1], got {residual}")
    expected = None if window is None else 2 * window + 1
    out: list[Tensor] = []
    for layer, w in enumerate(weights):
        if w.dim() < 3 or w.shape[-1] != (w.shape[-2] if expected is None else expected):
            raise ValueError(f"layer {layer}: weights of shape {tuple(w.shape)} are not (..., H, N, "
                             f"{'N' if expected is None else f'2w + 1 = {expected}'})")
        mixing = _mixing(w, residual, window)
        if not out:
            out.append(mixing)
        elif window is None:
            out.append(torch.matmul(mixing, out[-1]))
        else:
            out.append(band_matmul(mixing, window, out[-1], layer * window))
    return out
