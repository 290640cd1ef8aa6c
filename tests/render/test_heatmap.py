"""Terminal attention maps (seqattn.render.heatmap): the ramp without colour, parts instead of cuts,
grids of small maps, and the colour decision taken from the console."""

import io

from rich.console import Console

from seqattn.render.heatmap import (CELL, RAMP, Heatmap, HeatmapGrid, grid_lines, key_parts, map_lines, ramp_char,
                                    uses_colour)


def _rows(n, seed=0):
    import random

    rng = random.Random(seed)
    rows = [[rng.random() for _ in range(n)] for _ in range(n)]
    return [[v / sum(r) for v in r] for r in rows]


def _plain(lines):
    return "\n".join(line.plain for line in lines)


def test_ramp_blank_only_for_zero_and_full_at_the_top():
    assert ramp_char(0.0, 0.5) == " " and ramp_char(1e-6, 0.5) == RAMP[1] and ramp_char(0.5, 0.5) == RAMP[-1]
    assert [ramp_char(v / 9, 1.0) for v in range(10)] == [" "] + list(RAMP[1:])


def test_without_colour_the_cells_are_ramp_characters_and_never_blank():
    words = ["The", "cat", "sat", "."]
    text = _plain(map_lines(_rows(4), words, words, width=80, colour=False, title="attention"))
    body = text.splitlines()[2:6]
    assert all(set(line.split(" ", 1)[1].strip()) <= set(RAMP) for line in body)
    assert all(line.split(" ", 1)[1].strip() for line in body)  # not a grid of spaces
    assert "keys: 0=The" in text and "'@' =" in text


def test_colour_is_taken_from_the_console():
    def console(**kwargs):
        return Console(file=io.StringIO(), width=80, **kwargs)

    assert uses_colour(console(force_terminal=True, color_system="truecolor"))
    assert uses_colour(console(force_terminal=True, color_system="256"))
    assert not uses_colour(console(force_terminal=True, color_system="standard"))  # 16 colours: no scale
    assert not uses_colour(console(force_terminal=True, color_system="truecolor", no_color=True))  # NO_COLOR
    assert not uses_colour(console(force_terminal=False))  # a pipe
    out = console(force_terminal=True, color_system="truecolor")
    out.print(Heatmap(_rows(3), ["a", "b", "c"], ["a", "b", "c"], "t"))
    drawn = out.file.getvalue()
    assert ";48;2;" not in drawn and "\x1b[48;2;" in drawn  # background colours, not bold like the labels
    assert "@@" not in drawn  # and no characters
    out = console(force_terminal=True, color_system="standard")
    out.print(Heatmap(_rows(3), ["a", "b", "c"], ["a", "b", "c"], "t"))
    assert "@@" in out.file.getvalue()


def test_a_wide_map_comes_in_parts_with_a_notice_and_loses_no_key():
    n = 72
    words = [f"w{i}" for i in range(n)]
    lines = map_lines(_rows(n), [f"{i} {w}" for i, w in enumerate(words)], words, width=100, colour=False)
    assert all(line.cell_len <= 100 for line in lines[:-2] if not line.plain.startswith("["))  # notices wrap
    text = _plain(lines)
    assert "the map continues below with keys" in text and "COLUMNS=" in text
    parts = key_parts(n, 100, len("71 w71"))
    assert len(parts) == 2 and parts[0].start == 0 and parts[-1].stop == n
    assert sum(len(p) for p in parts) == n
    cells = [line.plain.split(" 0 w0 ", 1)[1] for line in lines if line.plain.lstrip().startswith("0 w0 ")]
    assert len(cells) == 2 and sum(len(c) for c in cells) == CELL * n  # every key of row 0, across the parts


def test_a_map_that_fits_has_no_notice():
    words = list("abcdef")
    assert "part" not in _plain(map_lines(_rows(6), words, words, width=100, colour=False))


def test_long_row_labels_are_shortened_and_the_legend_keeps_them():
    words = ["a" * 60, "b"]
    text = _plain(map_lines(_rows(2), words, words, width=100, colour=False))
    assert "…" in text.splitlines()[1] and "0=" + "a" * 60 in text


def test_grid_puts_panels_side_by_side_on_one_scale():
    words = list("abcd")
    panels = [(f"L{layer} h{head}", _rows(4, seed=layer * 2 + head)) for layer in range(2) for head in range(2)]
    text = _plain(grid_lines(panels, words, words, width=100, colour=False, title="grid"))
    first_band = [line for line in text.splitlines() if "L0 h0" in line][0]
    assert "L0 h1" in first_band and "L1 h1" in first_band  # four small maps fit in one band
    assert text.count("scale:") == 1
    narrow = _plain(grid_lines(panels, words, words, width=20, colour=False))
    assert narrow.index("L0 h0") < narrow.index("L0 h1")  # one per band when narrow
    wide = [(f"p{k}", _rows(60, seed=k)) for k in range(2)]
    text = _plain(grid_lines(wide, [str(i) for i in range(60)], [str(i) for i in range(60)], width=80, colour=False))
    assert "continues below" in text and "p0" in text and "p1" in text  # a panel wider than the width: in parts


def test_renderables_use_the_console_width():
    out = Console(file=io.StringIO(), width=60, force_terminal=False)
    words = [f"w{i}" for i in range(40)]
    out.print(HeatmapGrid([("x", _rows(40)), ("y", _rows(40, 1))], words, words))
    assert "continues below" in out.file.getvalue()
