"""Fixtures of the export tests: a sentence classifier trained for a second on made-up texts."""

import random

import pytest

from tests.conftest import seqattn


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory):
    """A 1-layer classifier (positive/negative words) trained for one epoch: enough to have attention."""
    folder = tmp_path_factory.mktemp("classifier")
    rng = random.Random(0)
    words = {"positive": "good great wonderful moving fine lovely".split(),
             "negative": "bad boring dull awful long weak".split()}
    rows = []
    for i in range(60):
        label = ("negative", "positive")[i % 2]
        rows.append(" ".join(rng.sample(words[label], 3) + ["film"]) + f"\t{label}\n")
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text("".join(rows))
    proc = seqattn("train", "classifier", "--train", folder / "train.tsv", "--dev", folder / "dev.tsv",
                   "--out", folder / "model", "--epochs", "1", "--layers", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr.decode()
    return folder / "model"
