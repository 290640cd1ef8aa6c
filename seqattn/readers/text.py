"""Text input: files or stdin -> lines -> sentences -> words, in UD English (EWT) conventions.

Words follow the Penn Treebank conventions that UD English keeps: punctuation is split off,
clitics are split ("don't" -> "do n't", "can't" -> "ca n't", "I'm" -> "I 'm", "gonna" ->
"gon na"; without the apostrophe as EWT writes them: "dont" -> "do nt", "im" -> "i m"), URLs
and e-mail addresses stay whole, and hyphenated compounds are split as in EWT ("center-north" ->
"center - north") except after bound prefixes ("e-mail", "co-workers").

Web and social-media text, following EWT where it has a convention: emoticons are one word
(":)", ":-)", ";-)", ":D", "<3", "^_^"), as are runs of final punctuation ("!!", "?!", "...")
and "<<" / ">>"; an ellipsis between words is a word of its own ("Wait...what" -> "Wait ...
what"); hashtags ("#audiobooks") and @mentions stay whole ("#3" is "# 3", as in EWT); each emoji
is one word with its modifiers (skin tones, variation selectors, ZWJ sequences such as 👨‍👩‍👧,
flags), split from the text around it.  EWT has no emoji; the rest is measured against its gold
tokens by scripts/tokenizer_f1.py (docs/tokenize.md).
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
from typing import IO, Callable, Iterator, TextIO

from seqattn.errors import InputError

INPUT_FORMATS: tuple[str, ...] = ("text", "tokens", "conllu")


# --------------------------------------------------------------------------- reading bytes safely


MAX_LINE_BYTES = 1 << 20  # 1 MiB: the most of one line a reader holds at once (`seqattn tag --max-line-bytes`)
MAX_SENTENCE_WORDS = 512  # the longest sentence handed to a tagger; longer ones are cut into pieces


def _utf8_prefix(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that does not end inside a UTF-8 character.

    Lets a long line be cut into pieces without splitting a character; bytes that are not
    UTF-8 at all are left where they are, for the decoder to report.
    """
    end = len(data)
    start = end
    while start > max(0, end - 4) and 0x80 <= data[start - 1] < 0xC0:  # continuation bytes 10xxxxxx
        start -= 1
    if start == 0:
        return end
    lead = data[start - 1]
    need = 2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4 if 0xF0 <= lead < 0xF8 else 1
    return start - 1 if end - (start - 1) < need else end


class Lines:
    """Decoded lines of a file or of stdin, read incrementally in bounded pieces.

    Each line is decoded as UTF-8 on its own so that a bad byte is reported with its line and
    byte offset.  A leading BOM is dropped; line ends (LF or CRLF) are stripped.  Only LF ends a
    line: U+2028/U+2029 and other Unicode separators inside a line are treated as spaces later.

    No more than ``max_line_bytes`` bytes of a line are held at once, whatever the input
    (``/dev/zero`` is one endless line): iterating yields whole lines and refuses a longer one;
    ``pieces()`` yields a long line in pieces, for readers that can use a line piece by piece.

    Raises (while iterating):
        InputError: bytes that are not UTF-8 (names the file, line and byte offset); a line
            longer than ``max_line_bytes`` (iterating only, not ``pieces()``).
        ValueError (constructor): ``max_line_bytes`` < 16.
    """

    def __init__(self, stream: IO[bytes], name: str, max_line_bytes: int = MAX_LINE_BYTES):
        if max_line_bytes < 16:
            raise ValueError(f"max_line_bytes must be >= 16, got {max_line_bytes}")
        self.stream, self.name, self.max_line_bytes = stream, name, max_line_bytes
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

    def pieces(self) -> Iterator[tuple[str, bool]]:
        """Yield ``(text, ends_line)``: each line in pieces of at most ``max_line_bytes`` bytes.

        A line that fits comes as one piece with ``ends_line`` True; a longer one as several,
        cut between UTF-8 characters (not between words), the last with ``ends_line`` True.
        ``line_number`` is the line the latest piece belongs to.

        Raises:
            InputError: bytes that are not UTF-8 (file, line and byte offset).
        """
        limit, offset, carry, new_line = self.max_line_bytes, 0, b"", True
        while True:
            # limit + 1: a line of `limit` bytes and its LF come in one read; a read never holds more.
            raw = carry + self.stream.readline(limit + 1 - len(carry))
            carry = b""
            if not raw:
                if not new_line:  # the line's last piece came just before the end of the input
                    yield "", True
                return
            ends = raw.endswith(b"\n") or len(raw) <= limit  # a short read without LF is the end of the input
            if new_line:
                self.line_number += 1
                if self.line_number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw, offset = raw[3:], 3
            if not ends:
                cut = _utf8_prefix(raw[:limit])
                raw, carry = raw[:cut], raw[cut:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(f"{self.name}:{self.line_number}: not UTF-8 text "
                                 f"(byte offset {offset + err.start}: {raw[err.start:err.start + 1]!r})") from None
            offset += len(raw)
            new_line = ends
            yield (text.rstrip("\n").rstrip("\r") if ends else text), ends

    def __iter__(self) -> Iterator[str]:
        for text, ends in self.pieces():
            if not ends:
                raise InputError(f"{self.name}:{self.line_number}: a line longer than {self.max_line_bytes:,} "
                                 f"bytes, the most this reader takes")
            yield text


@contextmanager
def open_text(path: str | Path | TextIO, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Lines]:
    """Open ``path`` ("-" = stdin) for line-wise reading as ``Lines`` (see there for ``max_line_bytes``).

    Raises:
        InputError: the path does not exist, is a directory, or cannot be read.
    """
    if path == "-" or path is sys.stdin:
        yield Lines(sys.stdin.buffer, "<stdin>", max_line_bytes)
        return
    if not isinstance(path, (str, Path)):  # an already open binary stream (tests)
        yield Lines(path, getattr(path, "name", "<stream>"), max_line_bytes)
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
        yield Lines(handle, str(p), max_line_bytes)


# --------------------------------------------------------------------------- words

ABBREVIATIONS = Path(__file__).with_name("abbreviations-en-ewt.json")

# Emoji (Unicode's Extended_Pictographic, the blocks that matter): one emoji is a base, an optional
# variation selector (U+FE0E/U+FE0F), skin-tone modifier (U+1F3FB-U+1F3FF) or tag sequence (the
# flags of England, Scotland, Wales), and more of them joined by ZERO WIDTH JOINER (U+200D).
_PICTOGRAPH = "[\u231a\u231b\u23e9-\u23fa\u2600-\u27bf\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\U0001f000-\U0001faff]"
_EMOJI_ONE = _PICTOGRAPH + "[\ufe0e\ufe0f]?[\U0001f3fb-\U0001f3ff]?(?:[\U000e0020-\U000e007f]{1,32})?"
_EMOJI = (f"[\U0001f1e6-\U0001f1ff]{{2}}"  # a flag: two regional indicator letters
          f"|[0-9#*]\ufe0f?\u20e3"  # a keycap: 1️⃣
          f"|{_EMOJI_ONE}(?:\u200d{_EMOJI_ONE}){{0,16}}")
# Emoticons: eyes, an optional nose, a mouth.  Not after a digit or another eye ("10:30)", "::"),
# ";" and "=" not after a letter either ("(see below;)", "x=(a+b)"), and a letter or digit mouth
# not before a letter or digit (":Dog" stays a word; no ":3", which is more often "Step:3").
_EMOTICON = (r"(?:(?<![\d:;=^]):|(?<![\w:;=^]);|(?<![\w:;=^<>!=])=)[-o^']?"  # eyes, nose
             r"(?:\){1,4}|\({1,4}|[\]\[|*]|[/\\](?![\w/])|[DPpOo](?!\w))"  # mouth
             r"|(?<![\w<])</?3(?!\d)"  # <3, </3
             r"|(?<!\S)(?:\^_*\^|-_-|[oO]_[oO]|T_T|>_<|[xX]D)(?!\S)")
# Bounded repetitions keep these linear on a 10 MB line without spaces (an unbounded [\w.+-]+@
# rescans the rest of the line from every start position).
_PROTECTED = re.compile(
    r"(?:https?://|ftp://|www\.)[^\s<>\"]{0,2048}[^\s<>\"\.,;:!?\)\]']"  # URLs (not their final punctuation)
    r"|(?:mailto:)?[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"  # e-mail addresses (RFC 5321 length limits)
    r"|(?<![\w&#])#[^\W\d_]\w{0,138}"  # hashtags; "#3" is "# 3" in EWT, "&#39;" an HTML entity
    f"|{_EMOTICON}|{_EMOJI}"
)
# What may start a protected word: checked first, so that plain text skips the regex above.
_MAYBE_PROTECTED = re.compile(r"://|www\.|[@#:;=<^_\u20e3\u231a-\u2b55\U0001f000-\U0001faff]|[xX]D")
_OPENING = "\"'`“‘«([{<$#"  # split off the front of a word, one character at a time
_CLOSING = "\"'`”’»)]}>,;:!?%"  # split off the end
_RUNS = "<>$"  # ... except that a run of one of these is one word ("<<", ">>", "$$$"), as in EWT
_ELLIPSIS = re.compile(r"(?:[.!?]{2,}|…)$")  # "...", "!!", "?!", ".?": one word at the end, as in EWT
_INNER_ELLIPSIS = re.compile(r"(\.{2,}|…)")  # "Wait...what", "...and": a word between words
# Clitics that UD English splits off (Penn Treebank conventions), straight or curly apostrophe.
_CLITIC = re.compile(r"(?i)^(.+?)(n['’]t|['’](?:s|re|ve|ll|d|m))$")
_BARE_CLITIC = re.compile(r"(?i)^['’](?:s|re|ve|ll|d|m)$")
_SPECIAL = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"), "wanna": ("wan", "na"),
            "can't": ("ca", "n't"), "won't": ("wo", "n't"), "can’t": ("ca", "n’t"), "won’t": ("wo", "n’t"),
            # without the apostrophe, split as EWT splits them (train: "dont" 34 of 34, "im" 16 of 16);
            # not "its", "ill", "id", "lets", "hes", "were", "well", which are words as often or more
            "im": ("i", "m"), "ive": ("i", "ve"), "youre": ("you", "re"), "theyre": ("they", "re"),
            "thats": ("that", "s"), "whats": ("what", "s")}
_BARE_NT = re.compile(r"(?i)^(do|does|did|ca|wo|could|would|should|is|was|are|were|have|has|had|ai)(nt)$")
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
    """A word without outer punctuation: ellipses, clitics, inner slashes/commas, hyphens."""
    if ".." in core or "…" in core:
        return [w for piece in _INNER_ELLIPSIS.split(core) if piece
                for w in ([piece] if _INNER_ELLIPSIS.fullmatch(piece) else _split_chunk(piece, last=False))]
    special = _SPECIAL.get(core.lower())
    if special:
        return [core[: len(special[0])], core[len(special[0]):]]
    if len(core) <= 9 and core[-2:].lower() == "nt":
        bare = _BARE_NT.match(core)
        if bare:
            return [bare.group(1), bare.group(2)]
    if "'" in core[-4:] or "’" in core[-4:]:
        clitic = _CLITIC.match(core)
        if clitic and clitic.group(1).lstrip("@").isalpha():  # "@Ryan's" too
            return _split_core(clitic.group(1)) + [clitic.group(2)]
    pieces = _INNER.split(core) if any(c in core for c in "/,;") else [core]
    return [w for piece in pieces if piece for w in (_split_hyphens(piece) if "-" in piece else [piece])]


def _split_chunk(chunk: str, last: bool) -> list[str]:
    """One whitespace-free chunk -> words: opening punctuation, core, closing punctuation.

    Works with indices, so a chunk of 100,000 closing brackets costs linear time.
    """
    if _BARE_CLITIC.match(chunk):  # what follows a URL or hashtag: "#tag's" -> "#tag" "'s"
        return [chunk]
    start, end = 0, len(chunk)
    front: list[str] = []  # words split off the front
    while end - start > 1 and chunk[start] in _OPENING:
        run = _run_length(chunk, start, end) if chunk[start] in _RUNS else 1
        if run == end - start:
            break  # only the run: "<<" is one word
        front.append(chunk[start:start + run])
        start += run
    back: list[str] = []  # words split off the end, last first
    while end > start:
        tail = chunk[max(start, end - 64):end]
        ellipsis = _ELLIPSIS.search(tail) if tail.endswith((".", "…", "!", "?")) else None
        if ellipsis and end - len(ellipsis.group()) == start:
            break  # only final punctuation: "...", "!!" is one word
        if ellipsis:
            back.append(ellipsis.group())
            end -= len(ellipsis.group())
        elif end - start > 1 and chunk[end - 1] in _CLOSING:
            run = _run_length(chunk, end - 1, start - 1, -1) if chunk[end - 1] in _RUNS else 1
            if run == end - start:
                break
            back.append(chunk[end - run:end])
            end -= run
        elif end - start > 1 and chunk[end - 1] == "." and (last or not _is_abbreviation(chunk[start:end])):
            back.append(".")
            end -= 1
        else:
            break
    return front + (_split_core(chunk[start:end]) if end > start else []) + back[::-1]


def _run_length(chunk: str, at: int, stop: int, step: int = 1) -> int:
    """How many times ``chunk[at]`` repeats from ``at`` towards ``stop`` (exclusive), one way."""
    n = 1
    while at + n * step != stop and chunk[at + n * step] == chunk[at]:
        n += 1
    return n


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
    maybe_protected = _MAYBE_PROTECTED.search(sentence) is not None
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

    Linear time in the length of the line: each candidate boundary looks back only over the
    word in front of it (words do not overlap), never over the sentence so far, which grows
    across abbreviations ("Mr. " * 200_000 is one sentence, found in one pass).

    Shapes:
        str -> list[str]; a blank line -> [].
    """
    line = _SPACES.sub(" ", line).strip()
    if not line:
        return []
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(line):
        space = line.rfind(" ", start, match.start())  # stops at the previous candidate's space at the latest
        before = line[space + 1 if space >= 0 else start:match.start()]  # the word before the boundary
        if before.endswith(".") and _is_abbreviation(before.rstrip("\"'”’)]")):
            continue
        sentences.append(line[start:match.end()].strip())
        start = match.end()
    sentences.append(line[start:].strip())
    return [s for s in sentences if s]


# --------------------------------------------------------------------------- character offsets


def align_words(text: str, words: list[str], start: int = 0) -> list[tuple[int, int]]:
    """Character spans of ``words`` in ``text``: the words in order, separated only by whitespace.

    Offsets are in Unicode code points (Python ``str`` indices), end exclusive, so that
    ``text[start:end] == word``.  Whitespace is what ``tokenize`` reads as space (``\\s``,
    U+2028/U+2029, U+0085, NUL); every other character of ``text`` is inside some word.

    Shapes:
        (str, list[str] of W words) -> list of W (start, end) pairs, increasing.
    Raises:
        ValueError: a word is not where it should be (the words are not a tokenisation of text).
    """
    spans = []
    pos = start
    for word in words:
        gap = _SPACES.match(text, pos)
        if gap:
            pos = gap.end()
        if not text.startswith(word, pos):
            raise ValueError(f"word {word!r} is not at offset {pos} of the text")
        spans.append((pos, pos + len(word)))
        pos += len(word)
    return spans


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """``tokenize(text)`` with each word's character span in ``text`` (code points, end exclusive).

    Shapes:
        str -> list of (word, start, end) with ``text[start:end] == word``.
    """
    words = tokenize(text)
    return [(w, s, e) for w, (s, e) in zip(words, align_words(text, words))]


def sentence_spans(line: str) -> list[list[tuple[str, int, int]]]:
    """``split_sentences(line)``, each sentence as its words with character spans in ``line``.

    Offsets count code points from the start of ``line`` (end exclusive); a sentence spans
    ``line[words[0][1]:words[-1][2]]``.  The words are those ``tokenize`` gives for the sentence.

    Shapes:
        str -> list of S sentences, each a non-empty list of (word, start, end); blank -> [].
    """
    out, pos = [], 0
    for sentence in split_sentences(line):
        words = tokenize(sentence)
        spans = align_words(line, words, pos)
        if spans:
            pos = spans[-1][1]
            out.append([(w, s, e) for w, (s, e) in zip(words, spans)])
    return out


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


def iter_items(lines: Lines, input_format: str = "text", max_words: int = MAX_SENTENCE_WORDS,
               warn: Callable[[str], None] | None = None) -> Iterator[TextItem]:
    """Yield sentences and paragraph breaks from lines, incrementally, in bounded memory.

    Formats:
        text:   running text; each line is split into sentences and words; an empty line is a break.
        tokens: pre-tokenised, one sentence per line, words separated by spaces; empty line = break.
        conllu: CoNLL-U; gold tokens (and UPOS, if present) are kept.
    Limits (memory does not grow with a line or a sentence):
        A line is read in pieces of at most ``lines.max_line_bytes`` bytes.  A sentence of more
        than ``max_words`` words, or running text that goes on for more than ``max_line_bytes``
        characters without a sentence boundary, is cut into pieces of at most ``max_words``
        words, each yielded as a sentence of its own; no word is dropped.  ``warn`` gets one
        message per cut sentence, naming the file and line.  An endless line without words
        (``/dev/zero``: NUL bytes read as spaces) yields nothing, in constant memory.
    Raises:
        InputError: unknown format, or malformed input (see the readers).
        ValueError: ``max_words`` < 1.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    if input_format not in INPUT_FORMATS:
        raise InputError(f"unknown input format {input_format!r}; expected one of {', '.join(INPUT_FORMATS)}")

    def cut(line: int, what: str) -> None:
        if warn is not None:
            warn(f"{lines.name}:{line}: {what}; cut into pieces of at most {max_words} words")

    if input_format == "conllu":
        from seqattn.readers.conllu import parse_conllu

        for sentence in parse_conllu(lines, lines.name):
            n = len(sentence.words)
            if n > max_words:
                cut(sentence.line, f"a sentence of {n:,} words")
            for i in range(0, n, max_words):
                yield TextItem(sentence.words[i:i + max_words], sentence.upos and sentence.upos[i:i + max_words],
                               sentence.sent_id, sentence.text if n <= max_words else None)
    elif input_format == "tokens":
        yield from _token_items(lines, max_words, cut)
    else:
        yield from _text_items(lines, max_words, cut)


def _cut_items(words: list[str], max_words: int) -> Iterator[TextItem]:
    """Pieces of at most ``max_words`` words, each an item of its own."""
    for i in range(0, len(words), max_words):
        piece = words[i:i + max_words]
        yield TextItem(piece, text=" ".join(piece))


def _token_items(lines: Lines, max_words: int, cut: Callable[[int, str], None]) -> Iterator[TextItem]:
    """``tokens`` input: a line is a sentence; read in pieces, cut every ``max_words`` words."""
    words: list[str] = []
    carry, was_cut = "", False  # carry: a word that may go on in the line's next piece
    for text, ends in lines.pieces():
        buffer = carry + text if carry else text
        new = _SPACES.sub(" ", buffer).split()
        carry = ""
        if not ends and new and not _SPACES.match(buffer[-1]):
            carry = new.pop()
            if len(carry) > lines.max_line_bytes:  # a word longer than a piece: cut it too
                new.append(carry)
                carry = ""
        words += new
        if len(words) > max_words:
            if not was_cut:
                cut(lines.line_number, f"more than {max_words} words in one sentence")
                was_cut = True
            full = len(words) - len(words) % max_words
            yield from _cut_items(words[:full], max_words)
            words = words[full:]
        if ends:
            if words:
                yield TextItem(words, text=" ".join(words))
            elif not was_cut:
                yield TextItem(None)
            words, was_cut = [], False


def _text_items(lines: Lines, max_words: int, cut: Callable[[int, str], None]) -> Iterator[TextItem]:
    """``text`` input: lines -> sentences -> words, a long line piece by piece.

    The last sentence of each piece may go on in the next piece, so it is held back (``carry``)
    and split again with the next piece; held text never exceeds ``max_line_bytes`` characters:
    beyond that the sentence is cut before its last word (a "sentence" without a boundary in a
    whole piece is not one a model can use whole anyway).
    """
    limit = lines.max_line_bytes
    carry = ""  # the line's last sentence so far, which the next piece may continue
    continued = False  # the next sentence continues one already cut and partly yielded
    number = 0  # sentences begun on this line, for messages
    line_has_text = False
    for text, ends in lines.pieces():
        buffer = carry + text if carry else text
        sentences = split_sentences(buffer)
        line_has_text = line_has_text or bool(sentences)
        carry, runs_on = "", False
        if not ends and sentences:
            carry = sentences.pop() + (" " if _SPACES.match(buffer[-1]) else "")
            if len(carry) > limit:  # no boundary within a whole piece
                head, _, tail = carry.rpartition(" ")
                if not head.strip() or len(tail) > limit:  # one endless word: cut it as well
                    head, tail = carry, ""
                sentences.append(head)
                carry, runs_on = tail, True
        for k, sentence in enumerate(sentences):
            continuation = continued and k == 0
            goes_on = runs_on and k == len(sentences) - 1
            words = tokenize(sentence)
            if not continuation:
                number += 1
                if goes_on:
                    cut(lines.line_number, f"sentence {number} runs on for more than {limit:,} characters "
                                           "without a sentence boundary")
                elif len(words) > max_words:
                    cut(lines.line_number, f"sentence {number} has {len(words):,} words")
            if continuation or goes_on or len(words) > max_words:
                yield from _cut_items(words, max_words)
            elif words:
                yield TextItem(words, text=sentence)
        continued = runs_on or (continued and not sentences and bool(carry))
        if ends:
            if not line_has_text:
                yield TextItem(None)
            continued, number, line_has_text = False, 0, False
