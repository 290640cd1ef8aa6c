"""Speech featurising for training: frame tags from speech spans, SpecAugment masks, padded batches."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from seqattn.models.speech import SILENCE
from seqattn.readers.frames import FrameSpec


class SpokenSpans(Protocol):
    """What ``frame_tags`` reads of an example: (start sample, end sample, label id) per spoken clip."""

    spans: list[tuple[int, int, int]]


def frame_tags(example: SpokenSpans, spec: FrameSpec, n_frames: int) -> np.ndarray:
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
