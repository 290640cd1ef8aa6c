"""What every command shares: output formats, consoles, progress, and the error contract.

Exit codes: 0 success, 1 a failure while running, 2 a usage or input error.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from seqattn.errors import InputError

OUTPUT_FORMATS = ("pretty", "tsv", "conllu", "jsonl")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def choose_format(requested: str | None, allowed: tuple[str, ...] = OUTPUT_FORMATS, pipe_default: str = "tsv") -> str:
    """``requested``, else pretty on a terminal and ``pipe_default`` in a pipeline.

    Raises:
        InputError: a format outside ``allowed``.
    """
    if requested is None:
        return "pretty" if stdout_is_terminal() else pipe_default
    if requested not in allowed:
        raise InputError(f"unknown --format {requested!r}; expected one of {', '.join(allowed)}")
    return requested


def console(stderr: bool = False):
    """A rich Console; colour only on a terminal and never when NO_COLOR is set."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, no_color=bool(os.environ.get("NO_COLOR")), highlight=False,
                   force_terminal=None if stream.isatty() else False, soft_wrap=False)


def write(text: str) -> None:
    """Write data to stdout and flush, so pipelines see each record as soon as it is ready."""
    sys.stdout.write(text)
    sys.stdout.flush()


def say(message: str, quiet: bool = False) -> None:
    """A message for the person at the terminal: stderr, never mixed into the data on stdout."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)


@contextmanager
def progress(description: str, quiet: bool = False) -> Iterator:
    """A rich progress bar on stderr when stderr is a terminal; otherwise a no-op object.

    Yields an object with ``update(completed, total, description=None)``.
    """
    if quiet or not sys.stderr.isatty():
        class Silent:
            def update(self, completed, total, description=None):
                pass

        yield Silent()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        class Bar:
            def update(self, completed, total, description=None):
                bar.update(task, completed=completed, total=total,
                           **({"description": description} if description else {}))

        yield Bar()


STDIN_NAME = "<stdin>"


def wants_stdin(path: object) -> bool:
    """True for "-", and for no path at all when stdin is a pipe or file (not a terminal).

    Raises:
        InputError: no path while stdin is a terminal (nothing to read).
    """
    if path is None:
        if sys.stdin.isatty():
            raise InputError("no input: give a FILE, or '-' and pipe the data in")
        return True
    return str(path) == "-"


@contextmanager
def stdin_as_file(suffix: str = "") -> Iterator:
    """Copy stdin into a temporary file, for readers that must seek (audio decoders, XML parsers).

    Yields the file's Path; it is removed afterwards.  An ``InputError`` that names the
    temporary file is re-raised naming ``<stdin>``, so messages never show a path the user
    never gave.  (Audio and graphs are whole objects, not line streams: there is nothing to
    answer before the input ends.)
    """
    import shutil
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="seqattn-stdin-") as tmp:
        path = Path(tmp) / f"stdin{suffix}"
        with open(path, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        try:
            yield path
        except InputError as err:
            if str(path) not in str(err):
                raise
            raise type(err)(str(err).replace(str(path), STDIN_NAME)) from None




TRIM_EVERY_WORDS = 2000  # seqattn tag calls trim_heap after this many words


def trim_heap() -> bool:
    """Hand the heap's free pages back to the system (glibc ``malloc_trim(0)``).

    Why: glibc raises its mmap threshold each time a large block is freed, so the activations of
    later batches come from the heap, and batches of ever-changing shapes fragment it:
    `seqattn tag` on generated text grew from 380 MB to 675 MB of RSS over 2 MB of text (480,000
    words) and kept rising.  Trimming every ``TRIM_EVERY_WORDS`` words kept it level, 280-380 MB
    with a peak of 441 MB (benchmarks/bench_stream.py); fixing the mmap threshold instead
    (M_MMAP_THRESHOLD 1 MiB) also kept it level but halved the words per second.
    Returns True if memory went back to the system; False where there was none to give back, or
    where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        return bool(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
