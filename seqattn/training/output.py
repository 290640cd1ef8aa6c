"""Where a run writes: the ``--out`` guard, its lock, and what ``--force`` may replace.

Checked before any data is read or any step is taken, so that a run never trains for an hour
and then fails to save (issue 26):

* ``--out`` must not be ``/``, ``.``, ``..``, the working directory or one of its parents, nor a
  symlink; its parent must be a writable directory (checked by making and removing a temporary
  sibling there, which is also where the model is built before it is renamed into place).
* An existing ``--out`` is replaced only with ``--force``, and only if it is empty or holds a
  seqattn model (``config.json`` with a ``task`` field) or a training checkpoint.
* A run holds an exclusive lock on ``.OUT.lock`` (``fcntl.flock``, released by the kernel even
  after ``kill -9``), so two runs never write the same model or share ``OUT.checkpoint``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from seqattn.errors import InputError

CHECKPOINT_SUFFIX = ".checkpoint"


def checkpoint_dir(out: Path) -> Path:
    """The checkpoint directory of a run writing ``out``: ``OUT.checkpoint`` beside it."""
    return out.with_name(out.name + CHECKPOINT_SUFFIX)


def _is_model_dir(path: Path) -> bool:
    """True for a directory that holds a seqattn model or a training checkpoint, or nothing."""
    names = {p.name for p in path.iterdir()}
    if not names:
        return True
    if "checkpoint.json" in names and names <= {"checkpoint.json", "checkpoint.safetensors", "subwords.model",
                                                 "source.model", "target.model"}:
        return True
    if "config.json" not in names:
        return False
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("task"), str) and not any(
        (path / n).is_dir() for n in names)


def check_out(out: str | Path, force: bool) -> Path:
    """Refuse an ``--out`` that a run must not write, before any work (see the module docstring).

    Returns the path as given (made a Path).
    Raises:
        InputError: a forbidden target, an existing file or non-model directory, an existing
            model without ``force``, or a parent that is missing, not a directory or not writable.
    """
    out = Path(out)
    if str(out) in ("", ".", "..", "/") or out.name in ("", ".", ".."):
        raise InputError(f"--out {out}: not a model directory name; give a new directory such as {out}/my-model")
    if out.is_symlink():
        raise InputError(f"--out {out}: a symbolic link; give the directory itself")
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise InputError(f"--out {out}: the working directory or one of its parents; give a new directory")
    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a directory")
        if not force and any(out.iterdir()):
            raise InputError(f"--out {out}: exists and is not empty; choose another --out or pass --force")
        if force and not _is_model_dir(out):
            raise InputError(f"--out {out}: --force replaces only a seqattn model directory (or an empty one), "
                             f"and this one holds other files")
    parent = out.parent if str(out.parent) else Path(".")
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputError(f"--out {out}: {existing} is a file, not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {out}: cannot create {parent} ({err.strerror or err})") from None
    if not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is not a directory")
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.probe.", dir=parent)
        os.rmdir(probe)
    except OSError as err:
        raise InputError(f"--out {out}: cannot write in {parent} ({err.strerror or err})") from None
    return out


class OutLock:
    """An exclusive lock on ``.OUT.lock`` beside ``out`` for the length of a run.

    Raises (``acquire``):
        InputError: another run holds the lock.
    """

    def __init__(self, out: Path):
        self.path = out.with_name(f".{out.name}.lock")
        self.handle = None

    def acquire(self) -> "OutLock":
        import fcntl

        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            holder = self.handle.read().strip()
            self.handle.close()
            self.handle = None
            raise InputError(f"--out {self.path.name[1:-5]}: another run is writing it"
                             f"{f' (process {holder})' if holder else ''}; wait for it or choose another --out") \
                from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def release(self) -> None:
        if self.handle is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            self.handle.close()
            self.handle = None
