"""Rendering speech results and frame matrices: pretty (terminal), tsv and jsonl.

Takes plain data (a ``SpeechResult``'s fields, numpy arrays); imports neither torch nor models.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from seqattn.render.json_line import json_line
from seqattn.render.safe import printable

if TYPE_CHECKING:  # for type checkers only: rendering needs no torch
    import numpy as np

    from seqattn.tasks.speech import AttentionView, SpeechResult


def _channels(n: int) -> str:
    return {1: "mono", 2: "stereo"}.get(n, f"{n} channels")


def pretty(result: "SpeechResult", window_ms: float, hop_ms: float, silence: str) -> tuple[Text, Group]:
    """Duration, sample rate, frame count, class and transcript (print with soft_wrap, so that
    long paths run on), and the segments table of one clip.  The file name and the model's labels
    are escaped with ``printable``."""
    head = Text()
    head.append(printable(result.file), style="bold")
    head.append(f"  {result.duration_s:.2f} s, {result.sample_rate_hz} Hz {_channels(result.channels)}, "
                f"{result.frames:,} frames ({window_ms:g} ms every {hop_ms:g} ms)\n")
    head.append("class       ", style="dim")
    head.append(printable(result.label), style="bold green")
    head.append(f"  ({result.confidence:.3f})\n")
    head.append("transcript  ", style="dim")
    head.append(printable(" ".join(result.transcript)) or "(nothing)", style="bold cyan")
    table = Table(box=None, padding=(0, 2), show_edge=False, title_justify="left")
    for name, justify in (("start s", "right"), ("end s", "right"), ("label", "left"), ("confidence", "right")):
        table.add_column(name, justify=justify)
    for s in result.segments:
        style = "dim" if s.label == silence else "bold"
        table.add_row(f"{s.start_s:.2f}", f"{s.end_s:.2f}", Text(printable(s.label), style=style),
                      f"{s.confidence:.2f}")
    return head, Group(Text("segments (frame tags)", style="dim"), table)


def attention(views, segments=(), hint: str = ""):
    """Banded attention over time: rows are time bins (with the frame tag there), columns the key
    offsets j - i from -w to +w; one map, or a grid of maps (a panel per layer or head) on one
    scale.  The time per row is always said; ``hint`` (a line) says how to see finer rows.

    Args:
        views: an ``AttentionView`` or a list of them (the same bins; bands of any width: a
            narrower band is shown inside the widest, zero outside, as it is).
    """
    from seqattn.render.heatmap import Heatmap, HeatmapGrid

    views = [views] if not isinstance(views, (list, tuple)) else list(views)
    first = views[0]
    window = max(v.window for v in views)
    labels = []
    for r in range(len(first.rows)):
        start = first.start_s + r * first.bin_s
        t = start + 0.5 * first.bin_s
        tag = next((s.label for s in segments if s.start_s <= t < s.end_s), "")
        labels.append(f"{start:7.2f} s {printable(tag):>4}")
    offsets = [str(s - window) for s in range(2 * window + 1)]
    step_ms = round(first.bin_s * 1000 / first.bin_steps, 3)
    legend = (f"column: key at that offset in steps ({step_ms:g} ms each) from the query; "
              f"{first.bin_s:.3f} s per row ({first.bin_steps} step(s) averaged)")
    notes = [hint] if hint else []

    def padded(view) -> list[list[float]]:
        pad = [0.0] * (window - view.window)
        return [pad + row + pad for row in view.rows]

    def what(view, short: bool = False) -> str:
        if view.kind == "rollout":
            return f"rollout L{view.layer}" if short else \
                f"attention rollout through layer {view.layer} (mean of heads; band +-{view.window} steps)"
        head = "mean" if view.head is None else f"h{view.head}"
        if short:
            return f"L{view.layer} {head}"
        return f"banded attention, layer {view.layer}, " + ("mean of heads" if view.head is None else f"head {view.head}")

    if len(views) == 1:
        return Heatmap(padded(first), labels, offsets, what(first), legend, col_headers=offsets, notes=notes)
    return HeatmapGrid([(what(v, True), padded(v)) for v in views], labels, offsets,
                       f"banded attention over time, {len(views)} maps (one scale)", legend, col_headers=offsets,
                       notes=notes)


def tsv(result: "SpeechResult") -> str:
    """One line per clip: file, class, confidence, transcript (labels separated by spaces), duration s."""
    fields = [result.file, result.label, f"{result.confidence:.4f}", " ".join(result.transcript),
              f"{result.duration_s:.3f}"]
    return "\t".join(f.replace("\t", " ").replace("\n", " ") for f in fields) + "\n"


def as_dict(result: "SpeechResult") -> dict:
    """The JSON object of one clip: file, class, transcript, segments, and the rest."""
    obj = {"file": result.file, "class": result.label, "confidence": result.confidence,
           "transcript": " ".join(result.transcript), "segments": [
               {"start_s": s.start_s, "end_s": s.end_s, "label": s.label, "confidence": s.confidence}
               for s in result.segments],
           "duration_s": round(result.duration_s, 4), "sample_rate_hz": result.sample_rate_hz,
           "channels": result.channels, "frames": result.frames}
    if result.attention is not None:
        def one(view) -> dict:
            return {"layer": view.layer, "head": view.head, "kind": view.kind, "window": view.window,
                    "bin_steps": view.bin_steps, "bin_s": view.bin_s, "start_s": view.start_s, "rows": view.rows}

        views = result.attention_views or [result.attention]
        obj["attention"] = one(views[0]) if len(views) == 1 else [one(v) for v in views]
    return obj


def jsonl(result: "SpeechResult") -> str:
    return json_line(as_dict(result), ensure_ascii=False)


# --------------------------------------------------------------------------- frame matrices


def frames_tsv(block: "np.ndarray", start: int, centre_s, header: list[str] | None = None) -> str:
    """Rows 'frame<TAB>time_s<TAB>v_0<TAB>...' for frames start.. (header line first if given)."""
    lines = ["\t".join(header) + "\n"] if header else []
    for i, row in enumerate(block, start):
        lines.append(f"{i}\t{centre_s(i):.4f}\t" + "\t".join(f"{v:.4f}" for v in row.tolist()) + "\n")
    return "".join(lines)


def frames_jsonl(block: "np.ndarray", start: int, centre_s) -> str:
    """One object per frame: {"frame", "time_s", "values"}."""
    return "".join(json.dumps({"frame": i, "time_s": round(float(centre_s(i)), 4),
                               "values": [round(v, 4) for v in row.tolist()]}) + "\n"
                   for i, row in enumerate(block, start))


RAMP = " .:-=+*#%@"  # dark to bright, so the image reads without colour too (NO_COLOR, pipes)


def spectrogram(matrix: "np.ndarray", max_columns: int = 100) -> Table:
    """A frame matrix as an image: time runs right, bin 0 at the bottom; colour and characters.

    Columns average non-overlapping runs of frames so that at most ``max_columns`` remain.
    Shapes:
        matrix: (N, bins)
    """
    import numpy as np

    n = len(matrix)
    step = max(1, -(-n // max_columns))
    columns = np.stack([matrix[i:i + step].mean(0) for i in range(0, n, step)]) if n else np.zeros((0, 1))
    low, high = (float(columns.min()), float(columns.max())) if n else (0.0, 1.0)
    table = Table(show_header=False, box=None, padding=(0, 0))
    table.add_column("bin", justify="right", style="dim", no_wrap=True)
    table.add_column("frames", no_wrap=True)
    for b in range(columns.shape[1] - 1, -1, -1):
        row = Text()
        for v in columns[:, b]:
            t = 0.0 if high <= low else (v - low) / (high - low)
            row.append(RAMP[min(len(RAMP) - 1, int(t * len(RAMP)))],
                       style=f"on rgb({int(20 + 235 * t)},{int(20 + 180 * t ** 2)},{int(90 * (1 - t))})")
        table.add_row(f"{b} ", row)
    table.caption = f"{step} frame(s) per column; {RAMP[0]!r} {low:.1f} .. {RAMP[-1]!r} {high:.1f}"
    table.caption_justify = "left"
    return table
