"""Property tests (hypothesis): any bytes either read or raise the project's own InputError."""

import io

from hypothesis import given, settings, strategies as st

from seqattn.errors import InputError
from seqattn.readers.conllu import parse_conllu
from seqattn.readers.text import Lines, iter_items, split_sentences, tokenize

FAST = settings(max_examples=150, deadline=None)


@FAST
@given(st.text())
def test_tokenize_never_fails_and_loses_no_visible_character(text):
    words = tokenize(text)
    assert all(words) and all(not any(c.isspace() for c in w) for w in words)
    visible = [c for c in text if not c.isspace() and c not in "\x00"]
    assert sorted("".join(words)) == sorted(visible)


@FAST
@given(st.text())
def test_sentences_cover_the_line(text):
    sentences = split_sentences(text)
    assert all(s.strip() == s and s for s in sentences)
    assert "".join("".join(s.split()) for s in sentences) == "".join(
        c for c in text if not c.isspace() and c not in "\x00\u2028\u2029\u0085")


@FAST
@given(st.binary(max_size=400), st.sampled_from(["text", "tokens", "conllu"]))
def test_any_bytes_read_or_raise_input_error(data, input_format):
    try:
        items = list(iter_items(Lines(io.BytesIO(data), "fuzz"), input_format))
    except InputError as err:
        assert str(err).startswith("fuzz") or "fuzz:" in str(err)
        return
    assert all(item.words is None or all(item.words) for item in items)


CONLLU_LINE = st.lists(st.sampled_from(["1", "2", "1-2", "3.1", "x", "_", "NOUN", "word", "", "#"]), min_size=1,
                       max_size=12).map("\t".join)


@FAST
@given(st.lists(st.one_of(CONLLU_LINE, st.just(""), st.text(max_size=20)), max_size=20))
def test_conllu_lines_parse_or_raise_input_error(lines):
    try:
        sentences = list(parse_conllu(lines, "fuzz.conllu"))
    except InputError as err:
        assert str(err).startswith("fuzz.conllu:")
        return
    assert all(s.words for s in sentences)
