"""`seqattn benchmark attention`: the JSON contract (values are measured, never asserted on speed)."""

import json
import re

import pytest

from tests.conftest import seqattn


def test_attention_benchmark_json_has_every_field():
    proc = seqattn("benchmark", "attention", "-n", "256", "-w", "4", "--impl", "seqattn", "--impl", "dense",
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    measured = [r for r in rows if r["impl"] in ("seqattn", "dense")]
    assert {r["impl"] for r in measured} == {"seqattn", "dense"}
    for r in measured:
        assert set(r) >= {"length", "window", "impl", "ms", "peak_mb", "gflops", "peak_fraction", "beside_fraction"}
        assert r["length"] == 256 and r["window"] == 4 and r["ms"] > 0
    gemm = [r for r in rows if r["impl"] == "gemm"][0]
    assert gemm["gflops"] >= gemm["lowest_gflops"] > 0
    # The library whose GEMM was the faster in each child (see test_each_gemm_candidate_...).
    assert set(gemm["backends"]) == {r["gemm_backend"] for r in measured} and set(gemm["backends"]) <= {"BLAS", "oneDNN"}


def test_each_gemm_candidate_computes_the_whole_product():
    """The peak is the faster of torch's GEMM libraries; each must do a full size^3 matmul, or its
    rate (2 size^3 / time) would be a fiction.  oneDNN's linear computes a @ b^T."""
    import torch

    from seqattn.bench.attention import _gemm, gemm_candidates

    torch.manual_seed(0)
    a, b = torch.randn(96, 96), torch.randn(96, 96)
    candidates = gemm_candidates(a, b)
    assert "BLAS" in candidates and set(candidates) <= {"BLAS", "oneDNN"}
    expected = {"BLAS": a @ b, "oneDNN": a @ b.T}
    for name, matmul in candidates.items():
        out = matmul()
        out = out.to_dense() if out.is_mkldnn else out
        torch.testing.assert_close(out, expected[name], rtol=1e-5, atol=1e-4, msg=name)
    once = _gemm(64)
    assert once.backend in candidates and once() > 0


def test_dense_is_skipped_where_it_cannot_fit_and_bad_impl_is_an_error():
    from seqattn.bench.attention import run_child

    assert "skipped" in run_child("dense", 1 << 20, 16)
    proc = seqattn("benchmark", "attention", "--impl", "cuda-magic")
    assert proc.returncode == 2 and b"unknown --impl" in proc.stderr


def test_backward_rows_and_flex_backward_is_skipped_with_the_reason():
    from seqattn.bench.attention import benchmark

    report = benchmark([128], [4], ["seqattn", "flex"], passes=(True,))
    step, flex = report["results"]
    assert step["impl"] == "seqattn" and step["pass"] == "forward+backward" and step["ms"] > 0
    assert 0 < step["peak_fraction"]
    assert flex["impl"] == "flex" and "no CPU backward" in flex["skipped"]
    # The peak is the run's highest GEMM rate, the child's own measurement included.
    assert report["gemm_gflops"] >= step["gemm_gflops"] >= report["gemm_gflops_lowest"] > 0
    assert step["peak_fraction"] == round(step["gflops"] / report["gemm_gflops"], 3)
    # The GEMMs timed between the step's own calls: their median, and the step's share of it.
    assert step["gemm_gflops"] >= step["gemm_gflops_beside"] > 0
    assert step["beside_fraction"] == round(step["gflops"] / step["gemm_gflops_beside"], 3)


def test_a_training_step_says_whether_its_backward_recomputed_p(monkeypatch):
    """The child inherits SEQATTN_SAVE_PROBS, and its row says which backward ran."""
    from seqattn.bench.attention import benchmark
    from seqattn.nn import native

    if not native.available():
        pytest.skip("the C++ kernel is not built here (no compiler or no AVX-512): the torch path has one backward")
    assert benchmark([128], [4], ["seqattn"], passes=(True,))["results"][0]["kernel"] == "native"
    monkeypatch.setenv("SEQATTN_SAVE_PROBS", "0")
    assert benchmark([128], [4], ["seqattn"], passes=(True,))["results"][0]["kernel"] == "native, P recomputed"


def test_processes_are_sweeps_over_the_grid_and_the_median_process_is_kept(monkeypatch):
    from seqattn.bench import attention

    times = iter([9.0, 5.0, 3.0, 4.0, 7.0, 1.0])  # (w=4, w=8) in sweep 1, then sweep 2, then sweep 3
    calls = []

    def fake_child(impl, n, window, backward=False):
        calls.append((impl, window))
        if impl == "dense":
            return {"length": n, "window": window, "impl": impl, "pass": "forward", "skipped": "too big"}
        ms = next(times)
        return {"length": n, "window": window, "impl": impl, "pass": "forward", "ms": ms, "peak_mb": 1.0,
                "gflops": 100.0 / ms, "gemm_gflops": 200.0 + ms}

    monkeypatch.setattr(attention, "run_child", fake_child)
    monkeypatch.setattr(attention, "gemm_gflops", lambda *a, **k: 150.0)
    report = attention.benchmark([64], [4, 8], ["seqattn", "dense"], processes=3)
    # Whole sweeps, one after the other; a skip is not tried again.
    assert calls == [("seqattn", 4), ("dense", 4), ("seqattn", 8), ("dense", 8)] + [("seqattn", 4), ("seqattn", 8)] * 2
    w4, dense4, w8, dense8 = report["results"]
    assert w4["ms_processes"] == [9.0, 3.0, 7.0] and w4["ms"] == 7.0 and w4["gemm_gflops"] == 207.0
    assert w8["ms_processes"] == [5.0, 4.0, 1.0] and w8["ms"] == 4.0
    assert dense4["skipped"] == "too big" and "ms_processes" not in dense4
    # The peak and the lowest rate see every process, the ones not kept included.
    assert report["gemm_gflops"] == 209.0 and report["gemm_gflops_lowest"] == 201.0
    assert w8["peak_fraction"] == round(25.0 / 209.0, 3)
    proc = seqattn("benchmark", "attention", "--processes", "0")
    assert proc.returncode == 2 and b"--processes" in proc.stderr and proc.stderr.count(b"\n") == 1


def test_timing_waits_until_two_calls_in_a_row_leave_the_heap_where_it_was(monkeypatch):
    from seqattn.bench import attention

    rss = [100.0]
    growth = iter([64.0, 64.0, 0.0, 64.0, 0.0, 0.0, 0.0])  # what each call adds (MB)
    monkeypatch.setattr(attention, "_rss_mb", lambda: rss[0])

    def call():
        rss[0] += next(growth)

    assert attention.settle(call) == 6  # one still call after growth is not yet enough
    growth = iter([8.0] * 5)
    assert attention.settle(call, max_calls=3) == 3  # never settles: capped
    assert attention.settle(call, max_s=0.0) == 1  # nor past the time allowed


def test_pretty_output_gives_each_share_of_the_peak_at_the_end():
    proc = seqattn("benchmark", "attention", "-n", "128", "-w", "4", "--impl", "seqattn", "--format", "pretty")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    progress, summary = re.split(r"fp32 GEMM peak in this run \((?:BLAS|oneDNN)\):", text)
    assert "GFLOP/s" in progress and "%" not in progress
    assert summary.count("%") == 2 and "of the GEMMs beside it" in summary and "N=   128 w=  4 seqattn" in summary


def test_speed_of_a_tagger_on_conllu_and_on_text(tiny_treebank, tiny_tagger_dir, tmp_path):
    train, _ = tiny_treebank
    proc = seqattn("benchmark", "speed", "--model", str(tiny_tagger_dir), "--data", str(train), "--repeats", "2",
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    from seqattn.readers.conllu import read_conllu

    assert result["task"] == "tagger" and result["unit"] == "words" and result["precision"] == "int8"
    assert result["units"] == sum(len(s.words) for s in read_conllu(train))
    assert len(result["runs"]) == 2 and result["per_second"] > 0
    text = tmp_path / "t.txt"
    text.write_text("The cat sat .\n\nA dog ran !\n", encoding="utf-8")
    result = json.loads(seqattn("benchmark", "speed", "-m", str(tiny_tagger_dir), "-d", str(text), "--repeats", "1",
                                "--precision", "fp32").stdout)
    assert result["units"] == 8 and result["precision"] == "fp32"


def test_speed_of_speech_and_graph_models(tiny_speech_dir, tone_manifests, tiny_graph_model_dir, tiny_planetoid):
    result = json.loads(seqattn("benchmark", "speed", "-m", str(tiny_speech_dir), "-d", str(tone_manifests[1]),
                                "--repeats", "1").stdout)
    assert result["task"] == "speech" and result["unit"] == "audio_seconds" and result["units"] > 0
    result = json.loads(seqattn("benchmark", "speed", "-m", str(tiny_graph_model_dir), "-d", str(tiny_planetoid),
                                "--repeats", "1").stdout)
    assert result["task"] == "graph" and result["units"] == 60


@pytest.mark.parametrize("args,message", [
    (["-m", "no-such-model", "-d", "README.md"], b"not a shipped model"),
    (["-m", "en-upos", "-d", "no-such-file.conllu"], b"no such file"),
    (["-m", "en-upos", "-d", "README.md", "--repeats", "0"], b"--repeats"),
    (["-m", "en-upos", "-d", "README.md", "--precision", "fp8"], b"--precision"),
])
def test_speed_errors_are_one_line_with_exit_2(args, message):
    proc = seqattn("benchmark", "speed", *args)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count(b"\n") == 1


def test_measure_takes_the_torch_paths_block_size(monkeypatch):
    """benchmarks/gpu_attention.py compares query-block sizes through ``measure(block=...)``."""
    from seqattn.bench import attention as bench

    monkeypatch.setattr(bench, "MIN_TIMED_S", 0.05)
    monkeypatch.setenv("SEQATTN_NATIVE", "1")  # measure("blocks") sets it to 0 for the process
    result = bench.measure("blocks", 256, 4, repeats=2, block=8)
    assert result["block"] == 8 and result["kernel"] == "torch" and result["ms"] > 0
    assert "block" not in bench.measure("dense", 64, 4, repeats=2)


def test_gpu_benchmark_without_a_gpu_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    import torch

    from tests.conftest import ROOT

    if torch.cuda.is_available():
        pytest.skip("torch sees a GPU here: the script would measure it")
    proc = subprocess.run([sys.executable, "benchmarks/gpu_attention.py", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr == b"gpu_attention: torch sees no CUDA device\n"
    assert not (tmp_path / "out").exists()
