"""Every command shown in docs/cli.md runs, under `set -o pipefail`, and prints something."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED_DATA

DOC = ROOT / "docs" / "cli.md"


def doc_commands() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [line.strip() for block in re.findall(r"```\n(.*?)```", text, flags=re.S)
            for line in block.splitlines() if "seqattn " in line]


def test_cli_doc_has_pipeline_examples():
    assert len(doc_commands()) >= 5 and any("| head" in c for c in doc_commands())


@pytest.mark.parametrize("command", doc_commands())
def test_cli_doc_example_runs(command, tmp_path):
    if "../shared/data" in command and not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is absent")
    work = tmp_path / "work"
    shutil.copytree(ROOT / "data", work / "data")
    os.symlink(ROOT.parent / "shared", tmp_path / "shared")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=work, env=env, capture_output=True,
                          timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stderr.decode()[-2000:]}"
    assert proc.stdout.strip() and proc.stderr == b"", command
