"""Rendering classified texts: pretty (a table on the terminal), tsv and jsonl lines."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from seqattn.render.json_line import json_line
from seqattn.render.safe import printable


def _one_line(text: str) -> str:
    """A text as one TSV field: tabs and line breaks become spaces."""
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def tsv(label: str, probability: float, text: str) -> str:
    """``label<TAB>probability<TAB>text`` and a line end (probability with 4 decimals)."""
    return f"{label}\t{probability:.4f}\t{_one_line(text)}\n"


def jsonl(text: str, label: str | None, labels: list[str], probabilities: list[float] | None,
          extra: dict | None = None) -> str:
    """One JSON object per line: text, label, probability and every class's probability (4 places).

    An empty input line gives ``{"text": "", "label": null}`` so outputs line up with inputs.
    """
    obj: dict = {"text": text, "label": label}
    if probabilities is not None:
        obj["probability"] = round(max(probabilities), 4)
        obj["probabilities"] = {name: round(p, 4) for name, p in zip(labels, probabilities)}
    if extra:
        obj.update(extra)
    return json_line(obj, ensure_ascii=False)


def table(rows: list[tuple[str | None, float | None, str]]) -> Table:
    """A rich table of (label, probability, text) rows; a row without label is an empty input line.

    Labels and texts are escaped with ``printable`` (terminal controls in the input are shown,
    not obeyed).
    """
    out = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    out.add_column("label", no_wrap=True)
    out.add_column("prob", justify="right", no_wrap=True)
    out.add_column("text", overflow="fold")
    for label, probability, text in rows:
        if label is None:
            out.add_row("", "", "")
            continue
        out.add_row(Text(printable(label), style="bold"), f"{probability:.3f}", Text(printable(text)))
    return out
