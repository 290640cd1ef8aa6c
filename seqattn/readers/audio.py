"""Audio input: WAV, FLAC, OGG/Vorbis and MP3 files -> mono float32 samples at one sample rate.

Decoding is libsndfile's (through soundfile), which reads WAV/FLAC/OGG and, from libsndfile
1.1 on, MP3.  Every channel count is mixed down to mono (the mean of the channels) and every
sample rate is resampled to the one asked for with soxr's HQ filter, the resampler that
``librosa.resample`` uses by default (so a clip read here equals ``librosa.load(path, sr=...)``
up to float rounding; tests/readers/test_audio.py holds them together).

Audio is read in blocks and resampled with a streaming resampler, so memory does not grow with
the length of the file: ``iter_audio`` yields blocks, and ``read_audio`` is their concatenation
(the streamed and the whole-file results are the same samples).

Every problem with a file is an ``InputError`` whose one-line message names the file: missing,
empty, not audio, truncated (the header promises more audio than the file holds), a header
with impossible values (sample rate, channel count), samples that are not finite or far
outside [-1, 1] (``MAX_ABS_SAMPLE``), or more audio than ``max_audio_seconds()`` (24 hours by
default, ``SEQATTN_MAX_AUDIO_SECONDS`` overrides it).

A WAV written to a pipe (``espeak-ng --stdout``, ``sox ... -t wav -``, ``arecord``, ``ffmpeg ...
-f wav -``) cannot seek back to fill in its sizes and leaves a placeholder in the data chunk
(``STREAM_WAV_SIZES``): such a file is read as the audio that is there, as SoX reads it.
"""

from __future__ import annotations

import os
import re
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from seqattn.errors import InputError

AUDIO_FORMATS = "WAV, FLAC, OGG or MP3"
MIN_SAMPLE_RATE_HZ = 1_000
MAX_SAMPLE_RATE_HZ = 768_000
MAX_CHANNELS = 64
BLOCK_SAMPLES = 1 << 16  # source samples per channel read at a time
# Float files may overshoot [-1, 1] a little; far beyond is corrupt data, whose squares (the power
# spectrum) and resampled values would overflow float32 into inf.
MAX_ABS_SAMPLE = 1e4
# Writers that stream a WAV and cannot seek back leave a placeholder in the data chunk's size
# field: 0; 0x7FFFF000 (SoX's "MS_UNSPEC", copied by espeak-ng); arecord's 2 GiB cap (0x7FFFFF00,
# 0x80000000); 0xFFFFFFFF (ffmpeg, and "-1" in general).  A size of 0 or of at least
# STREAM_WAV_MIN_SIZE on the last chunk of the file means "up to the end of the file".
STREAM_WAV_MIN_SIZE = 0x7FFFF000
DEFAULT_MAX_AUDIO_SECONDS = 24 * 3600.0
MAX_AUDIO_SECONDS_ENV = "SEQATTN_MAX_AUDIO_SECONDS"
_WAV_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says about its audio.

    Attributes:
        path: the file as given.
        format, subtype: libsndfile's names, e.g. "WAV" and "PCM_16".
        sample_rate_hz: the file's own sample rate.
        channels: channel count before mixing to mono.
        samples: samples per channel.
    """

    path: str
    format: str
    subtype: str
    sample_rate_hz: int
    channels: int
    samples: int

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate_hz


@contextmanager
def _quiet_decoder() -> Iterator[None]:
    """Send what the C decoders print on file descriptor 2 to /dev/null meanwhile.

    libmpg123 (MP3 inside libsndfile) writes "Note: Illegal Audio-MPEG-Header ..." straight to
    fd 2 while it probes junk; a file's problems reach the user as our one-line InputError instead.
    """
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 (embedded use): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def max_audio_seconds() -> float:
    """The longest clip a command reads, in seconds: ``SEQATTN_MAX_AUDIO_SECONDS``, else 24 hours.

    Raises:
        InputError: the variable is not a positive number.
    """
    text = os.environ.get(MAX_AUDIO_SECONDS_ENV)
    if text is None:
        return DEFAULT_MAX_AUDIO_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise InputError(f"{MAX_AUDIO_SECONDS_ENV}={text!r} must be a positive number of seconds")
    return value


def stream_wav_sizes(path: str | Path) -> dict[int, bytes] | None:
    """Where a streamed WAV's placeholder sizes are, and the sizes of what the file holds.

    Walks the RIFF chunks up to ``data``; if the data chunk's size is a placeholder (0, or at
    least ``STREAM_WAV_MIN_SIZE``) and differs from the bytes from there to the end of the file,
    returns {byte offset: little-endian uint32} for the RIFF size and the data size; else None
    (not a RIFF/WAVE file, a consistent header, or an ordinary truncated file, which libsndfile
    reports).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        for _ in range(1000):  # a WAV has a handful of chunks; junk must not loop for long
            handle.seek(offset)
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            declared = struct.unpack("<I", chunk[4:])[0]
            if chunk[:4] == b"data":
                present = size - offset - 8
                placeholder = declared == 0 or declared >= STREAM_WAV_MIN_SIZE
                if not placeholder or declared == present or present <= 0:
                    return None
                return {4: struct.pack("<I", min(size - 8, 0xFFFFFFFF)),
                        offset + 4: struct.pack("<I", min(present, 0xFFFFFFFF))}
            offset += 8 + declared + (declared & 1)  # chunks are padded to an even size
    return None


class _PatchedFile:
    """A read-only binary file with some bytes replaced (``patches``: offset -> bytes), for soundfile.

    soundfile reads any object with read/seek/tell through libsndfile's virtual I/O, so a
    streamed WAV reaches libsndfile with the sizes of what it holds: no temporary copy.
    """

    def __init__(self, path: str | Path, patches: dict[int, bytes]):
        self._file = open(path, "rb")  # noqa: SIM115 - closed by _open's context
        self._patches = patches

    def read(self, n: int = -1) -> bytes:
        start = self._file.tell()
        data = bytearray(self._file.read(n))
        for offset, value in self._patches.items():
            for k, byte in enumerate(value):
                if start <= offset + k < start + len(data):
                    data[offset + k - start] = byte
        return bytes(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


@contextmanager
def _open(path: str | Path):
    """Open ``path`` with soundfile after checking that it is a non-empty file; closed on exit.

    A streamed WAV (``stream_wav_sizes``) is read with the sizes of what it holds.
    Raises:
        InputError: missing, a directory, empty, or not decodable audio.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file, no audio")
    try:
        patches = stream_wav_sizes(path)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    source = _PatchedFile(path, patches) if patches else None
    try:
        try:
            with _quiet_decoder():
                handle = sf.SoundFile(source if source is not None else str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            reason = str(err).split(": ", 1)[-1] if ": " in str(err) else str(err)
            if "does not exist" in reason:  # libsndfile's words when its MP3 probe gives up on junk
                reason = "unrecognised or damaged data"
            raise InputError(f"{path}: not readable as {AUDIO_FORMATS} audio ({reason.strip()})") from None
        with handle:
            yield handle
    finally:
        if source is not None:
            source.close()


def _check_header(handle, path: str | Path) -> AudioInfo:
    """Validate what the header declares and return it as an ``AudioInfo``.

    Raises:
        InputError: an impossible sample rate or channel count, no samples, more than
            ``max_audio_seconds()``, or a WAV whose data chunk declares more bytes than the file
            holds (truncated, or a corrupt size field).
    """
    info = AudioInfo(str(path), handle.format, handle.subtype, int(handle.samplerate), int(handle.channels),
                     int(handle.frames))
    if not MIN_SAMPLE_RATE_HZ <= info.sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
        raise InputError(f"{path}: header declares a sample rate of {info.sample_rate_hz} Hz, outside "
                         f"{MIN_SAMPLE_RATE_HZ}..{MAX_SAMPLE_RATE_HZ} Hz (corrupt header?)")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise InputError(f"{path}: header declares {info.channels} channels, outside 1..{MAX_CHANNELS} "
                         "(corrupt header?)")
    if info.format in ("WAV", "WAVEX", "RF64", "W64"):
        # libsndfile quietly reads what is there when the data chunk is cut short; we say so.
        found = _WAV_DATA_SIZE.search(handle.extra_info)
        if found:
            declared, present = int(found.group(1)), int(found.group(2))
            if declared > present:
                raise InputError(f"{path}: truncated or corrupt WAV: the header declares {declared:,} bytes of "
                                 f"audio, the file holds {present:,}")
    if info.samples <= 0:
        raise InputError(f"{path}: no audio samples (a header without data)")
    limit = max_audio_seconds()
    if info.duration_s > limit:
        raise InputError(f"{path}: {info.duration_s:,.0f} s of audio, more than the {limit:,.0f} s a command "
                         f"reads (set {MAX_AUDIO_SECONDS_ENV} to allow more)")
    return info


def audio_info(path: str | Path) -> AudioInfo:
    """Read and validate a file's header without decoding its audio.

    Raises:
        InputError: see the module docstring.
    """
    with _open(path) as handle:
        return _check_header(handle, path)


def iter_audio(path: str | Path, sample_rate_hz: int | None = None,
               block_samples: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """Decode a file block by block: mono float32 samples at ``sample_rate_hz``.

    Args:
        sample_rate_hz: resample to this rate (soxr HQ, streaming); None keeps the file's rate.
        block_samples: source samples per channel per block (memory is O(block_samples * channels)).
    Yields:
        1-D float32 arrays in [-1, 1] (for integer formats); their concatenation is the clip.
        Blocks may be empty while the resampler fills its filter.
    Raises:
        InputError: see the module docstring; a decoding error or short read names the sample
            offset where the file stopped making sense.
    """
    import soundfile as sf

    with _open(path) as handle:
        info = _check_header(handle, path)
        stream = None
        if sample_rate_hz is not None and sample_rate_hz != info.sample_rate_hz:
            import soxr

            stream = soxr.ResampleStream(info.sample_rate_hz, sample_rate_hz, 1, dtype="float32", quality="HQ")
        done = 0
        while True:
            try:
                with _quiet_decoder():
                    block = handle.read(block_samples, dtype="float32", always_2d=True)  # (n, channels)
            except (sf.LibsndfileError, RuntimeError) as err:
                raise InputError(f"{path}: corrupt audio after sample {done:,} ({err})") from None
            last = len(block) < block_samples
            if not np.isfinite(block).all():  # before mixing: inf - inf would warn and hide where
                bad = done + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
                raise InputError(f"{path}: sample {bad:,} is not a finite number (corrupt float audio)")
            if block.size and np.abs(block).max() > MAX_ABS_SAMPLE:  # only float files can get here
                bad = done + int(np.flatnonzero((np.abs(block) > MAX_ABS_SAMPLE).any(axis=1))[0])
                raise InputError(f"{path}: sample {bad:,} is {float(np.abs(block).max()):.3g} in magnitude; float "
                                 f"audio lies within [-1, 1] (corrupt float audio?)")
            mono = block[:, 0] if info.channels == 1 else block.mean(axis=1, dtype=np.float32)
            done += len(block)
            if stream is not None:
                mono = stream.resample_chunk(np.ascontiguousarray(mono), last=last)
            yield mono
            if last:
                break
        if done < info.samples:
            raise InputError(f"{path}: truncated: the header declares {info.samples:,} samples, "
                             f"the file holds {done:,}")


def resampled_length(samples: int, from_hz: int, to_hz: int | None) -> int:
    """Samples that ``iter_audio`` yields for a clip of ``samples`` at ``from_hz`` resampled to ``to_hz``.

    soxr rounds half up: floor(samples * to_hz / from_hz + 1/2), in exact integer arithmetic.
    """
    if to_hz is None or to_hz == from_hz:
        return samples
    return (2 * samples * to_hz + from_hz) // (2 * from_hz)


def read_audio(path: str | Path, sample_rate_hz: int | None = None) -> tuple[np.ndarray, AudioInfo]:
    """The whole clip as mono float32 samples at ``sample_rate_hz`` (None: the file's rate).

    Shapes:
        -> samples (T,) float32, T = the clip's length at the output rate; and the header info.
    Raises:
        InputError: see ``iter_audio``.
    """
    info = audio_info(path)
    blocks = list(iter_audio(path, sample_rate_hz))
    return (np.concatenate(blocks) if blocks else np.zeros(0, np.float32)), info
