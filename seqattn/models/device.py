"""Where a command runs its model: ``--device cpu | cuda | cuda:N | auto``.

The CPU is the default, as in spaCy's CLI (``--gpu-id -1``) and SpeechBrain (``run_opts``):
the shipped models are a few MB, their int8 precision (``seqattn.models.precision``) runs on
the CPU only, and starting a CUDA context costs more than tagging a
page of text.  On a GPU the model runs in fp32; truncated attention runs as one dense SDPA call
with a band mask up to N = 2048 (``seqattn.nn.attention.dense_is_faster``) and as SDPA per query
block with the GPU's block sizes beyond (``default_block_size``; both from measurements on an
H200 in docs/performance.md, "Truncated attention on a GPU").  Inputs are built on the CPU and
moved over once per batch; outputs come back to the CPU before they are written.

Training stays on the CPU: a trainer's checkpoints (and so ``--resume``) hold the CPU's random
state, and the shipped recipes train in minutes on two cores.
"""

from __future__ import annotations

import re

from seqattn.errors import InputError

DEVICE_HELP = "cpu | cuda | cuda:N (a CUDA GPU; the model runs in fp32) | auto (the first GPU torch sees, else cpu)"
_DEVICE = re.compile(r"cpu|auto|cuda(:\d+)?")


def check_device(name: str) -> str:
    """The device name if it is well formed (no torch import, for argument checks).

    Raises:
        InputError: anything but cpu, auto, cuda or cuda:N.
    """
    if not _DEVICE.fullmatch(name):
        raise InputError(f"unknown --device {name!r}; expected cpu, cuda, cuda:N or auto")
    return name


def resolve_device(name: str):
    """The ``torch.device`` a command runs on: ``auto`` is the first CUDA GPU where torch sees one.

    Returns:
        torch.device("cpu") or torch.device("cuda", index).
    Raises:
        InputError: a malformed name; cuda asked for where torch sees no CUDA GPU (a CPU-only
            build of torch, or no driver), or a GPU index past the last one.
    """
    check_device(name)
    import torch

    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda", 0)
    if not torch.cuda.is_available():
        why = "a CPU-only build of torch" if torch.version.cuda is None else "no usable CUDA driver or GPU"
        raise InputError(f"--device {name}: torch {torch.__version__} sees no CUDA GPU here ({why}); "
                         "use --device cpu")
    index = int(name.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(f"--device {name}: this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
                         f"(cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", index)


def inference_precision(precision: str | None, device) -> str:
    """The precision a model runs at on ``device``: int8 on the CPU and fp32 elsewhere unless given
    (``load_tagger`` runs ``--device auto --precision int8`` on the CPU, where int8 runs, and takes
    fp32 on a CPU where its attention would not be batch-invariant).

    Raises:
        InputError: int8 off the CPU (seqattn.models.precision runs it on the CPU only), or an
            unknown precision.
    """
    from seqattn.models.precision import check_precision

    if precision is None:
        return "int8" if device.type == "cpu" else "fp32"
    check_precision(precision)
    if precision == "int8" and device.type != "cpu":
        raise InputError(f"--precision int8 runs on the CPU only (seqattn.models.precision); "
                         f"use --precision fp32 with --device {device}")
    return precision


def to_device(batch: dict, device) -> dict:
    """A batch (a dict of tensors and other values) with its tensors on ``device``."""
    import torch

    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
