"""Where an attention export goes: the format from the suffix, the path guard, the atomic write.

The rules (checked before any input is read or any model is loaded, so a run never works for
minutes and then fails to save):

* The suffix chooses the format: ``.html`` (``.htm``), ``.svg``, ``.png`` or ``.npz``.
* Never a directory, a symbolic link, a device or pipe, or one of the command's input files.
* An existing file is replaced only when it is an earlier seqattn attention export (each format
  carries the marker ``MARKER``), so running a command again updates its picture, while a file
  of the user's is never overwritten.
* The parent directory must exist and be writable (checked by making and removing a temporary
  file there, where the export is written before it is renamed into place).
* The file is written to a temporary sibling, fsync'ed and renamed: an interrupted run leaves
  the old file or none, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from seqattn.errors import InputError, SeqattnError

SUFFIXES = {".html": "html", ".htm": "html", ".svg": "svg", ".png": "png", ".npz": "npz"}
MARKER = "seqattn-attention-export"
OPTION = "--attention-out"


def export_format(path: str | Path) -> str:
    """"html", "svg", "png" or "npz" from ``path``'s suffix.

    Raises:
        InputError: any other suffix (or none).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{OPTION} {path}: the suffix chooses the format; expected .html, .svg, .png or .npz"
                         + (f", not {suffix}" if suffix else ""))
    return SUFFIXES[suffix]


def is_export(path: Path) -> bool:
    """True for a file that an earlier export wrote (its marker in the first 64 KiB, or an .npz member)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
        if head.startswith(b"PK"):
            import zipfile

            with zipfile.ZipFile(path) as archive:
                return f"{MARKER}.npy" in archive.namelist()
    except (OSError, ValueError, EOFError):
        return False
    except Exception:  # a damaged zip (zipfile.BadZipFile and kin): not ours to replace
        return False
    return MARKER.encode() in head


def check_attention_out(path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse an ``--attention-out`` that must not be written (module docstring), before any work.

    Args:
        inputs: the command's input files; the export may not replace one of them.
    Returns the path (made a Path).
    Raises:
        InputError: an unknown suffix, a forbidden target, a parent that is missing or not
            writable.
    """
    export_format(path)
    out = Path(path)
    if out.name in ("", ".", "..") or str(path).endswith(os.sep):
        raise InputError(f"{OPTION} {path}: not a file name")
    if out.is_symlink():
        raise InputError(f"{OPTION} {path}: a symbolic link; give the file itself")
    if out.exists():
        if out.is_dir():
            example = out / ("attention" + out.suffix)
            raise InputError(f"{OPTION} {path}: a directory; give a file name such as {example}")
        if not out.is_file():
            raise InputError(f"{OPTION} {path}: not a regular file")
        for given in inputs:
            try:
                same = given not in (None, "-") and Path(given).exists() and os.path.samefile(given, out)
            except OSError:
                same = False
            if same:
                raise InputError(f"{OPTION} {path}: this is an input of the command; choose another name")
        if not is_export(out):
            raise InputError(f"{OPTION} {path}: exists and is not a seqattn attention export; choose another name "
                             "or remove it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{OPTION} {path}: {parent} is not a directory")
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise InputError(f"{OPTION} {path}: cannot write in {parent} ({err.strerror or err})") from None
    return out


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success fsync it and rename it over ``path``.

    On any exception (SIGTERM raised as ``Stopped`` included) the temporary file is removed and
    ``path`` is left as it was.
    Raises:
        SeqattnError: the file cannot be written (a full disk; exit code 1).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        os.close(handle)
    except OSError as err:
        raise SeqattnError(f"{OPTION} {path}: cannot write in {parent} ({err.strerror or err})") from None
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        raise SeqattnError(f"{OPTION} {path}: cannot write it ({err.strerror or err})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
