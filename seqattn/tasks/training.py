"""What every training loop shares."""

from __future__ import annotations

import math
import random
from pathlib import Path

import torch
from torch import Tensor

from seqattn.errors import ModelError


def optimizer_step(loss: Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler=None,
                   max_grad_norm: float = 1.0) -> float:
    """One update: clear gradients, backpropagate, clip the global gradient norm, step.

    Returns the loss as a float (for logging).
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.item()


def seed_run(seed: int) -> tuple[torch.Generator, random.Random]:
    """Seed Python's and torch's global generators for a training run.

    Returns (a torch Generator for data noise, a Random for batch order), both from ``seed``; the
    calls are made in a fixed order so that the same seed gives the same run.
    """
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed), random.Random(seed)


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


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Learning-rate schedule: linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps``.

    lr(step) = base * (step + 1) / warmup          for step < warmup
             = base * (1 + cos(pi * p)) / 2         p = (step - warmup) / (total - warmup), capped at 1
    Returns a ``LambdaLR`` (its state_dict goes into checkpoints; the lambda is rebuilt on resume).
    """
    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)


def start_or_resume(out: str | Path, force: bool, resume: str | Path | None, task: str):
    """What a trainer checks before any work: may ``out`` be written, and where does the run start.

    Returns:
        (the checkpoint directory OUT.checkpoint, checkpoint state or None, its tensors or None)
    Raises:
        ModelError: ``out`` exists and is not empty (no ``force``); ``resume`` is not a readable
            checkpoint, or one of another task.
    """
    from seqattn.models.checkpoint import read_checkpoint

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ModelError(f"{out}: exists and is not empty; choose another --out or pass --force")
    state = tensors = None
    if resume is not None:
        state, tensors = read_checkpoint(resume)
        if state["extra"].get("task") != task:
            raise ModelError(f"{resume}: not a checkpoint of a {task} model")
    return out.with_name(out.name + ".checkpoint"), state, tensors
