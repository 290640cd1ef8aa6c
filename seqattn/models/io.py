"""Model directories: ``config.json`` + ``model.safetensors`` (+ a sentencepiece model).

Loading never unpickles: the config is JSON and the weights are safetensors.  Shipped models
live inside the package (``seqattn/models/<name>/``) and are listed, with checksums, in
``seqattn/models/registry.json``; ``seqattn models`` reads only that file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from seqattn.errors import ModelError

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
SHIPPED_DIR = Path(__file__).parent
REGISTRY = SHIPPED_DIR / "registry.json"


def registry() -> dict[str, dict]:
    """The shipped models: name -> {task, path, files (sha256), data, license, metrics, ...}."""
    return json.loads(REGISTRY.read_text(encoding="utf-8"))["models"]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(name_or_path: str | Path, task: str) -> tuple[Path, bool]:
    """Find a model directory: a shipped model's name, or a path.

    Returns (directory, shipped).
    Raises:
        ModelError: neither a shipped model of ``task`` nor an existing directory.
    """
    text = str(name_or_path)
    shipped = registry()
    if text in shipped and not Path(text).exists():
        entry = shipped[text]
        if entry["task"] != task:
            raise ModelError(f"model {text!r} is a {entry['task']} model, not a {task} model")
        return SHIPPED_DIR / entry["path"], True
    path = Path(text)
    if not path.exists():
        names = ", ".join(n for n, e in shipped.items() if e["task"] == task)
        raise ModelError(f"{path}: no such model directory (shipped {task} models: {names or 'none'})")
    if not path.is_dir():
        raise ModelError(f"{path}: a model is a directory with {CONFIG} and {WEIGHTS}, not a file")
    return path, False


def read_model_dir(name_or_path: str | Path, task: str) -> tuple[Path, dict, dict]:
    """Read a model directory's config and weights; verify shipped models against their checksums.

    Returns (directory, config dict, tensors by name).
    Raises:
        ModelError: missing or malformed files, another task, another format version, a checksum
            mismatch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path, shipped = resolve(name_or_path, task)
    config_path, weights_path = path / CONFIG, path / WEIGHTS
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise ModelError(f"{path}: incomplete model directory, {needed.name} is missing")
    if shipped:
        entry = registry()[str(name_or_path)]
        for name, digest in entry["files"].items():
            if sha256(path / name) != digest:
                raise ModelError(f"{path / name}: checksum mismatch, the shipped model is damaged; reinstall seqattn")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or "task" not in config:
        raise ModelError(f"{config_path}: not a seqattn model config (no 'task')")
    if config["task"] != task:
        raise ModelError(f"{path}: a {config['task']} model, not a {task} model")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: model format version {config.get('format_version')}, "
                         f"this seqattn reads version {FORMAT_VERSION}")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise ModelError(f"{weights_path}: unreadable weights ({err})") from None
    return path, config, tensors


def write_model_dir(out: str | Path, config: dict, tensors: dict, extra_files: dict[str, Path] | None = None,
                    force: bool = False) -> Path:
    """Write a model directory atomically: build it in a temporary sibling, fsync, then rename.

    Args:
        config: JSON-able dict; ``task`` is required, ``format_version`` is added.
        tensors: name -> tensor (made contiguous).
        extra_files: name in the directory -> file to copy (e.g. the sentencepiece model).
        force: replace an existing non-empty directory.
    Raises:
        ModelError: ``out`` exists, is not empty and force is False; or it is a file.
    """
    from safetensors.torch import save_file

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ModelError(f"{out}: exists and is not empty; choose another --out or pass --force")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps({**config, "format_version": FORMAT_VERSION}, indent=1) + "\n",
                                  encoding="utf-8")
        for name, source in (extra_files or {}).items():
            shutil.copyfile(source, tmp / name)
        for file in tmp.iterdir():
            file.chmod(0o644)  # mkstemp-style 0600 would hide a shared model from other users
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_model(name_or_path: str | Path, task: str, config_cls, module_cls, what: str):
    """Read a model directory (``read_model_dir``) and build its module from config and weights.

    ``config_cls`` has ``from_dict``; ``module_cls(config)`` is an ``nn.Module`` whose state dict
    the weights must match exactly; ``what`` names the model in errors ("a tagger").
    Returns (directory, config dict, config, module).
    Raises:
        ModelError: what ``read_model_dir`` raises, or a config and weights that do not fit.
    """
    from seqattn.errors import InputError

    path, meta, tensors = read_model_dir(name_or_path, task)
    try:
        cfg = config_cls.from_dict(meta["config"])
        model = module_cls(cfg)
        model.load_state_dict(tensors)
    except (KeyError, TypeError, ValueError, RuntimeError, InputError) as err:
        raise ModelError(f"{path}: config and weights do not match {what} ({str(err).splitlines()[0]})") from None
    return path, meta, cfg, model
