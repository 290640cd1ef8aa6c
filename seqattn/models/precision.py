"""Inference precision: fp32 as trained, or int8 matrix products for the Linear layers.

Both give a row (a word) the same bits whatever its batch: a tagger's answer for a sentence must
not depend on the sentences read with it, nor on how a pipe happened to flush (issue 26).

``int8`` replaces every ``nn.Linear`` by ``seqattn.models.invariant_linear.RowwiseInt8Linear``:
int8 weights with one scale per output channel, and activations quantised on the fly with one
scale per *row* (per token), the products in int8 with int32 sums (``torch._int_mm``: oneDNN,
VNNI on these CPUs).  Attention scores, softmax, LayerNorm and convolutions stay fp32.  torch's
dynamic quantisation (``quantize_dynamic``), used before, takes one activation scale per *tensor*,
the largest |x| of the whole batch, so a sentence's quantised activations, and sometimes its tags,
depended on its batch-mates and on their padding ("reports" in an EWT dev sentence was NOUN inside
a 300-line file and VERB alone).  The per-row scales also halve its error (measured on random
4096 x 256 inputs).  int8 changes the outputs slightly, so each model card gives the accuracy for
both precisions.

``fp32`` runs every ``nn.Linear`` as a ``RowPaddedLinear``, rows padded to a multiple of 4, where
the CPU BLAS rounds the same way in every batch (``seqattn.models.invariant_linear``).

The rest of the model keeps a row's bits too where the C++ attention kernel runs
(``seqattn.nn.native``: inference takes it at every length); tests/tasks/test_batch_invariance.py
holds the tagger to it.
"""

from __future__ import annotations

import copy

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


def attention_is_batch_invariant(encoder_cfg) -> bool:
    """Whether inference runs an encoder's attention (``seqattn.nn.encoder.EncoderConfig``) in the
    C++ kernel, where each query's result is the same bits in any batch and beside any padding:
    truncated dot-product softmax attention with a head size the kernel has, on an AVX-512 CPU
    where the kernel is built (``seqattn.nn.native``).  Elsewhere results agree to about 1e-6.
    """
    from seqattn.nn import native

    return (encoder_cfg.window is not None and encoder_cfg.score == "dot"
            and getattr(encoder_cfg, "activation", "softmax") == "softmax"
            and encoder_cfg.d_model // encoder_cfg.n_heads in native.HEAD_SIZES and native.available())


def for_inference(model, precision: str):
    """A copy of the model (a torch ``nn.Module``) in eval mode at the given precision, its Linear
    layers batch-invariant (module docstring): ``RowPaddedLinear`` for fp32, ``RowwiseInt8Linear``
    for int8.

    Raises:
        InputError: an unknown precision.
    """
    check_precision(precision)
    from torch import nn

    from seqattn.models.invariant_linear import RowPaddedLinear, RowwiseInt8Linear

    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is nn.Linear:
                if precision == "int8":
                    setattr(module, name, RowwiseInt8Linear(child))
                else:
                    child.__class__ = RowPaddedLinear  # same parameters; only its forward differs
    return model
