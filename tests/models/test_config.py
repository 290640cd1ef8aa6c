"""The config base (seqattn.models.config): types, ranges, unknown keys, nested configs, and the
shipped configs read and written back byte for byte."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from seqattn.errors import InputError, ModelError
from seqattn.models.config import Config, ConfigError, bounded
from seqattn.models.graph import GraphPredictorConfig, NodeClassifierConfig
from seqattn.models.io import SHIPPED_DIR, registry
from seqattn.models.seq2seq import Seq2SeqConfig
from seqattn.models.speech import SpeechConfig
from seqattn.models.tagger import TaggerConfig
from seqattn.nn.decoder import DecoderConfig
from seqattn.nn.encoder import EncoderConfig
from seqattn.readers.frames import FrameSpec


@dataclass
class Inner(Config):
    size: int = bounded(4, min=1, max=64)
    rate: float = bounded(0.5, min=0.0, below=1.0)


@dataclass
class Outer(Config):
    inner: Inner = field(default_factory=Inner)
    name: str = bounded("a", choices=("a", "b"))
    mode: Literal["x", "y"] = "x"
    limit: int | None = bounded(None, min=0)
    flag: bool = False
    items: list[str] = bounded(default_factory=list, max_items=3, max_chars=5)
    late: str = bounded("old", omit_default=True)

    def check(self) -> None:
        if self.limit is not None and self.limit > self.inner.size:
            raise self.invalid("limit", f"must be <= inner.size ({self.inner.size}), got {self.limit}")


def test_round_trip_with_nested_configs():
    cfg = Outer(inner=Inner(size=8, rate=0.25), name="b", mode="y", limit=3, flag=True, items=["p", "q"])
    d = cfg.to_dict()
    assert d == {"inner": {"size": 8, "rate": 0.25}, "name": "b", "mode": "y", "limit": 3, "flag": True,
                 "items": ["p", "q"]}
    assert Outer.from_dict(json.loads(json.dumps(d))) == cfg
    assert Outer.from_dict({}) == Outer()  # missing keys take their defaults


def test_a_field_added_later_is_left_out_while_it_has_its_default():
    assert "late" not in Outer().to_dict()
    assert Outer(late="new").to_dict()["late"] == "new"
    assert Outer.from_dict({"late": "new"}).late == "new"


@pytest.mark.parametrize("d,message", [
    ({"inner": {"size": 0}}, "inner.size must be >= 1 and <= 64, got 0"),
    ({"inner": {"size": 65}}, "inner.size must be >= 1 and <= 64, got 65"),
    ({"inner": {"size": True}}, "inner.size must be an integer, got true"),
    ({"inner": {"size": "4"}}, "inner.size must be an integer, got '4'"),
    ({"inner": {"size": 4.0}}, "inner.size must be an integer, got 4.0"),
    ({"inner": {"size": 10 ** 5000}}, "inner.size must be >= 1 and <= 64, got an integer of about 5001 digits"),
    ({"inner": {"size": None}}, "inner.size must be an integer, got null"),
    ({"inner": {"rate": float("nan")}}, "inner.rate must be a finite number, got nan"),
    ({"inner": {"rate": float("inf")}}, "inner.rate must be a finite number, got inf"),
    ({"inner": {"rate": 10 ** 400}}, "inner.rate must be a finite number"),
    ({"inner": {"rate": 1.0}}, "inner.rate must be >= 0 and < 1, got 1.0"),
    ({"inner": {"rate": False}}, "inner.rate must be a number, got false"),
    ({"inner": [1]}, "inner must be an object, got a list of 1 items"),
    ({"inner": {"sizes": 1}}, "inner: 'sizes' is not a setting of Inner (known: size, rate)"),
    ({"name": "c"}, "name must be one of 'a', 'b', got 'c'"),
    ({"mode": "z"}, "mode must be one of 'x', 'y', got 'z'"),
    ({"limit": -1}, "limit must be >= 0, got -1"),
    ({"limit": 5}, "limit must be <= inner.size (4), got 5"),
    ({"flag": 1}, "flag must be true or false, got 1"),
    ({"items": "pq"}, "items must be a list, got 'pq'"),
    ({"items": ["a", "b", "c", "d"]}, "items must hold at most 3 items, got 4"),
    ({"items": ["a", 7]}, "items[1] must be a string, got 7"),
    ({"items": ["a", "toolong"]}, "items[1] must be at most 5 characters, got 7"),
    ({"bogus": 1}, "'bogus' is not a setting of Outer"),
])
def test_every_rule_names_the_file_and_the_field(d, message):
    with pytest.raises(ConfigError) as caught:
        Outer.from_dict(d, where="model/config.json")
    assert str(caught.value).startswith("model/config.json: ")
    assert message in str(caught.value)


def test_config_errors_are_model_errors_and_value_errors():
    """Exit code 2 through the CLI (ModelError), and what a bad value in code raised before (ValueError)."""
    with pytest.raises(ConfigError) as caught:
        Outer.from_dict("not an object")
    assert isinstance(caught.value, ModelError) and isinstance(caught.value, ValueError)
    assert str(caught.value) == "config must be an object, got 'not an object'"
    with pytest.raises(ValueError, match="inner.size must be >= 1"):
        Outer(inner=Inner(size=4)).__class__.from_dict({"inner": {"size": -3}})
    with pytest.raises(ValueError, match="^size must be >= 1"):
        Inner(size=0)


def test_values_are_stored_in_their_field_type():
    assert Inner(rate=0).rate == 0.0 and isinstance(Inner(rate=0).rate, float)
    import numpy as np

    assert type(Inner(size=np.int64(3)).size) is int
    assert Outer(items=("a",)).items == ["a"]


def test_a_missing_required_field_is_named():
    with pytest.raises(ConfigError, match="sample_rate_hz is missing"):
        FrameSpec.from_dict({"window_ms": 25.0})


@pytest.mark.parametrize("cls,d,message", [
    (EncoderConfig, {"n_heads": 0}, "n_heads must be >= 1"),
    (EncoderConfig, {"d_model": 30, "n_heads": 4}, "n_heads must divide d_model (30), got 4"),
    (EncoderConfig, {"dropout": 1.0}, "dropout must be >= 0 and < 1"),
    (EncoderConfig, {"window": -1}, "window must be >= 0"),
    (EncoderConfig, {"relative_bias": True}, "relative_bias needs a window"),
    (EncoderConfig, {"window": 4000, "n_heads": 8}, "scores per position"),
    (EncoderConfig, {"activation": "tanh"}, "activation must be one of"),
    (DecoderConfig, {"n_layers": 100_000}, "n_layers must be >= 1 and <= 256"),
    (TaggerConfig, {"word_dim": 300_000}, "word_dim must be >= 1 and <= 8192"),
    (TaggerConfig, {"encoder": {"n_layers": 100_000}}, "encoder.n_layers must be >= 1 and <= 256"),
    (TaggerConfig, {"words": ["<pad>", 3]}, "words[1] must be a string"),
    (NodeClassifierConfig, {"propagation_steps": 10 ** 9}, "propagation_steps must be >= 1 and <= 100"),
    (NodeClassifierConfig, {"teleport": 1.0}, "teleport must be >= 0 and < 1"),
    (GraphPredictorConfig, {"target_std": 0.0}, "target_std must be > 0"),
    (SpeechConfig, {"conv_kernel": 4}, "conv_kernel must be odd"),
    (SpeechConfig, {"encoder": {"window": 8}}, "encoder.positional must be 'none'"),
    (SpeechConfig, {"frames": {"sample_rate_hz": 8000, "bins": 100_000}}, "frames.bins must be >= 1 and <= 4096"),
    (SpeechConfig, {"frames": {"sample_rate_hz": 0}}, "frames: sample rate must be"),
    (Seq2SeqConfig, {"decoder": {"d_model": 128}}, "decoder.d_model must equal encoder.d_model (256)"),
    (Seq2SeqConfig, {"frame_stride": 3}, "frame_stride must be one of 1, 2, 4, got 3"),
    (Seq2SeqConfig, {"max_output_ratio": 1e9}, "max_output_ratio must be > 0 and <= 20"),
])
def test_model_config_rules(cls, d, message):
    with pytest.raises(ConfigError) as caught:
        cls.from_dict(d, where="config.json")
    assert message in str(caught.value)


def test_frame_spec_keeps_its_option_messages():
    """FrameSpec is also what --window/--hop/--bins make: its messages stay InputErrors in words."""
    with pytest.raises(InputError, match="frame length and shift must be > 0"):
        FrameSpec(8000, window_ms=-5.0)
    with pytest.raises(InputError, match="frame length and shift must be > 0 .* got window nan ms"):
        FrameSpec(8000, window_ms=float("nan"))


@pytest.mark.parametrize("name,cls", [("en-upos", TaggerConfig), ("digits", SpeechConfig),
                                      ("cora", NodeClassifierConfig), ("en-g2p", Seq2SeqConfig)])
def test_shipped_configs_load_and_save_byte_for_byte(name, cls):
    path = SHIPPED_DIR / registry()[name]["path"] / "config.json"
    text = path.read_text(encoding="utf-8")
    meta = json.loads(text)
    cfg = cls.from_dict(meta["config"], where=str(path))
    cfg.check_trained()
    assert json.dumps({**meta, "config": cfg.to_dict()}, indent=1) + "\n" == text


@pytest.mark.parametrize("cfg,field_name", [
    (TaggerConfig(), "words"), (SpeechConfig(), "labels"), (NodeClassifierConfig(), "in_features"),
    (Seq2SeqConfig(), "source_symbols"), (GraphPredictorConfig(), "in_features"),
])
def test_an_untrained_config_is_valid_but_describes_no_weights(cfg, field_name):
    type(cfg).from_dict(cfg.to_dict())  # what training starts from
    with pytest.raises(ConfigError, match=f"^{field_name} must"):
        cfg.check_trained()
