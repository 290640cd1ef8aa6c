"""`seqattn classify`, `evaluate classifier`, `train classifier` on a tiny classifier trained here in seconds."""

import json
import random

import pytest

from tests.conftest import seqattn

_POSITIVE = "good great wonderful lovely excellent superb fun".split()
_NEGATIVE = "bad awful boring terrible dull poor ugly".split()
_FILLER = "the film was really quite a and movie this it plot acting".split()


def make_texts(n: int, seed: int) -> list[tuple[str, str]]:
    """Sentences of four filler words and one sentiment word, labelled pos or neg."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = rng.sample(_FILLER, 4) + [rng.choice(_POSITIVE if positive else _NEGATIVE)]
        rng.shuffle(words)
        rows.append((" ".join(words).capitalize() + ".", "pos" if positive else "neg"))
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier-data")
    (root / "train.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in make_texts(300, 0)))
    (root / "dev.csv").write_text("label,text\n" + "".join(f'{l},"{t}"\n' for t, l in make_texts(60, 1)))
    (root / "test.jsonl").write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in make_texts(80, 2)))
    return root


@pytest.fixture(scope="module")
def model_dir(data):
    out = data / "model"
    proc = seqattn("train", "classifier", "--train", str(data / "train.tsv"), "--dev", str(data / "dev.csv"),
                   "--out", str(out), "--epochs", "10", "--d-model", "32", "--heads", "2", "--layers", "1",
                   "--d-ff", "64", "--batch-size", "128", "--warmup-steps", "0", "--lr", "3e-3", "--quiet",
                   "--label-names", "neg=negative,pos=positive")
    assert proc.returncode == 0, proc.stderr
    assert b"saved" in proc.stdout
    return str(out)


def test_trains_in_seconds_and_beats_chance_on_held_out_texts(model_dir, data):
    proc = seqattn("evaluate", "classifier", "--data", str(data / "test.jsonl"), "--model", model_dir,
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["accuracy"] >= 0.8  # chance is about 0.5
    assert report["labels"] == ["negative", "positive"]
    assert set(report["per_class"]["positive"]) == {"precision", "recall", "f1", "support"}
    assert sum(map(sum, report["confusion"])) == report["examples"] == 80
    assert 0 < report["macro_f1"] <= 1


def test_evaluate_pretty_prints_tables(model_dir, data):
    proc = seqattn("evaluate", "classifier", "--data", str(data / "test.jsonl"), "--model", model_dir,
                   "--format", "pretty")
    out = proc.stdout.decode()
    assert proc.returncode == 0 and "accuracy" in out and "confusion matrix" in out and "precision" in out


def test_tsv_is_label_probability_text_and_empty_lines_are_kept(model_dir):
    proc = seqattn("classify", "-", "--model", model_dir, input=b"A wonderful\tfilm.\n\nAn awful film.\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().split("\n")
    assert lines[1] == "" and lines[3] == ""
    first, third = lines[0].split("\t"), lines[2].split("\t")
    assert first[0] == "positive" and first[2] == "A wonderful film." and 0.5 < float(first[1]) <= 1
    assert third[0] == "negative"


def test_jsonl_carries_every_class_probability_and_the_attention(model_dir):
    proc = seqattn("classify", "-", "--model", model_dir, "--format", "jsonl", "--attention",
                   input=b"This film was really great fun.\n\n")
    assert proc.returncode == 0, proc.stderr
    first, empty = (json.loads(line) for line in proc.stdout.decode().splitlines())
    assert empty == {"text": "", "label": None}
    assert set(first["probabilities"]) == {"negative", "positive"}
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-3
    n = len(first["words"])
    assert len(first["pooling"]) == 4  # ClassifierConfig's pooling heads
    for row in first["pooling"] + first["attention"]:
        assert abs(sum(row) - 1) < 1e-3  # the pooling attention of each head sums to 1 over the words
    assert all(len(row) == n for row in first["pooling"])


def test_pretty_prints_a_table_and_attention_maps(model_dir):
    proc = seqattn("classify", "-", "--model", model_dir, "--format", "pretty", "--attention", "--head", "1",
                   input=b"A lovely film.\n")
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    assert "positive" in out and "attention pooling" in out and "head 1" in out


def test_text_the_model_cannot_read_is_called_a_guess(model_dir):
    proc = seqattn("classify", "-", "--model", model_dir, input="Это был ужасный фильм.\n".encode())
    assert proc.returncode == 0
    assert b"unknown to the model" in proc.stderr and b"guess" in proc.stderr


@pytest.mark.parametrize("args, data_bytes, message", [
    (["classify", "{file}"], b"\x00\x01binary\xff", "not UTF-8"),
    (["classify", "{file}"], b"caf\xe9 good\n", "not UTF-8"),
    (["evaluate", "classifier", "--data", "{file}"], b"only a text, no label\n", "the label column is missing"),
    (["evaluate", "classifier", "--data", "{file}"], b"text\tlabel\ngreat\tneutral\n", "is not one of the model's classes"),
    (["evaluate", "classifier", "--data", "{file}"], b"text\tlabel\n\t1\n", "empty text"),
    (["evaluate", "classifier", "--data", "{file}"], b"text\ttext\tlabel\na\tb\tpos\n", "twice"),
])
def test_bad_input_is_one_line_and_exit_2(model_dir, tmp_path, args, data_bytes, message):
    path = tmp_path / "input.tsv"
    path.write_bytes(data_bytes)
    proc = seqattn(*[a.format(file=path) for a in args], "--model", model_dir)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and b"Traceback" not in proc.stderr


def test_training_refuses_dev_labels_it_never_saw(data, tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text("text\tlabel\ngood film\tneutral\n")
    proc = seqattn("train", "classifier", "--train", str(data / "train.tsv"), "--dev", str(dev),
                   "--out", str(tmp_path / "m"), "--epochs", "1", "--quiet")
    assert proc.returncode == 2 and b"neutral" in proc.stderr and b"Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_layer_and_head_take_all_and_mean_and_rollout(model_dir):
    proc = seqattn("classify", "-", "--model", model_dir, "--format", "jsonl", "--attention", "--head", "all",
                   input=b"A lovely film.\n")
    assert proc.returncode == 0, proc.stderr
    maps = json.loads(proc.stdout)["attention"]
    assert [(m["layer"], m["head"]) for m in maps] == [(0, 0), (0, 1)]
    proc = seqattn("classify", "-", "--model", model_dir, "--format", "jsonl", "--attention",
                   "--attention-kind", "rollout", input=b"A lovely film.\n")
    assert proc.returncode == 0, proc.stderr
    for row in json.loads(proc.stdout)["attention"]:
        assert abs(sum(row) - 1) < 1e-3  # rollout rows are distributions too
    proc = seqattn("classify", "-", "--model", model_dir, "--format", "jsonl", "--attention", "--layer", "5",
                   input=b"x\n")
    assert proc.returncode == 2 and b"--layer" in proc.stderr and b"Traceback" not in proc.stderr
