"""`seqattn graph`, `seqattn evaluate graph`, `seqattn train graph` from the outside: outputs and the error contract."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from seqattn.cli.main import run
from tests.conftest import ROOT, require_shared


def _run(capsys, *argv):
    code = run(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def _seqattn(*argv, stdin=None):
    """The real command in a subprocess (what a user sees: exit code, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "seqattn", *map(str, argv)], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120)


def test_tsv_lines_for_every_node(capsys, tiny_planetoid, tiny_graph_model_dir):
    code, out, err = _run(capsys, "graph", tiny_planetoid, "--model", tiny_graph_model_dir)
    assert code == 0 and err == ""
    lines = [line.split("\t") for line in out.splitlines()]
    assert len(lines) == 60 and [n for n, _, _ in lines] == [str(i) for i in range(60)]
    assert {c for _, c, _ in lines} <= {"0", "1", "2"} and all(0 < float(p) <= 1 for _, _, p in lines)


def test_jsonl_and_pretty(capsys, tiny_planetoid, tiny_graph_model_dir):
    code, out, _ = _run(capsys, "graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--format", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(records) == 60 and set(records[0]) == {"node", "class", "probability", "gold"}
    code, out, _ = _run(capsys, "graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--format", "pretty")
    assert code == 0 and "probability" in out and "60 nodes" in out


def test_edge_list_with_feature_and_label_files(capsys, tmp_path, tiny_planetoid, tiny_graph_model_dir):
    import scipy.sparse as sp

    features = sp.load_npz(tiny_planetoid / "features.npz").toarray()
    (tmp_path / "x.csv").write_text("".join(f"n{i}," + ",".join(str(int(v)) for v in row) + "\n"
                                            for i, row in enumerate(features)))
    edges = (tiny_planetoid / "edges.txt").read_text().split("\n")
    (tmp_path / "g.tsv").write_text("".join(f"n{u}\tn{v}\n" for u, v in (e.split() for e in edges if e)) + "n0\tn0\n")
    (tmp_path / "y.tsv").write_text("n0\t2\n")
    code, out, err = _run(capsys, "graph", tmp_path / "g.tsv", "--features", tmp_path / "x.csv",
                          "--labels", tmp_path / "y.tsv", "--model", tiny_graph_model_dir, "-f", "tsv")
    assert code == 0 and len(out.splitlines()) == 60 and out.startswith("n0\t")
    assert "dropped 1 self-loops" in err
    # the same graph read from its own files gives the same classes as the Planetoid directory
    code, planetoid_out, _ = _run(capsys, "graph", tiny_planetoid, "--model", tiny_graph_model_dir, "-f", "tsv")
    assert [line.split("\t")[1] for line in out.splitlines()] == [line.split("\t")[1] for line in planetoid_out.splitlines()]


def test_attention_of_one_node(capsys, tiny_planetoid, tiny_graph_model_dir):
    code, out, _ = _run(capsys, "graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--attention", "5",
                        "--format", "tsv")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and {r[0] for r in rows} == {"5"} and "5" in {r[1] for r in rows}  # it attends to itself
    for layer, heads in (("0", 2), ("1", 1)):
        for head in range(heads):
            weights = [float(r[4]) for r in rows if r[2] == layer and r[3] == str(head)]
            assert abs(sum(weights) - 1) < 1e-3
    code, out, _ = _run(capsys, "graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--attention", "5",
                        "--format", "pretty")
    assert code == 0 and "L0h1" in out and "(self)" in out
    code, out, _ = _run(capsys, "graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--attention", "5",
                        "--format", "jsonl")
    assert [len(w) for w in json.loads(out.splitlines()[0])["weights"]] == [2, 1]


def test_evaluate_json_and_pretty(capsys, tiny_planetoid, tiny_graph_model_dir):
    code, out, _ = _run(capsys, "evaluate", "graph", "--data", tiny_planetoid, "--model", tiny_graph_model_dir,
                        "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["nodes"] == 30 and 0.8 <= result["accuracy"] <= 1 and result["split"] == "test"
    code, out, _ = _run(capsys, "evaluate", "graph", "--data", tiny_planetoid, "--model", tiny_graph_model_dir,
                        "--split", "val", "--format", "pretty")
    assert code == 0 and out.startswith("accuracy ") and "15 val nodes" in out


def test_train_then_use_the_model(capsys, tiny_planetoid, tmp_path):
    out_dir = tmp_path / "model"
    code, out, err = _run(capsys, "train", "graph", "--data", tiny_planetoid, "--out", out_dir, "--seed", "3",
                          "--max-epochs", "5", "--class-names", "red,green,blue")
    assert code == 0 and out.startswith(f"saved {out_dir}: val accuracy") and "stopped after 5 epochs" in err
    assert json.loads((out_dir / "config.json").read_text())["training"]["seed"] == 3
    code, out, _ = _run(capsys, "graph", tiny_planetoid, "--model", out_dir, "-f", "tsv")
    assert code == 0 and {line.split("\t")[1] for line in out.splitlines()} <= {"red", "green", "blue"}
    code, _, err = _run(capsys, "train", "graph", "--data", tiny_planetoid, "--out", out_dir, "--max-epochs", "1")
    assert code == 2 and "pass --force" in err


@pytest.mark.parametrize("make,argv,message", [
    (lambda p: p.write_text("1 2\n3 4 5 6\n"), ["graph", "{f}"], "line 2: expected 'source target [weight]'"),
    (lambda p: p.write_text("1 2 x\n"), ["graph", "{f}"], "'x' is not a weight"),
    (lambda p: p.write_text(""), ["graph", "{f}"], "empty graph"),
    (lambda p: p.write_text("0 1\n1 9\n"), ["graph", "{f}", "--features", "{x}"], "edge names node '9'"),
    (lambda p: p.write_text("0 1\n"), ["graph", "{f}"], "give them with --features"),
    (lambda p: p.write_text("0 1\n"), ["graph", "{f}", "--features", "{x}"], "2 features per node, but the model"),
    (lambda p: p.write_text("0 1\n"), ["graph", "{f}", "--features", "{x}", "--attention", "7"], "no node '7'"),
    (lambda p: p.write_text("0 1\n"), ["graph", "{f}", "--format", "xml"], "unknown --format 'xml'"),
    (lambda p: p.write_text("0 1\n"), ["graph", "{f}", "--model", "nowhere"], "no such model directory"),
    (lambda p: p.write_text("0 1\n"), ["evaluate", "graph", "--data", "{f}"], "not a directory"),
    (lambda p: p.write_text("0 1\n"), ["train", "graph", "--data", "{d}", "--out", "{d}/m"], "not a Planetoid directory"),
])
def test_errors_are_one_line_and_exit_2(capsys, tmp_path, make, argv, message):
    graph = tmp_path / "g.tsv"
    make(graph)
    np.savez(tmp_path / "x.npz", features=np.ones((3, 2), dtype=np.float32))
    names = {"f": graph, "x": tmp_path / "x.npz", "d": tmp_path}
    code, out, err = _run(capsys, *(a.format(**names) for a in argv))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("seqattn: error: ")
    assert message in err and out == ""


@pytest.mark.parametrize("name,text,message", [
    ("g.json", '{"nodes": [{"id": 1}],\n "links": [}', "g.json: line 2: malformed JSON"),
    ("g.tsv", "1 2\n2 x 3 4\n", "g.tsv: line 2: expected 'source target [weight]'"),
])
def test_the_real_command_prints_one_line_and_no_traceback(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    result = _seqattn("graph", path)
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_help_does_not_import_torch():
    code = ("import sys; from seqattn.cli.main import app; import typer; "
            "typer.main.get_command(app); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == "False"


def test_shipped_cora_from_the_shared_directory(capsys):
    cora = require_shared("planetoid", "cora")
    code, out, _ = _run(capsys, "graph", cora, "--format", "tsv")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2708 and lines[0].split("\t")[0] == "0"
    assert {line.split("\t")[1] for line in lines} <= {"Theory", "Reinforcement_Learning", "Genetic_Algorithms",
                                                      "Neural_Networks", "Probabilistic_Methods", "Case_Based",
                                                      "Rule_Learning"}
    code, out, _ = _run(capsys, "evaluate", "graph", "--data", cora, "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["nodes"] == 1000 and result["accuracy"] >= 0.83
