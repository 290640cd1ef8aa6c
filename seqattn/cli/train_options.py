"""The options every ``seqattn train`` command shares, defined once, and recipes (``--config``).

``train_command`` adds the shared options to a train command's own parameters, so the five
commands take the same flags with the same help.  A value comes from, last one winning: the
task's recipe default, the ``--config`` TOML file (every option, dashes or underscores), the
flags given.  ``gather`` does that merge and checks the recipe's keys and value types.
"""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path
from typing import Optional

import typer

from seqattn.errors import InputError

DEVICE_HELP = "cpu | cuda | cuda:N | auto (a GPU when torch sees one; under torchrun each rank takes its own GPU)."


def _opt(*decls: str, help: str):  # noqa: A002 - typer's own name
    return typer.Option(None, *decls, help=help, show_default=False)


# name -> (annotation, typer option); None everywhere: "not given", so the recipe's value stands.
SHARED: dict[str, tuple[object, object]] = {
    "config": (Optional[Path], _opt("--config", help="Recipe: a TOML file of these options (flags given here "
                                                     "override it); see recipes/.")),
    "layers": (Optional[int], _opt("--layers", help="Encoder blocks L.")),
    "d_model": (Optional[int], _opt("--d-model", help="Size of every vector inside the encoder.")),
    "heads": (Optional[int], _opt("--heads", help="Attention heads H (--d-model must divide by it).")),
    "d_ff": (Optional[int], _opt("--d-ff", help="Hidden size of the position-wise FFN.")),
    "dropout": (Optional[float], _opt("--dropout", help="Dropout on residual branches and attention, in [0, 1).")),
    "attention_window": (Optional[int], _opt("--attention-window", help="Truncated self-attention: position i "
                                                                         "sees |i - j| <= w; -1 = full attention.")),
    "score": (Optional[str], _opt("--score", help="dot (scaled dot-product) | additive (v^T tanh(W_q q + W_k k)).")),
    "positional": (Optional[str], _opt("--positional", help="sinusoidal | learned | relative (a learned bias per "
                                                            "offset; truncated attention) | none.")),
    "attention_activation": (Optional[str], _opt("--attention-activation", help="Scores -> weights: softmax | "
                                                                                "relu | sigmoid | sparsemax.")),
    "epochs": (Optional[int], _opt("--epochs", help="Passes over the training data (an upper bound with "
                                                    "--patience).")),
    "lr": (Optional[float], _opt("--lr", help="Peak learning rate (linear warm-up, then cosine decay).")),
    "warmup_steps": (Optional[int], _opt("--warmup-steps", "--warmup", help="Steps of linear learning-rate warm-up.")),
    "weight_decay": (Optional[float], _opt("--weight-decay", help="Weight decay (AdamW).")),
    "batch_size": (Optional[int], _opt("--batch-size", "--max-tokens", help="Batch size per step, in the task's "
                                                                            "unit (padded tokens or frames, "
                                                                            "molecules).")),
    "patience": (Optional[int], _opt("--patience", help="Stop after this many epochs without progress on dev.")),
    "average_last": (Optional[int], _opt("--average-last", help="Average the weights of the last K epochs; kept "
                                                                "if better on dev (0: off).")),
    "checkpoint_every": (Optional[int], _opt("--checkpoint-every", help="Also checkpoint every this many steps "
                                                                        "(0: after every epoch only).")),
    "max_minutes": (Optional[float], _opt("--max-minutes", help="Stop after the epoch that passes this budget.")),
    "seed": (Optional[int], _opt("--seed", help="Random seed: initialisation, data order, dropout, "
                                                "augmentation.")),
    "device": (Optional[str], _opt("--device", help=DEVICE_HELP)),
    "out": (Optional[Path], _opt("--out", "-o", help="Directory to write the model to (usable with --model).")),
    "force": (bool, typer.Option(False, "--force", help="Replace an existing model directory (only a seqattn "
                                                        "model directory).")),
    "resume": (Optional[Path], _opt("--resume", help="Continue an interrupted run of the same command from its "
                                                     "checkpoint directory (OUT.checkpoint).")),
    "quiet": (bool, typer.Option(False, "--quiet", "-q", help="No progress or per-epoch lines on stderr.")),
    "nproc": (Optional[int], _opt("--nproc", help="Train in this many processes on this machine: starts torchrun "
                                                  "--standalone --nproc-per-node N for you (docs/training.md).")),
}
MODEL_KEYS = ("layers", "d_model", "heads", "d_ff", "dropout", "attention_window", "score", "positional",
              "attention_activation")
FIT_KEYS = ("epochs", "lr", "warmup_steps", "weight_decay", "batch_size", "patience", "average_last",
            "checkpoint_every", "max_minutes", "seed", "device")


def train_command(func, task: str):
    """Give the train command ``task`` the shared options: ``func(own..., **shared)`` gets them as keywords.

    ``--nproc N`` (N > 1, outside torchrun) runs the same command under ``torchrun --standalone
    --nproc-per-node N`` instead, with one thread per process unless OMP_NUM_THREADS is set.
    """
    own = [p for p in inspect.signature(func).parameters.values() if p.kind is not p.VAR_KEYWORD]
    names = {p.name for p in own}
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
              for name, (annotation, option) in SHARED.items() if name not in names]
    options = {p.name: p.default for p in own} | {p.name: p.default for p in shared}

    @functools.wraps(func)
    def command(**kwargs):
        nproc = kwargs.pop("nproc", None)
        if nproc is not None:
            if not 1 <= nproc <= 1024:
                raise InputError(f"--nproc must be between 1 and 1024, got {nproc}")
            if nproc > 1 and "WORLD_SIZE" not in os.environ:
                return _under_torchrun(task, nproc, kwargs, options)
        return func(**kwargs)

    command.__signature__ = inspect.Signature([p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + shared)
    return command


def _under_torchrun(task: str, nproc: int, values: dict, options: dict) -> None:
    """Run ``seqattn train TASK`` with the same option values under torchrun; exit with its code."""
    import subprocess
    import sys

    argv = []
    for name, value in values.items():
        flag = options[name].param_decls[0]
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        else:
            for item in value if isinstance(value, list) else [value]:
                argv += [flag, str(item)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    code = subprocess.call([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            f"--nproc-per-node={nproc}", "-m", "seqattn", "train", task, *argv], env=env)
    if code:
        raise typer.Exit(code)


def read_recipe(path: Path) -> dict:
    """A recipe's options by name (dashes become underscores).

    Raises:
        InputError: unreadable file or invalid TOML.
    """
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as err:
        raise InputError(f"--config {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"--config {path}: not a valid TOML recipe ({err})") from None
    return {key.replace("-", "_"): value for key, value in data.items()}


def _check_type(path: Path, key: str, value, annotation) -> object:
    text = str(annotation)
    flag = "--" + key.replace("_", "-")
    if "bool" in text:
        ok = isinstance(value, bool)
    elif "int" in text:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif "float" in text:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif "List" in text or "list" in text:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = [Path(v) for v in value] if ok and "Path" in text else value
    else:
        ok = isinstance(value, str)
        value = Path(value) if ok and "Path" in text else value
    if not ok:
        raise InputError(f"--config {path}: {key} = {value!r} is not a valid value for {flag}")
    return value


def gather(command: str, values: dict, annotations: dict) -> dict:
    """Merge the recipe named by ``values["config"]`` under the flags given in ``values``.

    Args:
        values: the command's keyword arguments (None: not given).
        annotations: name -> type of every option the command has (to check the recipe's values).
    Returns:
        the merged options (recipe keys relative paths stay as written: relative to the working
        directory, as flags are).
    Raises:
        InputError: an unknown recipe key or a value of the wrong type, naming the file and key.
    """
    merged: dict = {}
    recipe = values.get("config")
    if recipe is not None:
        for key, value in read_recipe(recipe).items():
            if key not in annotations or key in ("config", "resume", "force", "quiet"):
                raise InputError(f"--config {recipe}: unknown option {key!r} for seqattn train {command}")
            merged[key] = _check_type(recipe, key, value, annotations[key])
    for key, value in values.items():
        if key == "config":
            continue
        if value is not None and not (value is False and key in merged):
            merged[key] = value
    return merged


def annotations_of(func) -> dict:
    """name -> annotation of a train command's options: its own (``func``'s) and the shared ones."""
    import typing

    func = getattr(func, "__wrapped__", func)
    hints = typing.get_type_hints(func)
    own = {name: hints.get(name, p.annotation) for name, p in inspect.signature(func).parameters.items()
           if p.kind is not p.VAR_KEYWORD}
    return {**{name: annotation for name, (annotation, _) in SHARED.items()}, **own}


def is_main_process() -> bool:
    """False on the ranks above 0 of a torchrun job (they neither print nor write)."""
    return os.environ.get("RANK", "0") == "0"


def fit_settings(defaults, merged: dict):
    """The task's recipe ``FitSettings`` with the merged options' fit keys on top."""
    from dataclasses import replace

    return replace(defaults, **{k: merged[k] for k in FIT_KEYS if merged.get(k) is not None})


def model_options(merged: dict, task: str, applies: tuple[str, ...]):
    """``ModelOptions`` from the merged options, checked for ``task`` (InputError naming the flag)."""
    from seqattn.training.options import ModelOptions

    options = ModelOptions(**{k: merged.get(k) for k in MODEL_KEYS})
    options.check(task, applies)
    return options


def required(merged: dict, *names: str) -> None:
    """Raises InputError for the first of ``names`` that neither a flag nor the recipe gave."""
    for name in names:
        if merged.get(name) in (None, []):
            raise InputError(f"--{name.replace('_', '-')} is required (give it, or set it in the --config recipe)")


class TrainReporter:
    """Progress of ``fit`` for a person: a rich bar on a terminal, one line per epoch on stderr.

    ``describe(record)`` turns an epoch's record (its dev metrics) into the text after the loss.
    """

    def __init__(self, bar, quiet: bool, describe):
        self.bar, self.quiet, self.describe = bar, quiet, describe

    def step(self, epoch: int, step: int, steps: int) -> None:
        self.bar.update(step, steps, description=f"epoch {epoch}")

    def epoch(self, record: dict) -> None:
        from seqattn.cli.common import say

        say(f"epoch {record['epoch']}/{record['epochs']}  loss {record['train_loss']:.4f}  "
            f"{self.describe(record)}  best epoch {record['best_epoch']}  {record['seconds']:.0f} s", self.quiet)
