"""Attention weights as a map of cells in a terminal: one cell per (query, key) pair.

Pure functions turn weights into lines of ``rich.text.Text`` for a given width and colour
choice (``map_lines``, ``grid_lines``); ``Heatmap`` and ``HeatmapGrid`` are rich renderables that
ask the console for both when printed.  The rules, so that a map never lies:

- Colour only where the console has 256 colours or truecolor (and NO_COLOR is not set); else each
  cell is two characters of the ramp ``RAMP`` (blank = exactly 0, '.' = above 0, '@' = the top
  of the scale), so the map reads in any terminal, in a pipe and in ``| cat -A``.
- A map wider than the width is split into parts of as many keys as fit, one below the other,
  each with a line that says which keys it holds and that the map continues; nothing is cut.
- Row labels longer than ``max_label`` cells end in '…'; the legend under the map has them whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from rich.cells import cell_len, set_cell_size
from rich.text import Text

from seqattn.render.safe import printable

RAMP = " .:-=+*#%@"  # exactly 0, then nine steps up to the top of the scale
CELL = 2  # terminal columns per key
GAP = 3  # columns between maps side by side in a grid
MAX_LABEL = 24  # cells of a row label before it is shortened (the legend keeps it whole)


def uses_colour(console) -> bool:
    """Whether maps on ``console`` are drawn in colour: 256 colours or truecolor, and not NO_COLOR.

    A console writing to a pipe has no colour system (seqattn.cli.common.console), and 8 or 16
    colours cannot show a sequential scale, so both get the character ramp.
    """
    return not console.no_color and console.color_system in ("256", "truecolor")


def _colour(value: float, top: float) -> str:
    """White (0) to deep blue (top): a sequential scale that reads on dark and light terminals."""
    t = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
    r, g, b = (int(255 - t * (255 - c)) for c in (8, 48, 107))
    return f"rgb({r},{g},{b})"


def ramp_char(value: float, top: float) -> str:
    """The ramp character of ``value`` on a scale 0 .. ``top``: ' ' only for 0 (and below), so
    that any weight above 0 shows; else one of the nine steps, linear in value / top."""
    if value <= 0 or top <= 0:
        return RAMP[0]
    steps = len(RAMP) - 1
    return RAMP[max(1, min(steps, round(value / top * steps)))]


def cell(value: float, top: float, colour: bool) -> Text:
    """One key's cell, ``CELL`` columns wide: a background colour, or ramp characters."""
    if colour:
        return Text(" " * CELL, style=f"on {_colour(value, top)}")
    return Text(ramp_char(value, top) * CELL)


def scale_line(top: float, colour: bool) -> Text:
    """The legend of the cells' scale (``top`` written in full, never shortened)."""
    if colour:
        return Text(f"scale: white 0 .. dark blue {top:.3f}", style="dim")
    return Text(f"scale: {RAMP!r} from blank = 0 to '{RAMP[-1]}' = {top:.3f} (linear; '{RAMP[1]}' = above 0)",
                style="dim")


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


def _top(matrices: Iterable[Sequence[Sequence[float]]]) -> float:
    return max((v for m in matrices for row in m for v in row), default=0.0)


def _fit(label: str, width: int) -> str:
    """``label`` right-aligned in ``width`` cells, shortened with '…' if longer."""
    if cell_len(label) > width:
        label = set_cell_size(label, max(0, width - 1)) + "…"
    return " " * (width - cell_len(label)) + label


def _header(keys: range, col_headers: Sequence[str], indent: int) -> Text:
    """Column headers over the cells: each right-aligned over its cell (a longer one starts at
    its cell), where it fits with a space after the previous one, so that two-digit numbers come
    every other column (``9  11  13``) instead of running together."""
    line: list[str] = [" "] * (indent + CELL * len(keys))
    end = -1  # just past the last header placed
    for k, j in enumerate(keys):
        label = col_headers[j]
        start = indent + CELL * (k + 1) - len(label) if len(label) <= CELL else indent + CELL * k
        if start > end:
            line[start:start + len(label)] = label
            end = start + len(label)
    return Text("".join(line).rstrip())


def _block(matrix: Sequence[Sequence[float]], row_labels: Sequence[str] | None, label_width: int,
           keys: range, col_headers: Sequence[str], top: float, colour: bool) -> list[Text]:
    """Header and one line per row of the columns ``keys``: the body of a map or of a grid panel."""
    indent = label_width + 1 if row_labels is not None else 0
    lines = [_header(keys, col_headers, indent)]
    for i, row in enumerate(matrix):
        line = Text()
        if row_labels is not None:
            line.append(_fit(printable(row_labels[i]), label_width) + " ", style="bold")  # the label only
        for j in keys:
            line.append_text(cell(row[j], top, colour))
        lines.append(line)
    return lines


def _label_width(row_labels: Sequence[str], width: int, max_label: int) -> int:
    cap = max(4, min(max_label, width // 3))
    return min(cap, max((cell_len(printable(label)) for label in row_labels), default=1))


def key_parts(n_keys: int, width: int, label_width: int) -> list[range]:
    """The keys of each part of a map ``width`` columns wide: as many as fit beside the labels
    (at least one per part)."""
    per_part = max(1, (width - label_width - 1) // CELL)
    return [range(a, min(n_keys, a + per_part)) for a in range(0, max(n_keys, 1), per_part)]


def _part_notice(parts: list[range], part: int, width: int, needed: int) -> Text:
    """The line over each part of a map split by ``key_parts``: which keys, and that it goes on."""
    keys, n = parts[part - 1], len(parts)
    if part == 1:
        text = (f"[wider than {width} columns: part 1 of {n}, keys {keys.start}..{keys.stop - 1}; the map continues "
                f"below with keys {keys.stop}..{parts[-1].stop - 1} (COLUMNS={needed} shows it whole)]")
    else:
        text = f"[part {part} of {n}: keys {keys.start}..{keys.stop - 1}" + ("]" if part == n else "; continues below]")
    return Text(text, style="bold yellow")


def map_lines(matrix: Sequence[Sequence[float]], row_labels: Sequence[str], col_labels: Sequence[str], *,
              width: int, colour: bool, title: str = "", legend: str | None = None,
              col_headers: Sequence[str] | None = None, top: float | None = None,
              max_label: int = MAX_LABEL) -> list[Text]:
    """One map as lines: title, (per part: notice,) header, a line per row, legend, scale.

    Labels, title and legend are escaped with ``printable`` and kept as plain ``Text`` (never
    read as rich markup), so words from the input can neither style nor drive the terminal.

    Args:
        width: terminal columns; a map wider than this comes in parts (``key_parts``).
        colour: cells as background colours (True) or ``RAMP`` characters (False).
        legend: the line under the map; default "keys: 0=<col label> 1=...".
        col_headers: what is written over each column (default its index, 0, 1, ...).
        top: the top of the scale (default the largest weight).
    Shapes:
        matrix: (R, C) weights >= 0; row_labels: R strings; col_labels: C strings.
    """
    n_keys = len(col_labels)
    col_headers = [str(j) for j in range(n_keys)] if col_headers is None else list(col_headers)
    top = _top([matrix]) if top is None else top
    label_width = _label_width(row_labels, width, max_label)
    parts = key_parts(n_keys, width, label_width)
    lines = [Text(printable(title), style="bold")] if title else []
    for number, keys in enumerate(parts, 1):
        if len(parts) > 1:
            lines.append(_part_notice(parts, number, width, label_width + 1 + CELL * n_keys))
        lines += _block(matrix, row_labels, label_width, keys, col_headers, top, colour)
    if legend is None:
        legend = "keys: " + "  ".join(f"{j}={label}" for j, label in enumerate(col_labels))
    if legend:
        lines.append(Text(printable(legend)))
    lines.append(scale_line(top, colour))
    return lines


def grid_lines(panels: Sequence[tuple[str, Sequence[Sequence[float]]]], row_labels: Sequence[str],
               col_labels: Sequence[str], *, width: int, colour: bool, title: str = "", legend: str | None = None,
               col_headers: Sequence[str] | None = None, max_label: int = MAX_LABEL) -> list[Text]:
    """Small maps side by side (a panel per layer or head), on one scale, as many per band of the
    grid as fit in ``width``; row labels on the left of each band.  A panel wider than ``width``
    is drawn alone, in parts, like ``map_lines``.

    Shapes:
        panels: (panel title, (R, C) weights) each; row_labels: R strings; col_labels: C strings.
    """
    n_keys = len(col_labels)
    col_headers = [str(j) for j in range(n_keys)] if col_headers is None else list(col_headers)
    top = _top(m for _, m in panels)
    label_width = _label_width(row_labels, width, max_label)
    body = CELL * n_keys
    lines = [Text(printable(title), style="bold")] if title else []
    if legend is None:
        legend = "keys: " + "  ".join(f"{j}={label}" for j, label in enumerate(col_labels))
    if label_width + 1 + body > width:  # one panel does not fit: each alone, in parts
        for name, matrix in panels:
            lines += map_lines(matrix, row_labels, col_labels, width=width, colour=colour, title=name,
                               legend="", col_headers=col_headers, top=top, max_label=max_label)[:-1]
        return lines + [Text(printable(legend)), scale_line(top, colour)]
    per_band = max(1, 1 + (width - label_width - 1 - body) // (GAP + body))
    keys = range(n_keys)
    for start in range(0, len(panels), per_band):
        band = panels[start:start + per_band]
        blocks = [_block(m, row_labels if k == 0 else None, label_width, keys, col_headers, top, colour)
                  for k, (_, m) in enumerate(band)]
        heading = Text(" " * (label_width + 1))
        for k, (name, _) in enumerate(band):
            heading.append(_fit_left(printable(name), body) + (" " * GAP if k < len(band) - 1 else ""), style="bold")
        heading.rstrip()
        lines.append(heading)
        for row in zip(*blocks):
            line = Text()
            for k, piece in enumerate(row):
                piece = piece.copy()
                piece.pad_right((label_width + 1 if k == 0 else 0) + body - piece.cell_len)
                line.append_text(piece)
                if k < len(row) - 1:
                    line.append(" " * GAP)
            line.rstrip()
            lines.append(line)
        lines.append(Text())
    return lines + [Text(printable(legend)), scale_line(top, colour)]


def _fit_left(label: str, width: int) -> str:
    if cell_len(label) > width:
        label = set_cell_size(label, max(0, width - 1)) + "…"
    return label + " " * (width - cell_len(label))


@dataclass
class Heatmap:
    """``map_lines`` as a rich renderable: the width and the colour choice come from the console
    it is printed on (``uses_colour``)."""

    matrix: Sequence[Sequence[float]]
    row_labels: Sequence[str]
    col_labels: Sequence[str]
    title: str = ""
    legend: str | None = None
    col_headers: Sequence[str] | None = None
    notes: list[str] = field(default_factory=list)  # lines under the scale (plain text)

    def __rich_console__(self, console, options):
        yield from map_lines(self.matrix, self.row_labels, self.col_labels, width=options.max_width,
                             colour=uses_colour(console), title=self.title, legend=self.legend,
                             col_headers=self.col_headers)
        yield from (Text(printable(note), style="dim") for note in self.notes)


@dataclass
class HeatmapGrid:
    """``grid_lines`` as a rich renderable (see ``Heatmap``)."""

    panels: Sequence[tuple[str, Sequence[Sequence[float]]]]
    row_labels: Sequence[str]
    col_labels: Sequence[str]
    title: str = ""
    legend: str | None = None
    col_headers: Sequence[str] | None = None
    notes: list[str] = field(default_factory=list)

    def __rich_console__(self, console, options):
        yield from grid_lines(self.panels, self.row_labels, self.col_labels, width=options.max_width,
                              colour=uses_colour(console), title=self.title, legend=self.legend,
                              col_headers=self.col_headers)
        yield from (Text(printable(note), style="dim") for note in self.notes)


def heatmap(matrix: Sequence[Sequence[float]], row_labels: Sequence[str], col_labels: Sequence[str],
            title: str = "", legend: str | None = None) -> Heatmap:
    """A map of ``matrix`` (rows are queries, labelled; columns keys, numbered) with its legend.

    Shapes:
        matrix: (R, C) weights in [0, 1]; row_labels: R strings; col_labels: C strings.
    """
    return Heatmap(matrix, [f"{i} {label}" for i, label in enumerate(row_labels)], col_labels, title, legend)
