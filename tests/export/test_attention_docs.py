"""Every example of the section "## In files" of docs/attention.md runs and prints what the page shows.

The ```console examples run in order in a temporary copy of data/ (with ../shared beside it, as
in a checkout), so the files they write never land in the repository; "..." in the expected
output matches any lines or text (tests/cli/test_speech_docs.py).  Each file an example names
with --attention-out must exist afterwards.  Then the ```python blocks run in the same folder.
The section "## In the terminal" has its own test (tests/cli/test_attention_docs.py).
"""

import os
import re
import shutil
import subprocess
import sys

from tests.cli.test_speech_docs import console_examples, matches, section_of
from tests.conftest import ROOT, SHARED_DATA, require_shared

DOC = ROOT / "docs" / "attention.md"
SECTION = "## In files"


def section() -> str:
    return section_of(DOC.read_text(encoding="utf-8"), SECTION)


def examples() -> list[tuple[str, list[str]]]:
    return console_examples(section())


def test_the_section_shows_every_command_and_format():
    commands = " ".join(c for c, _ in examples())
    for name in ("tag", "speech", "seq2seq", "graph"):
        assert f"seqattn {name} " in commands
    for suffix in (".html", ".npz", ".png", ".svg"):
        assert re.search(rf"--attention-out \S+{re.escape(suffix)}\b", commands)


def test_the_pictures_it_shows_are_in_the_repository():
    for name in re.findall(r"\]\((images/[^)]+\.png)\)", section()):
        assert (ROOT / "docs" / name).exists(), name


def test_examples_run_in_order(tmp_path):
    require_shared("planetoid", "cora")
    work = tmp_path / "work"
    shutil.copytree(ROOT / "data", work / "data")
    os.symlink(SHARED_DATA.parent, tmp_path / "shared")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    for command, expected in examples():
        shell = re.sub(r"(^|[|&;] *)seqattn ", lambda m: f"{m.group(1)}{sys.executable} -m seqattn ", command)
        shell = re.sub(r"(^|[|&;] *)python ", lambda m: f"{m.group(1)}{sys.executable} ", shell)
        done = subprocess.run(["bash", "-c", "set -o pipefail; " + shell], capture_output=True, text=True, cwd=work,
                              env=env, timeout=600)
        actual = [line.rstrip() for line in (done.stdout + done.stderr).splitlines()]
        assert done.returncode == 0 and matches(actual, expected), f"{command}\n--- got ---\n" + "\n".join(actual)
        for written in re.findall(r"--attention-out (\S+)", command):
            assert (work / written).stat().st_size > 0, written
    for block in re.findall(r"```python\n(.*?)```", section(), flags=re.S):
        done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=work, env=env)
        assert done.returncode == 0, f"{block}\n{done.stderr}"
