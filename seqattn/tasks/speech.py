"""Speech as a library: load speech models, recognise clips of any length, evaluate.

A clip flows one way: file -> mono samples at the model's rate (seqattn.readers.audio) ->
frame vectors (seqattn.readers.frames) -> the model, chunk by chunk -> three decoders:
the class (attention pooling, accumulated over chunks), the segments (runs of frame tags) and
the transcript (greedy CTC).  Training lives in seqattn.tasks.speech_training.  These
functions never print.

Long audio
    The frames are processed in chunks of ``chunk_frames`` output frames; each chunk is run
    with ``receptive_field()`` extra frames on either side (the conv's half-width plus
    stride x L x w, rounded up to whole steps) and starts on a step boundary, so every output
    sees exactly the inputs it would see in one pass over the whole clip.  Memory is
    O(chunk_frames + receptive field) frames however long the file is.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from seqattn.errors import InputError
from seqattn.heads.classification import PoolingAccumulator
from seqattn.heads.ctc import BLANK, collapse
from seqattn.models.device import resolve_device
from seqattn.models.io import read_model
from seqattn.models.speech import SILENCE, SpeechConfig, SpeechModel
from seqattn.readers.audio import audio_info, iter_audio, resampled_length
from seqattn.readers.frames import FeatureExtractor, FrameSpec
from seqattn.tasks.scoring import edit_distance

TASK = "speech"
CHUNK_FRAMES = 8192  # output frames per model call on long audio (82 s at a 10 ms hop)
ATTENTION_ROWS = 40  # time rows of the attention view
MIN_SEGMENT_S = 0.15  # shorter frame-tag runs join a neighbour (a spoken digit lasts 0.2 s or more)


# --------------------------------------------------------------------------- results


@dataclass
class Segment:
    """A run of frames with the same frame tag: [start_s, end_s) seconds, label, mean confidence."""

    start_s: float
    end_s: float
    label: str
    confidence: float


@dataclass
class AttentionView:
    """Banded attention over time, for drawing: rows are time bins, columns offsets j - i.

    ``rows[r][s]`` is the mean weight (over the steps of bin r, and over the heads unless
    ``head`` is given) on the key at offset s - window steps from the query.  Each row sums to 1
    (less at the clip's edges).  For rollout through layer l (``kind`` "rollout") the band is
    (l + 1) w wide: after l + 1 layers a step has heard from that far and no further.
    """

    layer: int
    window: int  # half-width of the band, in steps (w for raw weights; (layer + 1) w for rollout)
    bin_steps: int  # attention steps averaged into one row
    bin_s: float  # seconds per row
    rows: list[list[float]]
    head: int | None = None  # None: the mean of the heads
    kind: str = "raw"  # "raw" or "rollout" (seqattn.analysis.rollout)
    start_s: float = 0.0  # where the first row starts (row r covers start_s + r * bin_s ...)


@dataclass
class SpeechResult:
    """What ``recognise`` says about one clip."""

    file: str
    duration_s: float  # of the file, at its own sample rate
    sample_rate_hz: int  # the file's own sample rate
    channels: int
    frames: int  # frame vectors the model read
    label: str  # the class (N -> 1)
    confidence: float  # its softmax probability
    transcript: list[str]  # the label sequence (CTC, N -> M)
    segments: list[Segment]  # frame tags as time segments (N -> N), silence included
    attention: AttentionView | None = None  # the first of attention_views (the one asked for, usually)
    seconds: float = 0.0  # wall-clock time of recognition
    attention_views: list[AttentionView] = field(default_factory=list)  # one per (layer, head) asked for


# --------------------------------------------------------------------------- loading


class LoadedSpeechModel:
    """A speech model ready to use: model in eval mode, its config and metadata.

    Raises (via ``load_speech_model``):
        ModelError: see ``seqattn.models.io.read_model_dir``.
    """

    def __init__(self, model: SpeechModel, meta: dict, path: Path):
        self.model, self.meta, self.path = model.eval(), meta, path
        self.device = next(model.parameters()).device  # where it runs (seqattn.models.device)
        self.cfg: SpeechConfig = model.cfg
        self.extractor = FeatureExtractor(self.cfg.frames)

    @property
    def spec(self) -> FrameSpec:
        return self.cfg.frames

    def check_framing(self, window_ms: float | None, hop_ms: float | None) -> None:
        """Refuse frame settings other than the model's own.

        Raises:
            InputError: ``window_ms`` or ``hop_ms`` differs from the model's (names both values).
        """
        spec = self.spec
        window_ms = spec.window_ms if window_ms is None else window_ms
        hop_ms = spec.hop_ms if hop_ms is None else hop_ms
        if (window_ms, hop_ms) != (spec.window_ms, spec.hop_ms):
            raise InputError(
                f"model {self.path.name!r} was trained on {spec.window_ms:g} ms frames every {spec.hop_ms:g} ms "
                f"(--window {spec.window_ms:g} --hop {spec.hop_ms:g}); got --window {window_ms:g} --hop {hop_ms:g}. "
                "Train a model for other settings with 'seqattn train speech --window ... --hop ...'")

    def label_of(self, output_id: int) -> str:
        """Frame-tag / CTC id -> label (0 is silence for tags)."""
        return self.cfg.silence if output_id == SILENCE else self.cfg.labels[output_id - 1]


def load_speech_model(name_or_path: str | Path = "digits", device: str = "cpu") -> LoadedSpeechModel:
    """Load a shipped speech model by name or a trained one from its directory.

    Args:
        device: "cpu", "cuda", "cuda:N" or "auto" (seqattn.models.device).
    Raises:
        ModelError: missing, incomplete, damaged or non-speech model directory.
        InputError: an unknown device, or a GPU torch does not see.
    """
    place = resolve_device(device)
    path, meta, _, model = read_model(name_or_path, TASK, SpeechConfig, SpeechModel, "a speech model")
    return LoadedSpeechModel(model.to(place), meta, path)


# --------------------------------------------------------------------------- chunked inference


@dataclass
class ChunkOutput:
    """Model outputs for frames [start, start + n) of a clip, i.e. steps [step_start, step_start + m).

    Shapes:
        frame_logits: (n, K + 1), a row per frame; ctc_logits: (m, K + 1), pool_scores: (m,),
        hidden: (m, d_model) and weights: L tensors (H, m, 2w + 1) when asked for, a row per step.
    """

    start: int
    step_start: int
    frame_logits: torch.Tensor
    ctc_logits: torch.Tensor
    pool_scores: torch.Tensor
    hidden: torch.Tensor
    weights: list[torch.Tensor] | None = None


def iter_chunk_outputs(model: SpeechModel, feature_chunks: Iterable[np.ndarray], chunk_frames: int = CHUNK_FRAMES,
                       with_weights: bool = False, workers: int | None = None,
                       rollout: bool = False) -> Iterator[ChunkOutput]:
    """Run ``model`` over a stream of frame vectors, ``chunk_frames`` output frames at a time.

    Each call sees the output frames plus R context frames on either side (R =
    ``receptive_field()`` rounded up to whole steps; fewer at the clip's ends, exactly as a
    whole-clip pass would), and every call starts on a step boundary, so the outputs equal
    those of one call on the whole clip up to float rounding (tests/tasks/test_speech.py).
    ``chunk_frames`` is rounded up to a whole number of steps.

    The calls are independent, so up to ``workers`` of them run at once on a thread pool (torch
    releases the GIL inside its operators); outputs still come in order, and at most
    ``workers + 1`` chunks are in memory.  With this small model one call per core is about
    1.5x faster than one call at a time using every core (docs/performance.md).  The model runs
    where its weights are; outputs come back on the CPU.

    With ``rollout`` the weights are the attention rollout through each layer instead
    (seqattn.analysis.rollout), computed over the whole call, context included: rollout through
    l layers reaches l * w steps, within the L * w steps of context, so a chunk's rows equal
    those of one pass over the whole clip.

    Args:
        workers: concurrent model calls; default ``torch.get_num_threads()`` on the CPU, 1 on a
            GPU (1 = no pool).
    Shapes:
        feature_chunks: consecutive (n_i, bins) arrays  ->  ChunkOutputs covering frames 0..N-1
        weights with ``rollout``: L tensors (1, m, 2 l w + 1) for l = 1..L (one "head": the mean)
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    device = next(model.parameters()).device
    if workers is None:
        workers = torch.get_num_threads() if device.type == "cpu" else 1
    workers = max(1, workers)
    jobs = _chunk_jobs(model.cfg, feature_chunks, -(-chunk_frames // model.cfg.stride) * model.cfg.stride)

    def run(job: tuple) -> ChunkOutput:
        x, start, frames, steps = job
        with torch.inference_mode():
            out = model(x.to(device), return_weights=with_weights or rollout)
            h = out["hidden"][0, steps]
            weights = out["weights"] if with_weights or rollout else None
            if rollout:
                from seqattn.analysis.rollout import attention_rollout

                weights = [r[:, None] for r in attention_rollout(weights, model.cfg.encoder.window)]  # (1, 1, M, K)
            return ChunkOutput(start, start // model.cfg.stride, out["frame_logits"][0, frames].cpu(),
                               out["ctc_logits"][0, steps].cpu(), model.class_head.scores(h).cpu(), h.cpu(),
                               [w[0, :, steps].cpu() for w in weights] if weights is not None else None)

    if workers == 1:
        yield from map(run, jobs)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="seqattn-speech") as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(run, job))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _chunk_jobs(cfg: SpeechConfig, feature_chunks: Iterable[np.ndarray], chunk_frames: int) -> Iterator[tuple]:
    """The model calls of ``iter_chunk_outputs``: (x (1, n, bins), first output frame, frame slice, step slice)."""
    stride = cfg.stride
    context = -(-cfg.receptive_field() // stride) * stride
    buffer = np.zeros((0, cfg.frames.bins), np.float32)
    buffer_start = 0  # absolute frame index of buffer[0], always a multiple of the stride
    done = 0  # output frames emitted so far, a multiple of the stride until the last chunk

    def job(stop: int, end: int) -> tuple:
        # Output frames [done, stop) computed from input frames [first, end) of the buffer.
        first = max(buffer_start, done - context)
        x = torch.from_numpy(np.array(buffer[first - buffer_start: end - buffer_start]))[None]  # a copy
        return (x, done, slice(done - first, stop - first),
                slice((done - first) // stride, -(-(stop - first) // stride)))

    for chunk in feature_chunks:
        buffer = np.concatenate([buffer, chunk]) if len(buffer) else np.asarray(chunk, np.float32)
        end = buffer_start + len(buffer)
        while end - done >= chunk_frames + context:
            yield job(done + chunk_frames, done + chunk_frames + context)
            done += chunk_frames
            drop = max(0, done - context - buffer_start)
            buffer, buffer_start = buffer[drop:], buffer_start + drop
    end = buffer_start + len(buffer)
    while done < end:
        stop = min(end, done + chunk_frames)
        yield job(stop, min(end, stop + context))
        done = stop


# --------------------------------------------------------------------------- decoders


class SegmentBuilder:
    """Runs of equal frame tags -> ``Segment``s, fed chunk by chunk.

    Frame i owns [centre_i - hop/2, centre_i + hop/2) seconds (centre_i = (i*H + W/2) / rate),
    except that the first frame's time starts at 0 and the last frame's ends where its window
    ends, so the segments tile the framed part of the clip without gaps.  Times are rounded to
    0.1 ms.
    """

    def __init__(self, spec: FrameSpec, label_of: Callable[[int], str]):
        self.spec, self.label_of = spec, label_of
        self.segments: list[Segment] = []
        self._id, self._start, self._confidences = None, 0, 0.0
        self._frames = 0

    def _edge_s(self, frame: int, last: bool = False) -> float:
        """Time of the boundary before ``frame`` (after the last frame when ``last``)."""
        spec = self.spec
        if frame == 0:
            return 0.0
        if last:
            return round(((frame - 1) * spec.hop_samples + spec.window_samples) / spec.sample_rate_hz, 4)
        return round((frame * spec.hop_samples + (spec.window_samples - spec.hop_samples) / 2) / spec.sample_rate_hz, 4)

    def _close(self, end: int, last: bool = False) -> None:
        if self._id is not None:
            n = end - self._start
            self.segments.append(Segment(self._edge_s(self._start), self._edge_s(end, last),
                                         self.label_of(self._id), round(self._confidences / n, 4)))

    def add(self, start: int, frame_logits: torch.Tensor) -> None:
        """Shapes: frame_logits (n, K + 1) for frames [start, start + n)."""
        probs = torch.softmax(frame_logits.float(), dim=-1)
        best, ids = probs.max(dim=-1)
        ids_list, best_list = ids.tolist(), best.tolist()
        # Runs inside the chunk, found with numpy, then joined to the open run.
        changes = np.flatnonzero(np.diff(np.asarray(ids_list))) + 1
        bounds = [0, *changes.tolist(), len(ids_list)]
        sums = np.add.reduceat(np.asarray(best_list, dtype=np.float64), bounds[:-1]) if ids_list else []
        for (a, b), total in zip(zip(bounds[:-1], bounds[1:]), sums):
            label = ids_list[a]
            if label == self._id:
                self._confidences += total
                continue
            self._close(start + a)
            self._id, self._start, self._confidences = label, start + a, float(total)
        self._frames = start + len(ids_list)

    def finish(self) -> list[Segment]:
        self._close(self._frames, last=True)
        self._id = None
        return self.segments


def merge_short_segments(segments: list[Segment], min_s: float) -> list[Segment]:
    """Frame-tag segments with runs shorter than ``min_s`` seconds merged into a neighbour.

    Frame tags flicker where the model hesitates between two labels for a few frames; a spoken
    digit lasts 0.2 s or more.  Each short run joins the longer of its neighbours (its only
    neighbour at the clip's ends), and neighbours with the same label are joined; confidences
    are averaged weighted by duration.  ``min_s`` = 0 keeps the raw runs.
    """

    def join(a: Segment, b: Segment, label: str) -> Segment:
        da, db = a.end_s - a.start_s, b.end_s - b.start_s
        confidence = (a.confidence * da + b.confidence * db) / max(da + db, 1e-9)
        return Segment(a.start_s, b.end_s, label, round(confidence, 4))

    def short(seg: Segment) -> bool:
        return seg.end_s - seg.start_s < min_s

    out: list[Segment] = []
    for seg in segments:
        out.append(seg)
        while True:
            if len(out) >= 2 and out[-2].label == out[-1].label:
                out[-2:] = [join(out[-2], out[-1], out[-1].label)]
            elif len(out) >= 3 and short(out[-2]):
                left, mid, right = out[-3:]
                out[-3:] = ([join(left, mid, left.label), right]
                            if left.end_s - left.start_s >= right.end_s - right.start_s
                            else [left, join(mid, right, right.label)])
            elif len(out) == 2 and short(out[0]) and not short(out[1]):
                out[:] = [join(out[0], out[1], out[1].label)]
            else:
                break
    if len(out) >= 2 and short(out[-1]):
        out[-2:] = [join(out[-2], out[-1], out[-2].label)]
    return out


class AttentionBinner:
    """Band weights of some layers and heads, averaged over bins of ``bin_steps`` steps.

    Each panel is (layer, head); head None averages the heads.  For rollout the chunk weights are
    already the rollout through each layer (``iter_chunk_outputs(rollout=True)``), one "head"
    each, and layer l's band is (l + 1) w wide.  Only the steps in [first_step, last_step) count
    (a time span of a long clip); rows are numbered from the first step's bin.
    """

    def __init__(self, panels: list[tuple[int, int | None]], window: int, bin_steps: int, bin_s: float,
                 kind: str = "raw", first_step: int = 0, last_step: int | None = None):
        self.panels, self.window, self.bin_steps, self.bin_s, self.kind = panels, window, bin_steps, bin_s, kind
        self.first_step, self.last_step = first_step, last_step
        self.widths = [2 * self._half_width(layer) + 1 for layer, _ in panels]
        self.sums = [np.zeros((0, width)) for width in self.widths]
        self.counts = np.zeros(0, dtype=np.int64)

    def _half_width(self, layer: int) -> int:
        return (layer + 1) * self.window if self.kind == "rollout" else self.window

    def add(self, start: int, weights: list[torch.Tensor]) -> None:
        """Shapes: weights L x (H, n, K) for steps [start, start + n)."""
        n = weights[0].shape[1]
        keep = slice(max(0, self.first_step - start),
                     n if self.last_step is None else max(0, min(n, self.last_step - start)))
        steps = start + np.arange(n)[keep]
        if not len(steps):
            return
        rows = (steps - self.first_step) // self.bin_steps
        if rows[-1] >= len(self.counts):
            grow = rows[-1] + 1 - len(self.counts)
            self.sums = [np.concatenate([s, np.zeros((grow, s.shape[1]))]) for s in self.sums]
            self.counts = np.concatenate([self.counts, np.zeros(grow, dtype=np.int64)])
        for k, (layer, head) in enumerate(self.panels):
            w = weights[layer].float()
            band = (w.mean(0) if head is None else w[head])[keep].numpy()  # (steps, K)
            np.add.at(self.sums[k], rows, band)
        np.add.at(self.counts, rows, 1)

    def views(self) -> list[AttentionView]:
        counts = np.maximum(self.counts, 1)[:, None]
        start_s = self.first_step * self.bin_s / self.bin_steps
        return [AttentionView(layer, self._half_width(layer), self.bin_steps, self.bin_s,
                              (sums / counts).round(4).tolist(), head, self.kind, round(start_s, 4))
                for (layer, head), sums in zip(self.panels, self.sums)]

    def view(self) -> AttentionView:
        return self.views()[0]


def expected_frames(spec: FrameSpec, info) -> int:
    """Frames a clip with header ``info`` (seqattn.readers.audio.AudioInfo) gives at ``spec``'s rate."""
    return spec.frame_count(resampled_length(info.samples, info.sample_rate_hz, spec.sample_rate_hz))


def recognise(loaded: LoadedSpeechModel, path: str | Path, chunk_frames: int = CHUNK_FRAMES,
              attention_layer: int | None = None, attention_rows: int = ATTENTION_ROWS,
              on_frames: Callable[[int, int], None] | None = None,
              min_segment_s: float = MIN_SEGMENT_S, attention_panels: list[tuple[int, int | None]] | None = None,
              attention_kind: str = "raw",
              attention_span_s: tuple[float, float | None] | None = None,
              on_features: Callable[[np.ndarray], None] | None = None,
              on_weights: Callable[[int, list[torch.Tensor]], None] | None = None) -> SpeechResult:
    """Class, transcript and segments of one clip of any length, in bounded memory.

    Args:
        chunk_frames: output frames per model call (see the module docstring).
        min_segment_s: frame-tag runs shorter than this join a neighbour (``merge_short_segments``);
            0 keeps the raw runs.
        attention_layer: also return the banded attention of this layer (negative counts from
            the last), mean of heads, binned into at most ``attention_rows`` rows.
        attention_panels: instead, (layer, head or None for the mean) of each view to return
            (``SpeechResult.attention_views``; ``attention`` is the first).
        attention_kind: "raw" weights, or "rollout" through each panel's layer (heads averaged).
        attention_span_s: (start, end or None) seconds: the views cover only this part of the clip.
        on_frames: called with (frames done, frames in the clip) after each chunk.
        on_features: called with each block of frame vectors ((n, bins)), in order, as they are
            made (an attention export keeps the spectrogram this way).
        on_weights: called with (first step, L x (H, m, 2w + 1) raw band weights) for each
            chunk, in order: every layer and head at every step (an attention export).
    Raises:
        InputError: an unreadable file (seqattn.readers.audio) or one shorter than one frame.
    """
    started = time.perf_counter()
    spec, cfg = loaded.spec, loaded.cfg
    info = audio_info(path)
    expected = expected_frames(spec, info)
    if expected == 0:
        raise InputError(f"{path}: {info.duration_s:.3f} s is shorter than one {spec.window_ms:g} ms frame")
    blocks = iter_audio(path, spec.sample_rate_hz)
    binner = None
    if attention_layer is not None and attention_panels is None:
        attention_panels = [(attention_layer % cfg.encoder.n_layers, None)]
    if attention_panels:
        step_s = cfg.stride * spec.hop_ms / 1000
        n_steps = cfg.steps(expected)
        first, last = 0, n_steps
        if attention_span_s is not None:
            first = min(n_steps, max(0, int(attention_span_s[0] / step_s)))
            if attention_span_s[1] is not None:
                last = max(first, min(n_steps, math.ceil(attention_span_s[1] / step_s)))
        bin_steps = max(1, math.ceil(max(1, last - first) / attention_rows))
        binner = AttentionBinner(attention_panels, cfg.encoder.window, bin_steps, bin_steps * step_s,
                                 attention_kind, first, last)
    segments = SegmentBuilder(spec, loaded.label_of)
    pooling = PoolingAccumulator()
    transcript: list[int] = []
    previous = BLANK
    n_frames = 0
    features = loaded.extractor.stream(blocks)
    if on_features is not None:
        features = _tapped(features, on_features)
    if on_weights is not None and binner is not None and attention_kind == "rollout":
        raise ValueError("on_weights takes raw weights; the chunks carry rollout weights with attention_kind='rollout'")
    raw_weights = (binner is not None and attention_kind == "raw") or on_weights is not None
    for out in iter_chunk_outputs(loaded.model, features, chunk_frames, raw_weights,
                                  rollout=binner is not None and attention_kind == "rollout"):
        segments.add(out.start, out.frame_logits)
        pooling.add(out.pool_scores, out.hidden)
        path_ids = out.ctc_logits.argmax(dim=-1).tolist()
        transcript += collapse(path_ids, previous)
        previous = path_ids[-1]
        if binner is not None:
            binner.add(out.step_start, out.weights)
        if on_weights is not None:
            on_weights(out.step_start, out.weights)
        n_frames = out.start + len(out.frame_logits)
        if on_frames:
            on_frames(n_frames, expected)
    views = binner.views() if binner is not None else []
    with torch.inference_mode():
        probs = torch.softmax(loaded.model.class_head.classify(pooling.pooled()[None].to(loaded.device)), dim=-1)[0]
    confidence, best = probs.cpu().max(dim=-1)
    return SpeechResult(str(path), info.duration_s, info.sample_rate_hz, info.channels, n_frames,
                        cfg.labels[int(best)], round(float(confidence), 4),
                        [cfg.labels[i - 1] for i in transcript],
                        merge_short_segments(segments.finish(), min_segment_s),
                        views[0] if views else None, round(time.perf_counter() - started, 3), views)


def _tapped(blocks: Iterable[np.ndarray], seen: Callable[[np.ndarray], None]) -> Iterator[np.ndarray]:
    """``blocks`` unchanged, each handed to ``seen`` on its way."""
    for block in blocks:
        seen(block)
        yield block


# --------------------------------------------------------------------------- manifests and evaluation


@dataclass
class ManifestRow:
    """One labelled clip: its path (resolved against the manifest's folder) and label sequence."""

    path: Path
    labels: list[str]
    extra: dict = field(default_factory=dict)


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Read a TSV manifest with a header naming at least the columns ``path`` and ``label``.

    ``path`` is relative to the manifest's folder (or absolute); ``label`` is one label (a
    digit) or several separated by spaces (a clip in which several are spoken).  Other
    columns (e.g. ``speaker``) are kept in ``extra``.

    Raises:
        InputError: a missing or unreadable file, no header, a missing column, a row with the
            wrong number of fields or an empty label (with its line number), or no rows.
    """
    from seqattn.readers.text import open_text

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest file")
    with open_text(path) as handle:  # BOM dropped, LF-only lines, line and byte offset of bad UTF-8
        lines = list(handle)
    if not lines or not lines[0].strip():
        raise InputError(f"{path}: empty manifest; expected a header line with the columns path and label")
    header = lines[0].split("\t")
    missing = [c for c in ("path", "label") if c not in header]
    if missing:
        raise InputError(f"{path}: line 1: the header lacks the column(s) {', '.join(missing)} "
                         f"(a TSV header such as 'path<TAB>label')")
    rows = []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        values = line.split("\t")
        if len(values) != len(header):
            raise InputError(f"{path}: line {number}: {len(values)} fields, the header has {len(header)}")
        record = dict(zip(header, values))
        labels = record.pop("label").split()
        if not labels:
            raise InputError(f"{path}: line {number}: empty label")
        rows.append(ManifestRow(path.parent / record.pop("path"), labels, record))
    if not rows:
        raise InputError(f"{path}: the manifest lists no clips")
    return rows


def evaluate_speech(loaded: LoadedSpeechModel, rows: list[ManifestRow],
                    on_clip: Callable[[int, int], None] | None = None) -> dict:
    """Score a model on labelled clips.

    Returns:
        {"accuracy": class accuracy over the clips with one label (None if there are none),
         "label_error_rate": edit distance of the transcripts / reference labels, over all clips,
         "clips", "single_label_clips", "labels", "seconds", "x_real_time", "errors": [...]}
        (``errors`` lists up to 50 clips whose class or transcript is wrong.)
    Raises:
        InputError: an unreadable clip (names it).
    """
    started = time.perf_counter()
    correct = singles = distance = n_labels = 0
    audio_s = 0.0
    errors = []
    for i, row in enumerate(rows, 1):
        result = recognise(loaded, row.path)
        audio_s += result.duration_s
        d = edit_distance(result.transcript, row.labels)
        distance += d
        n_labels += len(row.labels)
        wrong_class = False
        if len(row.labels) == 1:
            singles += 1
            correct += result.label == row.labels[0]
            wrong_class = result.label != row.labels[0]
        if (d or wrong_class) and len(errors) < 50:
            errors.append({"path": str(row.path), "label": " ".join(row.labels), "class": result.label,
                           "transcript": " ".join(result.transcript)})
        if on_clip:
            on_clip(i, len(rows))
    seconds = time.perf_counter() - started
    return {"accuracy": round(correct / singles, 5) if singles else None,
            "label_error_rate": round(distance / n_labels, 5), "clips": len(rows), "single_label_clips": singles,
            "labels": n_labels, "seconds": round(seconds, 2), "x_real_time": round(audio_s / max(seconds, 1e-9), 1),
            "errors": errors}
