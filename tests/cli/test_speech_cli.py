"""`seqattn speech`, `frames`, `evaluate speech`, `train speech` from the shell (a tiny model, made-up audio)."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from seqattn.cli.main import run
from tests.conftest import ROOT, seqattn, tone_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    sf.write(root / "low.wav", tone_clip("low", rng), 8000)
    sf.write(root / "high.flac", tone_clip("high", rng), 8000)
    sf.write(root / "two.wav", np.concatenate([tone_clip("high", rng), tone_clip("low", rng)]), 8000)
    (root / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ")
    sf.write(root / "short.wav", np.zeros(100, np.float32), 8000)
    return root


def test_speech_jsonl_has_file_class_transcript_segments(clips, tiny_speech_dir, capsys):
    assert run(["speech", str(clips / "low.wav"), str(clips / "high.flac"), "--model", str(tiny_speech_dir),
                "--format", "jsonl"]) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["class"] for o in objects] == ["low", "high"]
    for o in objects:
        assert {"file", "class", "transcript", "segments", "duration_s", "sample_rate_hz", "frames"} <= set(o)
        assert isinstance(o["transcript"], str)
        assert all({"start_s", "end_s", "label", "confidence"} == set(s) for s in o["segments"])
        assert o["segments"][0]["start_s"] == 0.0


def test_speech_tsv_is_one_line_per_clip(clips, tiny_speech_dir, capsys):
    assert run(["speech", str(clips / "low.wav"), str(clips / "two.wav"), "-m", str(tiny_speech_dir),
                "-f", "tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(len(line.split("\t")) == 5 for line in lines)
    assert lines[0].split("\t")[:2] == [str(clips / "low.wav"), "low"]


def test_speech_pretty_shows_the_summary_and_segments(clips, tiny_speech_dir, capsys):
    assert run(["speech", str(clips / "low.wav"), "-m", str(tiny_speech_dir), "-f", "pretty"]) == 0
    out = capsys.readouterr().out
    for expected in ("8000 Hz mono", "frames (25 ms every 10 ms)", "class", "transcript", "segments", "low"):
        assert expected in out


def test_speech_attention_heatmap_and_json(clips, tiny_speech_dir, capsys):
    assert run(["speech", str(clips / "two.wav"), "-m", str(tiny_speech_dir), "-f", "pretty", "--attention"]) == 0
    assert "banded attention, layer 1" in capsys.readouterr().out
    assert run(["speech", str(clips / "two.wav"), "-m", str(tiny_speech_dir), "-f", "jsonl", "--attention",
                "--layer", "0"]) == 0
    attention = json.loads(capsys.readouterr().out)["attention"]
    assert attention["layer"] == 0 and attention["window"] == 3
    assert all(len(row) == 7 for row in attention["rows"]) and len(attention["rows"]) <= 40
    assert run(["speech", str(clips / "two.wav"), "-m", str(tiny_speech_dir), "-f", "tsv", "--attention"]) == 2


def test_other_window_or_hop_than_the_models_is_an_error(clips, tiny_speech_dir, capsys):
    assert run(["speech", str(clips / "low.wav"), "-m", str(tiny_speech_dir), "--window", "40"]) == 2
    err = capsys.readouterr().err
    assert "--window 25 --hop 10" in err and "seqattn train speech" in err and err.count("\n") == 1
    assert run(["speech", str(clips / "low.wav"), "-m", str(tiny_speech_dir), "--window", "25", "--hop", "10",
                "-f", "tsv"]) == 0


@pytest.mark.parametrize("name,message", [("broken.wav", "not readable as WAV, FLAC, OGG or MP3"),
                                          ("short.wav", "shorter than one 25 ms frame"),
                                          ("missing.wav", "no such file")])
def test_bad_clips_exit_2_with_one_line_and_no_traceback(clips, tiny_speech_dir, name, message):
    done = seqattn("speech", clips / name, "-m", tiny_speech_dir)
    err = done.stderr.decode()
    assert done.returncode == 2 and message in err and str(clips / name) in err
    assert err.count("\n") == 1 and "Traceback" not in err and done.stdout == b""


def test_frames_npy_on_a_pipe(clips):
    done = seqattn("frames", str(clips / "two.wav"))
    assert done.returncode == 0
    matrix = np.load(io.BytesIO(done.stdout))
    n = len(sf.read(clips / "two.wav")[0])
    assert matrix.shape == (1 + (n - 200) // 80, 40) and matrix.dtype == np.float32
    from seqattn.readers.frames import FrameSpec, frames

    np.testing.assert_allclose(matrix, frames(sf.read(clips / "two.wav", dtype="float32")[0], FrameSpec(8000)),
                               atol=1e-4)


def test_frames_resampled_npy_has_the_promised_shape(tmp_path):
    rng = np.random.default_rng(2)
    sf.write(tmp_path / "cd.wav", (0.1 * rng.standard_normal((22051, 2))).astype(np.float32), 44100)
    done = seqattn("frames", str(tmp_path / "cd.wav"), "--sample-rate", "8000", "--features", "mfcc", "--bins", "13")
    assert done.returncode == 0, done.stderr
    # 22051 samples at 44.1 kHz are 4000 at 8 kHz (4000.18 rounded): 1 + (4000 - 200) // 80 frames
    assert np.load(io.BytesIO(done.stdout)).shape == (48, 13)


def test_frames_text_formats(clips, capsys):
    assert run(["frames", str(clips / "low.wav"), "-f", "tsv", "--window", "40", "--hop", "20", "--bins", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[:3] == ["frame", "time_s", "mel_0"] and len(lines[0].split("\t")) == 22
    assert lines[1].split("\t")[:2] == ["0", "0.0200"]  # centre of a 40 ms frame
    assert run(["frames", str(clips / "low.wav"), "-f", "jsonl", "--features", "mfcc", "--bins", "13"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["frame"] == 0 and len(first["values"]) == 13
    assert run(["frames", str(clips / "low.wav"), "-f", "pretty", "--bins", "8"]) == 0
    assert "8 logmel (25 ms every 10 ms)" in capsys.readouterr().out


def test_frames_refuses_binary_on_a_terminal_and_bad_options(clips, capsys, monkeypatch):
    import seqattn.cli.common as common

    monkeypatch.setattr(common, "stdout_is_terminal", lambda: True)
    assert run(["frames", str(clips / "low.wav"), "-f", "npy"]) == 2
    assert "npy is binary" in capsys.readouterr().err
    monkeypatch.undo()
    assert run(["frames", str(clips / "low.wav"), "--features", "fbank", "-f", "tsv"]) == 2
    assert "unknown features 'fbank'" in capsys.readouterr().err
    assert run(["frames", str(clips / "short.wav"), "-f", "tsv"]) == 2
    assert "shorter than one 25 ms frame" in capsys.readouterr().err


def test_evaluate_speech_json(tone_manifests, tiny_speech_dir, capsys):
    assert run(["evaluate", "speech", "--data", str(tone_manifests[1]), "-m", str(tiny_speech_dir),
                "-f", "json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["clips"] == 12 and result["accuracy"] >= 0.9 and 0 <= result["label_error_rate"]
    assert run(["evaluate", "speech", "--data", str(tone_manifests[1]), "-m", str(tiny_speech_dir),
                "-f", "pretty", "-q"]) == 0
    assert "class accuracy" in capsys.readouterr().out


def test_train_speech_makes_a_usable_model_and_never_overwrites(tone_manifests, clips, tmp_path, capsys):
    out = tmp_path / "model"
    args = ["train", "speech", "--train", str(tone_manifests[1]), "--out", str(out), "--epochs", "1",
            "--sequences", "2", "--attention-window", "2", "--layers", "1", "--d-model", "16", "--bins", "16",
            "--window", "40", "--hop", "20", "-q"]
    assert run(args) == 0
    assert "saved" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["frames"]["window_ms"] == 40 and config["encoder"]["window"] == 2
    assert run(args) == 2
    assert "--force" in capsys.readouterr().err
    assert run(args + ["--force"]) == 0
    capsys.readouterr()
    assert run(["speech", str(clips / "low.wav"), "-m", str(out), "-f", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["class"] in ("low", "high")
    assert run(["speech", str(clips / "low.wav"), "-m", str(out), "--window", "25"]) == 2
    assert "trained on 40 ms frames every 20 ms" in capsys.readouterr().err


def test_help_and_frames_never_import_torch(clips):
    code = ("import sys; from seqattn.cli.main import run; run(['speech', '--help']); run(['frames', '--help']); "
            f"assert run(['frames', {str(clips / 'low.wav')!r}, '-f', 'tsv']) == 0; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr.decode()
