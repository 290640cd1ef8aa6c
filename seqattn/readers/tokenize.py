"""Running text -> sentences -> words with character offsets and sentencepiece pieces (`seqattn tokenize`).

The words are exactly those ``seqattn tag`` gives its model (``seqattn.readers.text``: UD English
conventions); each carries its span in the input line and the subword pieces of the word encoded
alone, which is how the tagger's subword features see it ("unhappiness" -> ``▁un happi ness``).

Offsets are Unicode code points (Python ``str`` indices) from the start of the input line, end
exclusive, so that ``line[start:end] == word``; the line is as read: a leading byte-order mark of
the file and the line end (LF or CRLF) are not part of it.  Everything in a line outside its
words is whitespace.

Streaming, in bounded memory, like ``iter_items``: a line is read in pieces of at most
``lines.max_line_bytes`` bytes; a sentence that runs on past a whole piece without a boundary is
cut at its last space (one endless word: at the piece's end), and each part is a sentence of its
own, with one message to ``warn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from seqattn.errors import InputError
from seqattn.readers.text import _SPACES, Lines, sentence_spans

CACHED_WORD_CHARS = 64  # words up to this long keep their pieces in a cache; longer ones are rare
CACHED_WORDS = 100_000


@dataclass(frozen=True, slots=True)
class Token:
    """One word: its text, span in the line (code points, end exclusive), pieces, and what follows it.

    ``space_after`` is the whitespace between this word and the next word of the line (or the
    line's end), as written: "" where none ("word" in "word,"), " " in ordinary text.
    """

    word: str
    start: int
    end: int
    pieces: tuple[str, ...]
    space_after: str = " "


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of one input line: its words, their span in the line and the text of that span.

    ``line`` is 1-based; ``number`` counts the sentences of the line from 1; ``text`` is
    ``line[start:end]`` as written (tabs and runs of spaces included); ``cut`` is True when the
    sentence is part of a longer one that had to be cut (see the module docstring); ``ends_line``
    when it is the last of its line (the last word's ``space_after`` then reaches the line's end).
    """

    line: int
    number: int
    start: int
    end: int
    text: str
    words: tuple[Token, ...]
    cut: bool = False
    ends_line: bool = False

    def one_line_text(self) -> str:
        """``text`` with each whitespace character (tab, U+2028, ...) as one space: the same length,
        so offsets within it still count from ``start``, and never more than one line."""
        return _SPACES.sub(lambda m: " " * len(m.group()), self.text)


@dataclass(frozen=True, slots=True)
class Break:
    """An input line without words (empty or only whitespace): a paragraph break in the output."""

    line: int


class Pieces:
    """Sentencepiece pieces (strings) of a word or a line, from a model file.

    ``word(w)`` gives the pieces of one word encoded alone (cached for short words);
    ``line(text)`` the pieces of a whole line, exactly ``spm_encode --output_format=piece``
    (``SentencePieceProcessor.encode(text, out_type=str)``).  Pieces are the model's own strings:
    "▁" marks a word start; a character the model does not know is a piece of its own, as written.

    Raises:
        InputError: ``path`` does not exist; ModelError (an InputError): it is not a sentencepiece model.
    """

    def __init__(self, path: str | Path):
        from seqattn.readers.subwords import SubwordModel

        p = Path(path)
        if not p.exists():
            raise InputError(f"{p}: no such sentencepiece model file")
        if p.is_dir():
            raise InputError(f"{p}: is a directory, expected a sentencepiece .model file")
        self.path = p
        self.processor = SubwordModel(p).processor
        self._cached = lru_cache(maxsize=CACHED_WORDS)(self._encode)

    def _encode(self, text: str) -> tuple[str, ...]:
        return tuple(self.processor.encode(text, out_type=str))

    def word(self, word: str) -> tuple[str, ...]:
        """Pieces of ``word`` encoded alone; () for a word the model normalises away (U+200B)."""
        return self._cached(word) if len(word) <= CACHED_WORD_CHARS else self._encode(word)

    def line(self, text: str) -> list[str]:
        """Pieces of a whole line (spm_encode's), [] for a blank one."""
        return list(self._encode(text))


def default_model_path() -> Path:
    """The sentencepiece model of the shipped tagger (en-upos), ``seqattn tokenize``'s default."""
    return Path(__file__).resolve().parents[1] / "models" / "en-upos" / "subwords.model"


def iter_sentences(lines: Lines, pieces: Pieces, warn: Callable[[str], None] | None = None
                   ) -> Iterator[Sentence | Break]:
    """Yield each input line's sentences (words with offsets and pieces), or a ``Break`` for a blank line.

    Incremental: a line's sentences come as soon as the line (or, for a long line, the piece of
    it that completes them) has been read.  Memory is bounded by about twice
    ``lines.max_line_bytes`` characters whatever the input (see the module docstring).

    Shapes:
        Lines -> Sentence (1 or more per line with words, in order) | Break (one per blank line).
    Raises:
        InputError: bytes that are not UTF-8 (from ``lines``).
    """
    limit = lines.max_line_bytes
    carry, carry_at = "", 0  # held-back text of the line (its last sentence so far) and its offset
    number = 0  # sentences yielded for this line
    continued = False  # the first sentence of this piece continues one that was cut
    for text, ends in lines.pieces():
        buffer = carry + text if carry else text
        base = carry_at  # offset of buffer[0] in the line
        found = sentence_spans(buffer)
        held_from = len(buffer)  # buffer[held_from:] goes on to the next piece
        runs_on = False  # the last sentence found is cut here and goes on in the next piece
        if not ends and found:
            last = found.pop()
            held_from = last[0][1]
            if len(buffer) - held_from > limit:  # no boundary within a whole piece: cut it
                space = _SPACES.search(buffer[:held_from - 1 if held_from else None:-1])  # the last space
                cut_at = len(buffer) - space.start() if space else len(buffer)
                head = [w for w in last if w[2] <= cut_at] if space else last
                found.append(head)
                held_from, runs_on = cut_at, True
        for k, words in enumerate(found):
            following = [w[1] for w in words[1:]] + [found[k + 1][0][1] if k + 1 < len(found) else held_from]
            tokens = tuple(Token(word, base + start, base + end, pieces.word(word), buffer[end:after])
                           for (word, start, end), after in zip(words, following))
            is_first, is_last = k == 0, k == len(found) - 1
            number += 1
            if runs_on and is_last and not (continued and is_first) and warn is not None:
                warn(f"{lines.name}:{lines.line_number}: sentence {number} runs on for more than {limit:,} "
                     f"characters without a sentence boundary; cut into pieces")
            yield Sentence(lines.line_number, number, tokens[0].start, tokens[-1].end,
                           buffer[words[0][1]:words[-1][2]], tokens, (continued and is_first) or (runs_on and is_last),
                           ends and is_last)
        continued = runs_on or (continued and not found)
        if ends:
            if number == 0:
                yield Break(lines.line_number)
            carry, carry_at, number, continued = "", 0, 0, False
        else:
            carry, carry_at = buffer[held_from:], base + held_from


def iter_line_pieces(lines: Lines, pieces: Pieces) -> Iterator[list[str]]:
    """Yield the sentencepiece pieces of each input line (``spm_encode --output_format=piece``).

    A line longer than ``lines.max_line_bytes`` is encoded in parts cut at a space (sentencepiece
    encodes the words between spaces independently, so the pieces are the same); a part with no
    space at all is cut at the piece's end.

    Shapes:
        Lines -> one list of pieces per input line ([] for a blank line).
    Raises:
        InputError: bytes that are not UTF-8 (from ``lines``).
    """
    out: list[str] = []
    carry = ""
    for text, ends in lines.pieces():
        buffer = carry + text if carry else text
        carry = ""
        if not ends:
            cut = max(buffer.rfind(" "), buffer.rfind("\t"))
            if 0 < cut and len(buffer) - cut <= lines.max_line_bytes:
                buffer, carry = buffer[:cut], buffer[cut:]
        out += pieces.line(buffer)
        if ends:
            yield out
            out = []
