"""Reading audio files: formats, sample rates, channels, and one clear error per broken file."""

import numpy as np
import pytest
import soundfile as sf

from seqattn.errors import InputError
from seqattn.readers.audio import audio_info, iter_audio, read_audio, resampled_length


def tone(seconds: float, sample_rate_hz: int, hz: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate_hz)) / sample_rate_hz
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,suffix", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")])
def test_formats_decode_to_mono_float32(tmp_path, fmt, suffix):
    path = tmp_path / f"tone.{suffix}"
    sf.write(path, tone(0.5, 8000), 8000, format=fmt)
    samples, info = read_audio(path)
    assert info.sample_rate_hz == 8000 and info.channels == 1 and info.format == fmt
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 4000) <= 1200  # lossy codecs may pad a little
    assert 0.3 < np.abs(samples).max() < 0.7


def test_channels_are_mixed_to_mono(tmp_path):
    left, right = tone(0.2, 8000, 300), tone(0.2, 8000, 500)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], 1), 8000, subtype="FLOAT")
    samples, info = read_audio(tmp_path / "stereo.wav")
    assert info.channels == 2
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-6)


def test_resampling_agrees_with_librosa_and_streams(tmp_path):
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(44100)).astype(np.float32) + tone(1.0, 44100, 1000)
    sf.write(tmp_path / "cd.wav", x, 44100, subtype="FLOAT")
    samples, info = read_audio(tmp_path / "cd.wav", 8000)
    expected = librosa.resample(x, orig_sr=44100, target_sr=8000)
    assert info.sample_rate_hz == 44100 and len(samples) == len(expected) == 8000
    np.testing.assert_allclose(samples, expected, atol=1e-5)
    streamed = np.concatenate(list(iter_audio(tmp_path / "cd.wav", 8000, block_samples=997)))
    np.testing.assert_array_equal(streamed, samples)


def test_info_reads_the_header(tmp_path):
    sf.write(tmp_path / "a.flac", tone(1.5, 16000), 16000)
    info = audio_info(tmp_path / "a.flac")
    assert (info.sample_rate_hz, info.samples, info.duration_s) == (16000, 24000, 1.5)


def wav_bytes(tmp_path) -> bytes:
    sf.write(tmp_path / "ok.wav", tone(0.3, 8000), 8000, subtype="PCM_16")
    return (tmp_path / "ok.wav").read_bytes()


@pytest.mark.parametrize("make,message", [
    (lambda d, ok: b"", "empty file"),
    (lambda d, ok: b"RIFF\x00\x00", "not readable"),
    (lambda d, ok: bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)), "not readable"),
    (lambda d, ok: ok[: len(ok) // 2], "truncated"),
    (lambda d, ok: ok[:44], "truncated"),
    # a data chunk that claims 2 GB in a 5 kB file
    (lambda d, ok: ok[:40] + (0x7FFF0000).to_bytes(4, "little") + ok[44:], "header declares 2,147,418,112 bytes"),
    # a sample rate of 1 Hz in the fmt chunk
    (lambda d, ok: ok[:24] + (1).to_bytes(4, "little") + ok[28:], "sample rate of 1 Hz"),
])
def test_broken_files_are_one_input_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "broken.wav"
    path.write_bytes(make(tmp_path, wav_bytes(tmp_path)))
    with pytest.raises(InputError, match=message) as err:
        read_audio(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(InputError, match="not a file"):
        read_audio(tmp_path)


def test_non_finite_samples_are_rejected(tmp_path):
    x = tone(0.2, 8000)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="sample 100 is not a finite number"):
        read_audio(tmp_path / "nan.wav")


@pytest.mark.parametrize("samples,from_hz,to_hz", [(15, 48000, 8000), (29, 16000, 8000), (44101, 44100, 8000),
                                                  (1000, 8000, 8000), (777, 11025, 8000), (100, 8000, 22050)])
def test_resampled_length_predicts_the_stream(tmp_path, samples, from_hz, to_hz):
    x = (0.1 * np.random.default_rng(samples).standard_normal(samples)).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, from_hz, subtype="FLOAT")
    assert len(read_audio(tmp_path / "x.wav", to_hz)[0]) == resampled_length(samples, from_hz, to_hz)
