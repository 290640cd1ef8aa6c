"""Every command of docs/training.md runs: on the tiny treebank, with a small model appended
(flags given last win), the two-machine example as two launchers on the loopback address."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Killed, kill_at

DOC = ROOT / "docs" / "training.md"
SMALL = " --epochs 2 --layers 1 --d-model 32 --heads 2 --d-ff 64 --batch-size 256 --quiet"


def doc_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        commands += [line.strip() for line in block.splitlines() if "seqattn" in line]
    return commands


def test_the_page_shows_every_kind_of_run():
    text = " ".join(doc_commands())
    for needle in ("--config recipes/", "--resume", "--score additive", "--nproc-per-node 2", "--rdzv-endpoint"):
        assert needle in text, needle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(work: Path, tiny_treebank) -> dict:
    work.mkdir()
    shutil.copy(tiny_treebank[0], work / "train.conllu")
    shutil.copy(tiny_treebank[1], work / "dev.conllu")
    os.symlink(ROOT / "recipes", work / "recipes")
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "PATH": f"{bin_dir}:{env['PATH']}", "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("command", [c for c in dict.fromkeys(doc_commands()) if "--rdzv-endpoint" not in c])
def test_doc_example_runs(command, tiny_treebank, tmp_path):
    work = tmp_path / "work"
    env = _prepare(work, tiny_treebank)
    if "--resume" in command:  # the checkpoint of an interrupted run of the same command
        from seqattn.models.tagger import TaggerConfig
        from seqattn.tasks.tagging import tagger_settings, train_tagger
        from seqattn.training.engine import Callbacks
        from seqattn.training.options import ModelOptions

        config = TaggerConfig()
        ModelOptions(layers=1, d_model=32, heads=2, d_ff=64).apply_to_encoder(config.encoder)
        with pytest.raises(Killed):
            train_tagger(work / "train.conllu", work / "dev.conllu", work / "my-tagger",
                         tagger_settings(epochs=2, batch_size=256), config, reporter=Callbacks(on_epoch=kill_at(1)))
    proc = subprocess.run(["bash", "-c", command + SMALL], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    out = re.search(r"--out (\S+)", command).group(1)
    assert (work / out / "model.safetensors").is_file() and not (work / f"{out}.checkpoint").exists()
    if "--nproc 2" in command or "--nproc-per-node 2" in command:
        import json

        assert json.loads((work / out / "config.json").read_text())["training"]["processes"] == 2


def test_two_machine_example_runs_as_two_launchers_on_loopback(tiny_treebank, tmp_path):
    commands = [c for c in doc_commands() if "--rdzv-endpoint" in c]
    assert len(commands) == 2
    work = tmp_path / "work"
    env = _prepare(work, tiny_treebank)
    port = _free_port()
    launchers = [subprocess.Popen(["bash", "-c", re.sub(r"--rdzv-endpoint \S+", f"--rdzv-endpoint 127.0.0.1:{port}",
                                                        c) + SMALL],
                                  cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in commands]
    results = [p.communicate(timeout=600) for p in launchers]
    for launcher, (_, err) in zip(launchers, results):
        assert launcher.returncode == 0, err[-3000:]
    import json

    record = json.loads((work / "my-tagger-nodes" / "config.json").read_text())["training"]
    assert record["processes"] == 2
