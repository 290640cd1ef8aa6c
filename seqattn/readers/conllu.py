"""CoNLL-U input (https://universaldependencies.org/format.html), read with the ``conllu`` library.

Only syntactic words are kept: multiword-token lines (ID "3-4", e.g. "don't" = "do" + "n't")
and empty nodes (ID "8.1") are skipped, as UD's own evaluation does for UPOS.

Limits, so that memory stays bounded whatever the file: a line of at most 1 MiB
(``seqattn.readers.text.MAX_LINE_BYTES``), a sentence of at most ``MAX_SENTENCE_LINES`` lines
and ``MAX_SENTENCE_CHARS`` characters (comments included); beyond, an InputError (exit code 2).
The longest sentence of UD English EWT has 159 words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, TextIO

import conllu
from conllu.exceptions import ParseException

from seqattn.errors import InputError

MAX_SENTENCE_LINES = 10_000  # lines in one sentence (word, multiword-token and comment lines)
MAX_SENTENCE_CHARS = 4 << 20  # characters in one sentence's lines (4 Mi)


@dataclass
class Sentence:
    """One sentence: its words and, where known, their gold UPOS tags and sentence id/text."""

    words: list[str]
    upos: list[str] | None = None
    sent_id: str | None = None
    text: str | None = None
    meta: dict = field(default_factory=dict)
    line: int = 0  # the sentence's first line in the file (1-based), for messages


def parse_conllu(lines: Iterable[str], source: str = "<conllu>") -> Iterator[Sentence]:
    """Yield the sentences of CoNLL-U text, incrementally (one sentence in memory at a time).

    Args:
        lines: the file's lines (with or without line ends).
        source: the file name, for error messages.
    Raises:
        InputError: a malformed sentence (names the source and the sentence's first line number);
            a sentence beyond ``MAX_SENTENCE_LINES`` lines or ``MAX_SENTENCE_CHARS`` characters.
    """
    block: list[str] = []
    start, size = 1, 0
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if line.strip():
            if not block:
                start, size = number, 0
            size += len(line) + 1
            if len(block) >= MAX_SENTENCE_LINES or size > MAX_SENTENCE_CHARS:
                raise InputError(f"{source}:{start}: a CoNLL-U sentence of more than {MAX_SENTENCE_LINES:,} lines "
                                 f"or {MAX_SENTENCE_CHARS:,} characters (the limit; sentences end at a blank line)")
            block.append(line)
        elif block:
            yield _parse_block(block, source, start)
            block = []
    if block:
        yield _parse_block(block, source, start)


def _parse_block(block: list[str], source: str, start: int) -> Sentence:
    for offset, line in enumerate(block):
        if not line.startswith("#") and line.count("\t") != 9:
            raise InputError(f"{source}:{start + offset}: a CoNLL-U word line has 10 tab-separated columns, "
                             f"this one has {line.count(chr(9)) + 1}")
    try:
        (tokens,) = conllu.parse("\n".join(block) + "\n\n")
    except (ParseException, ValueError) as err:
        raise InputError(f"{source}:{start}: malformed CoNLL-U sentence: {err}") from None
    words, upos = [], []
    for token in tokens:
        if not isinstance(token["id"], int):  # multiword token (tuple) or empty node
            continue
        if token.get("form") is None:
            raise InputError(f"{source}:{start}: CoNLL-U word line without a FORM column")
        words.append(token["form"])
        upos.append(token.get("upos") or "_")
    if not words:
        raise InputError(f"{source}:{start}: CoNLL-U sentence without word lines")
    has_tags = any(t != "_" for t in upos)
    return Sentence(words, upos if has_tags else None, tokens.metadata.get("sent_id"), tokens.metadata.get("text"),
                    dict(tokens.metadata), start)


def read_conllu(path: str | Path | TextIO) -> list[Sentence]:
    """Read every sentence of a CoNLL-U file (see ``parse_conllu``).

    Raises:
        InputError: missing, unreadable, non-UTF-8 or malformed file.
    """
    from seqattn.readers.text import open_text

    with open_text(path) as handle:
        return list(parse_conllu(handle, getattr(handle, "name", str(path))))
