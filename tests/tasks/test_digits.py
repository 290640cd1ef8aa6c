"""The shipped speech model `digits`: intact, meets issue 3's accuracy bar, and gets the sample clips right."""

import csv

import pytest

from seqattn.models.io import SHIPPED_DIR, registry
from seqattn.tasks.speech import ManifestRow, evaluate_speech, load_speech_model, read_manifest
from tests.conftest import ROOT, require_shared


@pytest.fixture(scope="module")
def digits():
    return load_speech_model("digits")


def test_registry_entry_and_size():
    entry = registry()["digits"]
    assert entry["task"] == "speech" and isinstance(entry["window"], int)  # truncated attention
    files = list((SHIPPED_DIR / entry["path"]).iterdir())
    assert {f.name for f in files} == set(entry["files"])
    assert sum(f.stat().st_size for f in files) <= 5e6


def test_fsdd_official_test_split_accuracy_is_at_least_98(digits):
    """FSDD's official split: recordings numbered 0-4 of every speaker and digit are the test set."""
    fsdd = require_shared("fsdd")
    with open(fsdd / "metadata.csv", encoding="utf-8") as f:
        rows = [ManifestRow(fsdd / r["file"], [r["digit"]]) for r in csv.DictReader(f) if int(r["index"]) <= 4]
    assert len(rows) == 300
    result = evaluate_speech(digits, rows)
    assert result["clips"] == 300
    assert result["accuracy"] >= 0.98


def test_the_sample_clips_shown_in_the_docs_are_right(digits):
    result = evaluate_speech(digits, read_manifest(ROOT / "data" / "speech" / "manifest.tsv"))
    assert result["clips"] == 7
    assert result["accuracy"] == 1.0 and result["label_error_rate"] == 0.0
