"""The attention maps a view asks for, from the weights a model returns: a layer's head, the mean
of its heads, or the rollout through it (seqattn.analysis.rollout)."""

from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor

from seqattn.analysis.rollout import attention_rollout


def attention_maps(per_layer: Sequence[Tensor], wanted: Sequence[tuple[int, Optional[int]]],
                   window: Optional[int] = None, kind: str = "raw") -> list[Tensor]:
    """One dense (N, K) map per (layer, head) in ``wanted``; head None is the mean over heads.

    Args:
        per_layer: every layer's weights of one sequence, from the first layer up.
        window: None for full attention (or cross attention, K = S); w for band layout (N, 2w + 1).
        kind: "raw" (the layer's weights) or "rollout" (the flow through layers 0..layer; the
            head is ignored: rollout averages the heads of each layer).
    Shapes:
        per_layer: L x (H, N, K), or L x (H, N, 2w + 1) with a window  ->  len(wanted) x (N, K)
        (K = N for self-attention.)
    """
    from seqattn.nn.attention import band_to_dense

    if kind == "rollout":
        depth = max(layer for layer, _ in wanted) + 1
        rolled = attention_rollout([w.float() for w in per_layer[:depth]], window)
        return [rolled[layer] if window is None else band_to_dense(rolled[layer], (layer + 1) * window)
                for layer, _ in wanted]
    maps = []
    for layer, head in wanted:
        weights = per_layer[layer].float()
        chosen = weights.mean(0) if head is None else weights[head]
        maps.append(chosen if window is None else band_to_dense(chosen, window))
    return maps
