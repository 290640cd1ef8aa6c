"""recipes/: every shipped model's recipe names only options its command has, and builds the
architecture and settings that are in the shipped model's config.json."""

from __future__ import annotations

import json
import pytest

from tests.conftest import ROOT

RECIPES = ROOT / "recipes"
COMMANDS = {"en-upos": "tagger", "en-sentiment": "classifier", "digits": "speech", "cora": "graph", "en-g2p-1": "seq2seq", "en-g2p-2": "seq2seq",
            "en-g2p-3": "seq2seq"}


def _command(name: str):
    from seqattn.cli import classify, graph, seq2seq, speech, tag

    return {"classifier": classify.train_classifier_cli, "tagger": tag.train_tagger_cli, "speech": speech.train_speech_cli, "graph": graph.train_graph_cli,
            "seq2seq": seq2seq.train_seq2seq_cli}[COMMANDS[name]]


def _merged(name: str) -> dict:
    from seqattn.cli.train_options import annotations_of, gather

    return gather(COMMANDS[name], {"config": RECIPES / f"{name}.toml"}, annotations_of(_command(name)))


def _shipped(name: str) -> dict:
    return json.loads((ROOT / "seqattn" / "models" / name / "config.json").read_text())


def test_every_shipped_model_has_a_recipe():
    assert {p.stem for p in RECIPES.glob("*.toml")} == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_recipe_names_only_options_of_its_command(name):
    merged = _merged(name)
    assert merged and all(value is not None for value in merged.values())


def test_en_upos_recipe_builds_the_shipped_architecture_and_settings():
    from seqattn.cli.train_options import fit_settings, model_options
    from seqattn.models.tagger import TaggerConfig
    from seqattn.tasks.tagging import tagger_settings
    from seqattn.training.options import ENCODER_OPTIONS

    merged = _merged("en-upos")
    config = TaggerConfig()
    model_options(merged, "tagger", ENCODER_OPTIONS).apply_to_encoder(config.encoder)
    shipped = _shipped("en-upos")
    built = config.to_dict()
    for key, value in shipped["config"]["encoder"].items():
        assert built["encoder"][key] == value, key
    for key in ("word_dim", "char_dim", "char_filters", "char_kernel", "subword_dim", "min_word_count"):
        assert built[key] == shipped["config"][key], key
    settings, old = fit_settings(tagger_settings(), merged), shipped["training"]["settings"]
    assert (settings.epochs, settings.batch_size, settings.lr, settings.warmup_steps, settings.weight_decay,
            settings.seed) == (old["epochs"], old["max_tokens"], old["lr"], old["warmup_steps"], old["weight_decay"],
                               old["seed"])
    assert (merged["word_dropout"], merged["label_smoothing"]) == (old["word_dropout"], old["label_smoothing"])


def test_digits_recipe_builds_the_shipped_architecture_and_settings():
    from seqattn.cli.train_options import fit_settings, model_options
    from seqattn.models.speech import SpeechConfig
    from seqattn.tasks.speech_training import speech_settings
    from seqattn.training.options import ENCODER_OPTIONS

    merged = _merged("digits")
    config = SpeechConfig()
    model_options(merged, "speech", ENCODER_OPTIONS).apply_to_encoder(config.encoder)
    shipped = _shipped("digits")
    built = config.to_dict()
    for key, value in shipped["config"]["encoder"].items():
        assert built["encoder"][key] == value, key
    frames = shipped["config"]["frames"]
    assert (merged["sample_rate"], merged["window"], merged["hop"], merged["features"], merged["bins"],
            merged["stride"]) == (frames["sample_rate_hz"], frames["window_ms"], frames["hop_ms"], frames["features"],
                                  frames["bins"], shipped["config"]["stride"])
    settings, old = fit_settings(speech_settings(), merged), shipped["training"]["settings"]
    assert (settings.epochs, settings.batch_size, settings.lr, settings.warmup_steps, settings.seed,
            merged["sequences"]) == (old["epochs"], old["max_frames"], old["lr"], old["warmup_steps"], old["seed"],
                                     old["sequences"])


def test_en_g2p_last_recipe_has_the_shipped_settings():
    from seqattn.cli.train_options import fit_settings
    from seqattn.tasks.seq2seq import seq2seq_settings

    merged = _merged("en-g2p-3")
    settings, old = fit_settings(seq2seq_settings(), merged), _shipped("en-g2p")["training"]["settings"]
    assert (settings.epochs, settings.batch_size, settings.lr, settings.warmup_steps, settings.average_last,
            settings.max_minutes, settings.seed) == (old["epochs"], old["max_tokens"], old["lr"], old["warmup_steps"],
                                                     old["average_last"], old["max_minutes"], old["seed"])
    first = _merged("en-g2p-1")
    encoder = _shipped("en-g2p")["config"]["encoder"]
    assert (first["layers"], first["d_model"], first["heads"], first["d_ff"], first["dropout"]) == \
        (encoder["n_layers"], encoder["d_model"], encoder["n_heads"], encoder["d_ff"], encoder["dropout"])


def test_en_sentiment_recipe_builds_the_shipped_architecture_and_settings():
    from seqattn.cli.classify import _parse_label_names
    from seqattn.cli.train_options import fit_settings, model_options
    from seqattn.models.classifier import ClassifierConfig
    from seqattn.tasks.classification import classifier_settings
    from seqattn.training.options import ENCODER_OPTIONS

    merged = _merged("en-sentiment")
    config = ClassifierConfig()
    model_options(merged, "classifier", ENCODER_OPTIONS).apply_to_encoder(config.encoder)
    shipped = _shipped("en-sentiment")
    built = config.to_dict()
    for key, value in shipped["config"]["encoder"].items():
        assert built["encoder"][key] == value, key
    for key in ("word_dim", "char_filters", "subword_dim", "pool_heads", "pool_hidden"):
        assert built[key] == shipped["config"][key], key
    settings, old = fit_settings(classifier_settings(), merged), shipped["training"]["settings"]
    for key in ("epochs", "batch_size", "lr", "warmup_steps", "weight_decay", "seed"):
        assert getattr(settings, key) == old[key], key
    assert merged["word_dropout"] == shipped["training"]["options"]["task"]["word_dropout"]
    names = _parse_label_names(merged["label_names"])
    assert [names[label] for label in shipped["config"]["labels"]] == shipped["config"]["label_names"]
