"""Training speech models: labelled clips -> augmented singles and spoken sequences -> SpeechModel.

Each epoch the model sees every training clip once, and ``sequences`` made-up recordings of
2 to 7 training clips spoken in a row with pauses of random length between them, so all three
heads learn from every batch:

    class head   (N -> 1)  cross-entropy on single clips (a sequence has no one class)
    frame head   (N -> N)  cross-entropy on every frame: the clip's label inside its speech span,
                           silence outside (spans from frame energy, see ``speech_span``)
    CTC head     (N -> M)  CTC loss against the clip's label sequence: no alignment needed

Augmentation, all in the waveform or feature domain, drawn anew each epoch: speed
perturbation (resampling by 0.85..1.15, Ko et al. 2015), gain (-25..+5 dB), white noise at
10..40 dB SNR, and SpecAugment-style masks of a few mel bands and frames (Park et al. 2019).
Pauses are filled with noise at the level of the clips' own quietest frames, as a recording
with pauses would sound.  These functions never print; progress goes to callbacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from seqattn.errors import InputError
from seqattn.featurise.batching import length_batches
from seqattn.featurise.speech import collate, frame_tags, spec_augment
from seqattn.models.speech import SpeechConfig, SpeechModel
from seqattn.readers.audio import read_audio
from seqattn.readers.frames import FeatureExtractor, FrameSpec
from seqattn.tasks.speech import TASK, ManifestRow
from seqattn.training.engine import FitSettings


@dataclass
class Clip:
    """A training clip at the model's sample rate: samples, label id (1..K), speech span in samples."""

    samples: np.ndarray
    label: int
    span: tuple[int, int]
    noise_rms: float  # RMS of its quietest frames (its background)


@dataclass
class Example:
    """One training sequence: samples, a frame tag per frame, the class (-100 if several), CTC targets."""

    samples: np.ndarray
    spans: list[tuple[int, int, int]]  # (start sample, end sample, label id)
    label: int
    targets: list[int]


# --------------------------------------------------------------------------- data


def speech_span(samples: np.ndarray, spec: FrameSpec) -> tuple[tuple[int, int], float]:
    """Where the speech of a one-word clip is, from frame energies, and the clip's noise level.

    Energy e_i (dB) of each 25 ms frame; frames above e_min + 0.3 (e_max - e_min), and at most
    35 dB under the loudest, are speech; the span runs from the first such frame's start to the
    last one's end (a word's quiet closures stay inside).  The noise level is the RMS of the
    quietest 10% of frames.

    Returns:
        ((start sample, end sample), noise RMS)
    """
    w, h = spec.window_samples, spec.hop_samples
    n = spec.frame_count(len(samples))
    if n == 0:
        return (0, len(samples)), 0.0
    framed = np.lib.stride_tricks.sliding_window_view(samples, w)[::h][:n]
    power = (framed.astype(np.float64) ** 2).mean(axis=1)
    energy = 10 * np.log10(np.maximum(power, 1e-10))
    threshold = max(energy.min() + 0.3 * (energy.max() - energy.min()), energy.max() - 35)
    loud = np.flatnonzero(energy >= threshold)
    quiet = np.sort(power)[: max(1, n // 10)]
    return (int(loud[0] * h), int(loud[-1] * h + w)), float(np.sqrt(quiet.mean()))


def load_clips(rows: list[ManifestRow], labels: list[str], spec: FrameSpec,
               on_clip: Callable[[int, int], None] | None = None) -> list[Clip]:
    """Read the clips of a manifest at the model's sample rate.

    Raises:
        InputError: an unreadable clip, a clip with several labels, or a label outside ``labels``.
    """
    ids = {label: i + 1 for i, label in enumerate(labels)}
    clips = []
    for i, row in enumerate(rows, 1):
        if len(row.labels) != 1:
            raise InputError(f"{row.path}: training clips carry one label each, got {' '.join(row.labels)!r}")
        if row.labels[0] not in ids:
            raise InputError(f"{row.path}: label {row.labels[0]!r} is not one of the model's labels")
        samples, _ = read_audio(row.path, spec.sample_rate_hz)
        if spec.frame_count(len(samples)) == 0:
            raise InputError(f"{row.path}: shorter than one {spec.window_ms:g} ms frame")
        span, noise = speech_span(samples, spec)
        clips.append(Clip(samples, ids[row.labels[0]], span, noise))
        if on_clip:
            on_clip(i, len(rows))
    return clips


def _perturb(clip: Clip, rng: np.random.Generator, augment: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """Speed-perturbed copy of a clip and its speech span (unchanged without augmentation)."""
    if not augment:
        return clip.samples, clip.span
    import soxr

    speed = rng.uniform(0.85, 1.15)  # played `speed` times faster: resample from speed*r to r
    samples = soxr.resample(clip.samples, 1000 * speed, 1000, quality="HQ").astype(np.float32)
    span = (int(clip.span[0] / speed), min(len(samples), int(math.ceil(clip.span[1] / speed))))
    return samples, span


def make_example(clips: list[Clip], rng: np.random.Generator, augment: bool, max_pause_s: float = 0.6,
                 edge_s: float = 0.3, sample_rate_hz: int = 8000) -> Example:
    """Clips spoken in a row: [lead] clip [pause] clip ... [trail], pauses of random length.

    Pauses and edges are filled with Gaussian noise at the mean background level of the clips.
    With ``augment``: speed perturbation per clip, gain and added noise on the whole.
    A single clip gets no added edges without augmentation.
    """
    parts, spans, position = [], [], 0
    noise_rms = float(np.mean([c.noise_rms for c in clips]))
    edges = len(clips) > 1 or augment

    def pause(seconds: float) -> None:
        nonlocal position
        n = int(seconds * sample_rate_hz)
        parts.append((rng.standard_normal(n) * noise_rms).astype(np.float32))
        position += n

    if edges:
        pause(rng.uniform(0, edge_s))
    for k, clip in enumerate(clips):
        if k:
            pause(rng.uniform(0, max_pause_s))
        samples, (a, b) = _perturb(clip, rng, augment)
        parts.append(samples)
        spans.append((position + a, position + b, clip.label))
        position += len(samples)
    if edges:
        pause(rng.uniform(0, edge_s))
    samples = np.concatenate(parts)
    if augment:
        samples = samples * np.float32(10 ** (rng.uniform(-25, 5) / 20))
        if rng.random() < 0.7:
            rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) + 1e-8
            samples = samples + (rng.standard_normal(len(samples)) * rms * 10 ** (-rng.uniform(10, 40) / 20)
                                 ).astype(np.float32)
        samples = np.clip(samples, -1, 1)
    return Example(samples.astype(np.float32), spans, clips[0].label if len(clips) == 1 else -100,
                   [c.label for c in clips])


# --------------------------------------------------------------------------- training


def _class_accuracy(model: SpeechModel, extractor: FeatureExtractor, clips: list[Clip], max_frames: int,
                    device: torch.device | None = None) -> float:
    """Class accuracy on clean clips, batched (model selection during training)."""
    device = device or torch.device("cpu")
    model.eval()
    features = [extractor(c.samples) for c in clips]
    correct = 0
    for ids in length_batches([len(f) for f in features], max_frames):
        batch = collate([(features[i], np.zeros(len(features[i]), np.int64), clips[i].label, [clips[i].label])
                         for i in ids])
        with torch.inference_mode():
            logits = model(batch["x"].to(device), batch["padding"].to(device))["class_logits"]
            predicted = logits.argmax(-1).cpu() + 1
        correct += int((predicted == batch["labels"]).sum())
    return correct / len(clips)


def rows_checksum(rows: list[ManifestRow]) -> str:
    """sha256 over a manifest's rows: each clip's path, labels and bytes (resume checks)."""
    import hashlib

    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row.path}\t{' '.join(row.labels)}\n".encode())
        with open(row.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass
class SpeechOptions:
    """The speech task's own training options (the shipped digits recipe by default)."""

    sequences: int = 800  # made-up sequences of 2..7 clips per epoch
    label_smoothing: float = 0.05
    augment: bool = True

    def check(self) -> None:
        """Raises InputError naming the option of a value out of range."""
        if self.sequences < 0:
            raise InputError(f"--sequences must be >= 0, got {self.sequences}")
        if not 0 <= self.label_smoothing < 1:
            raise InputError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")


def speech_settings(**overrides) -> FitSettings:
    """``fit`` settings of the digits recipe (batch_size: padded frames per batch), with overrides."""
    return FitSettings(**{"epochs": 30, "batch_size": 3000, "lr": 2e-3, "warmup_steps": 300,
                          "weight_decay": 0.01, **overrides})


class SpeechTask:
    """Speech for ``fit``: labelled one-word clips, made-up spoken sequences, three heads' losses.

    Each epoch draws its augmented singles and sequences from a generator seeded by (seed, epoch),
    so a resumed run draws what the uninterrupted one drew.  With dev clips the epoch with the
    best dev class accuracy is kept, otherwise the last.
    Raises (``prepare``):
        InputError: unreadable or unusable clips; the labels of a checkpoint's run differ.
    """

    name, metric, higher_is_better, shardable = TASK, "accuracy", True, True

    def __init__(self, train_rows: list[ManifestRow], dev_rows: list[ManifestRow] | None, config: SpeechConfig,
                 options: SpeechOptions, settings: FitSettings, on_clip: Callable[[int, int], None] | None = None):
        self.train_rows, self.dev_rows, self.cfg, self.options = train_rows, dev_rows or [], config, options
        self.batch_size, self.seed, self.on_clip = settings.batch_size, settings.seed, on_clip
        settings_id = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items() if k != "device"}
        self._identity = {"options": {"fit": settings_id, "model": config.to_dict(), "task": vars(options)},
                          "data": {"train": rows_checksum(train_rows), "dev": rows_checksum(self.dev_rows)}}
        self.device = torch.device("cpu")
        self._epoch, self._items, self._evaluations = None, [], 0

    def identity(self) -> dict:
        return self._identity

    def prepare(self, checkpoint: dict | None, directory: Path | None) -> None:
        labels = sorted({r.labels[0] for r in self.train_rows if r.labels})
        if checkpoint is not None:
            self.cfg = SpeechConfig.from_dict(checkpoint["config"])
        self.cfg.labels = labels
        self.spec = self.cfg.frames
        self.extractor = FeatureExtractor(self.spec)
        self.train = load_clips(self.train_rows, labels, self.spec, self.on_clip)
        self.dev = load_clips(self.dev_rows, labels, self.spec) if self.dev_rows else []
        clean = np.concatenate([self.extractor(c.samples) for c in self.train])
        self.mean, self.std, self.fill = clean.mean(0), clean.std(0) + 1e-3, clean.mean(0)

    def build_model(self) -> SpeechModel:
        model = SpeechModel(self.cfg)
        model.feature_mean.copy_(torch.from_numpy(self.mean))
        model.feature_std.copy_(torch.from_numpy(self.std))
        return model

    def _make_items(self, epoch: int) -> list:
        from seqattn.training.engine import derived_seed

        rng = np.random.default_rng(derived_seed(self.seed, epoch, 1))
        augment = self.options.augment
        examples = [make_example([c], rng, augment) for c in self.train]
        for _ in range(self.options.sequences):
            k = int(rng.integers(2, 8))
            examples.append(make_example([self.train[int(i)] for i in rng.integers(0, len(self.train), k)], rng,
                                         augment))
        items = []
        for ex in examples:
            features = self.extractor(ex.samples)
            if augment:
                features = spec_augment(features, self.fill, rng)
            items.append((features, frame_tags(ex, self.spec, len(features)), ex.label, ex.targets))
        return items

    def batches(self, epoch: int, rng) -> list[list[int]]:
        if self._epoch != epoch:
            self._epoch, self._items = epoch, self._make_items(epoch)
        return length_batches([len(f) for f, *_ in self._items], self.batch_size, rng)

    def loss(self, model: SpeechModel, batch: list[int], generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """Class + frame + CTC losses of a batch (each a mean), and its example count."""
        from seqattn.models.device import to_device

        data = collate([self._items[i] for i in batch])
        targets = data.pop("targets")
        data = to_device(data, self.device)
        out = model(data["x"], data["padding"])
        labels = data["labels"]
        classes = torch.where(labels > 0, labels - 1, labels)  # ids 1..K -> 0..K-1 (-100 stays)
        smoothing = self.options.label_smoothing
        loss = (model.class_head.loss(out["class_logits"], classes, smoothing)
                + model.frame_head.loss(out["frame_logits"], data["tags"], smoothing)
                + model.ctc_head.loss(out["ctc_logits"], -(-data["lengths"] // self.cfg.stride), targets))
        return loss, float(len(batch))

    def evaluate(self, model: SpeechModel) -> dict:
        self._evaluations += 1
        if not self.dev:
            return {}
        return {"accuracy": _class_accuracy(model, self.extractor, self.dev, self.batch_size, self.device)}

    def selection_key(self, metrics: dict) -> list:
        """Dev class accuracy; without dev clips the latest epoch."""
        return [metrics["accuracy"]] if self.dev else [self._evaluations]

    def config(self) -> dict:
        return self.cfg.to_dict()

    def files(self) -> dict[str, Path]:
        return {}

    def record(self) -> dict:
        return {"train_clips": len(self.train_rows), "dev_clips": len(self.dev_rows)}


def train_speech(
    train_rows: list[ManifestRow],
    out: str | Path | None,
    config: SpeechConfig,
    settings: FitSettings | None = None,
    dev_rows: list[ManifestRow] | None = None,
    options: SpeechOptions | None = None,
    reporter=None,
    force: bool = False,
    meta: dict | None = None,
    resume: str | Path | None = None,
    on_clip: Callable[[int, int], None] | None = None,
) -> dict:
    """Train a speech model on labelled one-word clips through ``fit`` and save it to ``out``.

    ``config.labels`` is filled with the sorted labels of the training clips.  With ``dev_rows``
    the epoch with the best dev class accuracy is kept; otherwise the last.

    Args:
        settings: ``fit`` settings (default ``speech_settings()``, the digits recipe).
        reporter: progress callbacks (seqattn.training.engine.Reporter); ``on_clip`` (i, n) while reading.
        resume: OUT.checkpoint of an interrupted run with the same arguments and clips.
    Returns:
        the saved config dict ("training": the run record; "metrics": dev accuracy if any).
    Raises:
        InputError: unreadable or unusable clips, a forbidden ``out``, a checkpoint of another run;
            ModelError: an unreadable checkpoint.
    """
    from seqattn.training.engine import fit

    settings = settings or speech_settings()
    options = options or SpeechOptions()
    options.check()
    task = SpeechTask(train_rows, dev_rows, config, options, settings, on_clip)
    return fit(task, settings, out, force=force, resume=resume, reporter=reporter, meta=meta)
