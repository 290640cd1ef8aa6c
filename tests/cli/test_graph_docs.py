"""Every `$ seqattn ...` example in docs/graph.md runs and exits 0 (Typer's docs-mirror-tests habit).

Examples run from the repository root, as the docs write them.  Training examples run with
``--max-epochs 2`` and write to a temporary directory, so the suite stays fast.
"""

import shlex

import pytest

from seqattn.cli.main import run
from tests.conftest import ROOT, require_shared

DOC = ROOT / "docs" / "graph.md"


def _examples() -> list[str]:
    return [line.strip()[2:] for line in DOC.read_text(encoding="utf-8").splitlines() if line.strip().startswith("$ seqattn ")]


def test_the_doc_has_examples():
    assert len(_examples()) >= 6


@pytest.mark.parametrize("example", _examples())
def test_doc_example_runs(example, monkeypatch, tmp_path, capsys):
    require_shared("planetoid", "cora")
    monkeypatch.chdir(ROOT)
    argv = shlex.split(example.split(" | ")[0])[1:]
    if argv[:2] == ["train", "graph"]:
        argv[argv.index("--out") + 1] = str(tmp_path / "model")
        argv += ["--max-epochs", "2"]
    if "my-cora" in argv:  # the model the training example writes: make a quick one here
        assert run(["train", "graph", "--data", "../shared/data/planetoid/cora", "--out", str(tmp_path / "my-cora"),
                    "--max-epochs", "2", "--quiet"]) == 0
        argv[argv.index("my-cora")] = str(tmp_path / "my-cora")
        capsys.readouterr()
    code = run(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out
