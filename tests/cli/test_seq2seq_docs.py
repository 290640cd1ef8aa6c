"""Every ```console example of docs/seq2seq.md runs with the shipped en-g2p and prints what the page shows.

Same conventions as tests/cli/test_speech_docs.py ("..." matches any lines or any text).
"""

import pytest

from tests.cli.test_speech_docs import examples
from tests.cli.test_speech_docs import test_docs_example as run_example  # renamed: not collected twice
from tests.conftest import ROOT

DOC = ROOT / "docs" / "seq2seq.md"


def test_the_page_has_examples():
    assert len(examples(DOC)) >= 3


@pytest.mark.parametrize("command,expected", examples(DOC), ids=[c for c, _ in examples(DOC)])
def test_seq2seq_docs_example(command, expected):
    run_example(command, expected)
