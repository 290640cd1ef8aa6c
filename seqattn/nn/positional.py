"""Positional encodings: self-attention alone is blind to order (lecture: "Positional Encoding").

Two absolute encodings from the lecture are added to the input vectors: the fixed sinusoidal
one of Vaswani et al. (2017) and a learned table.  (A relative bias per offset j - i lives in
the attention itself: ``MultiHeadSelfAttention(relative_bias=True)``.)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

POSITIONALS: tuple[str, ...] = ("sinusoidal", "learned", "none")


class SinusoidalPositionalEncoding(nn.Module):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)).

    Fixed (no parameters), defined for any length, so it never limits N.

    Shapes:
        x: (B, N, d)  ->  (B, N, d)
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.register_buffer("inv_freq", torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model)),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        pos = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)[:, None] * self.inv_freq  # (N, d/2)
        pe = torch.zeros(x.shape[1], self.d_model, device=x.device, dtype=x.dtype)
        pe[:, 0::2] = torch.sin(pos)
        pe[:, 1::2] = torch.cos(pos[:, : self.d_model // 2])
        return x + pe


class LearnedPositionalEncoding(nn.Module):
    """A learned vector per absolute position 0..max_len-1 (BERT, GPT-2).

    Shapes:
        x: (B, N, d)  ->  (B, N, d)
    Raises:
        ValueError: N > max_len (a learned table knows no longer positions).
    """

    def __init__(self, d_model: int, max_len: int):
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] > self.table.num_embeddings:
            raise ValueError(f"sequence of {x.shape[1]} positions exceeds the learned table's "
                             f"max_len={self.table.num_embeddings}")
        return x + self.table.weight[: x.shape[1]]


def positional_encoding(kind: str, d_model: int, max_len: int = 512) -> nn.Module:
    """Build the positional encoding ``kind`` ("sinusoidal", "learned" or "none").

    Raises:
        ValueError: unknown kind.
    """
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model)
    if kind == "learned":
        return LearnedPositionalEncoding(d_model, max_len)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown positional encoding {kind!r}; expected one of {POSITIONALS}")
