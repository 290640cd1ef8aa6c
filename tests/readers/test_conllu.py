"""CoNLL-U reader: syntactic words only, clear errors for broken files."""

import pytest

from seqattn.errors import InputError
from seqattn.readers.conllu import parse_conllu, read_conllu

SENTENCE = """# sent_id = s1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
4.1\tknows\tknow\tVERB\tVBZ\t_\t_\t_\t4:conj\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

"""


def test_multiword_tokens_and_empty_nodes_are_skipped():
    (s,) = parse_conllu(SENTENCE.splitlines())
    assert s.words == ["I", "do", "n't", "know", "."]
    assert s.upos == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert s.sent_id == "s1" and s.text == "I don't know."


def test_crlf_and_missing_final_blank_line():
    sentences = list(parse_conllu((SENTENCE.strip() + "\n").replace("\n", "\r\n").splitlines(True)))
    assert sentences[0].words[-1] == "."


def test_untagged_conllu_has_no_gold():
    (s,) = parse_conllu(["1\tHello\t_\t_\t_\t_\t_\t_\t_\t_"])
    assert s.words == ["Hello"] and s.upos is None


@pytest.mark.parametrize("bad", ["1\tonly-two-columns", "x\ty\tz\tw\tv\tu\tt\ts\tr\tq", "# just a comment"])
def test_malformed_sentences_name_the_line(bad):
    with pytest.raises(InputError, match=r"f.conllu:3: "):
        list(parse_conllu(["", "", bad], "f.conllu"))


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.conllu"
    path.write_text(SENTENCE[: SENTENCE.index("4\tknow") + 9])
    with pytest.raises(InputError, match="cut.conllu:7: a CoNLL-U word line has 10 tab-separated columns"):
        read_conllu(path)
