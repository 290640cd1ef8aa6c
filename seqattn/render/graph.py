"""Rendering a node's attention over its neighbours as a table for the terminal.

Takes plain data (labels and floats).  Numbers are written whole (0.123), never squeezed: where
the weight columns do not fit beside the neighbour and class columns, they come in parts, one
below the other, each saying which columns it holds and that the table continues.
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.text import Text

from seqattn.render.safe import printable

NUMBER = "{:.3f}"  # a weight in [0, 1]: 5 characters


def _left(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))


def _span(names: Sequence[str], columns: range) -> str:
    first, last = names[columns.start], names[columns.stop - 1]
    return f"column {first}" if first == last else f"columns {first}..{last}"


def column_parts(names: Sequence[str], width: int, indent: int) -> list[range]:
    """The weight columns of each part of a table ``width`` wide whose label columns take ``indent``."""
    parts, start, used = [], 0, indent
    for k, name in enumerate(names):
        need = 1 + max(len(name), len(NUMBER.format(1.0)))
        if k > start and used + need > width:
            parts.append(range(start, k))
            start, used = k, indent
        used += need
    parts.append(range(start, len(names)))
    return parts


def neighbour_table(title: str, rows: Sequence[tuple[str, str, Sequence[float]]], names: Sequence[str],
                    caption: str, *, width: int) -> list[Text]:
    """Lines of a table: a row per neighbour (label, class, a weight per column), ``width`` wide.

    Labels are escaped with ``printable`` and shown whole.
    Shapes:
        rows: (neighbour label, class label, C weights); names: C column names.
    """
    labels = [(printable(n), printable(c)) for n, c, _ in rows]
    w_node = max([len("neighbour")] + [cell_len(n) for n, _ in labels])
    w_class = max([len("class")] + [cell_len(c) for _, c in labels])
    indent = w_node + 1 + w_class
    parts = column_parts(names, width, indent)
    lines = [Text(printable(title), style="bold")]
    for number, columns in enumerate(parts, 1):
        if len(parts) > 1:
            rest = (f"; the table continues below with {_span(names, range(columns.stop, len(names)))}"
                    if number < len(parts) else "")
            lines.append(Text(f"[part {number} of {len(parts)}: {_span(names, columns)}{rest}]", style="bold yellow"))
        cell_widths = [max(len(names[k]), len(NUMBER.format(1.0))) for k in columns]
        head = _left("neighbour", w_node) + " " + _left("class", w_class)
        head += "".join(" " + names[k].rjust(w) for k, w in zip(columns, cell_widths))
        lines.append(Text(head, style="bold"))
        for (node, cls), (_, _, weights) in zip(labels, rows):
            line = _left(node, w_node) + " " + _left(cls, w_class)
            line += "".join(" " + NUMBER.format(weights[k]).rjust(w) for k, w in zip(columns, cell_widths))
            lines.append(Text(line))
    lines.append(Text(printable(caption), style="dim"))
    return lines
