"""Speech as a library: chunked = whole-clip inference, decoders, manifests, a tiny trained model."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from seqattn.errors import InputError, ModelError
from seqattn.heads.classification import PoolingAccumulator
from seqattn.heads.ctc import collapse
from seqattn.models.speech import SpeechModel
from seqattn.tasks.scoring import edit_distance
from seqattn.tasks.speech import (SegmentBuilder, evaluate_speech, iter_chunk_outputs, load_speech_model,
                                  read_manifest, recognise)
from seqattn.tasks.speech_training import SpeechOptions, speech_settings, speech_span, train_speech
from seqattn.training.engine import Callbacks
from tests.conftest import Killed, kill_at, make_tone_clips, tiny_speech_config, tone_clip


def random_model(window: int = 3, layers: int = 2, seed: int = 0) -> SpeechModel:
    torch.manual_seed(seed)
    cfg = tiny_speech_config(window, layers)
    cfg.labels = ["a", "b", "c"]
    return SpeechModel(cfg).eval()


@pytest.mark.parametrize("chunk_frames,workers", [(5, 1), (5, 3), (64, 2), (299, 1), (300, 2), (4096, 2)])
def test_chunked_outputs_equal_one_pass_over_the_whole_clip(chunk_frames, workers):
    model = random_model()
    assert model.cfg.receptive_field() == 1 + 2 * 2 * 3  # conv half-width + stride * L * w
    features = np.random.default_rng(0).standard_normal((301, 16)).astype(np.float32) * 10 - 40
    with torch.inference_mode():
        whole = model(torch.from_numpy(features)[None], return_weights=True)
    # Feed the features in uneven pieces, as the feature stream does.
    pieces = [features[i:i + 37] for i in range(0, 301, 37)]
    outputs = list(iter_chunk_outputs(model, pieces, chunk_frames, with_weights=True, workers=workers))
    step = -(-chunk_frames // 2) * 2  # whole steps of 2 frames
    assert [o.start for o in outputs] == list(range(0, 301, step))
    assert [o.step_start for o in outputs] == [o.start // 2 for o in outputs]
    for name in ("frame_logits", "ctc_logits", "hidden"):
        joined = torch.cat([getattr(o, name) for o in outputs])
        torch.testing.assert_close(joined, whole[name][0], atol=2e-5, rtol=1e-5)
    assert len(torch.cat([o.frame_logits for o in outputs])) == 301
    assert len(torch.cat([o.ctc_logits for o in outputs])) == 151
    for layer in range(2):
        joined = torch.cat([o.weights[layer] for o in outputs], dim=1)
        torch.testing.assert_close(joined, whole["weights"][layer][0], atol=2e-5, rtol=1e-5)
    pooling = PoolingAccumulator()
    for o in outputs:
        pooling.add(o.pool_scores, o.hidden)
    with torch.inference_mode():
        torch.testing.assert_close(model.class_head.classify(pooling.pooled()[None]), whole["class_logits"],
                                   atol=2e-5, rtol=1e-5)


def test_chunks_on_a_thread_pool_come_in_order_and_equal_one_at_a_time():
    model = random_model()
    features = np.random.default_rng(1).standard_normal((997, 16)).astype(np.float32)
    serial = list(iter_chunk_outputs(model, [features], 40, workers=1))
    pooled = list(iter_chunk_outputs(model, [features[i:i + 50] for i in range(0, 997, 50)], 40, workers=4))
    assert [o.start for o in pooled] == [o.start for o in serial] == list(range(0, 997, 40))
    for a, b in zip(serial, pooled):
        assert torch.equal(a.frame_logits, b.frame_logits) and torch.equal(a.hidden, b.hidden)


def test_an_error_in_the_feature_stream_reaches_the_caller_through_the_pool():
    model = random_model()

    def broken():
        yield np.zeros((500, 16), np.float32)
        raise InputError("clip.wav: truncated")

    with pytest.raises(InputError, match="truncated"):
        list(iter_chunk_outputs(model, broken(), 40, workers=2))


def test_a_frame_only_reaches_its_receptive_field():
    """Changing input frame j moves only the steps centred within receptive_field() frames of j."""
    model = random_model()
    r = model.cfg.receptive_field()
    x = torch.randn(1, 160, 16)
    y = x.clone()
    y[0, 80] += 5.0
    with torch.inference_mode():
        changed = (model(x)["ctc_logits"] - model(y)["ctc_logits"]).abs().amax(-1)[0] > 1e-6
    centres = torch.arange(len(changed)) * 2
    assert changed.any() and not changed[(centres - 80).abs() > r].any()


def test_padding_in_a_batch_does_not_change_a_clip():
    model = random_model()
    short, long = torch.randn(1, 30, 16), torch.randn(1, 70, 16)
    batch = torch.zeros(2, 70, 16)
    batch[0, :30], batch[1] = short[0], long[0]
    padding = torch.zeros(2, 70, dtype=torch.bool)
    padding[0, 30:] = True
    with torch.inference_mode():
        together = model(batch, padding)
        alone = model(short)
    torch.testing.assert_close(together["frame_logits"][0, :30], alone["frame_logits"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together["class_logits"][0], alone["class_logits"][0], atol=1e-5, rtol=1e-5)


def test_collapse_merges_repeats_and_drops_blanks():
    assert collapse([0, 3, 3, 0, 3, 5, 5, 0]) == [3, 3, 5]
    assert collapse([3, 3, 0], previous=3) == []  # the run continues from the previous chunk
    assert collapse([]) == []


def test_segments_fed_in_pieces_equal_segments_fed_whole():
    from seqattn.readers.frames import FrameSpec

    spec = FrameSpec(8000)
    ids = [0] * 5 + [2] * 7 + [1] * 3 + [0] * 4
    logits = torch.nn.functional.one_hot(torch.tensor(ids), 3).float() * 4
    whole = SegmentBuilder(spec, str)
    whole.add(0, logits)
    pieces = SegmentBuilder(spec, str)
    for start in range(0, len(ids), 4):
        pieces.add(start, logits[start:start + 4])
    assert whole.finish() == pieces.finish()
    segments = whole.segments
    assert [(s.label, s.start_s, s.end_s) for s in segments] == [
        ("0", 0.0, 0.0575), ("2", 0.0575, 0.1275), ("1", 0.1275, 0.1575), ("0", 0.1575, 0.205)]
    assert all(0 < s.confidence <= 1 for s in segments)


def test_speech_span_finds_the_tone_between_the_noise():
    from seqattn.readers.frames import FrameSpec

    rng = np.random.default_rng(3)
    quiet = (rng.standard_normal(800) * 0.002).astype(np.float32)
    word = (0.4 * np.sin(2 * np.pi * 500 * np.arange(2400) / 8000)).astype(np.float32)
    (start, end), noise = speech_span(np.concatenate([quiet, word, quiet]), FrameSpec(8000))
    assert abs(start - 800) <= 200 and abs(end - 3200) <= 200
    assert 0.001 < noise < 0.004


def test_edit_distance():
    assert edit_distance(list("3141"), list("3141")) == 0
    assert edit_distance(list("3141"), list("341")) == 1
    assert edit_distance(list("12"), list("21")) == 2
    assert edit_distance([], list("123")) == 3


def test_manifest_reading_and_errors(tmp_path):
    (tmp_path / "m.tsv").write_text("label\tpath\tspeaker\n7\ta/b.wav\tx\n3 1 4\tc.wav\ty\n\n")
    rows = read_manifest(tmp_path / "m.tsv")
    assert [r.labels for r in rows] == [["7"], ["3", "1", "4"]]
    assert rows[0].path == tmp_path / "a" / "b.wav" and rows[1].extra == {"speaker": "y"}
    for text, message in (("", "empty manifest"), ("path\tdigit\nx.wav\t1\n", "lacks the column"),
                          ("path\tlabel\nx.wav\n", "line 2: 1 fields"), ("path\tlabel\nx.wav\t \n", "line 2: empty"),
                          ("path\tlabel\n", "no clips")):
        (tmp_path / "bad.tsv").write_text(text)
        with pytest.raises(InputError, match=message):
            read_manifest(tmp_path / "bad.tsv")
    with pytest.raises(InputError, match="no such manifest"):
        read_manifest(tmp_path / "missing.tsv")


# --------------------------------------------------------------------------- a tiny trained model


def test_tiny_model_tells_the_tones_apart(tiny_speech_dir, tone_manifests):
    loaded = load_speech_model(tiny_speech_dir)
    result = evaluate_speech(loaded, read_manifest(tone_manifests[1]))
    assert result["accuracy"] >= 0.9 and result["clips"] == 12
    config = json.loads((tiny_speech_dir / "config.json").read_text())
    assert config["task"] == "speech" and config["config"]["labels"] == ["high", "low"]
    assert config["config"]["frames"] == {"sample_rate_hz": 8000, "window_ms": 25.0, "hop_ms": 10.0,
                                          "features": "logmel", "bins": 16, "fmin_hz": 0.0, "fmax_hz": None}


def test_tiny_model_segments_a_clip(tiny_speech_dir, tmp_path):
    rng = np.random.default_rng(7)
    quiet = (rng.standard_normal(2400) * 0.003).astype(np.float32)
    sf.write(tmp_path / "low.wav", np.concatenate([quiet, tone_clip("low", rng), quiet]), 8000)
    result = recognise(load_speech_model(tiny_speech_dir), tmp_path / "low.wav")
    assert result.label == "low" and result.frames == 1 + (len(sf.read(tmp_path / "low.wav")[0]) - 200) // 80
    spoken = [s for s in result.segments if s.label != "sil"]
    assert spoken and max(spoken, key=lambda s: s.end_s - s.start_s).label == "low"
    assert result.segments[0].label == "sil" and result.segments[-1].label == "sil"
    assert result.segments[0].start_s == 0.0
    assert all(a.end_s == b.start_s for a, b in zip(result.segments, result.segments[1:]))


def test_recognise_in_small_chunks_equals_one_chunk(tiny_speech_dir, tmp_path):
    rng = np.random.default_rng(11)
    clip = np.concatenate([tone_clip(label, rng) for label in ("low", "high", "high", "low", "high")])
    sf.write(tmp_path / "five.wav", clip, 8000)
    loaded = load_speech_model(tiny_speech_dir)
    whole = recognise(loaded, tmp_path / "five.wav", chunk_frames=100_000, attention_layer=-1)
    for chunk_frames in (16, 57):
        chunked = recognise(loaded, tmp_path / "five.wav", chunk_frames=chunk_frames, attention_layer=-1)
        assert (chunked.label, chunked.transcript, chunked.frames) == (whole.label, whole.transcript, whole.frames)
        assert [(s.start_s, s.end_s, s.label) for s in chunked.segments] == [
            (s.start_s, s.end_s, s.label) for s in whole.segments]
        assert chunked.confidence == pytest.approx(whole.confidence, abs=1e-4)
        np.testing.assert_allclose(chunked.attention.rows, whole.attention.rows, atol=1e-3)


def test_clip_shorter_than_one_frame(tiny_speech_dir, tmp_path):
    sf.write(tmp_path / "tiny.wav", np.zeros(150, np.float32), 8000)
    with pytest.raises(InputError, match="shorter than one 25 ms frame"):
        recognise(load_speech_model(tiny_speech_dir), tmp_path / "tiny.wav")


def test_other_sample_rates_and_channels_are_converted(tiny_speech_dir, tmp_path):
    import soxr

    rng = np.random.default_rng(5)
    x = tone_clip("high", rng)
    stereo = np.stack([x, x], 1)
    sf.write(tmp_path / "cd.flac", soxr.resample(stereo, 8000, 44100), 44100)
    result = recognise(load_speech_model(tiny_speech_dir), tmp_path / "cd.flac")
    assert result.sample_rate_hz == 44100 and result.channels == 2 and result.label == "high"


def test_framing_other_than_the_models_is_refused(tiny_speech_dir):
    loaded = load_speech_model(tiny_speech_dir)
    loaded.check_framing(25, 10)
    loaded.check_framing(None, None)
    with pytest.raises(InputError, match=r"trained on 25 ms frames every 10 ms \(--window 25 --hop 10\)"):
        loaded.check_framing(40, None)


def test_same_seed_same_weights_and_no_overwrite(tone_manifests, tmp_path):
    rows = read_manifest(tone_manifests[1])
    settings, options = speech_settings(epochs=1, batch_size=2000), SpeechOptions(sequences=4)
    for name in ("a", "b"):
        train_speech(rows, tmp_path / name, tiny_speech_config(), settings, options=options)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    (tmp_path / "a" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="--force"):
        train_speech(rows, tmp_path / "a", tiny_speech_config(), settings, options=options)
    assert (tmp_path / "a" / "notes.txt").read_text() == "mine"


def test_training_clips_need_one_known_label(tmp_path):
    manifest = make_tone_clips(tmp_path / "clips", 2, 0)
    rows = read_manifest(manifest)
    rows[0].labels = ["low", "high"]
    with pytest.raises(InputError, match="one label each"):
        train_speech(rows, tmp_path / "m", tiny_speech_config(), speech_settings(epochs=1))


def test_a_tagger_is_not_a_speech_model(tiny_tagger_dir):
    with pytest.raises(ModelError, match="tagger model, not a speech model"):
        load_speech_model(tiny_tagger_dir)


def test_short_segments_join_the_longer_neighbour():
    from seqattn.tasks.speech import Segment, merge_short_segments

    def segs(*spec):
        out, t = [], 0.0
        for label, duration in spec:
            out.append(Segment(round(t, 3), round(t + duration, 3), label, 0.9))
            t += duration
        return out

    merged = merge_short_segments(segs(("sil", 0.3), ("8", 0.3), ("9", 0.06), ("8", 0.1), ("sil", 0.02),
                                       ("8", 0.05), ("sil", 0.5)), 0.15)
    assert [(s.label, s.start_s, s.end_s) for s in merged] == [("sil", 0.0, 0.3), ("8", 0.3, 0.83),
                                                              ("sil", 0.83, 1.33)]
    first_short = merge_short_segments(segs(("5", 0.05), ("sil", 0.4), ("3", 0.3), ("sil", 0.1)), 0.15)
    assert [(s.label, s.start_s, s.end_s) for s in first_short] == [("sil", 0.0, 0.45), ("3", 0.45, 0.85)]
    raw = segs(("sil", 0.3), ("9", 0.06), ("sil", 0.3))
    assert merge_short_segments(raw, 0) == raw
    assert merge_short_segments(raw, 0.15)[0].end_s == 0.66 and len(merge_short_segments(raw, 0.15)) == 1


def test_interrupted_and_resumed_run_reaches_the_same_weights(tone_manifests, tmp_path):
    """Issue 7: killed after epoch 1 (kill -9 leaves the last checkpoint), resumed with --resume,
    the run ends on the weights of an uninterrupted run with the same seed, byte for byte."""
    rows = read_manifest(tone_manifests[1])
    settings = speech_settings(epochs=3, batch_size=2000, warmup_steps=3)
    options = SpeechOptions(sequences=4)
    train_speech(rows, tmp_path / "whole", tiny_speech_config(), settings, options=options)  # no dev: the last epoch

    with pytest.raises(Killed):
        train_speech(rows, tmp_path / "cut", tiny_speech_config(), settings, options=options,
                     reporter=Callbacks(on_epoch=kill_at(1)))
    checkpoint = tmp_path / "cut.checkpoint"
    assert (checkpoint / "checkpoint.json").is_file() and not (tmp_path / "cut").exists()
    with pytest.raises(InputError, match=r"model encoder\.window \(checkpoint 3, now 1\)"):
        train_speech(rows, tmp_path / "cut", tiny_speech_config(window=1), settings, options=options,
                     resume=checkpoint)  # the same command with another window: refused, naming it
    seen = []
    saved = train_speech(rows, tmp_path / "cut", tiny_speech_config(), settings, options=options,
                         reporter=Callbacks(on_epoch=lambda r: seen.append(r["epoch"])), resume=checkpoint)
    assert seen == [2, 3] and [h["epoch"] for h in saved["training"]["history"]] == [1, 2, 3]
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == \
        (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert not checkpoint.exists()


def test_resume_refuses_other_checkpoints(tone_manifests, tiny_treebank, tmp_path):
    from seqattn.tasks.tagging import tagger_settings, train_tagger

    rows = read_manifest(tone_manifests[1])
    with pytest.raises(ModelError, match="not a training checkpoint"):
        train_speech(rows, tmp_path / "m", tiny_speech_config(), resume=tmp_path)
    with pytest.raises(Killed):
        train_tagger(*tiny_treebank, tmp_path / "tagger", tagger_settings(epochs=2, batch_size=256),
                     reporter=Callbacks(on_epoch=kill_at(1)))
    with pytest.raises(ModelError, match="a checkpoint of a tagger run, not of a speech run"):
        train_speech(rows, tmp_path / "m", tiny_speech_config(), resume=tmp_path / "tagger.checkpoint")


@pytest.mark.parametrize("chunk_frames", [5, 64, 4096])
def test_chunked_rollout_equals_rollout_of_the_whole_clip(chunk_frames):
    """Rollout through l layers reaches l * w steps, inside the chunks' L * w steps of context."""
    from seqattn.analysis.rollout import attention_rollout

    model = random_model()
    features = np.random.default_rng(2).standard_normal((301, 16)).astype(np.float32) * 10 - 40
    with torch.inference_mode():
        whole = attention_rollout(model(torch.from_numpy(features)[None], return_weights=True)["weights"], 3)
    pieces = [features[i:i + 37] for i in range(0, 301, 37)]
    outputs = list(iter_chunk_outputs(model, pieces, chunk_frames, rollout=True, workers=1))
    for depth in range(2):
        joined = torch.cat([o.weights[depth][0] for o in outputs])
        assert joined.shape == (151, 2 * (depth + 1) * 3 + 1)
        torch.testing.assert_close(joined, whole[depth][0], atol=2e-5, rtol=1e-5)
