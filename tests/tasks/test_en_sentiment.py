"""The shipped English sentiment classifier: it loads, it is intact, and its SST-2 test accuracy is what its card says."""

import json

import pytest

from seqattn.models.io import SHIPPED_DIR, registry
from tests.conftest import require_shared, seqattn


def test_registry_entry_and_size():
    entry = registry()["en-sentiment"]
    assert entry["task"] == "classifier" and entry["card"] == "docs/models/en-sentiment.md"
    files = list((SHIPPED_DIR / entry["path"]).iterdir())
    assert {f.name for f in files} == set(entry["files"]) == {"config.json", "model.safetensors", "subwords.model"}
    assert sum(f.stat().st_size for f in files) <= 20e6


def test_the_issue_example_is_positive_and_its_opposite_negative():
    proc = seqattn("classify", "-", input=b"I loved this film, it was wonderful.\nI hated this film, it was awful.\n")
    assert proc.returncode == 0, proc.stderr
    labels = [line.split("\t")[0] for line in proc.stdout.decode().splitlines()]
    assert labels == ["positive", "negative"]


def test_sst2_test_accuracy_is_the_cards():
    """80.12% on the 1,821 SST-2 test sentences (docs/models/en-sentiment.md); the issue's goal of 85% is not met."""
    data = require_shared("sst", "sst2", "test.tsv")
    proc = seqattn("evaluate", "classifier", "--data", str(data), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["examples"] == 1821 and report["labels"] == ["negative", "positive"]
    assert report["accuracy"] >= 0.80
