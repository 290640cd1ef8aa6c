"""What every training loop shares."""

from __future__ import annotations

import torch
from torch import Tensor


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
