"""A speech command's export, clip by clip: band weights and spectrogram spilled to disk as they come.

``seqattn.tasks.speech.recognise`` hands each chunk's frame vectors and raw band weights to the
hooks of ``SpeechExport.hooks()``; they go to files in a temporary directory
(``seqattn.export.spill``), so a 15-minute clip (45,000 steps x 4 layers x 4 heads x 17
offsets) costs one chunk of memory, not the clip.  ``add`` turns a finished clip into an
``AttentionRecord``; ``close`` removes the files once the export is written.
"""

from __future__ import annotations

from typing import Callable

from seqattn.export import AttentionMap, AttentionRecord, RecordCollector, SpeechExtras
from seqattn.export.spill import SpillDirectory


class SpeechExport:
    """Collects the attention of each clip of a speech model (``LoadedSpeechModel``)."""

    def __init__(self, n_layers: int, n_heads: int, window: int, bins: int, frame_hop_s: float, stride: int,
                 silence: str, max_records: int | None = None):
        self.n_layers, self.n_heads, self.window, self.bins = n_layers, n_heads, window, bins
        self.frame_hop_s, self.step_s, self.silence = frame_hop_s, frame_hop_s * stride, silence
        self.spill = SpillDirectory()
        self.collector = RecordCollector(max_records=max_records, max_weights=1 << 62)  # on disk: no memory cap
        self._band = self._spectrogram = None

    @classmethod
    def for_model(cls, loaded) -> "SpeechExport":
        cfg = loaded.cfg
        return cls(cfg.encoder.n_layers, cfg.encoder.n_heads, cfg.encoder.window, cfg.frames.bins,
                   cfg.frames.hop_ms / 1000, cfg.stride, cfg.silence)

    def hooks(self) -> dict[str, Callable]:
        """``on_features`` and ``on_weights`` for the next clip's ``recognise`` (none past the cap)."""
        if self.collector.full or len(self.collector.records) >= self.collector.max_records:
            return {}
        k = len(self.collector.records)
        self._band = self.spill.array(f"band{k}", self.n_layers, self.n_heads, 2 * self.window + 1)
        self._spectrogram = self.spill.rows(f"spectrogram{k}", self.bins)
        return {"on_features": self._spectrogram.append, "on_weights": self._on_weights}

    def _on_weights(self, step_start: int, per_layer) -> None:
        if step_start != self._band.shape[2]:
            raise RuntimeError(f"attention chunk starts at step {step_start}, expected {self._band.shape[2]}")
        self._band.append(per_layer)

    def add(self, name: str, result) -> None:
        """The finished clip (a ``SpeechResult``) as a record, or one more dropped past the cap."""
        if self._band is None:
            self.collector.dropped += 1  # past the cap: counted for the notice, not kept
            return
        caption = (f"class {result.label} ({result.confidence:.3f}); transcript "
                   f"{' '.join(result.transcript) or '(empty)'}")
        segments = [(s.start_s, s.end_s, s.label) for s in result.segments]
        band = AttentionMap("self", "self-attention (banded)", self._band, window=self.window)
        extras = SpeechExtras(self._spectrogram, self.frame_hop_s, self.step_s, segments, self.silence)
        self.collector.add(AttentionRecord(name, "speech", [band], caption=caption, speech=extras))
        self._band = self._spectrogram = None

    @property
    def records(self) -> list[AttentionRecord]:
        return self.collector.records

    @property
    def dropped(self) -> int:
        return self.collector.dropped

    def close(self) -> None:
        self.spill.close()
