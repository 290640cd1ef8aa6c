"""Framing and features: the frame-count convention, librosa agreement, streaming = whole clip."""

import numpy as np
import pytest

from seqattn.errors import InputError
from seqattn.readers.frames import FeatureExtractor, FrameSpec, dct_matrix, frames, mel_filterbank


def noisy_tone(n: int, sample_rate_hz: int = 8000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sample_rate_hz
    return (0.3 * np.sin(2 * np.pi * 700 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def test_frame_count_convention():
    spec = FrameSpec(8000)  # 25 ms = 200 samples, 10 ms = 80 samples
    assert (spec.window_samples, spec.hop_samples, spec.n_fft) == (200, 80, 200)
    assert [spec.frame_count(t) for t in (0, 199, 200, 279, 280, 8000)] == [0, 0, 1, 1, 2, 98]
    assert frames(noisy_tone(8000), spec).shape == (98, 40)  # 1 + (8000 - 200) // 80
    assert frames(noisy_tone(199), spec).shape == (0, 40)  # shorter than one window: no frames
    assert spec.centre_s(0) == pytest.approx(0.0125) and spec.centre_s(10) == pytest.approx(0.1125)
    spec16 = FrameSpec(16000, window_ms=40, hop_ms=20, bins=64)
    assert (spec16.window_samples, spec16.hop_samples, spec16.frame_count(16000)) == (640, 320, 49)


@pytest.mark.parametrize("sample_rate_hz,window_ms,hop_ms,bins", [(8000, 25, 10, 40), (16000, 25, 10, 64),
                                                                 (22050, 40, 12.5, 80)])
def test_logmel_agrees_with_librosa(sample_rate_hz, window_ms, hop_ms, bins):
    librosa = pytest.importorskip("librosa")
    spec = FrameSpec(sample_rate_hz, window_ms, hop_ms, "logmel", bins)
    x = noisy_tone(sample_rate_hz, sample_rate_hz)
    ours = frames(x, spec)
    mel = librosa.feature.melspectrogram(y=x, sr=sample_rate_hz, n_fft=spec.window_samples,
                                         hop_length=spec.hop_samples, center=False, n_mels=bins)
    theirs = librosa.power_to_db(mel, top_db=None).T
    assert ours.shape == theirs.shape == (spec.frame_count(len(x)), bins)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)  # dB
    np.testing.assert_allclose(mel_filterbank(sample_rate_hz, spec.n_fft, bins),
                               librosa.filters.mel(sr=sample_rate_hz, n_fft=spec.n_fft, n_mels=bins), atol=1e-7)


def test_mfcc_agrees_with_librosa():
    librosa = pytest.importorskip("librosa")
    spec = FrameSpec(8000, features="mfcc", bins=13)
    x = noisy_tone(6000)
    logmel = frames(x, FrameSpec(8000, bins=40))
    theirs = librosa.feature.mfcc(S=logmel.T, n_mfcc=13).T
    np.testing.assert_allclose(frames(x, spec), theirs, atol=1e-3)
    scipy_fft = pytest.importorskip("scipy.fft")
    v = np.random.default_rng(0).standard_normal(40)
    np.testing.assert_allclose(v @ dct_matrix(40, 40), scipy_fft.dct(v, type=2, norm="ortho"), atol=1e-5)


def test_streamed_frames_equal_whole_clip_frames():
    # Each frame is computed from the same W samples either way; only BLAS's choice of kernel for
    # the filterbank product (by matrix size) may move the last bit.
    x = noisy_tone(12345)
    extractor = FeatureExtractor(FrameSpec(8000))
    whole = extractor(x)
    for block, chunk in ((1000, 7), (80, 1), (5000, 64), (20000, 4096)):
        blocks = [x[i:i + block] for i in range(0, len(x), block)]
        streamed = np.concatenate(list(extractor.stream(blocks, chunk)))
        assert streamed.shape == whole.shape
        np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-4)


def test_silence_is_the_log_floor():
    np.testing.assert_allclose(frames(np.zeros(800, np.float32), FrameSpec(8000)), -100.0, atol=1e-4)


@pytest.mark.parametrize("kwargs,message", [
    (dict(window_ms=0), "must be > 0"), (dict(hop_ms=-1), "must be > 0"), (dict(features="fbank"), "unknown features"),
    (dict(bins=0), "bins must be"), (dict(bins=200), "mel bands need more"), (dict(window_ms=0.1), "two samples"),
    (dict(fmax_hz=5000), "mel range"),
])
def test_bad_specs(kwargs, message):
    with pytest.raises(InputError, match=message):
        FrameSpec(8000, **kwargs)


def test_spec_round_trips_through_a_dict():
    spec = FrameSpec(8000, 40, 20, "mfcc", 13)
    assert FrameSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError):
        FrameSpec.from_dict({**spec.to_dict(), "colour": "blue"})
