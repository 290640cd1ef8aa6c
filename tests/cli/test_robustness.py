"""Issue 7 across every command: hostile files give one line on stderr and exit code 2, stdin
works where it makes sense, no ANSI codes in a pipe, and the same input gives the same bytes."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, seqattn, tone_clip

NOT_UTF8 = b"fine line\n\xff\xfe not text\n"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder of files nobody has checked: junk, broken text, broken audio, broken graphs."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(7)
    files = {
        "junk.bin": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "not-utf8.txt": NOT_UTF8,
        "empty.txt": b"",
        "truncated.conllu": b"# text = a b\n1\ta\t_\tDET\t_\t_\t0\t_\t_\t_\n2\tb\t_",
        "no-upos.conllu": b"1\ta\t_\t_\t_\t_\t0\t_\t_\t_\n\n",
        "empty.wav": b"",
        "bad-json.json": b'{"nodes": [1, 2',
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "unknown-node.json": json.dumps({"nodes": [{"id": 1}], "links": [{"source": 1, "target": 9}]}).encode(),
        "junk.graphml": b"<graphml><graph><node id='a'><</graphml>",
        "undefined.gml": b"graph [ node [ id 1 ] edge [ source 1 target 7 ] ]",
        "superscript.tsv": "\u00b2\t1\n1\t2\n".encode(),
        "one-field.tsv": b"a\n",
        "manifest.tsv": b"path\tlabel\njunk.bin\t1\n",
        "bom-manifest.tsv": b"\xef\xbb\xbfpath\tlabel\nmissing.wav\t1\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    clip = tone_clip("low", rng)
    sf.write(root / "ok.wav", clip, 8000, subtype="PCM_16")
    wav = (root / "ok.wav").read_bytes()
    (root / "truncated.wav").write_bytes(wav[: len(wav) // 3])
    (root / "header-only.wav").write_bytes(wav[:44])
    huge = bytearray(wav)
    huge[40:44] = struct.pack("<I", 0x7FFF0000)  # the data chunk claims 2 GB (just below a stream's placeholder)
    (root / "huge-header.wav").write_bytes(bytes(huge))
    rate = bytearray(wav)
    rate[24:28] = struct.pack("<I", 4_000_000_000)
    (root / "bad-rate.wav").write_bytes(bytes(rate))
    return root


def assert_one_line_error(proc, *needles: str) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqattn: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert proc.stdout == b""
    return lines[0]


# (arguments, file named in the message, part of the message); H/ is the hostile folder
CASES = [
    (["tag", "H/junk.bin"], "junk.bin:1", "not UTF-8"),
    (["tag", "H/not-utf8.txt"], "not-utf8.txt:2", "byte offset 10"),
    (["tag", "-i", "conllu", "H/truncated.conllu"], "truncated.conllu:3", "10 tab-separated columns"),
    (["evaluate", "tagger", "-d", "H/junk.bin"], "junk.bin:1", "not UTF-8"),
    (["evaluate", "tagger", "-d", "H/empty.txt"], "empty.txt", "no sentence with gold UPOS"),
    (["evaluate", "tagger", "-d", "H/no-upos.conllu"], "no-upos.conllu", "no sentence with gold UPOS"),
    (["train", "tagger", "--train", "H/truncated.conllu", "--dev", "H/truncated.conllu", "-o", "H/m"],
     "truncated.conllu:3", "columns"),
    (["speech", "H/empty.wav"], "empty.wav", "empty file"),
    (["speech", "H/junk.bin"], "junk.bin", "not readable as"),
    (["speech", "H/truncated.wav"], "truncated.wav", "truncated"),
    (["speech", "H/header-only.wav"], "header-only.wav", "truncated"),
    (["speech", "H/huge-header.wav"], "huge-header.wav", "declares 2,147,418,112 bytes"),
    (["speech", "H/bad-rate.wav"], "bad-rate.wav", "not readable as"),
    (["speech", "H/ok.wav", "H/junk.bin"], "junk.bin", "not readable as"),
    (["speech", "H/ok.wav", "--min-segment", "nan"], "--min-segment", "must be >= 0"),
    (["frames", "-f", "tsv", "H/truncated.wav"], "truncated.wav", "truncated"),
    (["frames", "-f", "tsv", "H/ok.wav", "--sample-rate", "0"], "sample rate", "got 0"),
    (["frames", "-f", "tsv", "H/ok.wav", "--window", "inf"], "frame length", "<= 10000 ms"),
    (["frames", "-f", "tsv", "H/ok.wav", "--hop", "nan"], "frame length", "hop nan"),
    (["evaluate", "speech", "-d", "H/manifest.tsv"], "junk.bin", "not readable as"),
    (["evaluate", "speech", "-d", "H/junk.bin"], "junk.bin:1", "not UTF-8"),
    (["evaluate", "speech", "-d", "H/bom-manifest.tsv"], "missing.wav", "no such file"),
    (["train", "speech", "--train", "H/manifest.tsv", "-o", "H/m"], "junk.bin", "not readable as"),
    (["graph", "H/bad-json.json"], "bad-json.json: line 1", "malformed JSON"),
    (["graph", "H/deep.json"], "deep.json", "nested too deeply"),
    (["graph", "H/unknown-node.json"], "unknown-node.json", "names node '9'"),
    (["graph", "H/junk.graphml"], "junk.graphml", "malformed GraphML"),
    (["graph", "H/undefined.gml"], "undefined.gml", "malformed GML"),
    (["graph", "H/junk.bin"], "junk.bin:1", "not UTF-8"),
    (["graph", "H/one-field.tsv"], "one-field.tsv: line 1", "expected 'source target"),
    (["graph", "H/superscript.tsv"], "superscript.tsv", "features per node"),  # read fine; the model needs features
    (["graph", "H/ok.wav", "-i", "json"], "ok.wav", "not UTF-8"),
    (["graph", "H/one-field.tsv", "-i", "xml"], "--input-format", "xml"),
    (["evaluate", "graph", "-d", "H/junk.bin"], "junk.bin", "not a directory"),
    (["train", "graph", "-d", "H/junk.bin", "-o", "H/m"], "junk.bin", "not a directory"),
    (["tag", "H/empty.txt", "-m", "H/junk.bin"], "junk.bin", "is a directory with config.json"),
    (["tag", "H/empty.txt", "-m", "digits"], "digits", "speech model, not a tagger"),
    (["speech", "H/ok.wav", "-m", "cora"], "cora", "graph model, not a speech"),
    (["graph", "H/superscript.tsv", "-m", "H"], "H", "incomplete model directory"),
    (["models", "-f", "xml"], "--format", "xml"),
    (["benchmark", "attention", "--impl", "nope"], "--impl", "nope"),
]


@pytest.mark.parametrize("args,where,what", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_hostile_input_is_one_line_naming_the_file_and_exit_2(hostile, args, where, what):
    args = [a.replace("H/", f"{hostile}/") if a.startswith("H/") else (str(hostile) if a == "H" else a) for a in args]
    assert_one_line_error(seqattn(*args), where.replace("H", str(hostile)) if where == "H" else where, what)


def test_unexpected_errors_show_a_traceback_only_with_seqattn_debug(hostile, monkeypatch):
    import seqattn.readers.graph as graph

    def boom(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(graph, "read_edge_list", boom)
    proc = seqattn("graph", hostile / "one-field.tsv")
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("seqattn: error: unexpected ZeroDivisionError: a bug")
    monkeypatch.setenv("SEQATTN_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        seqattn("graph", hostile / "one-field.tsv")


# --------------------------------------------------------------------------- stdin


def test_speech_and_frames_read_a_clip_from_stdin(hostile, tiny_speech_dir):
    wav = (hostile / "ok.wav").read_bytes()
    from_file = seqattn("speech", hostile / "ok.wav", "-m", tiny_speech_dir, "-f", "tsv")
    for args in (["speech", "-"], ["speech"]):
        proc = seqattn(*args, "-m", tiny_speech_dir, "-f", "tsv", input=wav)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split(b"\t", 1) == [b"<stdin>", from_file.stdout.split(b"\t", 1)[1]]
    frames = seqattn("frames", "-", "-f", "tsv", input=wav)
    assert frames.returncode == 0 and frames.stdout == seqattn("frames", hostile / "ok.wav", "-f", "tsv").stdout
    assert_one_line_error(seqattn("speech", "-", "-m", tiny_speech_dir, input=b"junk"), "<stdin>", "not readable as")
    assert_one_line_error(seqattn("frames", "-f", "tsv", input=b""), "<stdin>", "empty file")
    assert_one_line_error(seqattn("speech", "-", "-", input=wav), "stdin ('-') can be read once")


def test_graph_reads_an_edge_list_or_json_from_stdin(tiny_planetoid, tiny_graph_model_dir, tmp_path):
    edges = (tiny_planetoid / "edges.txt").read_bytes()
    args = ["--features", tiny_planetoid / "features.npz", "-m", tiny_graph_model_dir, "-f", "tsv"]
    from_file = seqattn("graph", tiny_planetoid / "edges.txt", *args)
    from_stdin = seqattn("graph", "-", *args, input=edges)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout and from_stdin.stdout.count(b"\n") == 60
    assert_one_line_error(seqattn("graph", *args, input=b"0 1\n0 999\n"), "<stdin>: line 2", "'999'")
    assert_one_line_error(seqattn("graph", "-i", "json", *args, input=b"{oops"), "<stdin>: line 1", "malformed JSON")


def test_a_terminal_on_stdin_is_not_read(monkeypatch, tiny_speech_dir):
    """No FILE and stdin a terminal: say what to do instead of waiting for keystrokes."""
    from seqattn.cli.common import wants_stdin
    from seqattn.errors import InputError

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    with pytest.raises(InputError, match="no input"):
        wants_stdin(None)
    assert wants_stdin("-") and not wants_stdin("clip.wav")


# --------------------------------------------------------------------------- pipes and terminals


@pytest.mark.parametrize("command", ["frames", "speech", "tag"])
def test_head_closing_the_pipe_ends_quietly_with_exit_0(command, hostile, tiny_speech_dir, tiny_tagger_dir, tmp_path):
    """`seqattn ... | head -1` under `set -o pipefail`: seqattn itself exits 0 (click alone says 1)."""
    long = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    sf.write(long, np.concatenate([tone_clip("low", rng) for _ in range(60)]), 8000)  # ~40 s, 4000 frames
    (tmp_path / "big.txt").write_text("The cat sees the dog. Alice likes Paris.\n" * 3000)
    args = {"frames": f"frames -f tsv {long}",
            "speech": f"speech -f tsv -m {tiny_speech_dir} " + " ".join([str(hostile / "ok.wav")] * 40),
            "tag": f"tag {tmp_path / 'big.txt'} -m {tiny_tagger_dir}"}[command]
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m seqattn {args} | head -1"],
                          capture_output=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert proc.stdout.count(b"\n") == 1


def test_pretty_output_in_a_pipe_has_no_ansi_codes(hostile, tiny_tagger_dir, tiny_speech_dir, tiny_planetoid,
                                                   tiny_graph_model_dir):
    runs = [seqattn("tag", "data/sample.txt", "-m", tiny_tagger_dir, "-f", "pretty"),
            seqattn("speech", hostile / "ok.wav", "-m", tiny_speech_dir, "-f", "pretty", "--attention"),
            seqattn("frames", hostile / "ok.wav", "-f", "pretty"),
            seqattn("graph", tiny_planetoid, "-m", tiny_graph_model_dir, "-f", "pretty"),
            seqattn("models", "-f", "pretty")]
    for proc in runs:
        assert proc.returncode == 0 and proc.stdout, proc.stderr
        assert b"\x1b[" not in proc.stdout and proc.stderr == b""


# --------------------------------------------------------------------------- determinism


def test_same_input_and_model_give_the_same_bytes(hostile, tiny_tagger_dir, tiny_speech_dir, tiny_planetoid,
                                                  tiny_graph_model_dir):
    """Issue 7: every inference command, run twice, writes identical stdout."""
    commands = [
        ["tag", "data/sample.txt", "-m", tiny_tagger_dir, "-f", "jsonl"],
        ["tag", "data/sample.txt", "-f", "conllu"],  # the shipped en-upos
        ["speech", hostile / "ok.wav", "-m", tiny_speech_dir, "-f", "jsonl", "--attention"],
        ["speech", hostile / "ok.wav", "-f", "jsonl"],  # the shipped digits
        ["frames", hostile / "ok.wav", "-f", "jsonl"],
        ["graph", tiny_planetoid, "-m", tiny_graph_model_dir, "-f", "jsonl"],
        ["graph", tiny_planetoid, "-m", tiny_graph_model_dir, "-f", "jsonl", "--attention", "3"],
    ]
    for args in commands:
        first, second = seqattn(*args), seqattn(*args)
        assert first.returncode == 0 and first.stdout, (args, first.stderr)
        assert first.stdout == second.stdout, args


# --------------------------------------------------------------------------- kill -9 and --resume


def test_train_speech_killed_with_sigkill_resumes_to_the_same_weights(tone_manifests, tmp_path):
    """`seqattn train speech ... --resume OUT.checkpoint` after a real kill -9 ends on the bytes of
    an uninterrupted run (tests/tasks/ check the same for every trainer at library level).

    All three runs are processes of their own with one environment: the bytes are the same for
    the same thread settings.  An uninterrupted run in this process (2 BLAS threads) once ended
    on other bytes than the 1-thread child on a Zen 5 CPU, where OpenBLAS runs its Haswell/Zen
    kernels: their mel-filter products (numpy) differ in the last bit between 1 and 2 threads
    (seen here with OPENBLAS_CORETYPE=Zen; its SkylakeX kernels agree).  docs/cli.md says so.
    """
    import signal
    import time

    args = ["train", "speech", "--train", str(tone_manifests[1]), "--epochs", "8", "--sequences", "6",
            "--layers", "1", "--d-model", "16", "--bins", "16", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def run(*more) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "seqattn", *args, *map(str, more)], cwd=ROOT, env=env,
                              capture_output=True, timeout=300)

    whole = run("--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    checkpoint = tmp_path / "cut.checkpoint"
    proc = subprocess.Popen([sys.executable, "-m", "seqattn", *args, "--out", str(tmp_path / "cut")], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (checkpoint / "checkpoint.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    if proc.poll() is not None:
        pytest.fail(f"training ended before the kill (exit {proc.returncode}): {proc.stderr.read()!r}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and not (tmp_path / "cut").exists()
    epoch = json.loads((checkpoint / "checkpoint.json").read_text())["progress"]["epoch"]  # the next epoch
    assert 2 <= epoch <= 8
    resumed = run("--out", tmp_path / "cut", "--resume", checkpoint)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == \
        (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert not checkpoint.exists()


def test_train_commands_never_overwrite_without_force(tiny_planetoid, tone_manifests, tiny_treebank, tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("a file of mine")
    for args in (["train", "graph", "-d", tiny_planetoid, "--max-epochs", "1"],
                 ["train", "speech", "--train", tone_manifests[1], "--epochs", "1", "--sequences", "0",
                  "--layers", "1", "--d-model", "16"],
                 ["train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--epochs", "1"]):
        assert_one_line_error(seqattn(*args, "-o", mine), "mine.txt", "not a directory")
        assert mine.read_text() == "a file of mine"
    # --force replaces a model directory only, never a file of the user's (issue 26)
    assert_one_line_error(seqattn("train", "graph", "-d", tiny_planetoid, "--max-epochs", "1", "-o", mine, "--force",
                                  "-q"), "mine.txt", "not a directory")
    assert mine.read_text() == "a file of mine"
    model = tmp_path / "model"
    assert seqattn("train", "graph", "-d", tiny_planetoid, "--max-epochs", "1", "-o", model, "-q").returncode == 0
    assert seqattn("train", "graph", "-d", tiny_planetoid, "--max-epochs", "1", "-o", model, "--force",
                   "-q").returncode == 0
    assert (model / "model.safetensors").is_file()


def test_error_lines_escape_line_breaks_and_terminal_codes(tiny_tagger_dir):
    """A message quoting the input stays one line and cannot drive the terminal."""
    conllu = "1\tword\t_\tNOUN\t_\t_\t3\u2029\t_\t_\t_\n\n1\tx\x1b[31m\t_\tX\t_\t_\t0\t_\t_\t_\n".encode()
    line = assert_one_line_error(seqattn("tag", "-", "-i", "conllu", "-m", tiny_tagger_dir, input=conllu),
                                 "<stdin>:1")
    assert "\\u2029" in line and "\u2029" not in line


def test_npz_features_in_a_damaged_archive(tmp_path, tiny_planetoid):
    """zipfile's own errors (an unknown compression method here) are input errors too."""
    import io as _io

    buffer = _io.BytesIO()
    np.savez(buffer, features=np.eye(3, dtype=np.float32))
    data = bytearray(buffer.getvalue())
    data[8:10] = (99).to_bytes(2, "little")  # the local header's compression method
    central = data.rfind(b"PK\x01\x02")
    data[central + 10:central + 12] = (99).to_bytes(2, "little")
    (tmp_path / "f.npz").write_bytes(bytes(data))
    (tmp_path / "g.tsv").write_text("0\t1\n1\t2\n")
    assert_one_line_error(seqattn("graph", tmp_path / "g.tsv", "--features", tmp_path / "f.npz"),
                          "f.npz", "not a readable NPZ file")


def test_trim_heap_gives_freed_memory_back_on_glibc():
    """`seqattn tag` trims the heap every few thousand words so that RSS stays level (bench_stream)."""
    import platform

    from seqattn.cli.common import trim_heap

    if platform.libc_ver()[0] != "glibc":
        assert trim_heap() is False
        return
    blocks = [bytearray(100_000) for _ in range(300)]  # 30 MB of heap blocks, below the mmap threshold
    pin = bytearray(100_000)  # above them, so that free() alone cannot shrink the heap
    del blocks
    assert trim_heap() is True  # the free pages in the middle went back to the system
    del pin



@pytest.mark.parametrize("command", [["tag"], ["speech"], ["frames"], ["graph"], ["models"], ["evaluate", "tagger"],
                                     ["evaluate", "speech"], ["evaluate", "graph"], ["train", "tagger"],
                                     ["train", "speech"], ["train", "graph"], ["benchmark", "attention"]])
def test_every_help_states_the_exit_codes(command):
    proc = seqattn(*command, "--help")
    assert proc.returncode == 0
    assert b"Exit codes: 0 success, 1 a failure while running, 2 a usage or input error." in proc.stdout
