"""Training checkpoints without pickles: tensors in safetensors, everything else in JSON.

A checkpoint directory holds ``checkpoint.safetensors`` (model weights, optimizer moments, the
best weights so far, the running sum for checkpoint averaging) and ``checkpoint.json`` (where
the run stands: epoch and step, scheduler counters, best metrics, early stopping, the dev curve,
the options and data checksums that a resumed run must match), plus the task's own files (a
sentencepiece model).  No random-generator state is stored: ``fit`` derives every generator
from (seed, epoch, step, rank), so a run resumed at a step boundary draws what the
uninterrupted run drew.  It is written like a model directory: built in a temporary sibling,
fsync'ed, then renamed over the old one, so a ``kill -9`` at any moment leaves either the
previous checkpoint or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from torch import Tensor

from seqattn.errors import ModelError, SeqattnError

TENSORS, STATE = "checkpoint.safetensors", "checkpoint.json"
FORMAT = 2  # version 1: the per-trainer checkpoints before the one training engine


def flatten_optimizer(state: dict) -> tuple[dict[str, Tensor], dict]:
    """An optimizer's state_dict as (tensors by name, JSON) for safetensors + JSON."""
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, Tensor], meta: dict) -> dict:
    """The inverse of ``flatten_optimizer``."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def write_checkpoint(directory: Path, state: dict, tensors: dict[str, Tensor],
                     files: dict[str, Path] | None = None) -> None:
    """Write (state JSON, tensors, files) atomically to ``directory`` (see the module docstring).

    Raises:
        SeqattnError: the disk is full or not writable (exit 1; the previous checkpoint stays).
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / TENSORS))
        (tmp / STATE).write_text(json.dumps({**state, "format": FORMAT}) + "\n", encoding="utf-8")
        for name, source in (files or {}).items():
            shutil.copyfile(source, tmp / name)
        for file in tmp.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        old = None
        if directory.exists():
            old = directory.with_name(directory.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except (OSError, SafetensorError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise SeqattnError(f"cannot write the checkpoint {directory} ({reason})") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def read_checkpoint(directory: str | Path, task: str) -> tuple[Path, dict, dict[str, Tensor]]:
    """Read (directory, state JSON, tensors) of a checkpoint of ``task``.

    Falls back to ``DIR.old`` when a run was killed between the two renames of a write.
    Raises:
        ModelError: missing or unreadable files, another format, or a checkpoint of another task
            (exit 2).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / STATE).is_file() or not (directory / TENSORS).is_file():
        old = directory.with_name(directory.name + ".old")
        if (old / STATE).is_file() and (old / TENSORS).is_file():
            directory = old
        else:
            raise ModelError(f"--resume {directory}: not a training checkpoint ({STATE} and {TENSORS} needed)")
    try:
        state = json.loads((directory / STATE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelError(f"--resume {directory}: unreadable checkpoint ({err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelError(f"--resume {directory}: a checkpoint of another seqattn version (format "
                         f"{state.get('format') if isinstance(state, dict) else '?'}, this one reads {FORMAT})")
    for key in ("identity", "progress", "optimizer", "config"):
        if not isinstance(state.get(key), dict):
            raise ModelError(f"--resume {directory}: a damaged checkpoint ({key!r} missing or not an object)")
    if state.get("task") != task:
        raise ModelError(f"--resume {directory}: a checkpoint of a {state.get('task')} run, not of a {task} run")
    try:
        tensors = load_file(str(directory / TENSORS))
    except (SafetensorError, OSError) as err:
        raise ModelError(f"--resume {directory}: unreadable checkpoint ({err})") from None
    return directory, state, tensors
