"""``fit``: the one training loop of every seqattn model.

A task (tagger, speech, node classifier, seq2seq, molecules) supplies only what is its own:
its model, how an epoch is cut into batches, the loss of a batch, and the dev metrics.  ``fit``
owns the rest, once for all of them:

* seeding: every generator is derived from (seed, epoch, step, rank), so a run resumed at a
  step boundary reproduces the uninterrupted one and checkpoints carry no generator state;
* the ``--out`` guard and lock (seqattn.training.output), atomic checkpoints after every epoch
  and every ``checkpoint_every`` steps, ``--resume`` (refusing changed options or data);
* AdamW (or Adam with L2, GAT's choice), warm-up + cosine decay, gradient clipping;
* best-epoch selection on the dev metric, early stopping (``patience``), checkpoint averaging;
* devices (``--device``) and DistributedDataParallel under torchrun: each rank takes its shard of
  every step's batch, losses are weighted so that the averaged gradient is the one-process
  gradient of the whole batch, and only rank 0 evaluates, writes and reports;
* a record of the run in the model directory (options, versions, seed, data checksums, dev curve).

Library code: nothing here prints; progress goes to a ``Reporter``.
"""

from __future__ import annotations

import hashlib
import math
import platform
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn

from seqattn.errors import InputError, ModelError
from seqattn.training.checkpoint import (flatten_optimizer, read_checkpoint, unflatten_optimizer,
                                         write_checkpoint)
from seqattn.training.distributed import Distributed
from seqattn.training.output import OutLock, check_out, checkpoint_dir
from seqattn.training.schedule import WeightAverage, constant, warmup_cosine


@dataclass
class FitSettings:
    """What ``fit`` needs besides the task: optimisation, selection, checkpoints, device.

    Each task's recipe sets its own defaults (``Task.default_settings``); the CLI's shared
    options (--epochs --lr --batch-size --seed --patience --device ...) override them.
    """

    epochs: int = 10  # passes over the training data (an upper bound with patience)
    lr: float = 1e-3  # peak learning rate
    warmup_steps: int = 0  # linear warm-up, then cosine decay to 0 at the last step
    schedule: str = "cosine"  # "cosine" (after warm-up) or "constant"
    optimizer: str = "adamw"  # "adamw" (decoupled weight decay) or "adam" (L2 in the gradient, GAT)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    max_grad_norm: float | None = 1.0  # clip the global gradient norm (None: no clipping)
    batch_size: int = 32  # per step, in the task's unit (padded tokens, frames, molecules)
    patience: int | None = None  # stop after this many epochs without progress on dev
    average_last: int = 0  # mean weights of the last K epochs compete with the best epoch
    checkpoint_every: int = 0  # also checkpoint every this many steps inside an epoch (0: off)
    checkpoint_epochs: int = 1  # checkpoint after every this many epochs
    max_minutes: float | None = None  # stop after the epoch that passes this budget
    seed: int = 0
    device: str = "cpu"

    def check(self) -> None:
        """Raises InputError naming the option of a value out of range."""
        checks = [("--epochs", self.epochs >= 1, self.epochs), ("--lr", math.isfinite(self.lr) and self.lr > 0, self.lr),
                  ("--warmup-steps", self.warmup_steps >= 0, self.warmup_steps),
                  ("--weight-decay", math.isfinite(self.weight_decay) and self.weight_decay >= 0, self.weight_decay),
                  ("--batch-size", self.batch_size >= 1, self.batch_size),
                  ("--patience", self.patience is None or self.patience >= 1, self.patience),
                  ("--average-last", self.average_last >= 0, self.average_last),
                  ("--checkpoint-every", self.checkpoint_every >= 0, self.checkpoint_every),
                  ("--max-minutes", self.max_minutes is None or (math.isfinite(self.max_minutes)
                                                                 and self.max_minutes > 0), self.max_minutes),
                  ("--seed", 0 <= self.seed < 2 ** 63, self.seed)]
        for name, ok, value in checks:
            if not ok:
                raise InputError(f"{name} {value}: out of range (see --help)")
        if self.schedule not in ("cosine", "constant"):
            raise InputError(f"schedule {self.schedule!r}: expected cosine or constant")
        if self.optimizer not in ("adamw", "adam"):
            raise InputError(f"optimizer {self.optimizer!r}: expected adamw or adam")


class Reporter(Protocol):
    """Where ``fit`` reports progress (the CLI draws bars and lines; tests collect)."""

    def step(self, epoch: int, step: int, steps: int) -> None: ...

    def epoch(self, record: dict) -> None: ...


class Callbacks:
    """A ``Reporter`` made of two optional functions (library callers and tests)."""

    def __init__(self, on_step=None, on_epoch=None):
        self.on_step, self.on_epoch = on_step, on_epoch

    def step(self, epoch: int, step: int, steps: int) -> None:
        if self.on_step is not None:
            self.on_step(epoch, step, steps)

    def epoch(self, record: dict) -> None:
        if self.on_epoch is not None:
            self.on_epoch(record)


class Task(Protocol):
    """What a task gives ``fit`` (see seqattn.training.tasks for the five of them).

    Attributes:
        name: the model's task ("tagger", "speech", ...); checkpoints are refused across tasks.
        metric: the key of ``evaluate``'s dict that picks the epoch; ``higher_is_better`` its sense.
        shardable: True when a batch is a list of examples whose losses are means over ``weight``
            elements (then ranks split it); False for full-batch tasks (every rank takes it whole).
        device: set by ``fit`` before ``build_model``.

    ``fit`` calls ``identity`` (options and data checksums; a resumed run must match them), then
    ``prepare`` (read the data, build vocabularies, or take them from the checkpoint's config and
    files), ``build_model``, and per step ``batches``/``loss``, per epoch ``evaluate``.
    Optional hooks: ``selection_key(metrics) -> list`` (default: the metric, in its sense) and
    ``progressed(metrics) -> (bool, state)`` with ``restore_stopper(state)`` for a task's own
    early-stopping rule.
    """

    name: str
    metric: str
    higher_is_better: bool
    shardable: bool
    device: torch.device

    def prepare(self, checkpoint: dict | None, directory: Path | None) -> None: ...

    def build_model(self) -> nn.Module: ...

    def batches(self, epoch: int, rng: random.Random) -> list[list[int]]: ...

    def loss(self, model: nn.Module, batch: list[int], generator: torch.Generator) -> tuple[Tensor, float]: ...

    def evaluate(self, model: nn.Module) -> dict: ...

    def config(self) -> dict: ...

    def files(self) -> dict[str, Path]: ...

    def identity(self) -> dict: ...

    def record(self) -> dict: ...


class LossModule(nn.Module):
    """The model contract ``fit`` trains: a batch in, (mean loss, its weight) out.

    Wrapping the task's model lets DistributedDataParallel see one forward per step whatever the
    task's loss calls inside (several heads, a decoder, dropout samples).
    """

    def __init__(self, task: Task, model: nn.Module):
        super().__init__()
        self.model = model
        self._task = task

    def forward(self, batch: list[int], generator: torch.Generator) -> tuple[Tensor, float]:
        if not batch:  # a rank with nothing in this step: a zero loss that still reaches every weight
            return sum(p.sum() for p in self.model.parameters()) * 0.0, 0.0
        return self._task.loss(self.model, batch, generator)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, step, rank), stable across Python runs."""
    digest = hashlib.blake2b(" ".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def file_checksum(path: str | Path) -> str:
    """sha256 of a file's bytes (data checksums in the run record and resume checks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_identity(settings: "FitSettings", model: dict, options, data: dict[str, Path]) -> dict:
    """What a resumed run must share with the run that wrote its checkpoint (``Task.identity``).

    The fit settings but the device, the model config, the task's own options (a dataclass) and
    the sha256 of each data file (by role: "train", "dev").
    Raises:
        InputError: a data file that does not exist.
    """
    for path in data.values():
        if not Path(path).is_file():
            raise InputError(f"{path}: no such file")
    fit_options = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items() if k != "device"}
    return {"options": {"fit": fit_options, "model": model, "task": vars(options)},
            "data": {role: file_checksum(path) for role, path in data.items()}}


def versions() -> dict:
    from seqattn import __version__

    return {"seqattn": __version__, "torch": torch.__version__, "python": platform.python_version()}


@dataclass
class _Progress:
    """Where a run stands; saved in checkpoints."""

    epoch: int = 1  # the epoch in progress (or next)
    step: int = 0  # steps of it done
    steps_per_epoch: int | None = None
    loss_sum: float = 0.0  # weighted loss of the epoch so far (this rank)
    loss_weight: float = 0.0
    best_key: list | None = None
    best_metrics: dict = field(default_factory=dict)
    best_epoch: int = 0
    waited: int = 0  # epochs without progress (early stopping)
    stopper: dict = field(default_factory=dict)  # the task's own early-stopping state
    history: list = field(default_factory=list)
    seconds: float = 0.0
    done: bool = False


def _differences(saved: dict, given: dict, prefix: str = "") -> list[str]:
    """What differs between a checkpoint's identity and this run's, named as the user knows it:
    ``--epochs (checkpoint 3, now 5)`` for options, ``model encoder.d_model (...)`` for the
    architecture, ``--train (other data)`` for data."""
    names = []
    for key in sorted(set(saved) | set(given)):
        a, b = saved.get(key), given.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            names += _differences(a, b, f"{path}.")
        elif a != b:
            if path.startswith("data."):
                names.append(f"--{path[5:]} (other data than the checkpoint's)")
            elif path.startswith(("options.fit.", "options.task.")):
                names.append(f"--{path.split('.', 2)[2].replace('_', '-')} (checkpoint {a!r}, now {b!r})")
            else:
                names.append(f"{path.removeprefix('options.').replace('.', ' ', 1)} (checkpoint {a!r}, now {b!r})")
    return names


def fit(task: Task, settings: FitSettings, out: str | Path | None, *, force: bool = False,
        resume: str | Path | None = None, reporter: Reporter | None = None,
        meta: dict | None = None) -> dict:
    """Train ``task``'s model, keep the best epoch on dev, write the model directory ``out``.

    Args:
        out: the model directory (None: train and return the weights without writing anything).
        force: replace an existing model directory (only a model directory; see ``check_out``).
        resume: a checkpoint directory (OUT.checkpoint) of an interrupted run of the same command.
        reporter: progress callbacks (rank 0 only).
        meta: extra JSON fields for the saved config (data, license, ...).
    Returns:
        the saved config dict: "task", "config", "training" (the run record), "metrics" (the
        chosen epoch's dev metrics); with out=None also "state" (the chosen weights).
    Raises:
        InputError: an option out of range, a forbidden or locked ``out``, a checkpoint of another
            task or with other options or data (each named); SeqattnError: a checkpoint or model
            that cannot be written (a full disk).
    """
    from seqattn.models.device import resolve_device

    settings.check()
    device = resolve_device(settings.device)
    dist = Distributed.from_environment(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    lock = None
    try:
        out_path = None
        if out is not None:
            out_path = Path(out)
            if dist.is_main:
                check_out(out_path, force)
                lock = OutLock(out_path).acquire()
        state = tensors = directory = None
        if resume is not None:
            directory, state, tensors = read_checkpoint(resume, task.name)
            changed = _differences(state["identity"], task.identity())
            if changed:
                raise InputError(f"--resume {resume}: the run was started with other options or data: "
                                 + "; ".join(changed[:8]) + (f"; and {len(changed) - 8} more" if len(changed) > 8
                                                             else "") + "; give the command it was started with")
        task.prepare(state, directory)
        return _run(task, settings, out_path, device, dist, state, tensors, reporter if dist.is_main else None,
                    meta, force)
    finally:
        if lock is not None:
            lock.release()
        dist.close()


def _run(task: Task, settings: FitSettings, out: Path | None, device: torch.device, dist: Distributed,
         state: dict | None, tensors: dict | None, reporter: Reporter | None, meta: dict | None,
         force: bool) -> dict:
    from seqattn.models.io import write_model_dir

    started = time.perf_counter()
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    task.device = device
    model = task.build_model().to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay)
    progress = _Progress()
    averager = WeightAverage(settings.average_last, settings.epochs)
    best_state: dict[str, Tensor] | None = None
    scheduler = None

    def make_scheduler(steps_per_epoch: int):
        if settings.schedule == "constant":
            return constant(optimizer)
        return warmup_cosine(optimizer, settings.warmup_steps, steps_per_epoch * settings.epochs)

    if state is not None:
        try:
            progress = _Progress(**state["progress"])
            weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
            best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
            for name, tensor in tensors.items():
                if name.startswith(("model.", "best.")) and tensor.is_floating_point() \
                        and not torch.isfinite(tensor).all():
                    raise ValueError(f"non-finite values in {name}")
            model.load_state_dict(weights)
            if progress.steps_per_epoch is not None:  # before the optimizer's state: a new scheduler sets the lr
                scheduler = make_scheduler(progress.steps_per_epoch)
            optimizer.load_state_dict(unflatten_optimizer(tensors, state["optimizer"]))
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            if best:
                for name, tensor in best.items():
                    if name not in weights or weights[name].shape != tensor.shape:
                        raise ValueError(f"best.{name} does not fit the model")
            best_state = best or None
            averager.restore({k[4:]: v for k, v in tensors.items() if k.startswith("sum.")}, state["averaged_epochs"])
            if hasattr(task, "restore_stopper"):
                task.restore_stopper(progress.stopper)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
            raise ModelError(f"--resume: a damaged checkpoint ({str(err).splitlines()[0][:200]})") from None
    seconds_before = progress.seconds

    loss_module: nn.Module = LossModule(task, model)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        loss_module = DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda" else None)

    def save(final_epoch: bool) -> None:
        if out is None or not dist.is_main:
            return
        progress.seconds = seconds_before + time.perf_counter() - started
        optimizer_tensors, optimizer_meta = flatten_optimizer(optimizer.state_dict())
        sums, averaged_epochs = averager.state()
        all_tensors = {**{f"model.{k}": v for k, v in model.state_dict().items()}, **optimizer_tensors,
                       **{f"best.{k}": v for k, v in (best_state or {}).items()},
                       **{f"sum.{k}": v for k, v in sums.items()}}
        write_checkpoint(checkpoint_dir(out), {
            "task": task.name, "progress": asdict(progress), "optimizer": optimizer_meta,
            "scheduler": None if scheduler is None else scheduler.state_dict(), "averaged_epochs": averaged_epochs,
            "identity": task.identity(), "config": task.config()}, all_tensors, task.files())

    def better(key: list) -> bool:
        return progress.best_key is None or key > progress.best_key

    def selection_key(metrics: dict) -> list:
        value = metrics[task.metric]
        return [value if task.higher_is_better else -value]

    while progress.epoch <= settings.epochs and not progress.done:
        epoch = progress.epoch
        epoch_start = time.perf_counter()
        batches = task.batches(epoch, random.Random(derived_seed(settings.seed, epoch)))
        if scheduler is None:  # the first epoch's batch count sets the schedule's length
            progress.steps_per_epoch = len(batches)
            scheduler = make_scheduler(len(batches))
        model.train()
        for step in range(progress.step, len(batches)):
            rank_part = dist.rank if task.shardable else 0
            step_seed = derived_seed(settings.seed, epoch, step, rank_part)
            torch.manual_seed(step_seed)
            generator = torch.Generator().manual_seed(step_seed)
            part = dist.shard(batches[step]) if task.shardable else batches[step]
            loss, weight = loss_module(part, generator)
            scale = 1.0
            if dist.enabled and task.shardable:
                total = dist.sum(weight)
                scale = weight / total * dist.world_size if total > 0 else 0.0
            optimizer.zero_grad(set_to_none=True)
            (loss * scale).backward()
            if settings.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            progress.loss_sum += float(loss.detach()) * weight
            progress.loss_weight += weight
            progress.step = step + 1
            if reporter is not None:
                reporter.step(epoch, step + 1, len(batches))
            if settings.checkpoint_every and progress.step % settings.checkpoint_every == 0 \
                    and progress.step < len(batches):
                save(False)
        train_seconds = time.perf_counter() - epoch_start
        model.eval()
        metrics = task.evaluate(model) if dist.is_main else None
        metrics = dist.broadcast(metrics)
        train_loss = dist.sum(progress.loss_sum) / max(dist.sum(progress.loss_weight), 1e-12)
        key = task.selection_key(metrics) if hasattr(task, "selection_key") else selection_key(metrics)
        if better(key):
            progress.best_key, progress.best_metrics, progress.best_epoch = key, metrics, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if hasattr(task, "progressed"):  # the task's own early-stopping rule (GAT's for graphs)
            progressed, progress.stopper = task.progressed(metrics)
        else:
            progressed = progress.best_epoch == epoch
        progress.waited = 0 if progressed else progress.waited + 1
        averager.add(epoch, model.state_dict())
        record = {"epoch": epoch, "epochs": settings.epochs, "train_loss": round(train_loss, 5),
                  **{k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()
                     if not isinstance(v, (list, dict))},
                  "best_epoch": progress.best_epoch, "train_seconds": round(train_seconds, 2),
                  "seconds": round(time.perf_counter() - epoch_start, 2)}
        progress.history.append(record)
        elapsed = seconds_before + time.perf_counter() - started
        if settings.patience is not None and progress.waited >= settings.patience:
            progress.done = True
        if settings.max_minutes is not None and elapsed > 60 * settings.max_minutes:
            progress.done = True
        progress.epoch, progress.step, progress.loss_sum, progress.loss_weight = epoch + 1, 0, 0.0, 0.0
        if progress.done or epoch % settings.checkpoint_epochs == 0 or epoch == settings.epochs:
            save(True)
        if reporter is not None:
            reporter.epoch(record)

    averaged = None
    average = averager.average()
    if average is not None:
        model.load_state_dict(average)
        model.eval()
        metrics = dist.broadcast(task.evaluate(model) if dist.is_main else None)
        key = task.selection_key(metrics) if hasattr(task, "selection_key") else selection_key(metrics)
        averaged = {"epochs": averager.epochs, task.metric: metrics[task.metric], "kept": better(key)}
        if better(key):
            progress.best_key, progress.best_metrics, best_state = key, metrics, average
    seconds = seconds_before + time.perf_counter() - started
    run_record = {
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
        **task.identity(), **task.record(),
        "seed": settings.seed, "epochs_run": len(progress.history), "best_epoch": progress.best_epoch,
        "seconds": round(seconds, 1), "device": str(device), "processes": dist.world_size,
        "torch_threads": torch.get_num_threads(), "versions": versions(),
        "history": progress.history, **({"averaged": averaged} if averaged is not None else {}),
    }
    saved = {"task": task.name, "config": task.config(), "training": run_record,
             "metrics": {f"dev_{k}" if not k.startswith(("dev_", "val_")) else k:
                         (round(v, 5) if isinstance(v, float) else v)
                         for k, v in progress.best_metrics.items() if not isinstance(v, (list, dict))},
             **(meta or {})}
    if out is None:
        saved["state"] = best_state
        return saved
    if dist.is_main:
        from safetensors import SafetensorError

        from seqattn.errors import SeqattnError

        try:
            write_model_dir(out, saved, best_state, task.files(), force=True)
        except (OSError, SafetensorError) as err:
            raise SeqattnError(f"cannot write the model {out} ({getattr(err, 'strerror', None) or err}); "
                               f"the training state is in {checkpoint_dir(out)}: --resume it") from None
        shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    dist.barrier()
    return saved
