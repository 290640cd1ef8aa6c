"""Every ```console example of the section "## In the terminal" of docs/attention.md runs and prints
what the page shows.

Same conventions as tests/cli/test_speech_docs.py ("..." matches any lines or any text; a pipe,
80 columns, NO_COLOR), and a command may start with VAR=value assignments (COLUMNS=100), which
are set for it.  Only this section: the rest of the page (attention files) has its own test.
"""

import os
import re
import subprocess
import sys

import pytest

from tests.cli.test_speech_docs import console_examples, matches, section_of
from tests.conftest import ROOT, SHARED_DATA

DOC = ROOT / "docs" / "attention.md"
SECTION = "## In the terminal"


def examples() -> list[tuple[str, list[str]]]:
    return console_examples(section_of(DOC.read_text(encoding="utf-8"), SECTION))


def test_the_section_has_examples_of_every_command():
    commands = " ".join(c for c, _ in examples())
    assert all(f"seqattn {name} " in commands for name in ("tag", "speech", "seq2seq", "graph"))
    assert "--attention-kind rollout" in commands and "--layer all --head all" in commands


@pytest.mark.parametrize("command,expected", examples(), ids=[c for c, _ in examples()])
def test_attention_docs_example(command, expected):
    if "../shared/data" in command and not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is absent (the shared data sets are not beside this checkout)")
    assignments = re.match(r"((?:[A-Z_]+=\S* )*)(.*)", command)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "NO_COLOR": "1",
           **dict(a.split("=", 1) for a in assignments.group(1).split())}
    shell = re.sub(r"(^|[|&;] *)seqattn ", lambda m: f"{m.group(1)}{sys.executable} -m seqattn ", assignments.group(2))
    done = subprocess.run(["bash", "-c", "set -o pipefail; " + shell], capture_output=True, text=True, cwd=ROOT,
                          env=env)
    actual = [line.rstrip() for line in (done.stdout + done.stderr).splitlines()]
    assert done.returncode == 0 and matches(actual, expected), f"{command}\n--- got ---\n" + "\n".join(actual)
