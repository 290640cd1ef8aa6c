"""Every command shown in README.md runs and succeeds (placeholder files are swapped for tiny ones)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED_DATA

README = ROOT / "README.md"


def readme_commands() -> list[str]:
    """Lines of README code blocks that run seqattn (comments after '#' dropped)."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if "seqattn " in line and not line.startswith("make"):
                commands.append(line)
    return commands


def test_readme_has_examples():
    assert len(readme_commands()) >= 5


@pytest.mark.parametrize("command", readme_commands())
def test_readme_example_runs(command, tiny_treebank, tiny_tagger_dir, tmp_path):
    if "../shared/data" in command and not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is absent")
    work = tmp_path / "work"
    shutil.copytree(ROOT / "data", work / "data")
    os.symlink(ROOT.parent / "shared", tmp_path / "shared")  # ../shared/data as in a checkout
    shutil.copy(tiny_treebank[0], work / "train.conllu")
    shutil.copy(tiny_treebank[1], work / "dev.conllu")
    if "--model my-tagger" in command:
        shutil.copytree(tiny_tagger_dir, work / "my-tagger")
    command = command.replace("seqattn train tagger", "seqattn train tagger --epochs 1 --layers 1")
    command = command.replace("seqattn benchmark attention", "seqattn benchmark attention --format json")
    command = command.replace("--length 16384", "--length 512")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=work, env=env, capture_output=True,
                          timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stderr.decode()[-2000:]}"
    assert proc.stdout.strip(), command
