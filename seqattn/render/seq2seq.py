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
