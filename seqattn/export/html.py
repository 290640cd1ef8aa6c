"""One self-contained HTML page: the template (inline CSS and JS) with the records as JSON.

No network request, no external file, no ``eval``: the page works from ``file://`` and under
``Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; script-src
'unsafe-inline'``.  Labels (words, file names, node ids) are user input: they travel as JSON
strings inside ``<script type="application/json">`` (with ``<``, ``>``, ``&`` and the line
separators escaped, so no label can close the element) and the page sets them with
``textContent``, never as markup.

Weights travel as base64 of little-endian uint16, ``round(w * 65535)``: 2 bytes a weight,
within 1e-5 of the model's value, so hover values are right to the 4 decimals shown.

Long clips: a speech record's band is averaged over bins of consecutive attention steps so that
at most ``MAX_TIME_COLUMNS`` columns remain (a 15-minute clip: 45,000 steps -> 1,500 columns of
30 steps, 0.6 s each), and its spectrogram over the same time bins; the page says so, and the
.npz export keeps every step.
"""

from __future__ import annotations

import base64
import html
import json
import math
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from seqattn.export.records import AttentionMap, AttentionRecord
from seqattn.render.safe import printable

MAX_TIME_COLUMNS = 1500
ROWS_PER_SLICE = 4096


def write_html(path: Path, records: Sequence[AttentionRecord], title: str = "attention",
               layer: Optional[int] = None, head: Optional[int] = None, note: str = "") -> None:
    """Write the page for ``records`` to ``path``; ``layer``/``head`` choose what it opens on."""
    payload = {"title": printable(title), "note": note, "layer": layer, "head": head,
               "inputs": [_record(r) for r in records]}
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    before, after = template().split("__DATA__")
    page = before.replace("__TITLE__", html.escape(printable(title))) + text + after
    path.write_text(page, encoding="utf-8")


def template() -> str:
    """The page template, a package data file (seqattn/export/template.html)."""
    return resources.files("seqattn.export").joinpath("template.html").read_text(encoding="utf-8")


def _u16(values: np.ndarray) -> str:
    q = np.rint(np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * 65535).astype("<u2")
    return base64.b64encode(q.tobytes()).decode("ascii")


def _record(record: AttentionRecord) -> dict:
    record.check()
    out: dict = {"name": printable(record.name), "kind": record.kind, "caption": printable(record.caption),
                 "primary": record.primary, "maps": []}
    bin_steps = 1
    if record.kind == "speech" and record.maps:
        bin_steps = max(1, math.ceil(record.maps[0].shape[2] / MAX_TIME_COLUMNS))
    for amap in record.maps:
        out["maps"].append(_map(amap, bin_steps))
    if record.graph is not None:
        graph = record.graph
        edges = np.ascontiguousarray(np.asarray(graph.edge_index, dtype="<i4"))
        out["graph"] = {"nodes": [printable(n) for n in graph.nodes],
                        "classes": None if graph.classes is None else [printable(c) for c in graph.classes],
                        "edge_index": base64.b64encode(edges.tobytes()).decode("ascii"),
                        "heads": [int(w.shape[0]) for w in graph.weights],
                        "weights": [_u16(np.asarray(w, dtype=np.float32)) for w in graph.weights],
                        "focus": graph.focus}
    if record.speech is not None:
        out["speech"] = _speech(record, bin_steps)
    return out


def _map(amap: AttentionMap, bin_steps: int) -> dict:
    n_layers, n_heads, n, k = amap.shape
    if bin_steps == 1:
        weights = np.stack([np.asarray(amap.weights[layer, head, 0:n], dtype=np.float32)
                            for layer in range(n_layers) for head in range(n_heads)])
        columns = n
    else:
        weights = np.stack([_binned(lambda a, b, l=layer, h=head: amap.weights[l, h, a:b], n, bin_steps)
                            for layer in range(n_layers) for head in range(n_heads)])
        columns = weights.shape[1]
    return {"key": amap.key, "title": amap.title, "shape": [n_layers, n_heads, columns, k], "window": amap.window,
            "bin": bin_steps,
            "queries": None if amap.queries is None or bin_steps > 1 else [printable(q) for q in amap.queries],
            "keys": None if amap.keys is None else [printable(q) for q in amap.keys], "weights": _u16(weights)}


def _binned(read, n: int, bin_rows: int) -> np.ndarray:
    """Means of consecutive groups of ``bin_rows`` rows (the last group may be shorter), read in slices."""
    step = max(bin_rows, ROWS_PER_SLICE // bin_rows * bin_rows)
    parts = []
    for a in range(0, n, step):
        block = np.asarray(read(a, min(n, a + step)), dtype=np.float64)
        starts = np.arange(0, len(block), bin_rows)
        sums = np.add.reduceat(block, starts, axis=0)
        counts = np.diff(np.append(starts, len(block)))[:, None]
        parts.append(sums / counts)
    return np.concatenate(parts).astype(np.float32)


def _speech(record: AttentionRecord, bin_steps: int) -> dict:
    speech = record.speech
    frames, bins = (int(s) for s in speech.spectrogram.shape)
    frames_per_step = max(1, round(speech.step_s / speech.frame_hop_s))
    bin_frames = bin_steps * frames_per_step if bin_steps > 1 else 1
    values = (_binned(lambda a, b: speech.spectrogram[a:b], frames, bin_frames) if bin_frames > 1
              else np.asarray(speech.spectrogram[0:frames], dtype=np.float32))
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    steps = record.maps[0].shape[2] if record.maps else 0
    duration_s = max(frames * speech.frame_hop_s, steps * speech.step_s,
                     max((s[1] for s in speech.segments), default=0.0))
    return {"columns": int(values.shape[0]), "bins": bins, "values": _u16(scaled), "low": low, "high": high,
            "frame_hop_s": speech.frame_hop_s, "step_s": speech.step_s, "duration_s": duration_s,
            "silence": printable(speech.silence),
            "segments": [[float(s[0]), float(s[1]), printable(s[2])] for s in speech.segments]}
