"""Training, loading, predicting and evaluating taggers (a tiny model, trained in seconds)."""

import json

import pytest
import torch

from seqattn.errors import InputError, ModelError
from seqattn.readers.conllu import read_conllu
from seqattn.tasks.tagging import evaluate_tagger, iter_tagged, load_tagger, tagger_settings, train_tagger
from seqattn.training.engine import Callbacks
from seqattn.readers.text import TextItem
from tests.conftest import Killed, kill_at, tiny_tagger_config


def test_tiny_tagger_learns_the_tiny_treebank(tiny_tagger_dir, tiny_treebank):
    tagger = load_tagger(tiny_tagger_dir)
    result = evaluate_tagger(tagger, read_conllu(tiny_treebank[1]))
    assert result["upos_accuracy"] >= 0.9
    assert result["tokens"] > 100 and result["sentences"] == 30
    config = json.loads((tiny_tagger_dir / "config.json").read_text())
    assert config["task"] == "tagger" and config["config"]["encoder"]["window"] == 2
    assert 0.9 <= config["metrics"]["dev_upos_accuracy"] <= 1.0


def test_predict_keeps_order_and_batches_do_not_change_results(tiny_tagger_dir):
    tagger = load_tagger(tiny_tagger_dir)
    sentences = [["The", "cat", "sees", "Paris", "."], ["Alice", "likes", "the", "big", "dog", "in", "Paris", "."],
                 ["A", "dog", "."]] * 5
    together = tagger.predict(sentences)
    alone = [tagger.predict([s])[0] for s in sentences]
    assert [r.words for r in together] == sentences
    assert [r.tags for r in together] == [r.tags for r in alone]
    for a, b in zip(together, alone):
        assert max(abs(x - y) for x, y in zip(a.probabilities, b.probabilities)) < 1e-5


def test_attention_weights_come_back_per_layer(tiny_tagger_dir):
    tagger = load_tagger(tiny_tagger_dir)
    (result,) = tagger.predict([["The", "cat", "sees", "the", "dog", "."]], with_attention=True)
    assert len(result.attention) == 2
    assert result.attention[0].shape == (2, 6, 5)  # (H, N, 2w + 1) band layout, w = 2
    assert torch.allclose(result.attention[0].sum(-1), torch.ones(2, 6), atol=1e-5)


def test_iter_tagged_passes_breaks_through_in_order(tiny_tagger_dir):
    tagger = load_tagger(tiny_tagger_dir)
    items = [TextItem(["The", "cat", "."]), TextItem(None), TextItem(["Bob", "sees", "."])]
    out = list(iter_tagged(tagger, iter(items), batch_sentences=2))
    assert [i for i, _ in out] == items
    assert out[1][1] is None and out[2][1].words == ["Bob", "sees", "."]


def test_same_seed_same_weights(tiny_treebank, tmp_path):
    settings = tagger_settings(epochs=1, batch_size=256, warmup_steps=5)
    for name in ("a", "b"):
        train_tagger(*tiny_treebank, tmp_path / name, settings, tiny_tagger_config())
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_training_never_overwrites_without_force(tiny_treebank, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="--force"):
        train_tagger(*tiny_treebank, out, tagger_settings(epochs=1), tiny_tagger_config())
    assert (out / "notes.txt").read_text() == "mine"


def test_bad_model_directories(tmp_path, tiny_tagger_dir):
    with pytest.raises(ModelError, match="no such model"):
        load_tagger(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="incomplete"):
        load_tagger(tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "speech", "format_version": 1}))
    (other / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="speech model"):
        load_tagger(other)
    old = tmp_path / "old"
    old.mkdir()
    config = json.loads((tiny_tagger_dir / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "format_version": 0}))
    (old / "model.safetensors").write_bytes((tiny_tagger_dir / "model.safetensors").read_bytes())
    with pytest.raises(ModelError, match="version"):
        load_tagger(old)


def test_evaluation_needs_gold_tags(tiny_tagger_dir):
    from seqattn.readers.conllu import Sentence

    with pytest.raises(InputError):
        evaluate_tagger(load_tagger(tiny_tagger_dir), [Sentence(["a"], None)])


def test_interrupted_and_resumed_run_reaches_the_same_weights(tiny_treebank, tmp_path):
    """Issue 7: a run killed after epoch 1 and resumed from its checkpoint ends where an
    uninterrupted run with the same seed ends, byte for byte."""
    settings = tagger_settings(epochs=3, batch_size=256, warmup_steps=5)
    train_tagger(*tiny_treebank, tmp_path / "whole", settings, tiny_tagger_config())

    with pytest.raises(Killed):
        train_tagger(*tiny_treebank, tmp_path / "cut", settings, tiny_tagger_config(),
                     reporter=Callbacks(on_epoch=kill_at(1)))
    checkpoint = tmp_path / "cut.checkpoint"
    assert (checkpoint / "checkpoint.json").is_file() and not (tmp_path / "cut").exists()
    epochs_seen = []
    train_tagger(*tiny_treebank, tmp_path / "cut", settings, tiny_tagger_config(), resume=checkpoint,
                 reporter=Callbacks(on_epoch=lambda r: epochs_seen.append(r["epoch"])))
    assert epochs_seen == [2, 3]
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert not checkpoint.exists()
