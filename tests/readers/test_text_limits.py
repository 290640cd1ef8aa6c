"""Readers in bounded memory: long lines in pieces, long sentences cut, linear sentence splitting.

Memory is checked by mechanism, never by RSS or seconds: the largest piece a reader holds, the
largest text handed to the sentence splitter, the longest sentence yielded.
"""

import io

import pytest

from seqattn.errors import InputError
from seqattn.readers import conllu as conllu_reader
from seqattn.readers import text as text_reader
from seqattn.readers.pairs import read_pairs
from seqattn.readers.text import Lines, iter_items, split_sentences


def _lines(data: bytes, limit: int = 64, name: str = "t.txt") -> Lines:
    return Lines(io.BytesIO(data), name, max_line_bytes=limit)


class EndlessZeros(io.RawIOBase):
    """/dev/zero as a stream: NUL bytes, never a newline, never an end; counts the bytes read."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = bytes(len(buffer))
        self.read_bytes += len(buffer)
        return len(buffer)


# --------------------------------------------------------------------------- Lines


def test_a_long_line_comes_in_pieces_that_join_back_without_splitting_characters():
    line = ("aé€😀 " * 500).encode()  # 1-, 2-, 3- and 4-byte characters across every cut
    pieces = list(_lines(b"short\n" + line + b"\r\nlast", limit=64).pieces())
    assert pieces[0] == ("short", True)
    middle = pieces[1:-1]
    assert all(len(text.encode()) <= 64 for text, _ in middle)
    assert [ends for _, ends in middle] == [False] * (len(middle) - 1) + [True]
    assert "".join(text for text, _ in middle) == line.decode()
    assert pieces[-1] == ("last", True)


def test_pieces_keep_line_numbers_bom_and_exact_fits():
    lines = _lines(b"\xef\xbb\xbf" + b"x" * 61 + b"\n" + b"y" * 64 + b"\n" + b"z" * 65 + b"\n\n", limit=64)
    seen = [(text, ends, lines.line_number) for text, ends in lines.pieces()]
    assert seen == [("x" * 61, True, 1), ("y" * 64, True, 2), ("z" * 64, False, 3), ("z", True, 3), ("", True, 4)]


def test_bad_utf8_in_a_later_piece_names_line_and_file_offset():
    with pytest.raises(InputError, match=r"t.txt:2: not UTF-8 text \(byte offset 73: b'\\xff'\)"):
        list(_lines(b"ok\n" + b"z" * 70 + b"\xff\n", limit=64).pieces())


def test_iterating_whole_lines_refuses_a_line_over_the_limit():
    assert list(_lines(b"a\n" + b"b" * 64 + b"\n")) == ["a", "b" * 64]
    with pytest.raises(InputError, match=r"t.txt:2: a line longer than 64 bytes"):
        list(_lines(b"a\n" + b"b" * 65 + b"\n"))


def test_an_endless_line_is_read_in_pieces_of_the_limit():
    zeros = EndlessZeros()
    lines = Lines(io.BufferedReader(zeros, buffer_size=4096), "/dev/zero", max_line_bytes=1000)
    pieces = lines.pieces()
    for _ in range(200):
        text, ends = next(pieces)
        assert len(text) == 1000 and not ends and lines.line_number == 1
    assert zeros.read_bytes < 210_000  # read as it goes, never ahead of the pieces


def test_max_line_bytes_has_a_floor():
    with pytest.raises(ValueError):
        _lines(b"", limit=8)


# --------------------------------------------------------------------------- running text


def _sentences(count: int) -> str:
    return " ".join(f"Sentence number {i} has some words, Mr. Smith said." for i in range(count))


def test_a_long_line_of_short_sentences_splits_as_if_read_whole():
    """Pieces of 64 bytes cut through words and sentences; held-back sentences make it invisible."""
    line = _sentences(40)
    whole = [item.words for item in iter_items(_lines(line.encode() + b"\n", limit=1 << 20))]
    warnings = []
    pieces = [item.words for item in iter_items(_lines(line.encode() + b"\n", limit=64), warn=warnings.append)]
    assert pieces == whole and len(whole) == 40 and warnings == []


def test_an_unpunctuated_line_is_cut_into_pieces_of_max_words_with_one_warning():
    words = [f"w{i}" for i in range(2_000)]
    data = b"First line.\n" + " ".join(words).encode() + b"\n\nAfter.\n"
    warnings = []
    items = list(iter_items(_lines(data, limit=1 << 20), max_words=300, warn=warnings.append))
    assert items[0].words == ["First", "line", "."]
    cut = items[1:8]
    assert [len(i.words) for i in cut] == [300] * 6 + [200]
    assert [w for i in cut for w in i.words] == words  # every word, in order
    assert items[8].is_break and items[9].words == ["After", "."] and len(items) == 10
    assert warnings == ["t.txt:2: sentence 1 has 2,000 words; cut into pieces of at most 300 words"]


def test_a_sentence_running_past_a_whole_piece_is_cut_once(monkeypatch):
    """Held text stays under two pieces: the splitter never sees more than 2 x limit characters."""
    seen = []
    real = text_reader.split_sentences
    monkeypatch.setattr(text_reader, "split_sentences", lambda line: seen.append(len(line)) or real(line))
    words = [f"word{i}" for i in range(20_000)]
    warnings = []
    items = list(iter_items(_lines(" ".join(words).encode() + b" Next one.\n", limit=1024), max_words=512,
                            warn=warnings.append))
    assert max(seen) <= 2 * 1024 + 1
    assert [w for i in items for w in i.words] == words + ["Next", "one", "."]
    assert all(len(i.words) <= 512 for i in items)
    assert len(warnings) == 1 and warnings[0].startswith("t.txt:1: sentence 1 runs on for more than 1,024")


def test_an_endless_word_is_cut_too():
    items = list(iter_items(_lines(b"x" * 5000 + b"\n", limit=1024)))
    assert "".join(w for i in items for w in i.words) == "x" * 5000
    assert max(len(w) for i in items for w in i.words) <= 2 * 1024


def test_nul_bytes_are_spaces_so_a_line_of_nuls_is_an_empty_line():
    data = bytes(100_000) + b"\nWord.\n"
    items = list(iter_items(_lines(data, limit=1024)))
    assert [i.words for i in items] == [None, ["Word", "."]]


def test_tokens_lines_are_cut_every_max_words():
    data = " ".join(f"t{i}" for i in range(1_000)).encode() + b"\n\nend\n"
    warnings = []
    items = list(iter_items(_lines(data, limit=256), "tokens", max_words=400, warn=warnings.append))
    assert [len(i.words) if i.words else None for i in items] == [400, 400, 200, None, 1]
    assert [w for i in items[:3] for w in i.words] == [f"t{i}" for i in range(1_000)]
    assert warnings == ["t.txt:1: more than 400 words in one sentence; cut into pieces of at most 400 words"]


# --------------------------------------------------------------------------- CoNLL-U and pairs


def _conllu(n_words: int) -> bytes:
    rows = [f"{i}\tw{i}\t_\t{'NOUN' if i % 2 else 'VERB'}\t_\t_\t0\t_\t_\t_" for i in range(1, n_words + 1)]
    return ("# sent_id = long\n" + "\n".join(rows) + "\n\n").encode()


def test_a_long_conllu_sentence_is_cut_with_its_gold_tags_aligned():
    warnings = []
    items = list(iter_items(_lines(_conllu(700), limit=1024), "conllu", max_words=512, warn=warnings.append))
    assert [len(i.words) for i in items] == [512, 188]
    assert items[1].words[0] == "w513" and items[1].upos[0] == "NOUN"
    assert warnings == ["t.txt:1: a sentence of 700 words; cut into pieces of at most 512 words"]


def test_conllu_sentences_and_lines_have_limits(monkeypatch):
    monkeypatch.setattr(conllu_reader, "MAX_SENTENCE_LINES", 100)
    with pytest.raises(InputError, match=r"t.txt:1: a CoNLL-U sentence of more than 100 lines"):
        list(conllu_reader.parse_conllu(_lines(_conllu(150), limit=1024), "t.txt"))
    with pytest.raises(InputError, match=r"t.txt:4: a line longer than 1,024 bytes"):
        list(conllu_reader.parse_conllu(_lines(_conllu(1) + bytes(5000), limit=1024), "t.txt"))


def test_pairs_refuse_a_line_over_one_mib(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"A\tAH\n" + b"B" * (1 << 20) + b"\tB IY\n")
    with pytest.raises(InputError, match=r"pairs.tsv:2: a line longer than 1,048,576 bytes"):
        read_pairs(path)


# --------------------------------------------------------------------------- linear-time splitting


def test_200k_abbreviation_periods_are_one_sentence():
    """Each boundary candidate looks back over one word, not over the sentence so far: the old
    splitter copied the growing sentence at every abbreviation (200,000 x 400 KB on average)."""
    line = "Mr. " * 200_000 + "Smith left. He came back."
    sentences = split_sentences(line)
    assert len(sentences) == 2 and sentences[1] == "He came back."
    assert sentences[0].endswith("Mr. Smith left.") and len(sentences[0]) == 4 * 200_000 + len("Smith left.")


def _split_by_rescanning(line: str) -> list[str]:
    """The splitter before it was made linear: it looked back over the whole sentence so far."""
    import re

    line = re.sub(r"[\s\u2028\u2029\u0085\x00]+", " ", line).strip()
    if not line:
        return []
    sentences, start = [], 0
    for match in text_reader._BOUNDARY.finditer(line):
        before = line[start:match.start()].rsplit(" ", 1)[-1]
        if before.endswith(".") and text_reader._is_abbreviation(before.rstrip("\"'”’)]")):
            continue
        sentences.append(line[start:match.end()].strip())
        start = match.end()
    sentences.append(line[start:].strip())
    return [s for s in sentences if s]


def test_splitting_decides_as_the_rescanning_splitter():
    import random

    rng = random.Random(0)
    vocabulary = ["Mr.", "Dr.", "U.S.", "J.", "x.", "etc.", "He", "left.", "came!", "Why?", '"Go."', "(ok.)", "3.5",
                  "a", "The", "end.", "…", "Then", "   ", "\u2028"]
    for _ in range(2_000):
        line = " ".join(rng.choice(vocabulary) for _ in range(rng.randrange(1, 30)))
        assert split_sentences(line) == _split_by_rescanning(line), line
