"""Rendering seq2seq outputs: pretty (terminal), tsv, jsonl, the alignment heatmap, evaluation metrics.

Takes plain data (an ``Output``'s fields); the attention rows are converted with ``.tolist()``.
An empty input line arrives with ``result`` None and stays an empty record, so that outputs
line up with inputs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.text import Text

from seqattn.render.heatmap import downsample, heatmap
from seqattn.render.json_line import json_line
from seqattn.render.safe import printable

if TYPE_CHECKING:  # for type checkers only: rendering needs no torch
    from seqattn.tasks.seq2seq import Output


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")


def pretty(source: str, result: "Output | None") -> Text:
    """``source  ->  output`` (an empty input line stays empty; both escaped with ``printable``)."""
    line = Text()
    if result is None:
        return line
    line.append(printable(source), style="bold")
    line.append("  ->  ", style="dim")
    line.append(printable(result.text), style="bold cyan")
    return line


def tsv(source: str, result: "Output | None") -> str:
    """``input<TAB>output`` per line; an empty input line gives an empty line."""
    if result is None:
        return "\n"
    return f"{_clean(source)}\t{_clean(result.text)}\n"


def jsonl(source: str, result: "Output | None", with_attention: bool = False) -> str:
    """One JSON object per input line: input, output, symbols, score (and the alignment)."""
    if result is None:
        return json.dumps({"input": source, "output": None}) + "\n"
    record = {"input": source, "output": result.text, "symbols": result.symbols, "score": round(result.score, 4)}
    if with_attention and result.attention is not None:
        record["source_symbols"] = result.source_symbols
        record["attention"] = [[round(v, 4) for v in row] for row in result.attention.tolist()]
    return json_line(record, ensure_ascii=False)


def alignment(result: "Output", max_size: int = 60):
    """The encoder-decoder attention as a heatmap: a row per output symbol (and EOS), a column per
    source symbol; last decoder layer, mean over heads."""
    matrix, step = downsample(result.attention.tolist(), max_size)
    rows = (result.symbols + ["</s>"]) if step == 1 else [f"{i * step}.." for i in range(len(matrix))]
    cols = result.source_symbols if step == 1 else [f"{j * step}.." for j in range(len(matrix[0]))]
    legend = "source: " + "  ".join(f"{j}={printable(label)}" for j, label in enumerate(cols))
    return heatmap(matrix, rows, cols, title="encoder-decoder attention (output x source, last layer, "
                   "mean over heads)", legend=legend)


def metrics_text(result: dict) -> str:
    """Human-readable evaluation summary."""
    lines = [f"WER {100 * result['wer']:.2f}%  PER {100 * result['per']:.2f}%  on {result['sequences']:,} "
             f"sources ({result['references']:,} references), beam {result['beam']}"]
    if "bleu" in result:
        lines.append(f"BLEU {result['bleu']:.2f}")
    return "\n".join(lines) + "\n"


ATTENTION_TYPES = {  # --attention-type: what each map holds (rows x columns)
    "cross": "encoder-decoder attention (output x source)",
    "encoder": "encoder self-attention (source x source)",
    "decoder": "decoder masked self-attention (position t sees 0..t)",
}


def attention_view(result: "Output", attention_type: str, maps: list[tuple[str, list[list[float]]]],
                   grid_title: str = "", max_size: int = 60):
    """One map, or a grid of maps, of one kind of attention of a decoded output.

    Rows and columns: output symbols (and EOS) x source symbols for "cross"; source x source for
    "encoder"; decoder positions for "decoder" (position t reads <s> or output t - 1 and
    predicts output t).  A side longer than ``max_size`` is averaged in s x s tiles, and the
    title says so.

    Shapes:
        maps: (title, (R, C) weights) each.
    """
    from seqattn.render.heatmap import Heatmap, HeatmapGrid

    outputs = result.symbols + ["</s>"]
    inputs = ["<s>"] + result.symbols
    rows, cols = {"cross": (outputs, result.source_symbols), "encoder": (result.source_symbols, result.source_symbols),
                  "decoder": (inputs, inputs)}[attention_type]
    shrunk = [(title, *downsample(matrix, max_size)) for title, matrix in maps]
    step = shrunk[0][2]
    if step > 1:
        rows = [f"{i}..{min(i + step, len(rows)) - 1}" for i in range(0, len(rows), step)]
        cols = [f"{j}..{min(j + step, len(cols)) - 1}" for j in range(0, len(cols), step)]
    what = ATTENTION_TYPES[attention_type] + (f", {step} x {step} tiles averaged" if step > 1 else "")
    legend = ("source: " if attention_type == "cross" else "positions: ") + "  ".join(
        f"{j}={label}" for j, label in enumerate(cols))
    if attention_type == "decoder" and step == 1:
        legend += " (position t reads this symbol and predicts the next)"
    labels = [f"{i} {label}" for i, label in enumerate(rows)]
    if len(shrunk) == 1:
        title, matrix, _ = shrunk[0]
        return Heatmap(matrix, labels, cols, f"{what}; {title}", legend)
    return HeatmapGrid([(title, matrix) for title, matrix, _ in shrunk], labels, cols, f"{what}; {grid_title}",
                       legend)
