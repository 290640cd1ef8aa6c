"""Static pictures for papers: .svg or .png of one layer/head or a grid, drawn by matplotlib (Agg).

What a picture shows: the first record's primary map (or the map named by ``which``), one panel
per (layer, head) asked for (head None = the mean of heads):

* tokens, seq2seq, classify: heatmaps, queries down and keys across (a band drawn as the
  N x N matrix it stands for; labels on the axes up to ``MAX_TICK_LABELS`` of them);
* speech: the log-mel spectrogram, the segments and, per panel, the band over time (offset of
  the key from the query up the y axis), averaged over time bins as in the HTML page;
* graph: the focus node's incoming edges (rows, heaviest first, at most ``MAX_GRAPH_ROWS``)
  by (layer, head).

Sizes are fixed so they can be relied on: a single heatmap is ``SINGLE_PX`` square; a grid is
``GRID_CELL_PX`` per panel plus ``GRID_MARGIN_PX``; speech is ``SPEECH_WIDTH_PX`` wide.  Labels
are escaped (``seqattn.render.safe.printable``) and drawn as plain text: a ``$`` in a word is
never read as mathtext.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from seqattn.export.output import MARKER
from seqattn.export.records import AttentionMap, AttentionRecord

DPI = 100
SINGLE_PX = 640
GRID_CELL_PX = 240
FEW_PANELS = 4  # a grid of this many panels or fewer has larger panels, with labels
FEW_CELL_PX = 360
GRID_MARGIN_PX = 80
SPEECH_WIDTH_PX = 1200
SPEECH_BASE_PX = 260
SPEECH_PANEL_PX = 160
MAX_TICK_LABELS = 60
MAX_GRAPH_ROWS = 30

Panel = tuple  # (layer, head or None)


def figure_size_px(record: AttentionRecord, panels: Sequence[Panel]) -> tuple[int, int]:
    """(width, height) in pixels of the picture of ``record`` with ``panels``."""
    if record.kind == "speech":
        return SPEECH_WIDTH_PX, SPEECH_BASE_PX + SPEECH_PANEL_PX * len(panels)
    if record.kind == "graph" or len(panels) == 1:
        return SINGLE_PX, SINGLE_PX
    rows, cols = _grid(panels)
    cell = _cell_px(panels)
    return GRID_MARGIN_PX + cols * cell, GRID_MARGIN_PX + rows * cell


def _cell_px(panels: Sequence[Panel]) -> int:
    """A grid's panel size: larger for a few panels, which then carry their labels."""
    return FEW_CELL_PX if len(panels) <= FEW_PANELS else GRID_CELL_PX


def all_panels(record: AttentionRecord, which: Optional[str] = None) -> list[Panel]:
    """Every (layer, head) of the record's map: the grid."""
    if record.kind == "graph":
        return [(layer, head) for layer, w in enumerate(record.graph.weights) for head in range(w.shape[0])]
    n_layers, n_heads = pick_map(record, which).shape[:2]
    return [(layer, head) for layer in range(n_layers) for head in range(n_heads)]


def pick_map(record: AttentionRecord, which: Optional[str] = None) -> AttentionMap:
    if which is None:
        return record.maps[record.primary]
    for amap in record.maps:
        if amap.key == which:
            return amap
    raise ValueError(f"no {which!r} attention in {record.name!r} (has {', '.join(m.key for m in record.maps)})")


def write_image(path: Path, fmt: str, record: AttentionRecord, panels: Optional[Sequence[Panel]] = None,
                which: Optional[str] = None) -> None:
    """Draw ``record`` (module docstring) and save it as ``fmt`` ("png" or "svg") to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    record.check()
    panels = list(panels) if panels else all_panels(record, which)
    width, height = figure_size_px(record, panels)
    style = {"text.parse_math": False, "svg.hashsalt": MARKER, "font.size": 9, "figure.dpi": DPI,
             "savefig.dpi": DPI}
    with warnings.catch_warnings(), matplotlib.rc_context(style):
        warnings.simplefilter("ignore")  # missing glyphs for unusual labels: drawn as boxes, not an error
        fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI,
                         layout=None if record.kind == "speech" else "constrained")
        try:
            if record.kind == "speech":
                _speech(fig, record, panels, which)
            elif record.kind == "graph":
                _graph(fig, record, panels)
            else:
                _heatmaps(fig, record, panels, which)
            metadata = {"Software": MARKER} if fmt == "png" else {"Creator": MARKER, "Date": None}
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
        finally:
            plt.close(fig)


def _grid(panels: Sequence[Panel]) -> tuple[int, int]:
    layers = list(dict.fromkeys(p[0] for p in panels))
    heads = list(dict.fromkeys(p[1] for p in panels))
    if len(layers) * len(heads) == len(panels):
        if len(heads) == 1:  # one head (or the mean) per layer: the layers side by side
            return 1, len(layers)
        return len(layers), len(heads)
    cols = min(4, len(panels))
    return math.ceil(len(panels) / cols), cols


def _label(text, limit: int = 24) -> str:
    from seqattn.render.safe import printable

    text = printable(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _panel_title(layer: int, head) -> str:
    return f"layer {layer}, " + ("mean of heads" if head is None else f"head {head}")


def dense_panel(amap: AttentionMap, layer: int, head) -> np.ndarray:
    """The (N, M) weights of one head (or the heads' mean) of one layer; a band made dense."""
    n_heads = amap.shape[1]
    heads = range(n_heads) if head is None else [head]
    values = np.mean([np.asarray(amap.weights[layer, h, 0:amap.shape[2]], dtype=np.float32) for h in heads], axis=0)
    if amap.window is None:
        return values
    n, w = values.shape[0], amap.window
    dense = np.zeros((n, n + 2 * w), np.float32)
    rows = np.arange(n)[:, None]
    dense[rows, rows + np.arange(2 * w + 1)] = values
    return dense[:, w:w + n]


def _heatmaps(fig, record: AttentionRecord, panels: Sequence[Panel], which) -> None:
    amap = pick_map(record, which)
    rows, cols = _grid(panels)
    single = len(panels) == 1
    labelled = len(panels) <= FEW_PANELS  # room for the labels on every panel
    axes = fig.subplots(rows, cols, squeeze=False)
    queries = amap.queries
    keys = amap.key_labels()
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (layer, head) in zip(axes.flat, panels):
        values = dense_panel(amap, layer, head)
        ax.imshow(values, cmap="Blues", vmin=0.0, vmax=max(float(values.max()), 1e-9), aspect="auto",
                  interpolation="nearest")
        ax.set_title(_panel_title(layer, head), fontsize=10 if single else 8)
        n, m = values.shape
        limit = MAX_TICK_LABELS if single else MAX_TICK_LABELS // 2
        size = 9 if single else 7
        if labelled and queries is not None and n <= limit:
            ax.set_yticks(range(n), [_label(q, 16) for q in queries], fontsize=size)
        else:
            ax.set_yticks([])
        if labelled and keys is not None and m <= limit:
            ax.set_xticks(range(m), [_label(k, 16) for k in keys], rotation=90, fontsize=size)
            ax.xaxis.tick_top()
        else:
            ax.set_xticks([])
        if single:
            ax.set_ylabel("query")
            ax.set_xlabel("key")
            fig.colorbar(ax.images[0], ax=ax, shrink=0.6, label="weight")
    fig.suptitle(_label(record.name, 90) + f"  ({amap.title})", fontsize=10)


def _speech(fig, record: AttentionRecord, panels: Sequence[Panel], which) -> None:
    from seqattn.export.html import MAX_TIME_COLUMNS, _binned

    amap, speech = pick_map(record, which), record.speech
    n_layers, n_heads, steps, k = amap.shape
    bin_steps = max(1, math.ceil(steps / MAX_TIME_COLUMNS))
    frames = speech.spectrogram.shape[0]
    frames_per_step = max(1, round(speech.step_s / speech.frame_hop_s))
    bin_frames = bin_steps * frames_per_step
    spectrogram = _binned(lambda a, b: speech.spectrogram[a:b], frames, bin_frames)
    duration = max(frames * speech.frame_hop_s, steps * speech.step_s)
    ratios = [3, 0.6] + [2] * len(panels)
    axes = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    fig.subplots_adjust(left=0.07, right=0.98, top=0.93, bottom=0.13, hspace=0.35)
    axes[0].imshow(spectrogram.T, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, duration, 0, spectrogram.shape[1]), interpolation="nearest")
    axes[0].set_ylabel("mel band")
    axes[0].set_title(_label(record.name, 80) + (f"  ({record.caption})" if record.caption else ""), fontsize=10)
    segments = axes[1]
    for start, end, label in speech.segments:
        silent = label == speech.silence
        segments.axvspan(start, end, color="#eceff3" if silent else "#9ecae1", lw=0)
        if not silent:
            segments.text((start + end) / 2, 0.5, _label(label), ha="center", va="center", fontsize=8)
    segments.set_yticks([])
    segments.set_ylabel("segments", rotation=0, ha="right", va="center")
    for ax, (layer, head) in zip(axes[2:], panels):
        heads = range(n_heads) if head is None else [head]
        band = np.mean([_binned(lambda a, b, h=h: amap.weights[layer, h, a:b], steps, bin_steps) for h in heads],
                       axis=0)
        w = amap.window
        ax.imshow(band.T, origin="upper", aspect="auto", cmap="Blues", extent=(0, duration, w + 0.5, -w - 0.5),
                  vmin=0.0, vmax=max(float(band.max()), 1e-9), interpolation="nearest")
        ax.set_ylabel(f"L{layer} {'mean' if head is None else f'h{head}'}\nkey offset")
    axes[-1].set_xlabel("time (s)" + (f"; columns are means of {bin_steps} attention steps" if bin_steps > 1 else ""))


def _graph(fig, record: AttentionRecord, panels: Sequence[Panel]) -> None:
    graph = record.graph
    node = graph.focus if graph.focus is not None else 0
    edges = np.asarray(graph.edge_index)
    into = np.flatnonzero(edges[1] == node)
    columns = []
    for layer, head in panels:
        weights = np.asarray(graph.weights[layer], dtype=np.float32)
        columns.append(weights[:, into].mean(0) if head is None else weights[head, into])
    table = np.stack(columns, axis=1) if columns else np.zeros((len(into), 0))
    order = np.argsort(-table.mean(1), kind="stable")[:MAX_GRAPH_ROWS]
    table = table[order]
    sources = edges[0, into[order]]
    ax = fig.subplots()
    ax.imshow(table, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    if table.size <= 400:  # few enough cells to print each weight
        for (r, c), value in np.ndenumerate(table):
            ax.text(c, r, f"{value:.3f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 else "black")
    labels = [_label(graph.nodes[s]) + (" (self)" if s == node else "") for s in sources]
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xticks(range(len(panels)), [f"L{l}" + ("mean" if h is None else f"h{h}") for l, h in panels], rotation=90)
    ax.xaxis.tick_top()
    shown = f"the {len(order)} heaviest of " if len(into) > len(order) else ""
    fig.suptitle(f"node {_label(graph.nodes[node], 40)}: {shown}{len(into)} incoming edges (self included)",
                 fontsize=10)
