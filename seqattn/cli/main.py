"""Entry point of the ``seqattn`` command: the Typer app and the error contract around it."""

from __future__ import annotations

import os
import sys

import typer

from seqattn.errors import EXIT_FAILURE, EXIT_USAGE, SeqattnError

HELP = """seqattn: self-attention models for sequences from the shell.

Text, speech frames and graph nodes become sets of vectors; (truncated) self-attention models
turn them into a tag per element, one class, or an output sequence.

Exit codes: 0 success, 1 a failure while running, 2 a usage or input error.
Set SEQATTN_DEBUG=1 to see a traceback for unexpected errors.
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})
evaluate_app = typer.Typer(help="Score a model on labelled data.", no_args_is_help=True)
train_app = typer.Typer(help="Train a model on your data.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(train_app, name="train")


@app.command("models")
def models_cli(
    format: str = typer.Option(None, "--format", "-f", help="pretty (terminal default) | tsv | json"),
) -> None:
    """List the shipped models: task, window, training data, license and test metric."""
    import json

    from seqattn.cli.common import choose_format, console, write
    from seqattn.models.io import registry

    fmt = choose_format(format, ("pretty", "tsv", "json"))
    models = registry()
    if fmt == "json":
        write(json.dumps(models, indent=1) + "\n")
        return
    def attention(m: dict) -> str:
        if m["task"] == "graph":
            return "along edges"
        return "full" if m.get("window") is None else f"|i-j| <= {m['window']}"

    rows = [(name, m["task"], attention(m), m["data"], m["license"], m["metric"]) for name, m in models.items()]
    if fmt == "tsv":
        write("".join("\t".join(map(str, r)) + "\n" for r in rows))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Shipped models")
    for column in ("name", "task", "attention window", "training data", "license", "test metric"):
        table.add_column(column)
    for row in rows:  # Text, not markup: a "[...]" in a metric or data name is shown as written
        table.add_row(*(Text(str(value)) for value in row))
    console().print(table)


def _register_commands() -> None:
    # Each task module adds its commands; importing them costs only typer.
    from seqattn.cli import benchmark, classify, graph, seq2seq, speech, tag, tokenize

    tag.register(app, evaluate_app, train_app)
    tokenize.register(app)
    classify.register(app, evaluate_app, train_app)
    benchmark.register(app)
    graph.register(app, evaluate_app, train_app)
    speech.register(app, evaluate_app, train_app)
    seq2seq.register(app, evaluate_app, train_app)


EXIT_CODES = "Exit codes: 0 success, 1 a failure while running, 2 a usage or input error."


def _add_exit_codes(typer_app: typer.Typer) -> None:
    """Every command's --help ends with the exit codes (issue 7)."""
    for info in typer_app.registered_commands:
        info.epilog = info.epilog or EXIT_CODES
    for group in typer_app.registered_groups:
        _add_exit_codes(group.typer_instance)


_register_commands()
_add_exit_codes(app)


def _one_line(message: str) -> str:
    """``message`` with what would end or garble its one line, or drive the terminal, escaped:
    C0/C1 controls, DEL, Unicode line breaks and bidi controls (``\\n``, ``\\x1b``, ``\\u2028``;
    seqattn.render.safe.printable)."""
    from seqattn.render.safe import printable

    return printable(message)


def _error(message: str, code: int) -> int:
    """Print the one error line on stderr (where stderr can still be written) and return ``code``."""
    try:
        if sys.stderr is not None:  # print(file=None) would write the error into stdout's data
            print(f"seqattn: error: {_one_line(message)}", file=sys.stderr, flush=True)
    except (OSError, ValueError, _OutputFailed):  # stderr full, closed or gone: the exit code still says it
        pass
    return code


class _OutputFailed(SeqattnError):
    """Writing to stdout or stderr failed (a full disk, a closed descriptor, EIO): exit code 1."""


class _GuardedStream:
    """``sys.stdout`` or ``sys.stderr`` whose write failures become ``_OutputFailed``.

    An OSError while writing is told apart from one while reading input or writing a model only
    here, where the write happens: ``> /dev/full`` is "cannot write the output: No space left on
    device", not "unexpected OSError".  EPIPE stays a BrokenPipeError (a reader that left, exit 0).
    Every other attribute is the wrapped stream's (isatty, fileno, encoding ...).
    """

    def __init__(self, stream, what: str, failures: list):
        self._stream, self._what, self._failures = stream, what, failures

    def _call(self, method: str, *args):
        try:
            return getattr(self._stream, method)(*args)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as err:  # ValueError: "I/O operation on closed file"
            self._failures.append(self._what)
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise _OutputFailed(f"cannot write {self._what}: {reason}") from None

    def write(self, data):
        return self._call("write", data)

    def writelines(self, lines):
        return self._call("writelines", lines)

    def flush(self):
        return self._call("flush")

    @property
    def buffer(self):
        return _GuardedStream(self._stream.buffer, self._what, self._failures)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _PipeClosed(Exception):
    """The reader of stdout went away (``| head -1``), carried past click as a non-OSError."""


def _guard_pipes(command) -> None:
    """Wrap every command's callback so that BrokenPipeError leaves it as ``_PipeClosed``.

    click turns an EPIPE escaping a command into ``sys.exit(1)`` (even with standalone_mode
    off); a pipeline whose reader has all it wants is a success, so we take it out of click's hands.
    """
    import functools

    callback = getattr(command, "callback", None)
    if callback is not None:
        @functools.wraps(callback)
        def guarded(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except BrokenPipeError as err:
                raise _PipeClosed() from err

        command.callback = guarded
    for sub in getattr(command, "commands", {}).values():
        _guard_pipes(sub)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; every error becomes one line on stderr.

    Meanwhile stdout and stderr are wrapped (``_GuardedStream``) so that a failed write is one
    line and exit code 1 ("cannot write the output: No space left on device"); ``main`` then
    points the failed descriptors at /dev/null so that Python's exit-time flush stays quiet.

    Raises:
        BrokenPipeError: stdout's reader went away; ``main`` turns it into a quiet exit 0.
    """
    _FAILED_STREAMS.clear()
    saved = sys.stdout, sys.stderr
    if sys.stdout is not None:
        sys.stdout = _GuardedStream(sys.stdout, "the output", _FAILED_STREAMS)
    if sys.stderr is not None:
        sys.stderr = _GuardedStream(sys.stderr, "to stderr", _FAILED_STREAMS)
    try:
        code = _run(argv)
        try:
            if sys.stdout is not None:
                sys.stdout.flush()  # what a command left in the buffer fails here, not at exit
        except _OutputFailed as err:
            code = _error(str(err), err.exit_code)
        return code
    finally:
        sys.stdout, sys.stderr = saved


_FAILED_STREAMS: list[str] = []  # "the output" / "to stderr" when a write failed in the last run


def _run(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    _guard_pipes(command)
    try:
        result = command.main(args=argv, prog_name="seqattn", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        return _error("aborted", 130)
    except typer.TyperException as err:  # click's usage errors (typer vendors click)
        ctx = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
            try:
                print(ctx.get_help(), file=sys.stderr)
            except _OutputFailed:
                pass
            return EXIT_USAGE
        where = ctx.command_path if ctx is not None else "seqattn"
        return _error(f"{err.format_message()} (see '{where} --help')", EXIT_USAGE)
    except SeqattnError as err:
        if os.environ.get("SEQATTN_DEBUG") == "1":
            raise
        return _error(str(err), err.exit_code)
    except _PipeClosed:
        raise BrokenPipeError from None
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence: no traceback for users
        if os.environ.get("SEQATTN_DEBUG") == "1":
            raise
        return _error(f"unexpected {type(err).__name__}: {err} (SEQATTN_DEBUG=1 shows the traceback)", EXIT_FAILURE)


def _to_devnull(fd: int) -> None:
    """Point descriptor ``fd`` at /dev/null (a closed one is opened there, a failed one replaced)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    if devnull != fd:
        os.dup2(devnull, fd)
        os.close(devnull)


def _standard_streams() -> str | None:
    """Make closed standard descriptors safe; return an error message when stdout is closed.

    With 0, 1 or 2 closed (``<&-``, ``>&-``, ``2>&-``) the next file opened would take that
    number, and whatever writes to "stdout" or "stderr" (a C library on fd 2) would write into it;
    each closed one is opened on /dev/null instead.  Python has set the stream to None: a closed
    stdin becomes ``ClosedStdin`` (reading it is one line and exit 2), a closed stderr /dev/null
    (messages are lost, the exit code is not), and a closed stdout is an error before the
    command runs, since its output would be lost.
    """
    from seqattn.cli.common import ClosedStdin

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            _to_devnull(fd)
    if sys.stdin is None:
        sys.stdin = ClosedStdin()
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        return "cannot write the output: stdout is closed (>&-); redirect it to a file or a pipe"
    return None


def main() -> None:
    """Console-script entry point: the exit code of ``run``, with the standard streams made safe.

    Exits quietly with 0 when the reader of stdout goes away (``| head -1``); a failed write to
    stdout or stderr is one line and exit code 1 with no "Exception ignored" at exit.
    """
    closed = _standard_streams()
    if closed is not None:
        sys.exit(_error(closed, EXIT_FAILURE))
    try:
        code = run()
    except BrokenPipeError:
        # `seqattn tag big.txt | head -1`: the reader left; Python would complain at exit otherwise.
        _to_devnull(sys.stdout.fileno())
        code = 0
    for what, fd in (("the output", 1), ("to stderr", 2)):
        if what in _FAILED_STREAMS:  # its buffer still holds what could not be written
            _to_devnull(fd)
    sys.exit(code)
