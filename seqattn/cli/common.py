"""What every command shares: output formats, consoles, progress, and the error contract.

Exit codes: 0 success, 1 a failure while running, 2 a usage or input error.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from seqattn.errors import InputError, SeqattnError

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
    """A message for the person at the terminal: stderr, never mixed into the data on stdout.

    One line: what it quotes from the input or a file name is escaped (``render.safe.printable``:
    control characters, C1, bidi controls), so a message can neither break nor drive the terminal.
    """
    if not quiet:
        from seqattn.render.safe import printable

        print(printable(message), file=sys.stderr, flush=True)


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


STDIN_CLOSED = "stdin is closed (<&-): give a FILE, or pipe the input in"


class ClosedStdin:
    """``sys.stdin`` when the shell closed descriptor 0 (``seqattn tag - <&-``; Python sets None).

    Any attempt to read it is an ``InputError`` (one line, exit 2) instead of an AttributeError
    deep inside a reader; closing it (multiprocessing does) is allowed.
    """

    closed = True

    def close(self) -> None:
        pass

    def __iter__(self):
        raise InputError(STDIN_CLOSED)

    def __getattr__(self, name: str):
        raise InputError(STDIN_CLOSED)


def wants_stdin(path: object) -> bool:
    """True for "-", and for no path at all when stdin is a pipe or file (not a terminal).

    Raises:
        InputError: no path while stdin is a terminal (nothing to read); stdin is closed and
            there is no path or "-".
    """
    if path is not None and str(path) != "-":
        return False
    if sys.stdin is None or isinstance(sys.stdin, ClosedStdin):
        raise InputError(STDIN_CLOSED)
    if path is None and sys.stdin.isatty():
        raise InputError("no input: give a FILE, or '-' and pipe the data in")
    return True


STDIN_MAX_BYTES = 2 << 30  # 2 GiB: an audio clip copied from stdin (over 3 hours of CD-quality WAV)
GRAPH_STDIN_MAX_BYTES = 1 << 30  # 1 GiB: a graph copied from stdin
MAX_STDIN_BYTES_ENV = "SEQATTN_MAX_STDIN_BYTES"
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@contextmanager
def stdin_as_file(suffix: str = "", max_bytes: int = STDIN_MAX_BYTES) -> Iterator:
    """Copy stdin into a temporary file, for readers that must seek (audio decoders, XML parsers).

    Yields the file's Path; it is removed afterwards, also when the process is stopped by
    SIGTERM, SIGHUP or SIGINT (``stop_signals_raise``: the handlers raise, so the cleanup runs;
    only SIGKILL leaves the copy behind).  An ``InputError`` that names the temporary file is
    re-raised naming ``<stdin>``, so messages never show a path the user never gave.  (Audio and
    graphs are whole objects, not line streams: there is nothing to answer before the input ends.)

    Args:
        max_bytes: the caller's limit on the copy (``STDIN_MAX_BYTES``, 2 GiB, for audio;
            ``GRAPH_STDIN_MAX_BYTES``, 1 GiB, for graphs); ``SEQATTN_MAX_STDIN_BYTES`` overrides it.
    Raises:
        InputError: stdin holds more than the limit (the copy stops there: ``cat /dev/zero |``
            ends in one line and exit code 2); a bad ``SEQATTN_MAX_STDIN_BYTES``.
        SeqattnError: the copy cannot be written (a full or read-only temporary directory; exit 1).
        Stopped: SIGTERM or SIGHUP arrived (exit code 128 + the signal's number).
    """
    import tempfile
    from pathlib import Path

    limit = max_stdin_bytes(max_bytes)
    with stop_signals_raise(), tempfile.TemporaryDirectory(prefix="seqattn-stdin-") as tmp:
        path = Path(tmp) / f"stdin{suffix}"
        copied = 0
        try:
            with open(path, "wb") as handle:
                while chunk := sys.stdin.buffer.read(min(1 << 20, limit + 1 - copied)):
                    copied += len(chunk)
                    if copied > limit:
                        raise InputError(f"{STDIN_NAME}: more than {limit:,} bytes, the most a command copies from "
                                         f"stdin (set {MAX_STDIN_BYTES_ENV} to allow more, or give a FILE)")
                    handle.write(chunk)
        except OSError as err:
            raise SeqattnError(f"{STDIN_NAME}: cannot copy it to a temporary file in {tempfile.gettempdir()} "
                               f"({err.strerror or err})") from None
        try:
            yield path
        except InputError as err:
            if str(path) not in str(err):
                raise
            raise type(err)(str(err).replace(str(path), STDIN_NAME)) from None


def max_stdin_bytes(default: int) -> int:
    """The most bytes ``stdin_as_file`` copies: ``SEQATTN_MAX_STDIN_BYTES`` if set, else ``default``.

    The variable takes a number of bytes, optionally with a binary suffix K, M, G or T (``512M``).
    Raises:
        InputError: the variable is not such a size, or not positive.
    """
    text = os.environ.get(MAX_STDIN_BYTES_ENV)
    if text is None or not text.strip():
        return default
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in _SIZE_UNITS else ""
    number = value[:-1] if unit else value
    if not number.isdigit() or int(number) < 1:
        raise InputError(f"{MAX_STDIN_BYTES_ENV}={text!r} must be a positive number of bytes (e.g. 500M, 4G)")
    return int(number) * _SIZE_UNITS[unit]


class Stopped(SeqattnError):
    """SIGTERM or SIGHUP, raised as an exception so that context managers clean up (exit 128 + signal)."""

    def __init__(self, signum: int):
        import signal

        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise ``Stopped`` (SIGINT raises KeyboardInterrupt already).

    Python dies silently on SIGTERM, skipping ``finally`` blocks and temporary-file cleanups;
    raising instead unwinds the stack.  Only signals left at their default are taken (a SIGHUP
    ignored under ``nohup`` stays ignored); a second signal during the unwinding is ignored, so
    the cleanup is not cut short.  Outside the main thread (where handlers cannot be set) this
    does nothing.  The previous handlers come back on exit.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = []

    def handler(signum, frame):
        if not stopping:
            stopping.append(signum)
            raise Stopped(signum)

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def check_max_line_bytes(value: int) -> int:
    """``--max-line-bytes`` as given, checked.

    Raises:
        InputError: below 16 bytes.
    """
    if value < 16:
        raise InputError(f"--max-line-bytes must be >= 16, got {value}")
    return value


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
