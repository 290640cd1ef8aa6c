"""Every `$ seqattn ...` example in docs/tokenize.md runs, from the repository root, and prints
exactly the output the page shows under it (the page's examples are its tests)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOC = ROOT / "docs" / "tokenize.md"


def examples() -> list[tuple[str, str]]:
    """(command, expected output) for each ``$ `` line of the page's console blocks."""
    pairs = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            pairs.append((command, output))
    return pairs


def test_the_page_has_an_example_per_format():
    commands = " ".join(c for c, _ in examples())
    assert len(examples()) >= 6
    for option in ("jsonl", "conllu", "--pieces-only", "--spm", "2>&1"):
        assert option in commands


@pytest.mark.parametrize("command,expected", examples(), ids=[c[:40] for c, _ in examples()])
def test_doc_example_prints_what_the_page_shows(command, expected):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=ROOT, env=env, capture_output=True,
                          timeout=300)
    assert proc.stderr == b"", proc.stderr.decode()
    assert proc.stdout.decode() == expected, command
