"""Text input: files or stdin -> lines -> sentences -> words, in UD English (EWT) conventions.

Words follow the Penn Treebank conventions that UD English keeps: punctuation is split off,
clitics are split ("don't" -> "do n't", "can't" -> "ca n't", "I'm" -> "I 'm", "gonna" ->
"gon na"), URLs and e-mail addresses stay whole, and hyphenated compounds are split as in EWT
("center-north" -> "center - north") except after bound prefixes ("e-mail", "co-workers").
Both splitters are small rule sets (the Penn Treebank tokenizer's rules, with abbreviations
learned from EWT train, see scripts/learn_abbreviations.py); NLTK's versions were measured at
2.5 s of import time (it imports scipy.stats), too slow for a shell filter.

Lines are the unit of streaming: a sentence never spans two input lines, and an empty input line
is a paragraph break that the renderers keep, so outputs line up with inputs.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Iterator, TextIO

from seqattn.errors import InputError

INPUT_FORMATS: tuple[str, ...] = ("text", "tokens", "conllu")


# --------------------------------------------------------------------------- reading bytes safely


class Lines:
    """Decoded lines of a file or of stdin, read incrementally, with precise error positions.

    Each line is decoded as UTF-8 on its own so that a bad byte is reported with its line and
    byte offset.  A leading BOM is dropped; line ends (LF or CRLF) are stripped.  Only LF ends a
    line: U+2028/U+2029 and other Unicode separators inside a line are treated as spaces later.

    Raises (while iterating):
        InputError: bytes that are not UTF-8 (names the file, line and byte offset).
    """

    def __init__(self, stream: IO[bytes], name: str):
        self.stream, self.name = stream, name
        self.line_number = 0

    def would_block(self) -> bool:
        """True when no more input is ready right now (a pipe or terminal waiting for a writer).

        Regular files never block.  Used to flush partial batches so that streamed input is
        answered line by line.
        """
        import os
        import select
        import stat

        try:
            fd = self.stream.fileno()
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            return not select.select([fd], [], [], 0)[0]
        except (OSError, ValueError, AttributeError):
            return False

    def __iter__(self) -> Iterator[str]:
        offset = 0
        for raw in self.stream:
            self.line_number += 1
            if self.line_number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, offset = raw[3:], 3
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(f"{self.name}:{self.line_number}: not UTF-8 text "
                                 f"(byte offset {offset + err.start}: {raw[err.start:err.start + 1]!r})") from None
            offset += len(raw)
            yield line.rstrip("\n").rstrip("\r")


@contextmanager
def open_text(path: str | Path | TextIO) -> Iterator[Lines]:
    """Open ``path`` ("-" = stdin) for line-wise reading as ``Lines``.

    Raises:
        InputError: the path does not exist, is a directory, or cannot be read.
    """
    if path == "-" or path is sys.stdin:
        yield Lines(sys.stdin.buffer, "<stdin>")
        return
    if not isinstance(path, (str, Path)):  # an already open binary stream (tests)
        yield Lines(path, getattr(path, "name", "<stream>"))
        return
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected a text file")
    try:
        handle = open(p, "rb")
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as err:
        raise InputError(f"{p}: cannot read ({err.strerror})") from None
    with handle:
        yield Lines(handle, str(p))


# --------------------------------------------------------------------------- words

ABBREVIATIONS = Path(__file__).with_name("abbreviations-en-ewt.json")

# Bounded repetitions keep these linear on a 10 MB line without spaces (an unbounded [\w.+-]+@
# rescans the rest of the line from every start position).
_PROTECTED = re.compile(
    r"(?:https?://|ftp://|www\.)[^\s<>\"]{0,2048}[^\s<>\"\.,;:!?\)\]']"  # URLs (not their final punctuation)
    r"|[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"  # e-mail addresses (RFC 5321 length limits)
)
_OPENING = "\"'`“‘«([{<$#"  # split off the front of a word, one character at a time
_CLOSING = "\"'`”’»)]}>,;:!?%"  # split off the end
_ELLIPSIS = re.compile(r"(\.{2,}|…)$")
# Clitics that UD English splits off (Penn Treebank conventions), straight or curly apostrophe.
_CLITIC = re.compile(r"(?i)^(.+?)(n['’]t|['’](?:s|re|ve|ll|d|m))$")
_SPECIAL = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"), "wanna": ("wan", "na"),
            "can't": ("ca", "n't"), "won't": ("wo", "n't"), "can’t": ("ca", "n’t"), "won’t": ("wo", "n’t")}
_INNER = re.compile(r"(?<=[^\W\d_])([/,;])(?=[^\W\d_])")  # "and/or", "this,that"
_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=[^\W_])|(?<=\d)-(?=[^\W\d_])")
# Prefixes that UD English keeps attached to the hyphen ("e-mail", "co-workers", "non-human").
_BOUND_PREFIXES = frozenset("e co pre non re post semi pro anti mid multi ex sub inter un de bi tri".split())
_INITIALS = re.compile(r"^(?:[^\W\d_]\.)+$")  # "U.S.", "p.m.", "J."
_SPACES = re.compile(r"[\s\u2028\u2029\u0085\x00]+")


@lru_cache(maxsize=1)
def abbreviations() -> frozenset[str]:
    """Lower-cased abbreviations that keep their period (learned from EWT train, see scripts/)."""
    return frozenset(json.loads(ABBREVIATIONS.read_text(encoding="utf-8"))["abbreviations"])


def _is_abbreviation(word: str) -> bool:
    return word.lower() in abbreviations() or bool(_INITIALS.match(word))


def _split_hyphens(token: str) -> list[str]:
    parts = _HYPHEN.split(token)
    out = [parts[0]]
    for part in parts[1:]:
        if len(out) == 1 and out[0].lower() in _BOUND_PREFIXES:
            out[0] = out[0] + "-" + part
        else:
            out += ["-", part]
    return out


def _split_core(core: str) -> list[str]:
    """A word without outer punctuation: clitics, inner slashes/commas, hyphens."""
    special = _SPECIAL.get(core.lower())
    if special:
        return [core[: len(special[0])], core[len(special[0]):]]
    if "'" in core[-4:] or "’" in core[-4:]:
        clitic = _CLITIC.match(core)
        if clitic and clitic.group(1).isalpha():
            return _split_core(clitic.group(1)) + [clitic.group(2)]
    pieces = _INNER.split(core) if any(c in core for c in "/,;") else [core]
    return [w for piece in pieces if piece for w in (_split_hyphens(piece) if "-" in piece else [piece])]


def _split_chunk(chunk: str, last: bool) -> list[str]:
    """One whitespace-free chunk -> words: opening punctuation, core, closing punctuation.

    Works with indices, so a chunk of 100,000 closing brackets costs linear time.
    """
    start, end = 0, len(chunk)
    while end - start > 1 and chunk[start] in _OPENING:
        start += 1
    back: list[str] = []  # words split off the end, last first
    while end > start:
        tail = chunk[max(start, end - 64):end]
        ellipsis = _ELLIPSIS.search(tail) if tail.endswith((".", "…")) else None
        if ellipsis and end - len(ellipsis.group()) == start:
            break  # only dots: "..." is one word
        if ellipsis:
            back.append(ellipsis.group())
            end -= len(ellipsis.group())
        elif end - start > 1 and chunk[end - 1] in _CLOSING:
            back.append(chunk[end - 1])
            end -= 1
        elif end - start > 1 and chunk[end - 1] == "." and (last or not _is_abbreviation(chunk[start:end])):
            back.append(".")
            end -= 1
        else:
            break
    return list(chunk[:start]) + (_split_core(chunk[start:end]) if end > start else []) + back[::-1]


def tokenize(sentence: str) -> list[str]:
    """Split one sentence into words (UD English conventions, see the module docstring).

    A period ends a word unless the word is an abbreviation ("Mr.", "U.S.") that is not the
    sentence's last word; URLs and e-mail addresses stay whole.

    Shapes:
        str -> list[str], no empty strings; "" -> [].
    """
    sentence = _SPACES.sub(" ", sentence).strip()
    words: list[str] = []
    last_end = 0
    pieces: list[tuple[str, bool]] = []  # (text, protected)
    maybe_protected = "@" in sentence or "://" in sentence or "www." in sentence
    for match in _PROTECTED.finditer(sentence) if maybe_protected else ():
        pieces.append((sentence[last_end:match.start()], False))
        pieces.append((match.group(), True))
        last_end = match.end()
    pieces.append((sentence[last_end:], False))
    chunks: list[tuple[str, bool]] = []
    for text, protected in pieces:
        chunks += [(text, True)] if protected else [(c, False) for c in text.split()]
    for i, (chunk, protected) in enumerate(chunks):
        words += [chunk] if protected else _split_chunk(chunk, last=i == len(chunks) - 1)
    return [w for w in words if w]


# --------------------------------------------------------------------------- sentences

_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]*[^\W_a-z])")


def split_sentences(line: str) -> list[str]:
    """Split one line of running text into sentences.

    A boundary is sentence-final punctuation (. ! ? …, then optional closing quotes or brackets),
    whitespace, and a word that starts with a capital letter or digit, unless the period belongs
    to a known abbreviation or an initial ("Mr. Smith", "J. Doe").

    Shapes:
        str -> list[str]; a blank line -> [].
    """
    line = _SPACES.sub(" ", line).strip()
    if not line:
        return []
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(line):
        before = line[start:match.start()].rsplit(" ", 1)[-1]
        if before.endswith(".") and _is_abbreviation(before.rstrip("\"'”’)]")):
            continue
        sentences.append(line[start:match.end()].strip())
        start = match.end()
    sentences.append(line[start:].strip())
    return [s for s in sentences if s]


# --------------------------------------------------------------------------- input formats


@dataclass
class TextItem:
    """One unit of output: a sentence of words, or a paragraph break (``words`` is None)."""

    words: list[str] | None
    upos: list[str] | None = None  # gold tags, when the input has them (CoNLL-U)
    sent_id: str | None = None
    text: str | None = None

    @property
    def is_break(self) -> bool:
        return self.words is None


def iter_items(lines: Lines, input_format: str = "text") -> Iterator[TextItem]:
    """Yield sentences and paragraph breaks from lines, incrementally.

    Formats:
        text:   running text; each line is split into sentences and words; an empty line is a break.
        tokens: pre-tokenised, one sentence per line, words separated by spaces; empty line = break.
        conllu: CoNLL-U; gold tokens (and UPOS, if present) are kept.
    Raises:
        InputError: unknown format, or malformed input (see the readers).
    """
    if input_format == "conllu":
        from seqattn.readers.conllu import parse_conllu

        for sentence in parse_conllu(lines, lines.name):
            yield TextItem(sentence.words, sentence.upos, sentence.sent_id, sentence.text)
    elif input_format == "tokens":
        for line in lines:
            words = _SPACES.sub(" ", line).split()
            yield TextItem(words, text=" ".join(words)) if words else TextItem(None)
    elif input_format == "text":
        for line in lines:
            sentences = split_sentences(line)
            if not sentences:
                yield TextItem(None)
            for sentence in sentences:
                words = tokenize(sentence)
                if words:
                    yield TextItem(words, text=sentence)
    else:
        raise InputError(f"unknown input format {input_format!r}; expected one of {', '.join(INPUT_FORMATS)}")
