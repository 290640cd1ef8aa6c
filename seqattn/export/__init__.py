"""Attention exports to files (``--attention-out FILE``): .html, .svg, .png or .npz by the suffix.

A library: nothing here prints.  The commands build one ``AttentionRecord`` per input and call
``export_attention`` once at the end.  API (what ``seqattn classify`` uses)::

    from seqattn.export import (AttentionMap, AttentionRecord, RecordCollector, check_attention_out,
                                export_attention)

    out = check_attention_out(path, inputs=[file])  # before any input is read: InputError if refused
    collector = RecordCollector()                    # first MAX_RECORDS inputs, MAX_WEIGHTS weights
    for each input:
        if not collector.wants():  # past the cap: counted in collector.dropped, nothing built
            continue
        collector.add(AttentionRecord(
            name=text, kind="classify", caption=f"class {label} ({p:.3f})",
            maps=[AttentionMap("pooling", "attention pooling", pooling_weights,  # (1, H, 1, N)
                               queries=["[class]"], keys=words),
                  AttentionMap("self", "self-attention", self_weights,         # (L, H, N, 2w+1)
                               queries=words, window=w)],
            primary=0))
    export_attention(out, collector.records, panels=[(layer, head_or_None), ...], which=None)

* ``AttentionMap(key, title, weights, queries, keys=None, window=None)``: weights (L, H, N, M)
  dense or (L, H, N, 2w+1) band (``window`` = w; key j = i + s - w); numpy arrays, torch tensors
  made arrays (``records.as_numpy``), or a ``spill.SpillArray`` (on disk, for long clips).
* ``AttentionRecord(name, kind, maps, primary, caption, graph=GraphAttention(...),
  speech=SpeechExtras(...))``, kind one of tokens, speech, graph, seq2seq, classify.
* ``export_attention(path, records, panels=None, which=None, title=None)``: the format by the
  suffix; ``panels`` ((layer, head) pairs, head None = mean) choose what a picture shows (all
  layers x heads when None) and what the page opens on; ``which`` names the map a picture
  shows (default each record's ``primary``).  Written to a temporary sibling and renamed
  (``output.atomic_file``).

Formats: docs/attention.md.  HTML (``html.py``): one self-contained page with a matrix view,
a head view and a model view (speech: spectrogram, segments and the band over time; graph: a
node's neighbourhood), an input picker.  SVG/PNG (``image.py``): matplotlib.  NPZ (``npz.py``):
the raw weights, every step, loadable with ``allow_pickle=False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from seqattn.errors import InputError
from seqattn.export.output import atomic_file, check_attention_out, export_format
from seqattn.export.records import (AttentionMap, AttentionRecord, GraphAttention, SpeechExtras, as_numpy,
                                    classify_record, graph_record, seq2seq_record, tokens_record)

__all__ = ["AttentionMap", "AttentionRecord", "GraphAttention", "SpeechExtras", "RecordCollector", "as_numpy",
           "check_attention_out", "classify_record", "export_attention", "export_format", "graph_record",
           "seq2seq_record", "tokens_record"]

MAX_RECORDS = 1000  # inputs kept by a streaming command (tag reads a corpus)
MAX_WEIGHTS = 1 << 25  # weights kept in memory (128 MiB of float32), whichever cap comes first


class RecordCollector:
    """The records a streaming command keeps: the first ``max_records`` inputs, at most ``max_weights``.

    ``add`` returns False (and keeps nothing more) once either cap is reached; ``dropped`` counts
    the inputs left out, for the command's notice on stderr.
    """

    def __init__(self, max_records: Optional[int] = None, max_weights: Optional[int] = None):
        self.max_records = MAX_RECORDS if max_records is None else max_records
        self.max_weights = MAX_WEIGHTS if max_weights is None else max_weights
        self.records: list[AttentionRecord] = []
        self.weights = 0
        self.dropped = 0

    @property
    def full(self) -> bool:
        return self.dropped > 0

    def wants(self) -> bool:
        """True while there is room for another input; past a cap, counts it as dropped (build no record)."""
        if self.full or len(self.records) >= self.max_records:
            self.dropped += 1
            return False
        return True

    def add(self, record: AttentionRecord) -> bool:
        size = sum(_size(m.weights) for m in record.maps)
        too_many = len(self.records) >= self.max_records
        too_big = bool(self.records) and self.weights + size > self.max_weights  # the first is always kept
        if self.full or too_many or too_big:
            self.dropped += 1
            return False
        self.records.append(record)
        self.weights += size
        return True


def _size(weights) -> int:
    n = 1
    for s in weights.shape:
        n *= int(s)
    return n


def export_attention(path: str | Path, records: Sequence[AttentionRecord],
                     panels: Optional[Sequence[tuple[int, Optional[int]]]] = None, which: Optional[str] = None,
                     title: Optional[str] = None) -> str:
    """Write ``records`` to ``path`` in the format its suffix names; returns that format.

    A picture (.svg, .png) shows the first record; the page and the archive hold them all.
    Raises:
        InputError: an unknown suffix; no records; a picture's ``which`` or panel the record lacks.
        SeqattnError: the file cannot be written (exit code 1).
    """
    fmt = export_format(path)
    path = Path(path)
    if not records:
        raise InputError(f"--attention-out {path}: no input had attention to export")
    for record in records:
        record.check()
    with atomic_file(path) as tmp:
        if fmt == "npz":
            from seqattn.export.npz import write_npz

            write_npz(tmp, records)
        elif fmt == "html":
            from seqattn.export.html import write_html

            layer, head = (panels[0] if panels else (None, None))
            write_html(tmp, records, title or _title(records), layer=layer, head=head)
        else:
            from seqattn.export.image import pick_map, write_image

            record = records[0]
            if record.kind == "graph":
                _check_graph_panels(record, panels)
            else:
                try:
                    amap = pick_map(record, which)
                except ValueError as err:
                    raise InputError(f"--attention-out {path}: {err}") from None
                n_layers, n_heads = amap.shape[:2]
                for layer, head in panels or ():
                    if not (0 <= layer < n_layers and (head is None or 0 <= head < n_heads)):
                        raise InputError(f"--attention-out {path}: layer {layer} head {head} is outside the "
                                         f"{n_layers} x {n_heads} of {amap.title}")
            write_image(tmp, fmt, record, panels, which)
    return fmt


def _check_graph_panels(record: AttentionRecord, panels) -> None:
    weights = record.graph.weights
    for layer, head in panels or ():
        if not 0 <= layer < len(weights) or (head is not None and not 0 <= head < weights[layer].shape[0]):
            raise InputError(f"--attention-out: layer {layer} head {head} is outside the graph model's layers "
                             f"({', '.join(str(w.shape[0]) for w in weights)} heads)")


def _title(records: Sequence[AttentionRecord]) -> str:
    kind = records[0].kind
    what = {"tokens": "sentence", "speech": "clip", "graph": "graph", "seq2seq": "input",
            "classify": "input"}.get(kind, "input")
    n = len(records)
    return f"seqattn attention: {n} {what}{'s' if n > 1 else ''}" if n > 1 else f"seqattn attention: {records[0].name}"
