"""Property tests (hypothesis) for the audio reader: any bytes, and real files cut short or with
damaged headers, either decode to finite mono samples or raise the project's own InputError
naming the file.  (benchmarks/fuzz.py runs the same idea over 10,000+ inputs.)"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings, strategies as st

from seqattn.errors import InputError
from seqattn.readers.audio import read_audio

CI = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _encoded(fmt: str, subtype: str | None, channels: int) -> bytes:
    rng = np.random.default_rng(0)
    samples = (0.3 * rng.standard_normal((2000, channels))).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, samples, 8000, format=fmt, subtype=subtype)
    return buffer.getvalue()


# Real files as libsndfile writes them: the corruption strategies below start from these.
VALID = {name: _encoded(*spec) for name, spec in {
    "pcm16.wav": ("WAV", "PCM_16", 1), "float.wav": ("WAV", "FLOAT", 2), "ulaw.wav": ("WAV", "ULAW", 1),
    "clip.flac": ("FLAC", "PCM_16", 1), "clip.ogg": ("OGG", "VORBIS", 1)}.items()}


def _read_or_input_error(data: bytes, name: str, sample_rate_hz: int | None = None) -> np.ndarray | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            samples, info = read_audio(path, sample_rate_hz)
        except InputError as err:
            assert str(err).startswith(str(path)), err
            assert "\n" not in str(err)
            return None
    assert samples.dtype == np.float32 and samples.ndim == 1 and np.isfinite(samples).all()
    assert info.channels >= 1 and info.sample_rate_hz > 0
    return samples


@CI
@given(st.binary(max_size=2048), st.sampled_from(["x.wav", "x.flac", "x.ogg", "x.mp3", "x"]))
def test_any_bytes_decode_or_raise_input_error(data, name):
    _read_or_input_error(data, name)


@CI
@given(st.sampled_from(sorted(VALID)), st.floats(0, 1), st.sampled_from([None, 16000]))
def test_truncated_files_decode_or_raise_input_error(name, keep, rate):
    data = VALID[name]
    _read_or_input_error(data[: int(len(data) * keep)], name, rate)


@CI
@given(st.sampled_from(sorted(VALID)),
       st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), min_size=1, max_size=8))
def test_damaged_headers_decode_or_raise_input_error(name, edits):
    """Overwrite bytes in the first 80 (RIFF sizes, format tag, channels, rate, bits, chunk sizes)."""
    data = bytearray(VALID[name])
    for position, value in edits:
        data[position % len(data)] = value
    _read_or_input_error(bytes(data), name)


@CI
@given(st.sampled_from(["pcm16.wav", "float.wav"]), st.sampled_from([4, 22, 24, 28, 32, 34, 40]),
       st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
def test_impossible_header_fields_raise_input_error_or_read(name, offset, value):
    """Huge or zero sizes, rates and channel counts in a canonical 44-byte WAV header."""
    data = bytearray(VALID[name])
    width = 2 if offset in (22, 32, 34) else 4
    data[offset:offset + width] = (value & (0xFFFF if width == 2 else 0xFFFFFFFF)).to_bytes(width, "little")
    _read_or_input_error(bytes(data), name)


def test_the_valid_files_do_decode():
    for name, data in VALID.items():
        samples = _read_or_input_error(data, name)
        assert samples is not None and len(samples) > 1000, name


def test_non_finite_float_samples_are_an_input_error(tmp_path):
    samples = np.zeros(1000, np.float32)
    samples[500] = np.nan
    sf.write(tmp_path / "nan.wav", samples, 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="sample 500 is not a finite number"):
        read_audio(tmp_path / "nan.wav")


def test_float_samples_far_outside_the_unit_range_are_an_input_error(tmp_path):
    """Found by benchmarks/fuzz.py: 2.5e38 is finite, but its resampled and squared values are not."""
    samples = np.zeros((1000, 2), np.float32)
    samples[700, 1] = 2.5e38
    sf.write(tmp_path / "huge.wav", samples, 8000, subtype="FLOAT")
    for rate in (None, 16000):
        with pytest.raises(InputError, match="sample 700 is 2.5e"):
            read_audio(tmp_path / "huge.wav", rate)
    samples[700, 1] = 1.5  # a little overshoot is audio
    sf.write(tmp_path / "loud.wav", samples, 8000, subtype="FLOAT")
    assert read_audio(tmp_path / "loud.wav")[0].max() == pytest.approx(0.75)


def test_the_mp3_decoder_says_nothing_on_stderr(tmp_path, capfd):
    """libmpg123 prints "Note: Illegal Audio-MPEG-Header" to fd 2 while probing junk (found by fuzzing)."""
    (tmp_path / "junk.mp3").write_bytes(bytes.fromhex("fff3017d") + bytes(500))
    with pytest.raises(InputError, match="not readable as .* audio \\(unrecognised or damaged data\\)"):
        read_audio(tmp_path / "junk.mp3")
    assert capfd.readouterr().err == ""
