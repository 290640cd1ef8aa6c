"""N -> N: one label per sequence element (lecture: "Sequence Labeling")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class TaggingHead(nn.Module):
    """A linear classifier applied to every position: logits = W h_i + b.

    Shapes:
        h: (B, N, d_model)  ->  logits: (B, N, n_labels)
    """

    def __init__(self, d_model: int, n_labels: int, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, n_labels)

    def forward(self, h: Tensor) -> Tensor:
        return self.proj(self.drop(h))

    @staticmethod
    def loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Mean cross-entropy over real positions (labels == -100 are padding and ignored).

        Shapes:
            logits: (B, N, n_labels), labels: (B, N) int64  ->  scalar
        """
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100,
                               label_smoothing=label_smoothing)
