"""`seqattn tag`, `evaluate tagger`, `train tagger`, `models`: formats, streams and the error contract.

Most tests call the CLI's own entry point in-process (``tests.conftest.seqattn``); the ones about
the process boundary (a closed pipe, start-up imports) run a real subprocess.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, seqattn


def assert_one_line_error(proc, code=2):
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == b""
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqattn: error:"), proc.stderr
    assert b"Traceback" not in proc.stderr


def test_pipe_output_is_word_tab_tag_with_blank_lines_between_sentences(tiny_tagger_dir):
    proc = seqattn("tag", "-", "--model", tiny_tagger_dir, input=b"The cat sees Paris. Alice likes the dog.\n")
    assert proc.returncode == 0, proc.stderr
    blocks = proc.stdout.decode().split("\n\n")
    assert [line.split("\t")[0] for line in blocks[0].splitlines()] == ["The", "cat", "sees", "Paris", "."]
    assert blocks[0].splitlines()[1] == "cat\tNOUN"
    assert all(len(line.split("\t")) == 2 for b in blocks for line in b.splitlines())
    assert b"\x1b[" not in proc.stdout  # no ANSI codes in a pipe


def test_empty_input_lines_are_kept_as_breaks(tiny_tagger_dir):
    proc = seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "jsonl", input=b"The cat.\n\nBob sees.\n")
    objects = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [o["words"] for o in objects] == [["The", "cat", "."], [], ["Bob", "sees", "."]]
    assert set(objects[0]) >= {"words", "tags", "probabilities", "text"}


@pytest.mark.parametrize("fmt", ["tsv", "conllu", "jsonl", "pretty"])
def test_every_format_renders_and_is_deterministic(tiny_tagger_dir, fmt):
    runs = [seqattn("tag", "data/sample.txt", "--model", tiny_tagger_dir, "--format", fmt) for _ in range(2)]
    assert runs[0].returncode == 0 and runs[0].stdout, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    if fmt == "conllu":
        import conllu

        sentences = conllu.parse(runs[0].stdout.decode())
        assert sentences[0][0]["form"] == "The" and sentences[0][0]["upos"]
        assert any("newpar" in s.metadata for s in sentences)


def test_input_formats_tokens_and_conllu(tiny_tagger_dir, tiny_treebank):
    proc = seqattn("tag", "-", "--input-format", "tokens", "--model", tiny_tagger_dir, input=b"Bob   likes\tParis\n")
    assert [line.split("\t")[0] for line in proc.stdout.decode().split()[::2]] == ["Bob", "likes", "Paris"]
    proc = seqattn("tag", tiny_treebank[1], "--input-format", "conllu", "--format", "conllu", "--model", tiny_tagger_dir)
    assert proc.returncode == 0 and b"# sent_id = tiny-0" in proc.stdout


def test_attention_heatmap_and_jsonl_weights(tiny_tagger_dir):
    proc = seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "pretty", "--attention", "--layer", "0",
                   "--head", "1", input=b"The cat sees the dog.\n")
    out = proc.stdout.decode()
    assert proc.returncode == 0 and "layer 0, head 1" in out and "0=The" in out
    proc = seqattn("tag", "-", "--model", tiny_tagger_dir, "--format", "jsonl", "--attention",
                   input=b"The cat sees the dog.\n")
    weights = json.loads(proc.stdout)["attention"]
    assert len(weights) == 6 and all(abs(sum(row) - 1) < 1e-3 for row in weights)
    assert weights[0][5] == 0  # outside the window |i - j| <= 2


def test_empty_input_is_not_an_error(tiny_tagger_dir):
    proc = seqattn("tag", "-", "--model", tiny_tagger_dir, input=b"")
    assert proc.returncode == 0 and proc.stdout == b""


def test_head_closing_the_pipe_ends_quietly(tiny_tagger_dir, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("The cat sees the dog. Alice likes Paris.\n" * 3000)
    proc = subprocess.run(f"{sys.executable} -m seqattn tag {big} --model {tiny_tagger_dir} | head -1",
                          shell=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          timeout=300)
    assert proc.stdout.decode() == "The\tDET\n" or proc.stdout.decode().startswith("The\t")
    assert proc.stderr == b""


@pytest.mark.parametrize("args,match", [
    (["tag", "missing.txt"], "no such file"),
    (["tag", "seqattn"], "is a directory"),
    (["tag", "data/sample.txt", "--model", "nowhere"], "no such model"),
    (["tag", "data/sample.txt", "--format", "xml"], "unknown --format"),
    (["tag", "data/sample.txt", "--input-format", "xml"], "unknown --input-format"),
    (["tag", "data/sample.txt", "--bogus"], "No such option"),
    (["tag", "data/sample.txt", "--attention", "--format", "tsv"], "--attention"),
])
def test_errors_are_one_line_and_exit_2(args, match, tiny_tagger_dir):
    if "--model" not in args and args[1] != "missing.txt" and args[1] != "seqattn":
        args = args + ["--model", str(tiny_tagger_dir)]
    proc = seqattn(*args)
    assert_one_line_error(proc)
    assert match in proc.stderr.decode()


def test_non_utf8_input_names_line_and_byte(tiny_tagger_dir, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("The cat.\nCaf\xe9 au lait.\n".encode("latin-1"))
    proc = seqattn("tag", bad, "--model", tiny_tagger_dir)
    assert_one_line_error(proc)
    assert f"{bad}:2: not UTF-8" in proc.stderr.decode() and "byte offset 12" in proc.stderr.decode()


def test_bad_layer_and_head(tiny_tagger_dir):
    for option in (["--layer", "5"], ["--head", "7"]):
        assert_one_line_error(seqattn("tag", "data/sample.txt", "--model", tiny_tagger_dir, *option))


def test_evaluate_tagger_json(tiny_tagger_dir, tiny_treebank):
    proc = seqattn("evaluate", "tagger", "--data", tiny_treebank[1], "--model", tiny_tagger_dir, "--format", "json")
    result = json.loads(proc.stdout)
    assert 0.9 <= result["upos_accuracy"] <= 1 and result["sentences"] == 30
    assert result["tokens"] > 0 and result["tokens_per_second"] > 0


def test_train_tagger_cli_writes_a_usable_model(tiny_treebank, tmp_path):
    out = tmp_path / "model"
    proc = seqattn("train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--out", out,
                   "--epochs", "1", "--layers", "1", "--attention-window", "2", "--score", "additive",
                   "--positional", "learned", "--attention-activation", "sparsemax")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    encoder = config["config"]["encoder"]
    assert (encoder["score"], encoder["positional"], encoder["activation"], encoder["window"]) == \
        ("additive", "learned", "sparsemax", 2)
    assert config["training"]["history"][0]["epoch"] == 1 and len(config["training"]["data"]["train"]) == 64
    assert b"epoch 1/1" in proc.stderr and b"saved" in proc.stdout
    assert seqattn("tag", "-", "--model", out, input=b"Bob sees.\n").returncode == 0
    again = seqattn("train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--out", out,
                    "--epochs", "1")
    assert_one_line_error(again)


def test_help_lists_every_command_and_models_needs_no_torch():
    proc = seqattn("--help")
    assert proc.returncode == 0
    for command in ("tag", "evaluate", "train", "models"):
        assert command in proc.stdout.decode()
    check = ("import sys, runpy; sys.argv = ['seqattn', 'models', '--format', 'json']\n"
             "from seqattn.cli.main import run\nrun(sys.argv[1:])\nassert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert isinstance(json.loads(proc.stdout), dict)


def test_streamed_input_is_answered_before_stdin_closes(tiny_tagger_dir):
    """`tail -f log | seqattn tag -`: each line's words come out while the writer still holds the pipe."""
    import select

    proc = subprocess.Popen([sys.executable, "-m", "seqattn", "tag", "-", "--model", str(tiny_tagger_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        proc.stdin.write(b"The cat sees Paris.\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no output while stdin stayed open"
        assert proc.stdout.readline().startswith(b"The\t")
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_no_color_and_quiet_keep_stdout_clean(tiny_tagger_dir, tiny_treebank, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "seqattn", "tag", "data/sample.txt", "--format", "pretty",
                           "--model", str(tiny_tagger_dir)], capture_output=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "TERM": "xterm"})
    assert proc.returncode == 0 and b"\x1b[" not in proc.stdout and b"/DET" in proc.stdout
    proc = seqattn("train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--out",
                   tmp_path / "m", "--epochs", "1", "--layers", "1", "--quiet")
    assert proc.returncode == 0 and proc.stderr == b""
