"""`seqattn seq2seq`, `evaluate seq2seq`, `train seq2seq`: formats, aligned lines, alignment view, errors."""

import json
import os
import subprocess
import sys

import pytest

from tests.cli.test_tag_cli import assert_one_line_error
from tests.conftest import ROOT, seqattn
from tests.seq2seq_helpers import reverse_pairs, trained_reverser, write_pairs


@pytest.fixture(scope="module")
def reverser_dir(tmp_path_factory):
    return trained_reverser(tmp_path_factory.mktemp("seq2seq"))


def test_pipe_output_is_input_tab_output_and_empty_lines_stay_in_place(reverser_dir):
    proc = seqattn("seq2seq", "-", "--model", reverser_dir, input=b"abc\n\n  \ndcba\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().split("\n")
    assert len(lines) == 5 and lines[-1] == ""  # four input lines, four output lines
    assert lines[0].startswith("abc\t") and lines[1] == "" and lines[2] == "" and lines[3].startswith("dcba\t")
    assert b"\x1b[" not in proc.stdout


def test_unknown_symbols_are_named_on_stderr_with_their_line(tmp_path):
    """en-g2p never saw digits: the output is a guess, and the user is told which line and why."""
    words = tmp_path / "words.txt"
    words.write_text("CAT\n\nR2D2\nTWO WORDS\nnaïve straße\n", encoding="utf-8")
    proc = seqattn("seq2seq", words, "--format", "tsv")
    assert proc.returncode == 0 and len(proc.stdout.decode().splitlines()) == 5
    assert proc.stderr.decode().splitlines() == [
        f"{words}:3: 1 symbol the model does not know, read as <unk>: '2'",  # once, though R2D2 has two
        f"{words}:4: 1 symbol the model does not know, read as <unk>: ' '",
        f"{words}:5: 2 symbols the model does not know, read as <unk>: 'ï' ' '"]  # ß is read as SS
    quiet = seqattn("seq2seq", words, "--format", "tsv", "--quiet")
    assert quiet.stdout == proc.stdout and quiet.stderr == b""
    assert seqattn("seq2seq", "-", "--format", "tsv", input=b"R2\n").stderr.decode().startswith("<stdin>:1: ")


def test_jsonl_with_attention_carries_the_alignment(reverser_dir):
    proc = seqattn("seq2seq", "-", "--model", reverser_dir, "--format", "jsonl", "--attention", "--beam", "2",
                   input=b"abcd\n\n")
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert records[1] == {"input": "", "output": None}
    first = records[0]
    assert first["source_symbols"] == list("abcd")
    assert len(first["attention"]) == len(first["symbols"]) + 1 and len(first["attention"][0]) == 4
    assert first["output"] == " ".join(first["symbols"])


def test_pretty_attention_draws_output_symbols_against_source_symbols(reverser_dir):
    proc = seqattn("seq2seq", "-", "--model", reverser_dir, "--format", "pretty", "--attention", input=b"abc\n")
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    assert "abc  ->" in out and "encoder-decoder attention" in out and "source: 0=a  1=b  2=c" in out


def test_evaluate_reports_wer_and_per_as_json(reverser_dir, tmp_path):
    data = write_pairs(tmp_path / "test.tsv", reverse_pairs(20, 3) + [("ab", "a b")])  # "ab": 2 references
    proc = seqattn("evaluate", "seq2seq", "--data", data, "--model", reverser_dir, "--beam", "2")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"wer", "per", "sequences", "references"} <= set(result)
    assert result["references"] == 21 and result["sequences"] <= 21
    assert 0 <= result["wer"] <= 1 and 0 <= result["per"]


def test_train_writes_a_model_that_decodes(tmp_path):
    train = write_pairs(tmp_path / "train.tsv", reverse_pairs(80, 0))
    dev = write_pairs(tmp_path / "dev.tsv", reverse_pairs(10, 1))
    proc = seqattn("train", "seq2seq", "--train", train, "--dev", dev, "--out", tmp_path / "m", "--source", "chars",
                   "--target", "words", "--d-model", "16", "--heads", "2", "--layers", "1", "--decoder-layers", "1",
                   "--epochs", "2", "--warmup", "2", "--quiet")
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert proc.stdout.startswith(b"saved ")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["task"] == "seq2seq" and config["config"]["source"] == "chars"
    assert seqattn("seq2seq", "-", "--model", tmp_path / "m", input=b"ab\n").returncode == 0


@pytest.mark.parametrize("args,match", [
    (["seq2seq", "missing.txt"], "no such file"),
    (["seq2seq", "-", "--model", "nowhere"], "no such model"),
    (["seq2seq", "-", "--beam", "0"], "--beam"),
    (["seq2seq", "-", "--attention", "--format", "tsv"], "--attention"),
    (["seq2seq", "-", "--format", "xml"], "unknown --format"),
    (["evaluate", "seq2seq", "--data", "BAD"], ":2: no TAB"),
    (["evaluate", "seq2seq", "--data", "missing.tsv"], "no such file"),
    (["evaluate", "seq2seq", "--data", "x.npz"], "--text"),
    (["train", "seq2seq", "--train", "BAD", "--dev", "BAD", "--out", "OUT", "--d-model", "30", "--heads", "4"],
     "not divisible"),
    (["train", "seq2seq", "--train", "BAD", "--dev", "BAD", "--out", "OUT", "--target", "frames"], "--target"),
    (["train", "seq2seq", "--train", "BAD", "--dev", "BAD", "--out", "OUT"], ":2: no TAB"),
    (["train", "seq2seq", "--train", "GOOD", "--dev", "GOOD", "--out", "OUT", "--init", "nowhere"], "no such model"),
    (["train", "seq2seq", "--train", "GOOD", "--dev", "GOOD", "--out", "OUT", "--init", "en-upos"],
     "not a seq2seq model"),
    (["train", "seq2seq", "--train", "GOOD", "--dev", "GOOD", "--out", "OUT", "--init", "en-g2p", "--resume", "GOOD"],
     "only one"),
])
def test_errors_are_one_line_and_exit_2(args, match, reverser_dir, tmp_path):
    (tmp_path / "bad.tsv").write_text("a\tb\nno tab\n", encoding="utf-8")
    (tmp_path / "good.tsv").write_text("ab\tb a\n", encoding="utf-8")
    args = [{"BAD": str(tmp_path / "bad.tsv"), "GOOD": str(tmp_path / "good.tsv"),
             "OUT": str(tmp_path / "out")}.get(a, a) for a in args]
    if args[0] == "seq2seq" and "--model" not in args:
        args += ["--model", str(reverser_dir)]
    proc = seqattn(*args, input=b"abc\n")
    assert_one_line_error(proc)
    assert match in proc.stderr.decode()


def test_a_tagger_is_not_a_seq2seq_model(tiny_tagger_dir):
    proc = seqattn("seq2seq", "-", "--model", tiny_tagger_dir, input=b"abc\n")
    assert_one_line_error(proc)
    assert "not a seq2seq model" in proc.stderr.decode()


def test_head_closing_the_pipe_ends_quietly(reverser_dir, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("abc\ncba\n" * 600)
    proc = subprocess.run(f"{sys.executable} -m seqattn seq2seq {big} --model {reverser_dir} --beam 1 | head -1",
                          shell=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          timeout=300)
    assert proc.stdout.decode().startswith("abc\t") and proc.stdout.count(b"\n") == 1
    assert proc.stderr == b""
