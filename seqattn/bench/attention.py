"""Benchmark of truncated self-attention kernels: time, peak memory and share of the GEMM peak.

Each measurement runs in a fresh child process (``python -m seqattn.bench.attention IMPL N W``),
because a process's peak RSS cannot be reset: the child reports its peak RSS above the RSS it had
after building the inputs.  Implementations compared (forward, fp32, batch 1, H heads of size Dh):

    seqattn  seqattn.nn.attention.fused_attention: SDPA once over all query blocks (O(N * w) memory)
    dense    SDPA over the full N x N scores with a precomputed float band mask (skipped where the
             mask alone would exceed ``DENSE_LIMIT_BYTES``)
    flex     torch.compile'd FlexAttention with a sliding-window block mask (optional; compiling
             needs a C compiler and 10-20 s per shape)

Useful FLOPs of banded attention are 4 * N * (2w + 1) * Dh per head (QK^T and AV over the band,
../shared/notes/truncated-attention-on-cpu.md); ``peak_fraction`` divides the achieved rate by the
fp32 GEMM rate measured in the same run (a 2048^3 matmul).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

DENSE_LIMIT_BYTES = 4 << 30
IMPLS = ("seqattn", "dense", "flex")


def useful_gflop(n: int, window: int, heads: int, d_head: int) -> float:
    """Useful work of banded attention in GFLOP: 4 * N * (2w + 1) * Dh per head."""
    return 4 * n * (2 * window + 1) * d_head * heads / 1e9


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        import os

        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """fp32 matmul rate (GFLOP/s) of this process's torch threads: the machine's practical peak."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def measure(impl: str, n: int, window: int, heads: int = 4, d_head: int = 64, repeats: int = 5) -> dict:
    """Median forward time (ms) and extra peak RSS (MB) of one implementation, in this process.

    Raises:
        ValueError: unknown impl.
    """
    import torch
    import torch.nn.functional as F

    from seqattn.nn.attention import band_mask, fused_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, heads, n, d_head) for _ in range(3))
    if impl == "seqattn":
        def run():
            return fused_attention(q, k, v, window=window)
    elif impl == "dense":
        mask = torch.zeros(n, n).masked_fill(~band_mask(n, n, window), -1e9)

        def run():
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    elif impl == "flex":
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        def sliding(b, h, q_idx, kv_idx):
            return (q_idx - kv_idx).abs() <= window

        block_mask = create_block_mask(sliding, None, None, n, n, device="cpu", _compile=True)
        compiled = torch.compile(flex_attention, dynamic=False)

        def run():
            return compiled(q, k, v, block_mask=block_mask)
    else:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {IMPLS}")
    with torch.inference_mode():
        run()  # warm-up (and compilation for flex)
        base = _rss_mb()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    ms = statistics.median(times) * 1e3
    gflops = useful_gflop(n, window, heads, d_head) / (ms / 1e3)
    return {"length": n, "window": window, "impl": impl, "ms": round(ms, 2),
            "peak_mb": round(max(0.0, _peak_rss_mb() - base), 1), "gflops": round(gflops, 1)}


def run_child(impl: str, n: int, window: int, timeout_s: float = 600) -> dict:
    """``measure`` in a fresh process; a skip or failure comes back as a dict with ``skipped``."""
    if impl == "dense" and 4 * n * n * 4 > DENSE_LIMIT_BYTES:  # float mask + scores + weights
        return {"length": n, "window": window, "impl": impl, "skipped": f"N x N scores need {4 * n * n * 4 / 2**30:.0f} GiB"}
    try:
        proc = subprocess.run([sys.executable, "-m", "seqattn.bench.attention", impl, str(n), str(window)],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"length": n, "window": window, "impl": impl, "skipped": f"timed out after {timeout_s:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"length": n, "window": window, "impl": impl, "skipped": last[:200]}
    return json.loads(proc.stdout)


def benchmark(lengths: list[int], windows: list[int], impls: list[str], on_result=None) -> dict:
    """Measure every (N, w, impl) and the GEMM peak; returns {"gemm_gflops", "results": [...]}.

    Each result has length, window, impl, ms, peak_mb, gflops, peak_fraction (or ``skipped``).
    """
    peak = gemm_gflops()
    results = []
    for n in lengths:
        for window in windows:
            for impl in impls:
                result = run_child(impl, n, window)
                if "gflops" in result:
                    result["peak_fraction"] = round(result["gflops"] / peak, 3)
                results.append(result)
                if on_result:
                    on_result(result)
    return {"gemm_gflops": round(peak, 1), "results": results}


if __name__ == "__main__":
    impl, n, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure(impl, n, window)))
