"""Rendering tokenised sentences (`seqattn tokenize`): pretty (terminal), tsv, jsonl, conllu.

Offsets are code points from the start of the input line, end exclusive (``seqattn.readers.tokenize``).
"""

from __future__ import annotations

from seqattn.readers.tokenize import Sentence
from seqattn.render.json_line import json_line
from seqattn.render.safe import printable


def pretty(sentence: Sentence):
    """A table per sentence: word, its span in the line and its pieces (all escaped with ``printable``:
    terminal controls in the input are shown, not obeyed; never read as rich markup)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    title = f"line {sentence.line}, sentence {sentence.number}" + (" (cut)" if sentence.cut else "")
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("word", "left"), ("start", "right"), ("end", "right"), ("pieces", "left")):
        table.add_column(name, justify=justify)
    for token in sentence.words:
        table.add_row(Text(printable(token.word), style="bold"), str(token.start), str(token.end),
                      Text(printable(" ".join(token.pieces)), style="cyan"))
    return table


def tsv(sentence: Sentence) -> str:
    """word<TAB>start<TAB>end<TAB>pieces lines (pieces separated by spaces) and the blank line that
    ends the sentence.  Words and pieces never hold whitespace, so the columns are unambiguous."""
    return "".join(f"{t.word}\t{t.start}\t{t.end}\t{' '.join(t.pieces)}\n" for t in sentence.words) + "\n"


_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def jsonl(sentence: Sentence | None, line: int = 0) -> str:
    """One JSON object per sentence: line, sentence number, text, start, end, and its words, each
    with word, start, end and pieces; ``"cut": true`` on a part of a cut sentence.  ``None`` (a
    blank input line) is an object with ``line`` and no words.  Characters stay as given (UTF-8)
    except U+0085, U+2028 and U+2029, written ``\\u2028`` etc.: readers that split lines on them
    (Python's ``str.splitlines``, JavaScript) still see one object per line."""
    if sentence is None:
        return json_line({"line": line, "sentence": 0, "text": "", "start": 0, "end": 0, "words": []},
                         ensure_ascii=False)
    words = [{"word": t.word, "start": t.start, "end": t.end, "pieces": list(t.pieces)} for t in sentence.words]
    obj = {"line": sentence.line, "sentence": sentence.number, "text": sentence.text, "start": sentence.start,
           "end": sentence.end, "words": words}
    if sentence.cut:
        obj["cut"] = True
    return json_line(obj, ensure_ascii=False).translate(_LINE_BREAKS)


_MISC_ESCAPES = str.maketrans({"\\": "\\\\", " ": "\\s", "\t": "\\t", "\n": "\\n", "\r": "\\r", "|": "\\p"})


def misc_escape(value: str) -> str:
    """A MISC value with UDPipe's escapes (``SpacesAfter``): \\s space, \\t, \\n, \\r, \\p for "|", \\\\."""
    return value.translate(_MISC_ESCAPES)


def conllu(sentence: Sentence, new_paragraph: bool = False) -> str:
    """A CoNLL-U sentence: ``# sent_id = LINE-N``, ``# text``, one word line per word with ID and
    FORM filled, and MISC as UDPipe writes it for raw text: ``SpaceAfter=No`` where the next word
    follows directly, ``SpacesAfter=`` (escaped) where other whitespace than one space follows,
    ``TokenRange=start:end`` (offsets in the line), and ``Pieces=`` (the pieces, ``\\s``-separated).

    ``# text`` is the sentence's span of the line with each whitespace character written as a
    space, so it stays one line and offsets within it still count from the sentence's start.
    The last word of a line has no ``SpaceAfter=No``: the line's end follows it.
    """
    lines = ["# newpar"] if new_paragraph else []
    lines += [f"# sent_id = {sentence.line}-{sentence.number}", "# text = " + sentence.one_line_text()]
    last = len(sentence.words) - 1
    for i, t in enumerate(sentence.words):
        misc = []
        if t.space_after == "" and not (i == last and sentence.ends_line):
            misc.append("SpaceAfter=No")
        elif t.space_after not in ("", " "):
            misc.append("SpacesAfter=" + misc_escape(t.space_after))
        misc.append(f"TokenRange={t.start}:{t.end}")
        misc.append("Pieces=" + misc_escape(" ".join(t.pieces)))
        lines.append(f"{i + 1}\t{t.word}\t_\t_\t_\t_\t_\t_\t_\t{'|'.join(misc)}")
    return "\n".join(lines) + "\n\n"

