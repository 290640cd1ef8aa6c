"""Training checkpoints without pickles: tensors in safetensors, everything else in JSON.

A checkpoint directory holds ``checkpoint.safetensors`` (model weights, optimizer moments, the
best weights so far, RNG states) and ``checkpoint.json`` (epoch, optimizer hyper-parameters,
scheduler counters, the Python RNG state, the caller's own JSON).  It is written like a model
directory: built in a temporary sibling, fsync'ed, then renamed over the old one, so a
``kill -9`` at any moment leaves either the previous checkpoint or the new one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from seqattn.errors import ModelError

TENSORS, STATE = "checkpoint.safetensors", "checkpoint.json"


def _flatten_optimizer(state: dict) -> tuple[dict[str, Tensor], dict]:
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(directory: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, shuffler: random.Random, generator: torch.Generator | None, epoch: int,
                    best_state: dict[str, Tensor] | None, extra: dict, files: dict[str, Path] | None = None,
                    numpy_rng: np.random.Generator | None = None,
                    extra_tensors: dict[str, Tensor] | None = None) -> None:
    """Write the whole training state after ``epoch`` (see the module docstring).

    ``scheduler`` may be None (a trainer without one); ``generator`` (a torch.Generator for data
    noise) and ``numpy_rng`` (augmentation draws) are saved where the trainer has them;
    ``extra_tensors`` holds a trainer's own tensors (``read_checkpoint`` gives them back under
    ``extra.NAME``).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optimizer_tensors, optimizer_meta = _flatten_optimizer(optimizer.state_dict())
    tensors.update(optimizer_tensors)
    tensors.update({f"best.{k}": v for k, v in (best_state or {}).items()})
    tensors.update({f"extra.{k}": v for k, v in (extra_tensors or {}).items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if generator is not None:
        tensors["rng.generator"] = generator.get_state()
    version, internal, gauss = shuffler.getstate()
    state = {"epoch": epoch, "optimizer": optimizer_meta,
             "scheduler": None if scheduler is None else scheduler.state_dict(),
             "python_rng": [version, list(internal), gauss], "extra": extra,
             "numpy_rng": None if numpy_rng is None else numpy_rng.bit_generator.state}
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp / TENSORS))
        (tmp / STATE).write_text(json.dumps(state) + "\n", encoding="utf-8")
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_checkpoint(directory: str | Path) -> tuple[dict, dict[str, Tensor]]:
    """Read (state JSON, tensors) of a checkpoint directory.

    Raises:
        ModelError: missing or unreadable checkpoint files.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / STATE).is_file() or not (directory / TENSORS).is_file():
        old = directory.with_name(directory.name + ".old")
        if (old / STATE).is_file() and (old / TENSORS).is_file():  # killed between the two renames
            directory = old
        else:
            raise ModelError(f"{directory}: not a training checkpoint ({STATE} and {TENSORS} needed)")
    try:
        return json.loads((directory / STATE).read_text(encoding="utf-8")), load_file(str(directory / TENSORS))
    except (SafetensorError, OSError, json.JSONDecodeError) as err:
        raise ModelError(f"{directory}: unreadable checkpoint ({err})") from None


def restore_checkpoint(state: dict, tensors: dict[str, Tensor], *, model: torch.nn.Module,
                       optimizer: torch.optim.Optimizer, scheduler, shuffler: random.Random,
                       generator: torch.Generator | None,
                       numpy_rng: np.random.Generator | None = None) -> dict[str, Tensor] | None:
    """Put a checkpoint's state back into freshly built training objects; returns the best weights.

    Raises:
        ModelError: the checkpoint lacks a state that the trainer asks for (another trainer's).
    """
    try:
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as err:
        raise ModelError(f"checkpoint does not match this model ({str(err).splitlines()[0]})") from None
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if generator is not None:
        generator.set_state(tensors["rng.generator"])
    if numpy_rng is not None:
        if state.get("numpy_rng") is None:
            raise ModelError("checkpoint has no numpy random state (written by another trainer?)")
        numpy_rng.bit_generator.state = state["numpy_rng"]
    version, internal, gauss = state["python_rng"]
    shuffler.setstate((version, tuple(internal), gauss))
    best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
    return best or None
