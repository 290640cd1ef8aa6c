"""Every `$ seqattn ...` example in docs/graph.md runs and exits 0 (Typer's docs-mirror-tests habit).

Examples run from the repository root, as the docs write them.  Training examples run with
``--max-epochs 2``, and the model directory ``my-cora`` is made in a temporary directory, so the
suite stays fast and writes nothing into the checkout.
"""

import shlex

from seqattn.cli.main import run
from tests.conftest import ROOT, require_shared

DOC = ROOT / "docs" / "graph.md"


def _examples() -> list[str]:
    return [line.strip()[2:] for line in DOC.read_text(encoding="utf-8").splitlines() if line.strip().startswith("$ seqattn ")]


def test_the_doc_has_examples():
    assert len(_examples()) >= 6


def test_doc_examples_run_in_order(monkeypatch, tmp_path, capsys):
    """In order, because a later example may use the model that an earlier one trained (my-cora)."""
    require_shared("planetoid", "cora")
    monkeypatch.chdir(ROOT)
    for example in _examples():
        argv = [str(tmp_path / "my-cora") if a == "my-cora" else a for a in shlex.split(example.split(" | ")[0])[1:]]
        if argv[:2] == ["train", "graph"]:
            argv += ["--max-epochs", "2"]
        code = run(argv)
        out, err = capsys.readouterr()
        assert code == 0, f"{example}: {err}"
        assert out, example
