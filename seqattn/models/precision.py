"""Inference precision: fp32 as trained, or int8 weights for the Linear layers.

``int8`` is PyTorch's dynamic quantisation (Jacob et al. 2018, "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference"; ``torch.ao.quantization.
quantize_dynamic``): the weights of every ``nn.Linear`` are stored as int8 with one scale per
tensor, activations are quantised on the fly per batch, and the matrix products run in int8
(VNNI on these CPUs).  Attention scores, softmax, LayerNorm and convolutions stay fp32.  It
changes the outputs slightly, so each model card gives the accuracy for both precisions.
"""

from __future__ import annotations

import warnings

from seqattn.errors import InputError

PRECISIONS = ("fp32", "int8")


def check_precision(precision: str) -> str:
    """The precision if known (no torch import, for argument checks).

    Raises:
        InputError: an unknown precision.
    """
    if precision not in PRECISIONS:
        raise InputError(f"unknown --precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def for_inference(model, precision: str):
    """The model (a torch ``nn.Module``) in eval mode at the given precision (a quantised copy for int8).

    Raises:
        InputError: an unknown precision.
    """
    check_precision(precision)
    model = model.eval()
    if precision == "fp32":
        return model
    import torch
    from torch import nn

    with warnings.catch_warnings():  # torch 2.13 marks the quantised tensor types as deprecated
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
