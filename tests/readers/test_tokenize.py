"""Sentences of words with offsets and sentencepiece pieces (seqattn/readers/tokenize.py), streamed."""

import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqattn.errors import InputError, ModelError
from seqattn.readers.text import Lines, sentence_spans
from seqattn.readers.tokenize import Break, Pieces, Sentence, default_model_path, iter_line_pieces, iter_sentences
from tests.readers.test_text import TRICKY_LINES


@pytest.fixture(scope="module")
def pieces():
    return Pieces(default_model_path())


def _items(data: bytes, pieces, max_line_bytes=1 << 20, warn=None):
    return list(iter_sentences(Lines(io.BytesIO(data), "t.txt", max_line_bytes), pieces, warn))


def rebuild_lines(items) -> list[str]:
    """Each input line, from its words alone: the text before the first word, then each word and
    the whitespace after it."""
    lines: dict[int, str] = {}
    for item in items:
        if isinstance(item, Break):
            lines[item.line] = None
            continue
        text = lines.get(item.line) or ""
        if item.number == 1:
            assert text == ""
        for token in item.words:
            text = text.ljust(token.start)  # only the first word has text before it: leading whitespace
            assert len(text) == token.start, (text, token)
            text += token.word + token.space_after
        lines[item.line] = text
    return [lines[k] for k in sorted(lines)]


def as_rebuilt(line: str) -> str | None:
    """What ``rebuild_lines`` gives for ``line``: its leading whitespace as spaces; None if blank."""
    lead = re.match(r"[\s\u2028\u2029\u0085\x00]*", line).end()
    return None if lead == len(line) else " " * lead + line[lead:]


def test_words_offsets_pieces_and_breaks(pieces):
    line = "  Hello  world. Wait...what :-)\tok!"
    items = _items(f"{line}\n\n \nBye.\n".encode(), pieces)
    assert [type(i) for i in items] == [Sentence, Sentence, Break, Break, Sentence]
    first, second = items[0], items[1]
    assert [(t.word, t.start, t.end, t.space_after) for t in first.words] == \
        [("Hello", 2, 7, "  "), ("world", 9, 14, ""), (".", 14, 15, " ")]
    assert (first.line, first.number, first.start, first.end, first.text) == (1, 1, 2, 15, "Hello  world.")
    assert [t.word for t in second.words] == ["Wait", "...", "what", ":-)", "ok", "!"]
    assert second.text == "Wait...what :-)\tok!" and second.one_line_text() == "Wait...what :-) ok!"
    assert second.ends_line and not first.ends_line
    assert first.words[0].pieces == ("▁Hello",)
    assert all(t.pieces == pieces.word(t.word) for t in second.words)
    assert (items[2].line, items[3].line, items[4].line, items[4].number) == (2, 3, 4, 1)


@pytest.mark.parametrize("line", TRICKY_LINES)
def test_lines_rebuild_from_words_and_spaces(line, pieces):
    items = _items((line + "\n").encode(), pieces)
    assert rebuild_lines(items) == [as_rebuilt(line)]
    words = [t.word for i in items if isinstance(i, Sentence) for t in i.words]
    assert words == [w for s in sentence_spans(line) for w, _, _ in s]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["Hi", "there", "Mr.", "U.S.", ".", "!", "?!", "...", ":-)", ",", "don't", "👍🏽",
                                 "#tag", "x@y.org", "https://a.b/c", "é", "東京", " ", "  ", "\t", "A", "(", ")"]),
                max_size=60),
       st.integers(16, 48))
def test_long_lines_in_small_pieces_keep_offsets_and_every_character(parts, max_line_bytes):
    """However a line is cut into pieces, every word is where its offsets say and nothing is lost."""
    line = "".join(parts)
    items = _items((line + "\nNext.\n").encode(), Pieces(default_model_path()), max_line_bytes)
    for item in items:
        if isinstance(item, Sentence):
            assert item.text == line[item.start:item.end] if item.line == 1 else item.text == "Next."
            for token in item.words:
                assert (line if item.line == 1 else "Next.")[token.start:token.end] == token.word
    rebuilt = rebuild_lines(items)
    assert rebuilt[-1] == "Next."
    assert rebuilt[0] == as_rebuilt(line)


def test_a_sentence_longer_than_a_piece_is_cut_with_one_message(pieces):
    line = "word " * 40 + "end. Short one."
    messages = []
    items = _items(line.encode(), pieces, max_line_bytes=32, warn=messages.append)
    assert all(isinstance(i, Sentence) for i in items) and len(items) > 2
    assert [i.cut for i in items[:-1]] == [True] * (len(items) - 1) and not items[-1].cut
    assert [t.word for i in items for t in i.words] == ["word"] * 40 + ["end", ".", "Short", "one", "."]
    assert messages == ["t.txt:1: sentence 1 runs on for more than 32 characters without a sentence boundary; "
                        "cut into pieces"]
    endless = "x" * 100
    items = _items(endless.encode(), pieces, max_line_bytes=16)
    assert "".join(t.word for i in items for t in i.words) == endless
    assert all(i.words[-1].space_after == "" for i in items)


def test_line_pieces_are_spm_encode(pieces):
    lines = ["Hello  world.", "", "  Wait...what :-) 👍🏽 naïve \x1b[2J", "ﬁne\ttabs", "word " * 30 + "end"]
    data = "\n".join(lines).encode()
    for max_line_bytes in (1 << 20, 16, 40):
        got = list(iter_line_pieces(Lines(io.BytesIO(data), "t", max_line_bytes), pieces))
        assert got == [pieces.processor.encode(line, out_type=str) for line in lines], max_line_bytes


def test_bad_models_and_bytes(tmp_path, pieces):
    with pytest.raises(InputError, match="no such sentencepiece model"):
        Pieces(tmp_path / "none.model")
    with pytest.raises(InputError, match="is a directory"):
        Pieces(tmp_path)
    (tmp_path / "bad.model").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(ModelError, match="not a sentencepiece model"):
        Pieces(tmp_path / "bad.model")
    with pytest.raises(InputError, match="t.txt:2: not UTF-8"):
        _items(b"fine\n\xff\xfe\n", pieces)
