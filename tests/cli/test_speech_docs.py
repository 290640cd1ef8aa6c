"""Every ```console example of docs/speech.md runs, and prints what the page says it prints.

An example is a line "$ seqattn ..." (pipes allowed) followed by its expected output; a line
"..." in the expected output stands for any number of lines, and "..." inside a line for any
text (timings).  Commands run from the repository root with the shipped models, in a pipe (so
the pipe defaults apply), 80 columns wide; `seqattn` and `python` are this interpreter's.
"""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DOC = ROOT / "docs" / "speech.md"


def console_examples(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of every "$ " line in the ```console blocks of ``text``."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        command, expected = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command:
                    found.append((command, expected))
                command, expected = line[2:], []
            else:
                expected.append(line.rstrip())
        if command:
            found.append((command, expected))
    return found


def section_of(text: str, heading: str) -> str:
    """The part of a Markdown page from ``heading`` to the next "## " heading (or the end)."""
    part = text[text.index(heading):]
    end = re.search(r"^## ", part[len(heading):], flags=re.M)
    return part[:len(heading) + end.start()] if end else part


def examples(doc=DOC) -> list[tuple[str, list[str]]]:
    return console_examples(doc.read_text(encoding="utf-8"))


def line_matches(actual: str, expected: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def matches(actual: list[str], expected: list[str]) -> bool:
    """Line-by-line match, where an expected '...' line matches any run of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(actual[i:], expected[1:]) for i in range(len(actual) + 1))
    return bool(actual) and line_matches(actual[0], expected[0]) and matches(actual[1:], expected[1:])


@pytest.mark.parametrize("command,expected", examples(), ids=[c for c, _ in examples()])
def test_docs_example(command, expected):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "NO_COLOR": "1"}
    shell = re.sub(r"(^|[|&;] *)seqattn ", lambda m: f"{m.group(1)}{sys.executable} -m seqattn ", command)
    shell = re.sub(r"(^|[|&;] *)python ", lambda m: f"{m.group(1)}{sys.executable} ", shell)
    done = subprocess.run(["bash", "-c", "set -o pipefail; " + shell], capture_output=True, text=True, cwd=ROOT,
                          env=env)
    actual = [line.rstrip() for line in (done.stdout + done.stderr).splitlines()]
    assert matches(actual, expected), f"{command}\n--- got ---\n" + "\n".join(actual)
