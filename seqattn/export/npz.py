"""The raw weights as an .npz archive: numbers and strings only, ``numpy.load(allow_pickle=False)``.

Keys (record r = 0, 1, ... in input order; map m in the record's order)::

    seqattn-attention-export   the format version, "1" (also the marker of an export)
    inputs                     (R,) str, each record's name
    r{r}/kind                  "tokens" | "speech" | "graph" | "seq2seq" | "classify"
    r{r}/caption               str
    r{r}/m{m}/key, /title      "self", "encoder", "decoder", "cross", "pooling"; its title
    r{r}/m{m}/weights          float32 (L, H, N, M) dense, or (L, H, N, 2w+1) band
    r{r}/m{m}/window           int: w for a band (key j = i + s - w), -1 for dense
    r{r}/m{m}/queries, /keys   (N,) and (M,) str labels (absent for speech steps)
    r{r}/graph/nodes           (V,) str;  /edge_index (2, E) int64 (source, target)
    r{r}/graph/weights_l{l}    float32 (H_l, E): layer l, a softmax over each target's edges
    r{r}/graph/classes         (V,) str, predicted class (when known); /focus int (-1: none)
    r{r}/speech/spectrogram    float32 (frames, bins) log-mel
    r{r}/speech/frame_hop_s, /step_s                 float
    r{r}/speech/segment_start_s, /segment_end_s, /segment_label   (S,) float, float, str

Every weight row sums to 1 (a band row less at the ends of a sequence only if the model's
own padding cut it; the shipped models renormalise inside the sequence).  Large arrays are
streamed into the archive in slices of rows (ZIP64, stored, not compressed: 49 MB of weights
for a 15-minute clip write in about a second), so memory stays at one slice.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from seqattn.export.output import MARKER
from seqattn.export.records import AttentionRecord

FORMAT_VERSION = "1"
ROWS_PER_SLICE = 4096


def write_npz(path: Path, records: Sequence[AttentionRecord]) -> None:
    """Write ``records`` to ``path`` (a new file; ``export_attention`` handles the rename)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        _put(archive, MARKER, np.array(FORMAT_VERSION))
        _put(archive, "inputs", _strings([r.name for r in records]))
        for r, record in enumerate(records):
            prefix = f"r{r}/"
            _put(archive, prefix + "kind", np.array(record.kind))
            _put(archive, prefix + "caption", np.array(record.caption))
            for m, amap in enumerate(record.maps):
                at = f"{prefix}m{m}/"
                _put(archive, at + "key", np.array(amap.key))
                _put(archive, at + "title", np.array(amap.title))
                _put(archive, at + "window", np.array(-1 if amap.window is None else amap.window, dtype=np.int64))
                if amap.queries is not None:
                    _put(archive, at + "queries", _strings(amap.queries))
                if amap.key_labels() is not None:
                    _put(archive, at + "keys", _strings(amap.key_labels()))
                _put_weights(archive, at + "weights", amap.weights)
            if record.graph is not None:
                graph = record.graph
                _put(archive, prefix + "graph/nodes", _strings(graph.nodes))
                _put(archive, prefix + "graph/edge_index", np.asarray(graph.edge_index, dtype=np.int64))
                for layer, weights in enumerate(graph.weights):
                    _put(archive, f"{prefix}graph/weights_l{layer}", np.asarray(weights, dtype=np.float32))
                if graph.classes is not None:
                    _put(archive, prefix + "graph/classes", _strings(graph.classes))
                _put(archive, prefix + "graph/focus", np.array(-1 if graph.focus is None else graph.focus,
                                                               dtype=np.int64))
            if record.speech is not None:
                speech = record.speech
                _put_rows(archive, prefix + "speech/spectrogram", speech.spectrogram)
                _put(archive, prefix + "speech/frame_hop_s", np.array(speech.frame_hop_s, dtype=np.float64))
                _put(archive, prefix + "speech/step_s", np.array(speech.step_s, dtype=np.float64))
                segments = list(speech.segments)
                _put(archive, prefix + "speech/segment_start_s", np.array([s[0] for s in segments], dtype=np.float64))
                _put(archive, prefix + "speech/segment_end_s", np.array([s[1] for s in segments], dtype=np.float64))
                _put(archive, prefix + "speech/segment_label", _strings([s[2] for s in segments]))


def _strings(labels) -> np.ndarray:
    """Labels as a fixed-width unicode array (never an object array, which needs pickle)."""
    return np.array([str(label) for label in labels], dtype=str) if len(labels) else np.zeros(0, dtype="<U1")


def _put(archive: zipfile.ZipFile, key: str, array: np.ndarray) -> None:
    with archive.open(key + ".npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _header(member, shape: tuple) -> None:
    np.lib.format.write_array_header_2_0(member, {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)})


def _put_weights(archive: zipfile.ZipFile, key: str, weights) -> None:
    """(L, H, N, K) weights, read and written one (layer, head, row slice) at a time."""
    n_layers, n_heads, n, k = (int(s) for s in weights.shape)
    with archive.open(key + ".npy", "w", force_zip64=True) as member:
        _header(member, (n_layers, n_heads, n, k))
        for layer in range(n_layers):
            for head in range(n_heads):
                for a in range(0, n, ROWS_PER_SLICE):
                    block = np.asarray(weights[layer, head, a:a + ROWS_PER_SLICE], dtype="<f4")
                    member.write(np.ascontiguousarray(block).tobytes())


def _put_rows(archive: zipfile.ZipFile, key: str, rows) -> None:
    """A (rows, width) array, read and written one slice of rows at a time."""
    n, width = (int(s) for s in rows.shape)
    with archive.open(key + ".npy", "w", force_zip64=True) as member:
        _header(member, (n, width))
        for a in range(0, n, ROWS_PER_SLICE):
            member.write(np.ascontiguousarray(np.asarray(rows[a:a + ROWS_PER_SLICE], dtype="<f4")).tobytes())
