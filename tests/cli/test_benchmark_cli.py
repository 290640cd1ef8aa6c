"""`seqattn benchmark attention`: the JSON contract (values are measured, never asserted on speed)."""

import json

from tests.conftest import seqattn


def test_attention_benchmark_json_has_every_field():
    proc = seqattn("benchmark", "attention", "-n", "256", "-w", "4", "--impl", "seqattn", "--impl", "dense",
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    measured = [r for r in rows if r["impl"] in ("seqattn", "dense")]
    assert {r["impl"] for r in measured} == {"seqattn", "dense"}
    for r in measured:
        assert set(r) >= {"length", "window", "impl", "ms", "peak_mb", "gflops", "peak_fraction"}
        assert r["length"] == 256 and r["window"] == 4 and r["ms"] > 0
    assert [r for r in rows if r["impl"] == "gemm"][0]["gflops"] > 0


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
