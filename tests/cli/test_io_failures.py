"""Issue 26, item 6: a full disk, a closed stdout, stderr or stdin, and nonsense option values.

Every command runs as the user runs it (the installed ``seqattn`` script under ``bash -c`` with
real shell redirections): a failed write is one line and exit code 1, a closed stdin read is
one line and exit code 2, never a traceback, "unexpected ..." or "Exception ignored".
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED_DATA, make_treebank, seqattn

SEQATTN = ROOT / ".venv" / "bin" / "seqattn"
CORA = SHARED_DATA / "planetoid" / "cora"
WAV = "data/speech/pin.wav"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Small inputs for the shipped models: a treebank, words, a pairs file, a manifest."""
    root = tmp_path_factory.mktemp("io")
    treebank = make_treebank(root / "tiny.conllu", 5, 0)
    words = root / "words.txt"
    words.write_text("HELLO\nWORLD\n", encoding="utf-8")
    pairs = root / "pairs.tsv"
    pairs.write_text("HELLO\tHH AH L OW\nWORLD\tW ER L D\n", encoding="utf-8")
    manifest = root / "manifest.tsv"
    speech = (ROOT / "data" / "speech").resolve()
    manifest.write_text(f"path\tlabel\n{speech / 'seven.wav'}\t7\n{speech / 'nine.wav'}\t9\n", encoding="utf-8")
    return {"treebank": treebank, "words": words, "pairs": pairs, "manifest": manifest}


# name -> (arguments that read a file, the same command reading stdin or None where it never reads stdin)
COMMANDS = {
    "models": ("models -f tsv", None),
    "tag": ("tag data/sample.txt -f tsv", "tag - -f tsv"),
    "frames": (f"frames {WAV} -f tsv", "frames - -f tsv"),
    "speech": (f"speech {WAV} -f tsv", "speech - -f tsv"),
    "graph": (f"graph {CORA} -f tsv", "graph - -f tsv"),
    "seq2seq": ("seq2seq {words} -f tsv", "seq2seq - -f tsv"),
    "evaluate tagger": ("evaluate tagger --data {treebank} -f json", None),
    "evaluate graph": (f"evaluate graph --data {CORA} -f json", None),
    "evaluate speech": ("evaluate speech --data {manifest} -f json -q", None),
    "evaluate seq2seq": ("evaluate seq2seq --data {pairs} -f json -q", None),
    "benchmark speed": ("benchmark speed --model en-upos --data {treebank} --repeats 1 -f json", None),
}


def shell(command: str, redirect: str, files: dict[str, Path]) -> subprocess.CompletedProcess:
    """``seqattn COMMAND REDIRECT`` in bash; stdout/stderr captured unless the redirection replaces them."""
    if "graph" in command and not CORA.exists():
        pytest.skip(f"{CORA} is absent (the shared data sets are not beside this checkout)")
    args = command.format(**{k: shlex.quote(str(v)) for k, v in files.items()})
    return subprocess.run(["bash", "-c", f"{shlex.quote(str(SEQATTN))} {args} {redirect}"], capture_output=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqattn: error: "), err
    for word in ("Traceback", "unexpected", "Exception ignored"):
        assert word not in err, err
    return lines[0]


@pytest.mark.parametrize("name", COMMANDS)
def test_a_full_disk_is_one_line_and_exit_1(name, files):
    """``> /dev/full``: every write fails with ENOSPC (it was "unexpected OSError 28")."""
    proc = shell(COMMANDS[name][0], "> /dev/full", files)
    assert proc.returncode == 1, proc.stderr
    assert one_error_line(proc) == "seqattn: error: cannot write the output: No space left on device"


@pytest.mark.parametrize("name", COMMANDS)
def test_a_closed_stdout_is_one_line_and_exit_1(name, files):
    """``>&-``: a traceback from the exit-time flush before (models, tag, frames)."""
    proc = shell(COMMANDS[name][0], ">&-", files)
    assert proc.returncode == 1, proc.stderr
    assert "stdout is closed" in one_error_line(proc)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_closed_stdin_is_one_line_and_exit_2_where_it_is_read(name, files):
    """``<&-``: "unexpected AttributeError" before; commands that never read stdin do not mind."""
    with_file, from_stdin = COMMANDS[name]
    if from_stdin is None:
        proc = shell(with_file, "<&-", files)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip()
        return
    proc = shell(from_stdin, "<&-", files)
    assert proc.returncode == 2, proc.stderr
    assert "stdin is closed" in one_error_line(proc)
    assert proc.stdout == b""


def test_stdout_open_for_reading_only_is_bad_file_descriptor(files):
    proc = shell("models -f tsv", "1</dev/null", files)
    assert proc.returncode == 1
    assert one_error_line(proc) == "seqattn: error: cannot write the output: Bad file descriptor"


def test_a_closed_stderr_never_moves_the_error_into_stdout(files):
    """``2>&-``: print(file=None) would have written the error line into the data on stdout."""
    proc = shell("tag no-such-file.txt -f tsv", "2>&-", files)
    assert proc.returncode == 2
    assert proc.stdout == b""
    full = shell("tag no-such-file.txt -f tsv", "2>/dev/full", files)
    assert full.returncode == 2 and full.stdout == b""


def test_seq2seq_without_a_file_refuses_a_terminal(monkeypatch, capsys):
    """`seqattn seq2seq` waited for keystrokes; now it says what it needs, as `tag` does."""
    from seqattn.cli.main import run

    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    assert run(["seq2seq", "-f", "tsv"]) == 2
    assert "no input" in capsys.readouterr().err


# --------------------------------------------------------------------------- option ranges

OPTION_RANGES = [
    (["seq2seq", "-", "--beam", "0"], "--beam must be 1..100, got 0"),
    (["seq2seq", "-", "--beam", "10000000"], "--beam must be 1..100, got 10000000"),
    (["evaluate", "seq2seq", "--data", "x.tsv", "--beam", "-3"], "--beam must be 1..100"),
    (["speech", WAV, "--window", "-5"], "--window -5: frame length and shift must be > 0 and <= 10000 ms"),
    (["speech", WAV, "--hop", "nan"], "--hop nan"),
    (["speech", WAV, "--window", "inf"], "--window inf"),
    (["speech", WAV, "--min-segment", "-1"], "--min-segment must be >= 0 seconds"),
    (["speech", WAV, "--min-segment", "nan"], "--min-segment must be >= 0 seconds"),
    (["frames", WAV, "-f", "tsv", "--window", "0"], "--window 0: frame length"),
    (["frames", WAV, "-f", "tsv", "--hop", "20000"], "--hop 20000: frame length"),
    (["frames", WAV, "-f", "tsv", "--bins", "0"], "bins"),
    (["frames", WAV, "-f", "tsv", "--sample-rate", "0"], "sample rate"),
    (["tag", "data/sample.txt", "--layer", "99"], "--layer 99 is outside"),
    (["tag", "data/sample.txt", "--head", "-1"], "--head -1 is outside"),
    (["speech", WAV, "--layer", "9"], "--layer 9 is outside"),
    (["evaluate", "graph", "--data", "x", "--split", "dev"], "unknown --split"),
    (["benchmark", "attention", "--length", "0"], "--length must be 1..16,777,216, got 0"),
    (["benchmark", "attention", "--length", "10000000000000"], "--length must be 1..16,777,216"),
    (["benchmark", "attention", "--window", "-1"], "--window must be 0..65,536, got -1"),
    (["benchmark", "attention", "--processes", "0"], "--processes must be 1..50, got 0"),
    (["benchmark", "attention", "--processes", "100000"], "--processes must be 1..50"),
    (["benchmark", "speed", "--model", "en-upos", "--data", "data/sample.txt", "--repeats", "0"],
     "--repeats must be 1..1000, got 0"),
    (["seq2seq", "-", "--beam", "1e23"], "Invalid value for '--beam'"),
    (["speech", WAV, "--layer", "1.5"], "--layer '1.5': expected a number or all"),
    (["speech", WAV, "--head", "first"], "--head 'first': expected a number or mean or all"),
]


@pytest.mark.parametrize("args, message", OPTION_RANGES, ids=[" ".join(a) for a, _ in OPTION_RANGES])
def test_nonsense_option_values_are_one_line_and_exit_2(args, message):
    proc = seqattn(*args, input=b"HELLO\n")
    assert proc.returncode == 2, proc.stderr
    assert message in one_error_line(proc)
