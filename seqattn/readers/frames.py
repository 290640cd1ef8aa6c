"""Framing and features: samples -> a sequence of frame vectors (log-mel or MFCC), (N, bins).

The lecture's speech input: a 25 ms window every 10 ms turns one second of audio into 100
vectors.  The conventions, chosen to agree with librosa's on the same settings
(tests/readers/test_frames.py compares them):

Frame-count convention (Kaldi's ``snip_edges``, librosa's ``center=False``)
    With W = round(window_ms * sample_rate_hz / 1000) samples per frame and
    H = round(hop_ms * sample_rate_hz / 1000) samples of shift, frame i covers samples
    [i*H, i*H + W) and only whole frames count: N = 1 + (T - W) // H for T >= W samples, and
    a clip shorter than one window has no frames at all (an error for the commands).
    Frame i is centred at (i*H + W/2) / sample_rate_hz seconds.

Features of one frame
    power spectrum |rfft(hann(W) * x)|^2 with n_fft = W (periodic Hann, no zero padding), then
    ``bands`` triangular mel filters (Slaney's mel scale and area normalisation, librosa's
    default) between fmin_hz and fmax_hz, then 10 log10(max(power, 1e-10)) in dB:
    ``librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=sr, n_fft=W, hop_length=H,
    center=False, n_mels=bands), top_db=None)``.  (No ``top_db`` clipping: it depends on the
    loudest frame of the whole clip, and features must be computable chunk by chunk.)
    MFCC: the first ``bins`` coefficients of the orthonormal DCT-II of those log-mel values
    (``librosa.feature.mfcc(S=logmel_db, n_mfcc=bins)``).

The filterbank and DCT are built here with numpy so that ``seqattn frames`` need not import
librosa (about 2 s of numba start-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from seqattn.models.config import Config, ConfigError, bounded
from seqattn.readers.audio import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ

FEATURES: tuple[str, ...] = ("logmel", "mfcc")
MAX_FRAME_MS = 10_000.0  # longer frames are no speech features, and would allocate gigabytes
AMIN = 1e-10  # power floor before the logarithm (librosa's amin): -100 dB
MFCC_MEL_BANDS = 40  # mel bands an MFCC is computed from, unless more coefficients are asked for
MAX_BINS = 4_096  # values per frame: more would be no speech feature, and a filterbank of gigabytes


@dataclass(frozen=True)
class FrameSpec(Config):
    """How samples become frame vectors; a speech model stores its spec and insists on it.

    Raises (constructor, ``from_dict``):
        ConfigError (an InputError): non-positive window or hop, a window shorter than 2 samples,
            an unknown feature kind, or more mel bands than the frame's spectrum has bins.
    """

    sample_rate_hz: int  # samples per second of the audio being framed
    # frame length and shift; NaN and infinity reach check(), whose message names --window and --hop
    window_ms: float = bounded(25.0, finite=False)
    hop_ms: float = bounded(10.0, finite=False)
    features: str = "logmel"  # "logmel" or "mfcc"
    bins: int = bounded(40, min=1, max=MAX_BINS)  # values per frame: mel bands (logmel) or cepstral coefficients (mfcc)
    fmin_hz: float = 0.0  # lowest mel filter edge
    fmax_hz: float | None = None  # highest mel filter edge; None = sample_rate_hz / 2

    def check(self) -> None:
        # Whole sentences rather than field rules: these are also the messages of --window, --hop ...
        if self.features not in FEATURES:
            raise ConfigError(f"unknown features {self.features!r}; expected one of {', '.join(FEATURES)}")
        if not MIN_SAMPLE_RATE_HZ <= self.sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
            raise ConfigError(f"sample rate must be {MIN_SAMPLE_RATE_HZ}..{MAX_SAMPLE_RATE_HZ} Hz, "
                              f"got {self.sample_rate_hz}")
        if not (0 < self.window_ms <= MAX_FRAME_MS and 0 < self.hop_ms <= MAX_FRAME_MS):  # NaN fails too
            raise ConfigError(f"frame length and shift must be > 0 and <= {MAX_FRAME_MS:g} ms, "
                              f"got window {self.window_ms} ms, hop {self.hop_ms} ms")
        if self.window_samples < 2 or self.hop_samples < 1:
            raise ConfigError(f"a {self.window_ms} ms window with a {self.hop_ms} ms hop at {self.sample_rate_hz} Hz "
                              "is less than two samples per frame")
        if self.mel_bands > self.n_fft // 2 + 1:
            raise ConfigError(f"{self.mel_bands} mel bands need more than the {self.n_fft // 2 + 1} frequency bins "
                              f"of a {self.window_ms} ms frame at {self.sample_rate_hz} Hz; use fewer --bins or a "
                              "longer window")
        top = self.sample_rate_hz / 2 if self.fmax_hz is None else self.fmax_hz
        if not 0 <= self.fmin_hz < top <= self.sample_rate_hz / 2:
            raise ConfigError(f"mel range {self.fmin_hz}..{top} Hz must lie within 0..{self.sample_rate_hz / 2} Hz")

    @property
    def window_samples(self) -> int:
        """W, samples per frame."""
        return int(round(self.window_ms * self.sample_rate_hz / 1000))

    @property
    def hop_samples(self) -> int:
        """H, samples between the starts of consecutive frames."""
        return int(round(self.hop_ms * self.sample_rate_hz / 1000))

    @property
    def n_fft(self) -> int:
        """FFT size: the frame itself, no zero padding (librosa's n_fft = win_length = W)."""
        return self.window_samples

    @property
    def mel_bands(self) -> int:
        """Mel filters: ``bins`` for log-mel; max(40, bins) for MFCC."""
        return self.bins if self.features == "logmel" else max(MFCC_MEL_BANDS, self.bins)

    def frame_count(self, n_samples: int) -> int:
        """N = 1 + (T - W) // H frames for T >= W samples, else 0 (see the module docstring)."""
        return 0 if n_samples < self.window_samples else 1 + (n_samples - self.window_samples) // self.hop_samples

    def centre_s(self, frame: int | np.ndarray) -> float | np.ndarray:
        """Time in seconds at the centre of frame ``frame``: (i*H + W/2) / sample_rate_hz."""
        return (frame * self.hop_samples + self.window_samples / 2) / self.sample_rate_hz


# --------------------------------------------------------------------------- mel scale (Slaney)

_F_SP = 200.0 / 3  # Hz per mel below 1 kHz (linear part)
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0  # log part: 27 mels per factor 6.4 in frequency


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale (Auditory Toolbox; librosa ``htk=False``): linear below 1 kHz, log above."""
    hz = np.asanyarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    log_part = hz >= _MIN_LOG_HZ
    return np.where(log_part, _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    mel = np.asanyarray(mel, dtype=np.float64)
    return np.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


def mel_filterbank(sample_rate_hz: int, n_fft: int, bands: int, fmin_hz: float = 0.0,
                   fmax_hz: float | None = None) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation (== ``librosa.filters.mel``).

    Filter m rises from mel point m to m+1 and falls to m+2, points evenly spaced on the mel
    scale; each is scaled by 2 / (f_{m+2} - f_m) so that all have the same area.

    Shapes:
        -> (bands, n_fft // 2 + 1) float32
    """
    fmax_hz = sample_rate_hz / 2 if fmax_hz is None else fmax_hz
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)  # (n_fft//2 + 1,)
    points_hz = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), bands + 2))
    widths = np.diff(points_hz)
    ramps = points_hz[:, None] - fft_hz[None, :]  # (bands + 2, bins)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (points_hz[2:] - points_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix (scipy's ``dct(type=2, norm="ortho")``, rows 0..n_out-1).

    c_k = sqrt(2/n) sum_m x_m cos(pi k (2m + 1) / (2n)), with c_0 scaled by 1/sqrt(2).

    Shapes:
        -> (n_in, n_out) float32, so that coefficients = logmel @ matrix.
    """
    m = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(np.pi * k * (2 * m + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


# --------------------------------------------------------------------------- features


class FeatureExtractor:
    """Frame vectors of a spec, with its window, filterbank and DCT computed once.

    ``extractor(samples)`` frames a clip; ``extractor.stream(blocks)`` frames a stream of
    sample blocks with the same result, holding only one block of frames in memory.

    Shapes:
        samples: (T,) float32  ->  (N, bins) float32, N = spec.frame_count(T)
    """

    def __init__(self, spec: FrameSpec):
        self.spec = spec
        n = spec.window_samples
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic Hann
        self.filterbank_t = mel_filterbank(spec.sample_rate_hz, spec.n_fft, spec.mel_bands, spec.fmin_hz,
                                           spec.fmax_hz).T.copy()  # (n_fft//2 + 1, bands)
        self.dct = dct_matrix(spec.mel_bands, spec.bins) if spec.features == "mfcc" else None

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        from scipy import fft  # pocketfft with float32 kernels; 3-4x numpy.fft on 200-point frames

        spec = self.spec
        samples = np.asarray(samples, dtype=np.float32)
        n_frames = spec.frame_count(len(samples))
        if n_frames == 0:
            return np.zeros((0, spec.bins), np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(samples, spec.window_samples)[
            :: spec.hop_samples][:n_frames]  # (N, W), a view
        spectrum = fft.rfft(frames * self.window, axis=-1)  # (N, W//2 + 1) complex64
        power = spectrum.real ** 2 + spectrum.imag ** 2
        mel = power @ self.filterbank_t  # (N, bands)
        logmel = 10.0 * np.log10(np.maximum(mel, AMIN))
        return logmel if self.dct is None else logmel @ self.dct  # (N, bins)

    def stream(self, blocks: Iterable[np.ndarray], frames_per_chunk: int = 4096) -> Iterator[np.ndarray]:
        """Frame a stream of sample blocks; yields consecutive (n, bins) chunks of frames.

        The chunks concatenate to ``self(np.concatenate(blocks))``: frame i is computed from the
        same W samples either way.  Chunks hold ``frames_per_chunk`` frames, except the last.
        """
        spec = self.spec
        need = (frames_per_chunk - 1) * spec.hop_samples + spec.window_samples  # samples of one chunk
        buffer = np.zeros(0, np.float32)
        for block in blocks:
            buffer = np.concatenate([buffer, block]) if len(buffer) else np.asarray(block, np.float32)
            while len(buffer) >= need:
                yield self(buffer[:need])
                buffer = buffer[frames_per_chunk * spec.hop_samples:]
        if spec.frame_count(len(buffer)):
            yield self(buffer)


def frames(samples: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """Frame vectors of a clip (see the module docstring for the conventions).

    Shapes:
        samples: (T,) float32  ->  (N, spec.bins) float32, N = 1 + (T - W) // H (0 if T < W)
    """
    return FeatureExtractor(spec)(samples)
