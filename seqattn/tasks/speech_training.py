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
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from seqattn.errors import InputError, ModelError
from seqattn.models.io import write_model_dir
from seqattn.models.speech import SILENCE, SpeechConfig, SpeechModel
from seqattn.readers.audio import read_audio
from seqattn.readers.frames import FeatureExtractor, FrameSpec
from seqattn.tasks.batching import length_batches
from seqattn.tasks.speech import TASK, ManifestRow
from seqattn.tasks.training import start_or_resume, warmup_cosine


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


@dataclass
class TrainSettings:
    """Optimisation and data settings of ``train_speech`` (the shipped digits recipe by default)."""

    epochs: int = 30
    sequences: int = 800  # made-up sequences of 2..7 clips per epoch
    max_frames: int = 3000  # padded frames per batch (smaller batches: more steps, which CTC needs)
    lr: float = 2e-3  # peak learning rate (AdamW), linear warm-up then cosine decay
    warmup_steps: int = 300
    weight_decay: float = 0.01
    label_smoothing: float = 0.05
    augment: bool = True
    seed: int = 0


@dataclass
class EpochReport:
    """What ``train_speech`` reports after each epoch."""

    epoch: int
    epochs: int
    train_loss: float
    dev_accuracy: float | None
    seconds: float


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


def frame_tags(example: Example, spec: FrameSpec, n_frames: int) -> np.ndarray:
    """Frame tag per frame: the label whose speech span holds the frame's centre, else silence."""
    centres = np.arange(n_frames) * spec.hop_samples + spec.window_samples // 2
    tags = np.full(n_frames, SILENCE, dtype=np.int64)
    for start, end, label in example.spans:
        tags[(centres >= start) & (centres < end)] = label
    return tags


def spec_augment(features: np.ndarray, fill: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two masks of up to 5 bands, and one mask of up to 5 frames per 50 frames, set to ``fill``."""
    features = features.copy()
    n, bins = features.shape
    for _ in range(2):
        width = int(rng.integers(0, 6))
        start = int(rng.integers(0, max(1, bins - width)))
        features[:, start:start + width] = fill[start:start + width]
    for _ in range(n // 50):
        width = int(rng.integers(0, 6))
        start = int(rng.integers(0, max(1, n - width)))
        features[start:start + width] = fill
    return features


def collate(items: list[tuple[np.ndarray, np.ndarray, int, list[int]]]) -> dict:
    """Pad (features, frame tags, class, targets) items into one batch.

    Shapes:
        -> x (B, N, bins), padding (B, N) bool, tags (B, N) (-100 at padding), labels (B,),
           lengths (B,), targets: B lists
    """
    n = max(len(f) for f, *_ in items)
    bins = items[0][0].shape[1]
    x = torch.zeros(len(items), n, bins)
    padding = torch.ones(len(items), n, dtype=torch.bool)
    tags = torch.full((len(items), n), -100, dtype=torch.long)
    for i, (features, frame_tag, _, _) in enumerate(items):
        x[i, : len(features)] = torch.from_numpy(features)
        padding[i, : len(features)] = False
        tags[i, : len(features)] = torch.from_numpy(frame_tag)
    return {"x": x, "padding": padding, "tags": tags,
            "labels": torch.tensor([label for *_, label, _ in items], dtype=torch.long),
            "lengths": torch.tensor([len(f) for f, *_ in items], dtype=torch.long),
            "targets": [t for *_, t in items]}


# --------------------------------------------------------------------------- training


def _class_accuracy(model: SpeechModel, extractor: FeatureExtractor, clips: list[Clip], max_frames: int) -> float:
    """Class accuracy on clean clips, batched (model selection during training)."""
    model.eval()
    features = [extractor(c.samples) for c in clips]
    correct = 0
    for ids in length_batches([len(f) for f in features], max_frames):
        batch = collate([(features[i], np.zeros(len(features[i]), np.int64), clips[i].label, [clips[i].label])
                         for i in ids])
        with torch.inference_mode():
            predicted = model(batch["x"], batch["padding"])["class_logits"].argmax(-1) + 1
        correct += int((predicted == batch["labels"]).sum())
    return correct / len(clips)


def train_speech(
    train_rows: list[ManifestRow],
    out: str | Path,
    config: SpeechConfig,
    settings: TrainSettings | None = None,
    dev_rows: list[ManifestRow] | None = None,
    on_step: Callable[[int, int, str], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    force: bool = False,
    meta: dict | None = None,
    resume: str | Path | None = None,
) -> dict:
    """Train a speech model on labelled one-word clips and save it to ``out``.

    ``config.labels`` is filled with the sorted labels of the training clips.  With ``dev_rows``
    the epoch with the best dev class accuracy is kept; otherwise the last.  After every epoch
    the whole training state (weights, optimizer, scheduler, every random generator) goes to
    ``OUT.checkpoint/``, atomically and without pickles (seqattn.models.checkpoint); ``resume``
    takes such a directory and continues where it stopped, reaching the same weights as an
    uninterrupted run.  The checkpoint is removed once the model is saved.

    Args:
        on_step: called with (step, steps this epoch, phase) during reading and training.
        on_epoch: called with an ``EpochReport`` after each epoch.
        meta: extra JSON fields for the saved config (data, license, ...).
        resume: a checkpoint directory of an interrupted run on the same clips (its settings
            and config win over ``settings`` and ``config``).
    Returns:
        the saved config dict ("training": settings, seconds; "metrics": dev accuracy if any).
    Raises:
        InputError: unreadable or unusable clips; ModelError: ``out`` exists (without force),
            an unreadable checkpoint, or one of another task or of other clips.
    """
    from seqattn.models.checkpoint import restore_checkpoint, save_checkpoint

    out = Path(out)
    checkpoint_dir, state, tensors = start_or_resume(out, force, resume, TASK)
    if state is not None:
        settings = TrainSettings(**state["extra"]["settings"])
        config = SpeechConfig.from_dict(state["extra"]["config"])
    settings = settings or TrainSettings()
    started = time.perf_counter()
    random.seed(settings.seed)
    np_rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    shuffler = random.Random(settings.seed)

    labels = sorted({r.labels[0] for r in train_rows if r.labels})
    if state is not None and labels != config.labels:
        raise ModelError(f"{resume}: the checkpoint was trained on the labels {config.labels}, these clips "
                         f"have {labels}; resume with the same --train manifests")
    config.labels = labels
    spec = config.frames
    extractor = FeatureExtractor(spec)
    train = load_clips(train_rows, config.labels, spec, (lambda i, n: on_step(i, n, "reading")) if on_step else None)
    dev = load_clips(dev_rows, config.labels, spec) if dev_rows else []

    model = SpeechModel(config)
    clean = np.concatenate([extractor(c.samples) for c in train])
    model.feature_mean.copy_(torch.from_numpy(clean.mean(0)))
    model.feature_std.copy_(torch.from_numpy(clean.std(0) + 1e-3))
    fill = clean.mean(0)
    del clean

    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = None

    def make_scheduler(steps_per_epoch: int):
        return warmup_cosine(optimizer, settings.warmup_steps, steps_per_epoch * settings.epochs)

    best, best_state, history, first_epoch, seconds_before, steps_per_epoch = -1.0, None, [], 1, 0.0, None
    if state is not None:
        steps_per_epoch = state["extra"]["steps_per_epoch"]
        scheduler = make_scheduler(steps_per_epoch)
        best_state = restore_checkpoint(state, tensors, model=model, optimizer=optimizer, scheduler=scheduler,
                                        shuffler=shuffler, generator=None, numpy_rng=np_rng)
        best, history = state["extra"]["best"], state["extra"]["history"]
        first_epoch, seconds_before = state["epoch"] + 1, state["extra"]["seconds"]
    for epoch in range(first_epoch, settings.epochs + 1):
        epoch_start = time.perf_counter()
        examples = [make_example([c], np_rng, settings.augment) for c in train]
        for _ in range(settings.sequences):
            k = int(np_rng.integers(2, 8))
            examples.append(make_example([train[int(i)] for i in np_rng.integers(0, len(train), k)], np_rng,
                                         settings.augment))
        items = []
        for ex in examples:
            features = extractor(ex.samples)
            if settings.augment:
                features = spec_augment(features, fill, np_rng)
            items.append((features, frame_tags(ex, spec, len(features)), ex.label, ex.targets))
        batches = length_batches([len(f) for f, *_ in items], settings.max_frames, shuffler)
        if scheduler is None:  # the first epoch's batch count sets the schedule's length
            steps_per_epoch = len(batches)
            scheduler = make_scheduler(steps_per_epoch)
        model.train()
        losses = []
        for step, ids in enumerate(batches, 1):
            batch = collate([items[i] for i in ids])
            out_ = model(batch["x"], batch["padding"])
            classes = torch.where(batch["labels"] > 0, batch["labels"] - 1, batch["labels"])  # ids 1..K -> 0..K-1
            loss = (model.class_head.loss(out_["class_logits"], classes, settings.label_smoothing)
                    + model.frame_head.loss(out_["frame_logits"], batch["tags"], settings.label_smoothing)
                    + model.ctc_head.loss(out_["ctc_logits"], -(-batch["lengths"] // config.stride), batch["targets"]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if on_step:
                on_step(step, len(batches), f"epoch {epoch}/{settings.epochs}")
        accuracy = _class_accuracy(model, extractor, dev, settings.max_frames) if dev else None
        history.append({"epoch": epoch, "loss": round(float(np.mean(losses)), 4), "dev_accuracy": accuracy})
        if accuracy is None or accuracy > best:
            best = -1.0 if accuracy is None else accuracy
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        save_checkpoint(checkpoint_dir, model=model, optimizer=optimizer, scheduler=scheduler, shuffler=shuffler,
                        generator=None, numpy_rng=np_rng, epoch=epoch, best_state=best_state,
                        extra={"task": TASK, "config": config.to_dict(), "settings": vars(settings), "best": best,
                               "history": history, "steps_per_epoch": steps_per_epoch,
                               "seconds": seconds_before + time.perf_counter() - started})
        if on_epoch:
            on_epoch(EpochReport(epoch, settings.epochs, float(np.mean(losses)), accuracy,
                                 time.perf_counter() - epoch_start))
    seconds = seconds_before + time.perf_counter() - started
    saved = {
        "task": TASK,
        "config": config.to_dict(),
        "training": {"train_clips": len(train), "dev_clips": len(dev), "settings": vars(settings),
                     "seconds": round(seconds, 1), "torch_threads": torch.get_num_threads(), "history": history},
        "metrics": {"dev_accuracy": round(best, 5)} if dev else {},
        **(meta or {}),
    }
    write_model_dir(out, saved, best_state, force=force)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return saved
