"""N -> M: an output sequence read off the frames with CTC (lecture: "Sequence to sequence").

Connectionist Temporal Classification (Graves et al. 2006): each of the N frames predicts a
label or a *blank*; an output sequence is any frame path that, after merging repeats and
deleting blanks, spells it, and the loss is -log of the summed probability of all such paths.
No alignment between frames and output labels is needed for training, and M <= N.  Greedy
decoding takes the best label of each frame and collapses the path.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

BLANK = 0  # output id of the blank; labels are 1..K


class CTCHead(nn.Module):
    """A linear layer per frame to blank + K labels.

    Shapes:
        h: (B, N, d_model)  ->  logits: (B, N, K + 1), index 0 = blank
    """

    def __init__(self, d_model: int, n_labels: int, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, n_labels + 1)

    def forward(self, h: Tensor) -> Tensor:
        return self.proj(self.drop(h))

    @staticmethod
    def loss(logits: Tensor, lengths: Tensor, targets: list[list[int]]) -> Tensor:
        """CTC loss averaged over the batch (each sequence's loss divided by its target length).

        Args:
            lengths: (B,) frames per sequence; targets: label ids 1..K per sequence.
        Shapes:
            logits: (B, N, K + 1)  ->  scalar
        """
        import torch

        log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (N, B, K + 1)
        flat = torch.tensor([t for seq in targets for t in seq], dtype=torch.long)
        target_lengths = torch.tensor([len(seq) for seq in targets], dtype=torch.long)
        return F.ctc_loss(log_probs, flat, lengths, target_lengths, blank=BLANK, reduction="mean",
                          zero_infinity=True)


def greedy_path(logits: Tensor) -> list[int]:
    """Best output id per frame.  Shapes: (N, K + 1) -> N ids."""
    return logits.argmax(dim=-1).tolist()


def collapse(path: list[int], previous: int = BLANK) -> list[int]:
    """Merge repeated ids, then drop blanks: [0, 3, 3, 0, 3, 5, 5] -> [3, 3, 5].

    Args:
        previous: the id of the frame before ``path`` (for paths decoded chunk by chunk).
    """
    out = []
    for i in path:
        if i != previous and i != BLANK:
            out.append(i)
        previous = i
    return out
