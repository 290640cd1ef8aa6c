"""Rendering tagged sentences: pretty (terminal), tsv, conllu and jsonl lines."""

from __future__ import annotations

from rich.text import Text

from seqattn.render.json_line import json_line
from seqattn.render.safe import printable

# One colour per UPOS tag family, so open-class words stand out from function words.
TAG_COLOURS = {
    "NOUN": "cyan", "PROPN": "bright_cyan", "VERB": "green", "AUX": "bright_green", "ADJ": "yellow",
    "ADV": "bright_yellow", "PRON": "magenta", "DET": "bright_magenta", "ADP": "blue", "CCONJ": "bright_blue",
    "SCONJ": "bright_blue", "PART": "bright_black", "NUM": "red", "PUNCT": "white", "SYM": "bright_red",
    "INTJ": "bright_red", "X": "bright_black",
}


def pretty(words: list[str], tags: list[str]) -> Text:
    """word/TAG pairs, the tag coloured by its class, wrapped by the terminal (words and tags escaped
    with ``printable``: terminal controls in the input are shown, not obeyed)."""
    text = Text()
    for i, (word, tag) in enumerate(zip(words, tags)):
        if i:
            text.append(" ")
        text.append(printable(word), style="bold")
        text.append("/" + printable(tag), style=TAG_COLOURS.get(tag, "white"))
    return text


def tsv(words: list[str], tags: list[str]) -> str:
    """word<TAB>UPOS lines and the blank line that ends the sentence."""
    return "".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) + "\n"


def _conllu_field(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ") or "_"


def conllu(words: list[str], tags: list[str], sent_id: str | None = None, text: str | None = None,
           new_paragraph: bool = False) -> str:
    """A CoNLL-U sentence with ID, FORM and UPOS filled, the other columns "_"."""
    lines = ["# newpar"] if new_paragraph else []
    if sent_id:
        lines.append(f"# sent_id = {sent_id}")
    if text:
        lines.append(f"# text = {_conllu_field(text)}")
    lines += [f"{i}\t{_conllu_field(w)}\t_\t{t}\t_\t_\t_\t_\t_\t_" for i, (w, t) in enumerate(zip(words, tags), 1)]
    return "\n".join(lines) + "\n\n"


def jsonl(words: list[str], tags: list[str], probabilities: list[float], text: str | None = None) -> str:
    """One JSON object per line: words, tags, probabilities (rounded to 4 places), text."""
    obj = {"words": words, "tags": tags, "probabilities": [round(p, 4) for p in probabilities]}
    if text is not None:
        obj["text"] = text
    return json_line(obj, ensure_ascii=False)


def attention(words: list[str], maps: list[tuple[str, list[list[float]]]], grid_title: str = ""):
    """A sentence's attention: one map (word x word), or a grid of small maps (a panel per layer
    or head) on one scale.  Rows and columns are the words, numbered; the legend names them.

    Shapes:
        maps: (title, (N, N) weights) each, N = len(words).
    """
    from seqattn.render.heatmap import Heatmap, HeatmapGrid

    rows = [f"{i} {word}" for i, word in enumerate(words)]
    if len(maps) == 1:
        title, matrix = maps[0]
        return Heatmap(matrix, rows, words, title)
    return HeatmapGrid(maps, rows, words, grid_title)

