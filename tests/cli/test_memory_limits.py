"""Memory bounded by design (issue 26, item 3): long lines, endless input, stdin copies, signals.

The reproducers at sizes that run in seconds.  Memory is checked by mechanism (the longest
sentence and the largest batch handed to the model, the largest text handed to the splitter,
the bytes copied from stdin), never by RSS or seconds: those are in benchmarks/bench_memory.py.
"""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from seqattn.readers import text as text_reader
from tests.conftest import ROOT, seqattn

WORDS = "the cat sees a big dog in Paris and likes every small house".split()


def one_line_of_words(n_bytes: int) -> tuple[bytes, list[str]]:
    """An unpunctuated line of about ``n_bytes`` bytes (the issue's reproducer), and its words."""
    words, size, i = [], 0, 0
    while size < n_bytes:
        word = WORDS[(i * 7 + i // 13) % len(WORDS)]
        words.append(word)
        size += len(word) + 1
        i += 1
    return " ".join(words).encode() + b"\n", words


@pytest.fixture
def model_inputs(monkeypatch):
    """Record the (B, N) shape of every batch the tagger's model is given."""
    from seqattn.models.tagger import Tagger

    shapes = []
    forward = Tagger.forward

    def recording(self, batch, return_weights=False):
        shapes.append(tuple(batch["words"].shape))
        return forward(self, batch, return_weights)

    monkeypatch.setattr(Tagger, "forward", recording)
    return shapes


def assert_one_line_error(proc, *needles, code=2):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqattn: error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# --------------------------------------------------------------------------- seqattn tag


def test_tag_a_2mb_line_writes_every_word_in_pieces_the_model_takes(tiny_tagger_dir, tmp_path, model_inputs):
    data, words = one_line_of_words(2 << 20)
    path = tmp_path / "line.txt"
    path.write_bytes(data)
    proc = seqattn("tag", path, "--model", tiny_tagger_dir, "--format", "tsv")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.decode().splitlines() if line]
    assert [r[0] for r in rows] == words and all(len(r) == 2 and r[1] for r in rows)  # one row per word
    assert proc.stderr.decode().splitlines() == [
        f"{path}:1: sentence 1 has {len(words):,} words; cut into pieces of at most 512 words"]
    assert max(n for _, n in model_inputs) <= 512
    assert max(b * n for b, n in model_inputs) <= 4096  # predict's max_tokens
    assert proc.stdout.count(b"\n\n") == -(-len(words) // 512)  # each piece is written as a sentence


def test_a_3mb_line_is_cut_while_it_is_read(tiny_tagger_dir, monkeypatch):
    """Beyond two pieces, the sentence is cut before the rest of the line is read."""
    seen = []
    split = text_reader.split_sentences
    monkeypatch.setattr(text_reader, "split_sentences", lambda line: seen.append(len(line)) or split(line))
    data, words = one_line_of_words(3 << 20)
    proc = seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "tsv", "--max-line-bytes", "65536",
                   input=data)
    assert [line.split("\t")[0] for line in proc.stdout.decode().splitlines() if line] == words
    assert proc.stderr.decode().splitlines() == [
        "<stdin>:1: sentence 1 runs on for more than 65,536 characters without a sentence boundary; "
        "cut into pieces of at most 512 words"]
    assert max(seen) <= 2 * 65536 + 1


def test_a_long_sentence_warns_once_and_quiet_drops_it(tiny_tagger_dir):
    data = b"Short one. Word " + " ".join(["word"] * 1_299).encode() + b". Another.\n"
    proc = seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "jsonl", input=data)
    objects = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [len(o["words"]) for o in objects] == [3, 512, 512, 277, 2]
    assert proc.stderr.decode() == ("<stdin>:1: sentence 2 has 1,301 words; cut into pieces of at most 512 "
                                    "words\n")
    quiet = seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "jsonl", "--quiet", input=data)
    assert quiet.stdout == proc.stdout and quiet.stderr == b""


def test_attention_of_a_long_line_stays_within_the_cut(tiny_tagger_dir):
    data = " ".join(["word"] * 1_500).encode() + b"\n"
    proc = seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "jsonl", "--attention", "-q", input=data)
    assert proc.returncode == 0, proc.stderr
    objects = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [len(o["attention"]) for o in objects] == [512, 512, 476]
    assert all(len(row) == len(o["words"]) for o in objects for row in o["attention"])


def test_max_line_bytes_is_checked(tiny_tagger_dir):
    assert_one_line_error(seqattn("tag", "-", "--model", tiny_tagger_dir, "--max-line-bytes", "8", input=b"a\n"),
                          "--max-line-bytes must be >= 16")


class Zeros(io.RawIOBase):
    """``n`` NUL bytes and no newline: /dev/zero, ended, so that an in-process test returns."""

    def __init__(self, n: int):
        self.left = n

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_tag_on_nul_bytes_holds_one_piece_at_a_time(tiny_tagger_dir, monkeypatch):
    """/dev/zero is text of NULs (spaces to the tokenizer): read in pieces, no word, no output."""
    seen = []
    split = text_reader.split_sentences
    monkeypatch.setattr(text_reader, "split_sentences", lambda line: seen.append(len(line)) or split(line))
    from seqattn.cli.main import run

    out = io.BytesIO()
    saved = sys.stdin, sys.stdout
    sys.stdin = io.TextIOWrapper(io.BufferedReader(Zeros(20 << 20)))
    sys.stdout = io.TextIOWrapper(out, write_through=True)
    try:
        code = run(["tag", "-", "--model", str(tiny_tagger_dir), "--max-line-bytes", "65536", "-f", "tsv"])
    finally:
        sys.stdout.detach()
        sys.stdin, sys.stdout = saved
    assert code == 0 and out.getvalue() == b"\n"  # a line of nothing but spaces: one empty line
    assert len(seen) == 320 and max(seen) <= 65536


# --------------------------------------------------------------------------- evaluate tagger


def test_evaluate_tagger_on_dev_zero_stops_at_the_line_limit(tiny_tagger_dir):
    assert_one_line_error(seqattn("evaluate", "tagger", "--data", "/dev/zero", "--model", tiny_tagger_dir),
                          "/dev/zero:1: a line longer than 1,048,576 bytes")


def conllu_sentence(n_words: int) -> str:
    return "".join(f"{i}\tcat\t_\tNOUN\t_\t_\t0\t_\t_\t_\n" for i in range(1, n_words + 1)) + "\n"


def test_evaluate_tagger_refuses_an_absurd_sentence_and_cuts_a_long_one(tiny_tagger_dir, tmp_path, model_inputs):
    absurd = tmp_path / "absurd.conllu"
    absurd.write_text(conllu_sentence(3) + conllu_sentence(10_001))
    assert_one_line_error(seqattn("evaluate", "tagger", "--data", absurd, "--model", tiny_tagger_dir),
                          "absurd.conllu:5: a CoNLL-U sentence of more than 10,000 lines")
    assert model_inputs == []  # refused before the model ran
    long = tmp_path / "long.conllu"
    long.write_text(conllu_sentence(3) + conllu_sentence(1_200))
    proc = seqattn("evaluate", "tagger", "--data", long, "--model", tiny_tagger_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tokens"] == 1_203
    assert max(n for _, n in model_inputs) <= 512


def test_iter_tagged_hands_bounded_batches_to_predict():
    from seqattn.readers.text import TextItem
    from seqattn.tasks import tagging

    class FakeTagger:
        window, max_words = None, 512  # full attention: N x N weights per sentence

        def __init__(self):
            self.calls = []

        def predict(self, sentences, with_attention=False):
            self.calls.append((sum(map(len, sentences)), sum(len(s) ** 2 for s in sentences)))
            return [None] * len(sentences)

    items = [TextItem(["w"] * 500) for _ in range(600)]
    fake = FakeTagger()
    assert len(list(tagging.iter_tagged(fake, iter(items)))) == 600
    assert max(words for words, _ in fake.calls) <= tagging.MAX_PENDING_WORDS + 500
    fake = FakeTagger()
    list(tagging.iter_tagged(fake, iter(items), with_attention=True))
    assert max(weights for _, weights in fake.calls) <= tagging.MAX_PENDING_WEIGHTS + 500 ** 2
    assert len(fake.calls) >= 600 * 500 ** 2 // (tagging.MAX_PENDING_WEIGHTS + 500 ** 2)


# --------------------------------------------------------------------------- seq2seq


def test_seq2seq_refuses_lines_beyond_its_limits_and_answers_the_others():
    data = (b"ATTENTION\n" + b"A" * 3_000 + b"\nALIGN\n" + bytes(10_000) + b"\n\nSEQUENCE\n")
    proc = seqattn("seq2seq", "-", "--max-line-bytes", "4096", "--format", "jsonl", "--beam", "1", "-q", input=data)
    assert proc.returncode == 2
    outputs = [json.loads(line)["output"] for line in proc.stdout.decode().splitlines()]
    assert outputs[0] and outputs[2] and outputs[5] and outputs[1] is None and outputs[3] is None
    assert len(outputs) == 6 and outputs[4] is None  # the empty line stays in place
    assert proc.stderr.decode().splitlines() == [
        "<stdin>:2: 3,000 source symbols, more than the 512 the model takes; no output for this line",
        "<stdin>:4: a line longer than 4,096 bytes (--max-line-bytes); no output for this line",
        "seqattn: error: 2 input lines were refused (see above)"]


def test_evaluate_seq2seq_refuses_a_source_beyond_the_model(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("CAT\tK AE T\n" + "B" * 600 + "\tB IY\n")
    assert_one_line_error(seqattn("evaluate", "seq2seq", "--data", pairs, "--beam", "1"),
                          "pairs.tsv:2: 600 source symbols, more than the 512 the model takes")


# --------------------------------------------------------------------------- stdin copies


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """Temporary files of the process under test go here, so that leftovers can be seen."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


@pytest.mark.parametrize("command", [("speech", "-"), ("frames", "-"), ("graph", "-")])
def test_a_stdin_copy_beyond_its_limit_is_one_line_and_exit_2(command, temp_dir, monkeypatch):
    monkeypatch.setenv("SEQATTN_MAX_STDIN_BYTES", "1M")
    proc = seqattn(*command, input=bytes(3 << 20))
    assert_one_line_error(proc, "<stdin>: more than 1,048,576 bytes", "SEQATTN_MAX_STDIN_BYTES")
    assert list(temp_dir.iterdir()) == []


def test_max_stdin_bytes_reads_sizes(monkeypatch):
    from seqattn.cli.common import max_stdin_bytes
    from seqattn.errors import InputError

    monkeypatch.delenv("SEQATTN_MAX_STDIN_BYTES", raising=False)
    assert max_stdin_bytes(7) == 7
    for text, value in [("500M", 500 << 20), ("4GiB", 4 << 30), ("2k", 2048), ("123", 123)]:
        monkeypatch.setenv("SEQATTN_MAX_STDIN_BYTES", text)
        assert max_stdin_bytes(7) == value
    for text in ["0", "-1", "1.5G", "lots", "5X"]:
        monkeypatch.setenv("SEQATTN_MAX_STDIN_BYTES", text)
        with pytest.raises(InputError, match="SEQATTN_MAX_STDIN_BYTES"):
            max_stdin_bytes(7)


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_stopped_stdin_copy_leaves_nothing_behind(signum, code, temp_dir):
    """`cat /dev/zero | timeout 4 seqattn speech -` left a 2.6 GB copy in /tmp."""
    env = {**os.environ, "TMPDIR": str(temp_dir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "seqattn", "speech", "-"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(bytes(1 << 16))  # part of a clip; the writer stays open, so the copy goes on
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not any(temp_dir.glob("seqattn-stdin-*/stdin")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(temp_dir.glob("seqattn-stdin-*/stdin")), "the copy never started"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert list(temp_dir.iterdir()) == []
    assert b"Traceback" not in err and out == b""
