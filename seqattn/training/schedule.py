"""Learning-rate schedules and checkpoint averaging, shared by every task through ``fit``."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Learning-rate schedule: linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps``.

    lr(step) = base * (step + 1) / warmup          for step < warmup
             = base * (1 + cos(pi * p)) / 2         p = (step - warmup) / (total - warmup), capped at 1
    (Vaswani et al. 2017 warm up linearly; the cosine decay is SGDR's, Loshchilov & Hutter 2017.)
    Returns a ``LambdaLR`` (its state_dict goes into checkpoints; the lambda is rebuilt on resume).
    """
    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)


def constant(optimizer: torch.optim.Optimizer):
    """The learning rate as given at every step (GAT's recipe for Cora)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


class WeightAverage:
    """The mean of a model's weights over the last epochs of a run (checkpoint averaging).

    Vaswani et al. 2017 (section 6.1) average the last checkpoints of a run; fairseq ships
    ``scripts/average_checkpoints.py`` for it.  Here a running sum of the weights after each of
    the final ``last`` epochs of the schedule is kept (one copy of the weights, not ``last``), so it
    fits in a checkpoint and a resumed run ends with the same average.  Float tensors are
    averaged; other tensors (integer buffers) take the last epoch's value.
    """

    def __init__(self, last: int, epochs: int):
        self.first_epoch = epochs - last + 1 if last > 1 else epochs + 1  # last <= 1: never averages
        self.sums: dict[str, Tensor] = {}
        self.epochs: list[int] = []

    def add(self, epoch: int, weights: dict[str, Tensor]) -> None:
        """Count the weights after ``epoch`` (a state dict) if it is one of the last epochs."""
        if epoch < self.first_epoch:
            return
        for name, value in weights.items():
            value = value.detach()
            if name in self.sums and value.is_floating_point():
                self.sums[name] += value
            else:
                self.sums[name] = value.clone()
        self.epochs.append(epoch)

    def average(self) -> dict[str, Tensor] | None:
        """The mean weights (a state dict), or None before two epochs were counted."""
        if len(self.epochs) < 2:
            return None
        return {k: v / len(self.epochs) if v.is_floating_point() else v.clone() for k, v in self.sums.items()}

    def state(self) -> tuple[dict[str, Tensor], list[int]]:
        """(tensors, epochs counted) for a checkpoint."""
        return self.sums, list(self.epochs)

    def restore(self, tensors: dict[str, Tensor], epochs: list[int]) -> None:
        self.sums, self.epochs = dict(tensors), list(epochs)
