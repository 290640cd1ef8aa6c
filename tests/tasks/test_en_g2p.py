"""The shipped en-g2p model: it loads, it is intact, its outputs are ARPAbet, and it is as good as its card says."""

import json

import pytest

from seqattn.models.io import SHIPPED_DIR, registry
from seqattn.tasks.seq2seq import evaluate_seq2seq, load_seq2seq
from tests.conftest import require_shared, seqattn

WER_BOUND, PER_BOUND = 0.42, 0.11  # card: test WER 23.7% / PER 5.7%; the first (alphabetical) words are harder: 37.3% / 9.3% greedy

PHONEMES = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z "
               "ZH".split())  # the 39 stress-less phonemes of cmudict.phones


@pytest.fixture(scope="module")
def en_g2p():
    return load_seq2seq("en-g2p")


def test_registry_entry_and_size():
    entry = registry()["en-g2p"]
    assert entry["task"] == "seq2seq" and entry["window"] is None  # full attention over the spelling
    files = list((SHIPPED_DIR / entry["path"]).iterdir())
    assert {f.name for f in files} == set(entry["files"]) == {"config.json", "model.safetensors"}
    assert sum(f.stat().st_size for f in files) <= 15e6  # float32 weights, 3.1 M parameters


def test_outputs_are_arpabet_phonemes(en_g2p):
    outputs = en_g2p.decode(["CAT", "SEQUENCE", "ATTENTION", "X", "O'BRIEN"], beam=2)
    for out in outputs:
        assert out.symbols and set(out.symbols) <= PHONEMES, out.text


def test_test_words_meet_the_card(en_g2p):
    """The first 300 words of g014b2b.test, greedy: the card's test WER (beam 5, all 12,000 words) plus margin."""
    from seqattn.readers.pairs import read_pairs

    pairs = read_pairs(require_shared("cmudict", "g2p_split", "g014b2b.test"))
    words = list(dict.fromkeys(p.source for p in pairs))[:300]
    result = evaluate_seq2seq(en_g2p, [p for p in pairs if p.source in set(words)], beam=1)
    assert result["sequences"] == 300
    assert result["wer"] <= WER_BOUND and result["per"] <= PER_BOUND, result


def test_models_lists_it_and_the_cli_uses_it_by_default():
    proc = seqattn("models", "--format", "json")
    assert json.loads(proc.stdout)["en-g2p"]["task"] == "seq2seq"
    proc = seqattn("seq2seq", "-", input=b"CAT\n")
    assert proc.returncode == 0 and proc.stdout.decode().startswith("CAT\t")


def test_words_in_lower_or_mixed_case_read_as_upper_case(en_g2p):
    """CMUdict spells words in upper case; "hello" once came out as five unknown letters (EH N D IY S IY)."""
    outputs = en_g2p.decode(["HELLO", "hello", "Hello", "o'brien"], beam=1)
    assert outputs[0].text == "HH EH L OW" and outputs[1].text == outputs[2].text == outputs[0].text
    assert outputs[3].text == en_g2p.decode(["O'BRIEN"], beam=1)[0].text
    assert outputs[1].source_symbols == list("HELLO")  # the alignment names what the model read


def test_only_a_vocabulary_of_one_case_folds_the_input():
    from seqattn.models.seq2seq import SPECIALS
    from seqattn.featurise.seq2seq import Symbols

    def source(kind, symbols):
        return Symbols(kind, SPECIALS + symbols, fold_case=True)

    assert source("chars", ["'", "A", "B"]).split("ab'") == ["A", "B", "'"]
    assert source("chars", ["a", "b"]).split("AB") == ["a", "b"]
    assert source("chars", ["A", "b"]).split("ab") == ["a", "b"]  # both cases seen: as given
    assert source("chars", ["1", "2"]).split("1a") == ["1", "a"]
    assert source("words", ["A"]).split("a b") == ["a", "b"]
    assert Symbols("chars", SPECIALS + ["A", "B"]).split("ab") == ["a", "b"]  # a target: scored as written


def test_a_target_side_of_one_case_scores_outputs_as_written():
    """Folding is for what users type: an output in the wrong case is wrong in every metric."""
    from seqattn.models.seq2seq import SPECIALS
    from seqattn.featurise.seq2seq import Symbols
    from seqattn.tasks.seq2seq import score_outputs

    target = Symbols("chars", SPECIALS + list(" EONTW"))
    result = score_outputs(["two one"], [["TWO ONE"]], target)
    assert result["wrong_sequences"] == 1 and result["word_error_rate"] == 1.0
    assert result["per"] == 6 / 7  # every letter wrong, the space right
