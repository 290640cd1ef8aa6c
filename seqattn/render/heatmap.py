"""Attention weights as a heatmap drawn with rich: one coloured cell per (query, key) pair."""

from __future__ import annotations

from typing import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from seqattn.render.safe import printable


def _colour(value: float, top: float) -> str:
    """White (0) to deep blue (top): a sequential scale that reads on dark and light terminals."""
    t = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
    r, g, b = (int(255 - t * (255 - c)) for c in (8, 48, 107))
    return f"rgb({r},{g},{b})"


def downsample(matrix: Sequence[Sequence[float]], max_size: int) -> tuple[list[list[float]], int]:
    """Average non-overlapping s x s tiles so that neither side exceeds ``max_size``.

    Returns (smaller matrix, s).  Keeps row sums of attention (each tile row is a mean).
    """
    n_rows, n_cols = len(matrix), len(matrix[0]) if matrix else 0
    step = max(1, -(-max(n_rows, n_cols) // max_size))
    if step == 1:
        return [list(row) for row in matrix], 1
    out = []
    for i in range(0, n_rows, step):
        rows = matrix[i:i + step]
        out.append([sum(r[j] for r in rows for j in range(k, min(k + step, n_cols))) / len(rows)
                    for k in range(0, n_cols, step)])
    return out, step


def heatmap(matrix: Sequence[Sequence[float]], row_labels: Sequence[str], col_labels: Sequence[str],
            title: str = "", legend: str | None = None) -> Group:
    """A title, a rich Table (rows are queries, labelled; columns keys, numbered) and a legend.

    Labels, title and legend are shown as plain text, escaped with ``printable`` (never read as
    rich markup), so words from the input cannot style or drive the terminal.

    Args:
        legend: the line under the table; default "keys: 0=<col label> 1=...".
    Shapes:
        matrix: (R, C) weights in [0, 1]; row_labels: R strings; col_labels: C strings.
    """
    top = max((v for row in matrix for v in row), default=0.0)
    table = Table(show_edge=False, box=None, padding=(0, 0))
    table.add_column("query \\ key", justify="right", no_wrap=True, style="bold")
    for j in range(len(col_labels)):
        table.add_column(str(j % 100).rjust(2), justify="center", no_wrap=True, min_width=2)
    for i, row in enumerate(matrix):
        cells = [Text("  ", style=f"on {_colour(v, top)}") for v in row]
        table.add_row(Text(f"{i} {printable(row_labels[i])} "), *cells)
    if legend is None:
        legend = "keys: " + "  ".join(f"{j}={label}" for j, label in enumerate(col_labels))
    return Group(Text(printable(title), style="bold"), table, Text(printable(legend)),
                 Text(f"scale: white 0 .. dark blue {top:.2f}", style="dim"))
