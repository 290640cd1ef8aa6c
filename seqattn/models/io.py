"""Model directories: ``config.json`` + ``model.safetensors`` (+ a sentencepiece model).

Loading never unpickles: the config is JSON and the weights are safetensors.  Shipped models
live inside the package (``seqattn/models/<name>/``) and are listed, with checksums, in
``seqattn/models/registry.json``; ``seqattn models`` reads only that file.

A model directory is not trusted (``read_model``): before any tensor is made, config.json is
read with bounded size, nesting and numbers, its config checked field by field
(seqattn.models.config), the model built on the meta device to count its parameters
(``MAX_PARAMETERS``), and the weights file's header compared with that model (names, shapes,
dtypes); after loading, every float weight must be finite.  Each failure is one ``ModelError``
naming the file and the field or tensor.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from seqattn.errors import InputError, ModelError
from seqattn.models.config import ConfigError

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
SHIPPED_DIR = Path(__file__).parent
REGISTRY = SHIPPED_DIR / "registry.json"

MAX_CONFIG_BYTES = 16 << 20  # a config.json (en-upos's, with 8,589 words, is 121 kB)
MAX_JSON_DEPTH = 32  # nesting of a config.json (the shipped ones reach 4)
MAX_JSON_DIGITS = 100  # digits of one integer in a config.json
MAX_PARAMETERS = 200_000_000  # numbers in a model's weights (800 MB as float32; en-upos has 3.2 million)
MAX_HEADER_BYTES = 16 << 20  # a safetensors header (the shipped ones are under 10 kB)


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

    A shipped model's name (a ``str`` such as "en-upos") always means the shipped model, even
    where the working directory holds a directory of that name: that one is named by a path
    ("./en-upos"), or passed as a ``Path``.  Any other name is a path.

    Returns (directory, shipped).
    Raises:
        ModelError: a shipped model of another task, or neither a shipped name nor an existing directory.
    """
    shipped = registry()
    if isinstance(name_or_path, str) and name_or_path in shipped:
        entry = shipped[name_or_path]
        if entry["task"] != task:
            raise ModelError(f"model {name_or_path!r} is a {entry['task']} model, not a {task} model")
        return SHIPPED_DIR / entry["path"], True
    path = Path(name_or_path)
    if not path.exists():
        names = ", ".join(n for n, e in shipped.items() if e["task"] == task)
        raise ModelError(f"{path}: no such model directory (shipped {task} models: {names or 'none'})")
    if not path.is_dir():
        raise ModelError(f"{path}: a model is a directory with {CONFIG} and {WEIGHTS}, not a file")
    return path, False


class _Refused(ValueError):
    """A number json would accept and a config must not hold (raised from json.loads' hooks)."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:20]} (out of range)")
    return value


def _no_constant(text: str):
    raise _Refused(f"{text} (JSON has no such number)")


def _depth(value, limit: int) -> int:
    """Nesting depth of a JSON value (1 for a scalar), counting no further than ``limit + 1``."""
    depth, level = 1, [value]
    while level and depth <= limit:
        children = [c for v in level if isinstance(v, (dict, list)) for c in (v.values() if isinstance(v, dict) else v)]
        level = [c for c in children if isinstance(c, (dict, list))]
        depth += 1 if level else 0
    return depth


def read_config_json(config_path: Path) -> dict:
    """A config.json as a dict, read with bounded size, nesting and numbers.

    Raises:
        ModelError: unreadable, larger than MAX_CONFIG_BYTES, not UTF-8 JSON, nested deeper than
            MAX_JSON_DEPTH, NaN/Infinity or numbers out of range, or not an object.
    """
    try:
        with open(config_path, "rb") as handle:
            too_large = os.fstat(handle.fileno()).st_size > MAX_CONFIG_BYTES  # refused unread
            data = b"" if too_large else handle.read(MAX_CONFIG_BYTES + 1)  # a FIFO's size says nothing
    except OSError as err:
        raise ModelError(f"{config_path}: unreadable ({err.strerror or err})") from None
    if too_large or len(data) > MAX_CONFIG_BYTES:
        raise ModelError(f"{config_path}: larger than {MAX_CONFIG_BYTES >> 20} MiB, not a model config")
    try:
        config = json.loads(data.decode("utf-8"), parse_int=_bounded_int, parse_float=_finite_float,
                            parse_constant=_no_constant)
    except _Refused as err:
        raise ModelError(f"{config_path}: not a model config: it holds {err}") from None
    except RecursionError:
        raise ModelError(f"{config_path}: not a model config: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise ModelError(f"{config_path}: not valid JSON ({str(err)[:120]})") from None
    if _depth(config, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ModelError(f"{config_path}: not a model config: nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(config, dict):
        raise ModelError(f"{config_path}: not a seqattn model config (not a JSON object)")
    return config


def read_model_dir(name_or_path: str | Path, task: str) -> tuple[Path, dict]:
    """Find a model directory and read its config.json; verify shipped models against their checksums.

    Weights are read by ``read_model``, once the config says what they must be.

    Returns (directory, config.json as a dict).
    Raises:
        ModelError: missing or malformed files, another task, another format version, a checksum
            mismatch.
    """
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
    config = read_config_json(config_path)
    if not isinstance(config.get("task"), str):
        raise ModelError(f"{config_path}: not a seqattn model config (no 'task')")
    if config["task"] != task:
        raise ModelError(f"{path}: a {config['task'][:40]} model, not a {task} model")
    version = config.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelError(f"{path}: model format version {json.dumps(version)[:20]}, "
                         f"this seqattn reads version {FORMAT_VERSION}")
    return path, config


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


_DTYPE_NAMES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
                "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}


def _short(name: str) -> str:
    return name if len(name) <= 60 else name[:57] + "..."


# In-place writes that modules' constructors use to initialise weights: skipped on the meta device.
_INIT_WRITES = frozenset({
    "normal_", "uniform_", "zero_", "fill_", "copy_", "bernoulli_", "exponential_", "random_", "erfinv_", "mul_",
    "add_", "sub_", "div_", "clamp_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
    "xavier_normal_", "orthogonal_", "ones_", "zeros_", "constant_", "eye_", "dirac_", "sparse_"})
_SMALL_RANGE = 1 << 16


def _shapes_only_mode():
    """A torch function mode for building a module on the meta device quickly.

    Initial values mean nothing there, so initialising writes are skipped; and a small ``arange``
    (the sinusoidal frequencies) is made on the CPU, because torch's meta kernels for elementwise
    ops are Python decompositions whose first call imports torch._dynamo (2-4 s of start-up).
    """
    import torch
    from torch.overrides import TorchFunctionMode

    class ShapesOnly(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if name in _INIT_WRITES:
                target = (args or tuple(kwargs.values()) or (None,))[0]
                if isinstance(target, torch.Tensor) and target.device.type == "meta":
                    return target
            if name == "arange" and kwargs.get("device") is None and all(isinstance(a, (int, float)) for a in args):
                start, end, step = (0, *args, 1) if len(args) == 1 else (*args, 1)[:3]
                if step and abs((end - start) / step) <= _SMALL_RANGE:
                    kwargs = {**kwargs, "device": "cpu"}
            return func(*args, **kwargs)

    return ShapesOnly()


def expected_tensors(module_cls, cfg, what: str, where: str = "config") -> dict[str, tuple[tuple[int, ...], str]]:
    """The tensors a module built from ``cfg`` holds, from the config alone: built on the meta
    device, so nothing is allocated whatever sizes the config asks for.

    Returns:
        name -> (shape, safetensors dtype such as "F32"), for every entry of the state dict.
    Raises:
        ModelError: the config does not make a module, or one of more than MAX_PARAMETERS numbers.
    """
    import torch

    try:
        with torch.device("meta"), _shapes_only_mode():
            skeleton = module_cls(cfg)
    except (ValueError, TypeError, RuntimeError, AssertionError, IndexError, InputError) as err:
        raise ModelError(f"{where}: the config does not make {what} ({str(err).splitlines()[0][:200]})") from None
    state = skeleton.state_dict()
    total = sum(t.numel() for t in state.values())
    if total > MAX_PARAMETERS:
        raise ModelError(f"{where}: the config makes {what} of {total:,} parameters, more than the "
                         f"{MAX_PARAMETERS:,} a model may have")
    return {name: (tuple(t.shape), _DTYPE_NAMES.get(str(t.dtype).removeprefix("torch."), str(t.dtype)))
            for name, t in state.items()}


def _finite(tensor) -> bool:
    """Every value finite.  numpy's isfinite: torch's first call costs about a second of start-up."""
    import numpy as np
    import torch

    if tensor.dtype in (torch.float32, torch.float64, torch.float16):
        return bool(np.isfinite(tensor.numpy()).all())
    return bool(torch.isfinite(tensor).all())


def read_weights(weights_path: Path, expected: dict[str, tuple[tuple[int, ...], str]]) -> dict:
    """Read a safetensors file whose header must list exactly ``expected`` (names, shapes, dtypes).

    The header is checked before any data is read; the data after: float tensors must be finite.

    Returns:
        name -> tensor (CPU).
    Raises:
        ModelError: unreadable or malformed file, tensors missing or extra, another shape or
            dtype, or NaN/infinite values, naming the tensor.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        size = weights_path.stat().st_size
        with open(weights_path, "rb") as handle:
            header_bytes = int.from_bytes(handle.read(8), "little")
    except OSError as err:
        raise ModelError(f"{weights_path}: unreadable weights ({err.strerror or err})") from None
    if size < 8 or header_bytes > min(MAX_HEADER_BYTES, size - 8):
        raise ModelError(f"{weights_path}: not a safetensors file (a header of {header_bytes:,} bytes in "
                         f"{size:,} bytes)")
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            names = set(handle.keys())
            missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
            if missing:
                raise ModelError(f"{weights_path}: {len(missing)} tensors of the config's model are missing "
                                 f"({', '.join(map(_short, missing[:3]))}{', ...' if len(missing) > 3 else ''})")
            if extra:
                raise ModelError(f"{weights_path}: {len(extra)} tensors the config's model has no place for "
                                 f"({', '.join(map(_short, extra[:3]))}{', ...' if len(extra) > 3 else ''})")
            for name, (shape, dtype) in expected.items():
                stored = handle.get_slice(name)
                if tuple(stored.get_shape()) != shape:
                    raise ModelError(f"{weights_path}: tensor {_short(name)} has shape {list(stored.get_shape())}, "
                                     f"the config's model needs {list(shape)}")
                if stored.get_dtype() != dtype:
                    raise ModelError(f"{weights_path}: tensor {_short(name)} holds {stored.get_dtype()}, "
                                     f"the config's model needs {dtype}")
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"{weights_path}: unreadable weights ({str(err).splitlines()[0][:200]})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not _finite(tensor):
            raise ModelError(f"{weights_path}: tensor {_short(name)} holds NaN or infinite values")
    return tensors


def read_model(name_or_path: str | Path, task: str, config_cls, module_cls, what: str):
    """Read a model directory and build its module from config and weights, trusting neither.

    In order, before the next step begins: config.json (``read_model_dir``); its ``config``
    through ``config_cls.from_dict`` and ``check_trained`` (types, ranges, vocabularies); the
    module on the meta device (``expected_tensors``: parameter bound, expected tensors); the
    weights' header and data (``read_weights``); then the module itself.

    ``config_cls`` is a ``Config`` (seqattn.models.config); ``module_cls(config)`` is an
    ``nn.Module``; ``what`` names the model in errors ("a tagger").
    Returns (directory, config.json as a dict, config, module).
    Raises:
        ModelError: the first check that fails, naming the file and the field or tensor.
    """
    path, meta = read_model_dir(name_or_path, task)
    where = str(path / CONFIG)
    cfg = config_cls.from_dict(meta.get("config"), where=where)
    try:
        cfg.check_trained()
    except ConfigError as err:
        raise err.at(where) from None
    tensors = read_weights(path / WEIGHTS, expected_tensors(module_cls, cfg, what, where))
    try:
        model = module_cls(cfg)
        model.load_state_dict(tensors)
    except (TypeError, ValueError, RuntimeError, InputError) as err:
        raise ModelError(f"{path}: config and weights do not match {what} ({str(err).splitlines()[0]})") from None
    return path, meta, cfg, model
