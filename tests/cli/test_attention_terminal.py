"""Attention in the terminal (issue 28): maps that read without colour, never cut, every layer and
head, seq2seq's three attentions, rollout, and the error contract of --layer/--head/--attention-kind."""

import json
import re

import pytest

from seqattn.cli.attention_options import parse_request
from seqattn.errors import InputError
from seqattn.render.heatmap import RAMP
from tests.conftest import ROOT, require_shared, seqattn

SEVENTY_TWO = " ".join(f"word{i}" for i in range(71)) + " .\n"


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def _one_line_error(proc, *expected: str) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and err.startswith("seqattn: error:"), err
    for text in expected:
        assert text in err, err
    return err


# --------------------------------------------------------------------------- the options' parser


def test_parse_and_resolve_the_options():
    assert parse_request("-1", None).resolve(3, 4).panels[0].layer == 2
    panels = parse_request("all", "all").resolve(2, 3).panels
    assert [(p.layer, p.head) for p in panels] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert panels[4].title == "layer 1, head 1" and panels[4].short == "L1 h1"
    (mean,) = parse_request("0", "mean").resolve(2, 3).panels
    assert mean.head is None and mean.title == "layer 0, mean of heads"
    rollout = parse_request("all", None, "rollout").resolve(3, 4)
    assert rollout.kind == "rollout" and [p.title for p in rollout.panels][-1] == "rollout through layer 2"
    assert parse_request(-1, 3).head == 3  # ints as the old options gave them


@pytest.mark.parametrize("args,match", [
    (("x", None), "--layer 'x'"), (("0", "x"), "--head 'x'"), (("0", None, "flow"), "--attention-kind"),
    (("0", "1", "rollout"), "averages the heads"), (("0", "all", "rollout"), "averages the heads"),
])
def test_bad_syntax_is_an_input_error(args, match):
    with pytest.raises(InputError, match=match):
        parse_request(*args)


def test_ranges_are_checked_against_the_model():
    with pytest.raises(InputError, match="--layer 9 is outside the model's 2 layers"):
        parse_request("9").resolve(2, 2)
    with pytest.raises(InputError, match="--head 2 is outside the model's 2 heads"):
        parse_request("0", "2").resolve(2, 2)
    with pytest.raises(InputError, match="no rollout here"):
        parse_request("0", None, "rollout", rollout_refusal="no rollout here")


# --------------------------------------------------------------------------- tag


def test_no_color_map_of_the_shipped_tagger_reads_in_characters(monkeypatch):
    """The issue's check: NO_COLOR=1 seqattn tag data/sample.txt --format pretty --attention."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(ROOT)
    out = _ok(seqattn("tag", "data/sample.txt", "--format", "pretty", "--attention"))
    assert "\x1b[" not in out
    rows = [line for line in out.splitlines() if re.match(r"\s*\d+ The ", line)]
    cells = rows[0].split(" The ", 1)[1]
    assert cells.strip() and set(cells) <= set(RAMP)  # ramp characters, not a grid of spaces
    assert "scale: ' .:-=+*#%@'" in out


def test_a_72_word_sentence_at_100_columns_says_that_the_map_continues(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    out = _ok(seqattn("tag", "-", "--input-format", "tokens", "--format", "pretty", "--attention",
                      input=SEVENTY_TWO.encode()))
    assert "the map continues below with keys" in out and "COLUMNS=" in out
    assert re.search(r"part 2 of 2: keys \d+\.\.71", out)
    header_numbers = {int(n) for line in out.splitlines() if re.fullmatch(r"[\d ]+", line) for n in line.split()}
    assert 71 in header_numbers and 41 in header_numbers  # keys past the first screen are drawn


def test_layer_all_head_all_draws_a_grid(tiny_tagger_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out = _ok(seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "pretty", "--attention", "--layer", "all",
                      "--head", "all", input=b"The cat sees the dog.\n"))
    assert "4 maps: L<layer> h<head>" in out
    band = [line for line in out.splitlines() if "L0 h0" in line][0]
    assert all(title in band for title in ("L0 h0", "L0 h1", "L1 h0", "L1 h1"))
    assert out.count("scale:") == 1


def test_tag_rollout_jsonl_rows_sum_to_one_and_a_list_for_several_maps(tiny_tagger_dir):
    out = _ok(seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "jsonl", "--attention", "--attention-kind",
                      "rollout", input=b"The cat sees the dog in Paris.\n"))
    weights = json.loads(out)["attention"]
    assert len(weights) == 8 and all(abs(sum(row) - 1) < 1e-3 for row in weights)
    assert weights[0][4] > 0 and weights[0][5] == 0  # rollout through 2 layers of window 2: 4 words and no further
    out = _ok(seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "jsonl", "--attention", "--layer", "all",
                      input=b"The cat sees the dog.\n"))
    maps = json.loads(out)["attention"]
    assert [(m["layer"], m["head"], m["kind"]) for m in maps] == [(0, None, "raw"), (1, None, "raw")]


@pytest.mark.parametrize("args,expected", [
    (("--layer", "9"), "--layer 9 is outside the model's 2 layers"),
    (("--head", "x"), "--head 'x'"),
    (("--head", "5"), "--head 5 is outside the model's 2 heads"),
    (("--attention-kind", "flow"), "unknown --attention-kind"),
    (("--attention-kind", "rollout", "--head", "1"), "averages the heads"),
])
def test_tag_bad_values_are_one_line_and_exit_2(tiny_tagger_dir, args, expected):
    _one_line_error(seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "pretty", "--attention", *args,
                            input=b"The cat.\n"), expected)


# --------------------------------------------------------------------------- graph


def _numbers_whole(out: str) -> None:
    assert "…" not in out
    assert re.search(r"\b[01]\.\d{3}\b", out)


def test_graph_weights_are_never_shortened_at_80_columns(tiny_planetoid, tiny_graph_model_dir, monkeypatch):
    for columns in ("80", "30"):
        monkeypatch.setenv("COLUMNS", columns)
        out = _ok(seqattn("graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--attention", "5",
                          "--format", "pretty"))
        _numbers_whole(out)
    assert "[part 1 of" in out and "continues below" in out  # 30 columns: the weight columns come in parts
    out = _ok(seqattn("graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--attention", "5", "--format",
                      "tsv", "--layer", "0", "--head", "mean"))
    assert {tuple(line.split("\t")[2:4]) for line in out.splitlines()} == {("0", "mean")}


def test_cora_at_80_columns(monkeypatch):
    """The issue's case: graph --attention 0 --format pretty printed 0.… at 80 columns."""
    cora = require_shared("planetoid", "cora")
    monkeypatch.setenv("COLUMNS", "80")
    out = _ok(seqattn("graph", cora, "--attention", "0", "--format", "pretty"))
    _numbers_whole(out)
    assert "L0h7" in out and "L1h0" in out


def test_graph_refuses_rollout_and_heads_it_lacks(tiny_planetoid, tiny_graph_model_dir):
    base = ("graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--attention", "5", "--format", "pretty")
    _one_line_error(seqattn(*base, "--attention-kind", "rollout"), "no residual connection", "docs/attention.md")
    _one_line_error(seqattn(*base, "--layer", "1", "--head", "1"), "outside layer 1's 1 head(s)")
    _one_line_error(seqattn(*base, "--layer", "2"), "--layer 2 is outside the model's 2 layers")


# --------------------------------------------------------------------------- seq2seq


@pytest.mark.parametrize("kind,title,rows", [
    ("cross", "encoder-decoder attention (output x source)", ["HH", "</s>"]),
    ("encoder", "encoder self-attention (source x source)", ["0 H", "4 O"]),
    ("decoder", "decoder masked self-attention", ["<s>", "OW"]),
])
def test_seq2seq_draws_each_of_its_three_attentions(kind, title, rows):
    out = _ok(seqattn("seq2seq", "-", "--format", "pretty", "--attention", "--attention-type", kind, input=b"hello\n"))
    assert title in out and "layer 2, mean of heads" in out
    assert all(row in out for row in rows)


def test_seq2seq_decoder_map_is_causal_and_grids_and_rollout_work(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out = _ok(seqattn("seq2seq", "-", "--format", "jsonl", "--attention", "--attention-type", "decoder", "--layer",
                      "0", input=b"hello\n"))
    record = json.loads(out)
    weights = record["attention"]
    assert record["attention_type"] == "decoder" and len(weights) == len(record["symbols"]) + 1
    assert all(v == 0 for t, row in enumerate(weights) for v in row[t + 1:])  # no query sees a later position
    out = _ok(seqattn("seq2seq", "-", "--format", "pretty", "--attention", "--layer", "all", "--head", "all",
                      input=b"hello\n"))
    assert "12 maps" in out and "L0 h0" in out and "L2 h3" in out
    out = _ok(seqattn("seq2seq", "-", "--format", "pretty", "--attention", "--attention-type", "encoder",
                      "--attention-kind", "rollout", input=b"hello\n"))
    assert "rollout through layer 2" in out


def test_seq2seq_default_jsonl_alignment_is_unchanged():
    out = _ok(seqattn("seq2seq", "-", "--format", "jsonl", "--attention", input=b"hello\n"))
    record = json.loads(out)
    assert "attention_type" not in record and len(record["attention"][0]) == len(record["source_symbols"])


@pytest.mark.parametrize("args,expected", [
    (("--attention-type", "self"), "unknown --attention-type"),
    (("--attention-kind", "rollout"), "--attention-type encoder"),
    (("--attention-type", "decoder", "--attention-kind", "rollout"), "--attention-type encoder"),
    (("--layer", "3"), "--layer 3 is outside the model's 3 layers"),
])
def test_seq2seq_bad_values_are_one_line_and_exit_2(args, expected):
    _one_line_error(seqattn("seq2seq", "-", "--format", "pretty", "--attention", *args, input=b"hello\n"), expected)


# --------------------------------------------------------------------------- speech


def test_speech_says_the_time_per_row_and_shows_finer_rows_on_request(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    out = _ok(seqattn("speech", "data/speech/pi.wav", "--format", "pretty", "--attention"))
    assert re.search(r"\d\.\d{3} s per row \(\d+ step\(s\)\s+averaged\)", out) and "--attention-rows" in out
    out = _ok(seqattn("speech", "data/speech/pi.wav", "--format", "jsonl", "--attention", "--attention-rows", "500",
                      "--attention-span", "1:2"))
    view = json.loads(out)["attention"]
    assert view["bin_steps"] == 1 and len(view["rows"]) == 50 and view["start_s"] == 1.0  # 20 ms steps
    out = _ok(seqattn("speech", "data/speech/pi.wav", "--format", "pretty", "--attention", "--attention-kind",
                      "rollout", "--attention-span", "1:2"))
    assert "rollout through layer 3" in out and "+-32 steps" in out and "continues below" in out  # 65 offsets


@pytest.mark.parametrize("args,expected", [
    (("--attention-span", "5"), "START:END"), (("--attention-span", "3:1"), "START < END"),
    (("--attention-rows", "0"), "--attention-rows"), (("--layer", "4"), "--layer 4 is outside"),
])
def test_speech_bad_values_are_one_line_and_exit_2(args, expected, monkeypatch):
    monkeypatch.chdir(ROOT)
    _one_line_error(seqattn("speech", "data/speech/pi.wav", "--format", "pretty", "--attention", *args), expected)
