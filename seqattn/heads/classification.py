"""N -> 1: one class for the whole sequence (lecture: "Sequence Classification")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.nn.attention import MASK_VALUE


class AttentionPoolingHead(nn.Module):
    """Attention pooling, then a linear classifier.

    A learned vector scores each position, s_i = u^T h_i; the softmax of the scores weights the
    positions, c = sum_i softmax(s)_i h_i, and logits = W c + b.  (Mean pooling with learned
    weights; the sequence's summary is itself an attention output.)

    The pooling is a plain weighted mean, so it can be accumulated chunk by chunk with a running
    maximum ("online softmax", Milakov & Gimelshein 2018): see ``PoolingAccumulator``.

    Shapes:
        h: (B, N, d_model), padding: (B, N) bool (True = padding)  ->  logits: (B, n_classes)
    """

    def __init__(self, d_model: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.score = nn.Linear(d_model, 1)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, n_classes)

    def scores(self, h: Tensor, padding: Tensor | None = None) -> Tensor:
        """Pooling scores s_i, MASK_VALUE at padding.  Shapes: (B, N, d) -> (B, N)."""
        s = self.score(h).squeeze(-1)
        return s if padding is None else s.masked_fill(padding, MASK_VALUE)

    def classify(self, pooled: Tensor) -> Tensor:
        """Logits of pooled vectors.  Shapes: (B, d) -> (B, n_classes)."""
        return self.proj(self.drop(pooled))

    def forward(self, h: Tensor, padding: Tensor | None = None) -> Tensor:
        weights = torch.softmax(self.scores(h, padding), dim=-1)  # (B, N)
        pooled = torch.einsum("bn,bnd->bd", weights, h)
        return self.classify(pooled)

    @staticmethod
    def loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Mean cross-entropy; labels == -100 (sequences without one class) are ignored.

        Shapes:
            logits: (B, n_classes), labels: (B,) int64  ->  scalar
        """
        if bool((labels == -100).all()):
            return logits.sum() * 0.0
        return F.cross_entropy(logits, labels, ignore_index=-100, label_smoothing=label_smoothing)


class PoolingAccumulator:
    """Attention pooling over a sequence that arrives in chunks; equals the one-shot pooling.

    Keeps the running maximum m of the scores, Z = sum_i exp(s_i - m) and S = sum_i exp(s_i - m) h_i;
    a new maximum rescales Z and S by exp(m_old - m_new).

    Shapes:
        add(scores: (n,), h: (n, d)); pooled() -> (d,)
    """

    def __init__(self):
        self.max: Tensor | None = None
        self.total: Tensor | None = None
        self.weighted: Tensor | None = None

    def add(self, scores: Tensor, h: Tensor) -> None:
        if len(scores) == 0:
            return
        chunk_max = scores.max()
        new_max = chunk_max if self.max is None else torch.maximum(self.max, chunk_max)
        e = torch.exp(scores - new_max)  # (n,)
        if self.max is None:
            self.total, self.weighted = e.sum(), e @ h
        else:
            rescale = torch.exp(self.max - new_max)
            self.total = self.total * rescale + e.sum()
            self.weighted = self.weighted * rescale + e @ h
        self.max = new_max

    def pooled(self) -> Tensor:
        if self.total is None:
            raise ValueError("nothing was pooled")
        return self.weighted / self.total


class MultiHeadPoolingHead(nn.Module):
    """Multi-head attention pooling (Lin et al. 2017, "A Structured Self-attentive Sentence
    Embedding"), then an MLP classifier.

    Each of the r heads scores every position, A = softmax_N(W_2 tanh(W_1 h^T)) (r x N; each row
    sums to 1 over the sequence's positions), pools its own summary M_r = A_r H, and the
    concatenated summaries [M_1; ...; M_r] go through an MLP.  This is the N -> 1 case of the
    lecture: one vector for the whole sequence is itself an attention output, with one learned
    query per head; ``forward(..., return_weights=True)`` hands A to the visualiser.

    Args:
        d_model: size of the position vectors.
        n_classes: outputs.
        n_heads: pooling heads r.
        d_hidden: hidden size of the scorer and of the MLP.
        dropout: dropout before each linear layer of the MLP.
    Shapes:
        h: (B, N, d_model), padding: (B, N) bool (True = padding)
        ->  logits (B, n_classes) [, weights (B, r, N), rows summing to 1]
    """

    def __init__(self, d_model: int, n_classes: int, n_heads: int = 4, d_hidden: int = 256, dropout: float = 0.0):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d_model, d_hidden), nn.Tanh(), nn.Linear(d_hidden, n_heads, bias=False))
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_heads * d_model, d_hidden), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(d_hidden, n_classes))

    def forward(self, h: Tensor, padding: Tensor | None = None, return_weights: bool = False):
        s = self.score(h).transpose(1, 2)  # (B, r, N)
        if padding is not None:
            s = s.masked_fill(padding[:, None, :], MASK_VALUE)
        weights = torch.softmax(s, dim=-1)  # (B, r, N)
        pooled = torch.einsum("brn,bnd->brd", weights, h).flatten(1)  # (B, r * d)
        logits = self.mlp(pooled)
        return (logits, weights) if return_weights else logits
