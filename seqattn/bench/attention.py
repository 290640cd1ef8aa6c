"""Benchmark of truncated self-attention kernels: time, peak memory and share of the GEMM peak.

Each measurement runs in a fresh child process (``python -m seqattn.bench.attention IMPL N W``),
so that no measurement inherits another's heap, thread pools or compiled code.  ``peak_mb`` is the
memory one call adds above its inputs (``call_peak_mb``: freed pages handed back, the kernel's
high-water mark reset, then one call).  Implementations compared (fp32, batch 1, H heads of
size Dh):

    seqattn  seqattn.nn.attention.fused_attention as every seqattn command runs it: the C++ kernel
             (seqattn/nn/csrc, fp32 on AVX-512) where it is built, else the torch path below
    blocks   the same function on its torch path (``SEQATTN_NATIVE=0``): SDPA over all query blocks,
             K and V windows read in place through strided views (O(N * w) memory)
    dense    SDPA over the full N x N scores with a precomputed float band mask (skipped where the
             mask alone would exceed ``DENSE_LIMIT_BYTES``)
    flex     torch.compile'd FlexAttention with a sliding-window block mask (optional; compiling
             needs a C compiler and 10-20 s per shape)

Useful FLOPs of banded attention are 4 * N * (2w + 1) * Dh per head (QK^T and AV over the band,
../shared/notes/truncated-attention-on-cpu.md); a training step (``backward=True``: forward, then
backward of a fixed random upstream gradient, as a next layer would send, with the gradients set
to None before each step as ``optimizer.zero_grad()`` does) counts three times that, the usual
1 + 2 convention.  ``peak_fraction`` divides the achieved rate by the fp32 GEMM rate measured in
the same run (a 2048^3 matmul): the highest of the whole run, against the kernel's median.
``beside_fraction`` divides it by the median rate of the GEMMs run between the kernel's own timed
calls instead (``gemm_gflops_beside``, one every 0.2 s of calls), so that kernel and GEMM are
timed at the same speed of this VM, whose speed changes by 20-30% from one minute to the next.

Every child first tells glibc to keep freed memory (``keep_freed_memory``): without it, blocks
over 32 MiB go back to the OS on free and each call page-faults fresh memory, 2-3x slower at
large N for every implementation alike (the notes' trap 1).  The timed calls then wait until
calls no longer grow the heap (``settle``), as in a training loop after its first steps.
FlexAttention has no CPU backward in torch 2.13, so it is measured forward only.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

DENSE_LIMIT_BYTES = 8 << 30  # dense SDPA beyond this estimate is skipped (and said so)
IMPLS = ("seqattn", "blocks", "dense", "flex")
MIN_TIMED_S, MAX_CALLS = 1.0, 500  # timed calls per measurement: >= repeats, and >= 1 s where they are short
GEMM_EVERY_S = 0.2  # a GEMM between the timed calls every this many seconds of them (``gemm_gflops_beside``)
SETTLE_MAX_CALLS, SETTLE_MAX_S = 10, 5.0  # untimed calls before the timed ones, until the heap stops growing
GEMM_SIZE_CPU, GEMM_SIZE_CUDA = 2048, 8192  # the square fp32 matmul whose rate is the peak (``_gemm``)


def useful_gflop(n: int, window: int, heads: int, d_head: int) -> float:
    """Useful work of banded attention in GFLOP: 4 * N * (2w + 1) * Dh per head."""
    return 4 * n * (2 * window + 1) * d_head * heads / 1e9


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        import os

        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _libc():
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def call_peak_mb(call) -> float:
    """Peak RSS (MB) that one run of ``call()`` adds to the process.

    Freed heap pages go back to the OS first (glibc ``malloc_trim(0)``, which also releases free
    pages inside the heap), then Linux's high-water mark is reset (writing 5 to
    /proc/self/clear_refs, Linux >= 4.0), so every page the call touches shows, even memory an
    earlier call freed.  Reads VmHWM from /proc/self/status.

    Linux only, like ``_rss_mb``.
    """
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: freed memory may hide part of the peak
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    base = _rss_mb()
    call()
    with open("/proc/self/status") as handle:
        hwm_kb = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    return max(0.0, hwm_kb / 1024 - base)


def cuda_call_peak_mb(call) -> float:
    """Peak GPU memory (MB) that one run of ``call()`` allocates above what was allocated before it
    (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``; the caching
    allocator's reserve is not counted)."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    call()
    torch.cuda.synchronize()
    return max(0.0, (torch.cuda.max_memory_allocated() - base) / 2**20)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc never to return memory to the OS (M_MMAP_MAX 0, M_TRIM_THRESHOLD 2^31-1).

    Returns False where that is not glibc (nothing is changed then).
    """
    try:
        libc = _libc()
        return bool(libc.mallopt(-4, 0)) and bool(libc.mallopt(-1, 2**31 - 1))  # M_MMAP_MAX, M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def _gemm(size: int | None = None):
    """A function that runs one size^3 fp32 matmul (on the GPU where torch sees one) with the
    fastest of torch's GEMM libraries here and returns its rate in GFLOP/s; its ``backend``
    attribute names the library.  ``size`` defaults to ``GEMM_SIZE_CPU`` (2048) on the CPU and
    ``GEMM_SIZE_CUDA`` (8192) on a GPU, where a 2048^3 product takes a fraction of a millisecond
    and the timer's own overhead would show in its rate.

    On the CPU torch has two: ``a @ b`` goes to its BLAS (MKL in the x86 wheels), and oneDNN runs
    ``mkldnn_linear`` (a @ b^T, the same FLOPs; what ``torch.utils.mkldnn``'s Linear calls).
    MKL picks its code by CPU vendor and runs AVX2 code on AMD CPUs: 206 GFLOP/s on the 2-core
    AMD EPYC (Zen 5) of docs/performance.md's run 17, where oneDNN's AVX-512 GEMM reached 466 (and
    OpenBLAS, told to use its AVX-512 kernel, 460).  A peak taken from MKL alone would put kernels
    above 100% of it there.  Each candidate is timed 3 times and the faster one kept.
    """
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    size = size or (GEMM_SIZE_CUDA if device == "cuda" else GEMM_SIZE_CPU)
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    candidates = gemm_candidates(a, b)

    def timer(matmul):
        def once() -> float:
            start = time.perf_counter()
            matmul()
            if device == "cuda":
                torch.cuda.synchronize()
            return 2 * size**3 / (time.perf_counter() - start) / 1e9

        return once

    timers = {name: timer(matmul) for name, matmul in candidates.items()}
    for once in timers.values():
        once()  # warm-up: first-call allocations and JIT code
    backend = max(timers, key=lambda name: max(timers[name]() for _ in range(3)))
    once = timers[backend]
    once.backend = backend
    return once


def gemm_candidates(a, b) -> dict:
    """torch's fp32 GEMMs of two square matrices, by library: name -> function returning a dense
    result of the same shape (``a @ b``, or ``a @ b^T`` for oneDNN; the same FLOPs).

    CUDA tensors: {"cuBLAS"}; CPU: {"BLAS"} (``a @ b``: MKL in the x86 wheels), plus {"oneDNN"}
    where torch was built with it.
    """
    import torch

    if a.is_cuda:
        return {"cuBLAS": lambda: a @ b}
    candidates = {"BLAS": lambda: a @ b}
    if torch.backends.mkldnn.is_available():
        a_dnn, b_dnn = a.to_mkldnn(), b.to_mkldnn()  # oneDNN's blocked layout, converted once
        candidates["oneDNN"] = lambda: torch._C._nn.mkldnn_linear(a_dnn, b_dnn, None)
    return candidates


def gemm_gflops(size: int | None = None, repeats: int = 5) -> float:
    """fp32 matmul rate (GFLOP/s) of this process's torch threads (or of the GPU, where torch sees
    one): the machine's practical peak, the best of ``repeats`` calls of the faster of torch's
    GEMM libraries (see ``_gemm``)."""
    once = _gemm(size)
    return max(once() for _ in range(repeats))


def settle(call, max_calls: int = SETTLE_MAX_CALLS, max_s: float = SETTLE_MAX_S) -> int:
    """Run ``call()`` until two runs in a row leave the process's RSS where it was, or
    ``max_calls`` times, or for ``max_s`` seconds (slow kernels: dense SDPA takes seconds per
    call); returns how many runs that took.

    Why: a training step allocates its output, its saved P and three gradients (64, 152 and
    3 x 64 MB at N = 65536, w = 64), and for its first few steps glibc's heap does not find room
    for all of them among the blocks the step before freed: the first 5 steps after
    ``call_peak_mb`` grew the RSS by 64 MB each, faulting in fresh pages, and took 180-213 ms;
    the steps after that 163-176 ms (N = 16384: 16 MB each, 75-81 against 71-73 ms).  Timing
    after that measures the steady state of a training loop, not its first steps.
    """
    still, start = 0, time.perf_counter()  # still: runs in a row that left the RSS where it was
    for calls in range(1, max_calls + 1):
        before = _rss_mb()
        call()
        still = still + 1 if _rss_mb() <= before else 0
        if still == 2 or time.perf_counter() - start >= max_s:
            return calls
    return max_calls


def measure(impl: str, n: int, window: int, heads: int = 4, d_head: int = 64, repeats: int = 5,
            backward: bool = False, block: int | None = None) -> dict:
    """Median time (ms) and extra peak memory (MB) of one implementation, in this process, with
    the GEMM rates in it: the best seen (``gemm_gflops``) and the median of those timed between the
    kernel's calls (``gemm_gflops_beside``, and the kernel's share of it, ``beside_fraction``).

    ``backward``: time a training step (forward, then backward of a fixed random gradient of the
    output; gradients reset to None first) instead of the forward alone.  ``block``: the query
    block size of seqattn's torch path (None: its own choice; the result then has no ``block``).
    The timed calls come after one warm-up call, the memory measurement and ``settle``.  Uses
    CUDA when torch sees a GPU; ``peak_mb`` is then what one call adds to the GPU's allocated
    memory (``torch.cuda.max_memory_allocated``), on the CPU what it adds to the RSS.

    Raises:
        ValueError: unknown impl, or flex with backward (no CPU backward in torch 2.13).
    """
    import torch
    import torch.nn.functional as F

    from seqattn.nn.attention import band_mask, fused_attention

    if impl == "flex" and backward and not torch.cuda.is_available():
        raise ValueError("FlexAttention has no CPU backward in torch 2.13")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, heads, n, d_head, device=device, requires_grad=backward) for _ in range(3))
    if impl == "blocks":
        os.environ["SEQATTN_NATIVE"] = "0"  # read on every call by seqattn.nn.native.available
    if impl in ("seqattn", "blocks"):
        def forward():
            return fused_attention(q, k, v, window=window, block=block)
    elif impl == "dense":
        mask = torch.zeros(n, n, device=device).masked_fill(~band_mask(n, n, window, device), -1e9)

        def forward():
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    elif impl == "flex":
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        def sliding(b, h, q_idx, kv_idx):
            return (q_idx - kv_idx).abs() <= window

        block_mask = create_block_mask(sliding, None, None, n, n, device=device, _compile=True)
        compiled = torch.compile(flex_attention, dynamic=False)

        def forward():
            return compiled(q, k, v, block_mask=block_mask)
    else:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {IMPLS}")

    grad = torch.randn(1, heads, n, d_head, device=device) if backward else None

    def step():
        if backward:
            q.grad = k.grad = v.grad = None
            forward().backward(grad)
        else:
            with torch.inference_mode():
                forward()
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up (and compilation for flex)
    q.grad = k.grad = v.grad = None  # freed before the trim, so that the call's own gradients count
    # One call's memory above the inputs (one-off costs paid above).
    peak_mb = round(cuda_call_peak_mb(step) if device == "cuda" else call_peak_mb(step), 1)
    settle(step)  # untimed calls until the heap stops growing
    gemm = _gemm()
    times, beside = [], []
    # At least ``repeats`` calls and MIN_TIMED_S of them (like timeit's autorange): a 1 ms kernel
    # timed 5 times right after its first call measured 2x its steady state in this VM.  A GEMM
    # runs before each GEMM_EVERY_S of calls and after the last (``beside``), at the same speed
    # of the VM as the calls around it.
    while len(times) < repeats or (sum(times) < MIN_TIMED_S and len(times) < MAX_CALLS):
        if sum(times) >= len(beside) * GEMM_EVERY_S:
            beside.append(gemm())
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    beside.append(gemm())
    ms = statistics.median(times) * 1e3
    # Rates rounded as reported, and the share computed from them, as peak_fraction is (benchmark).
    gflops = round(useful_gflop(n, window, heads, d_head) * (3 if backward else 1) / (ms / 1e3), 1)
    gemm_beside = round(statistics.median(beside), 1)
    return {"length": n, "window": window, "impl": impl, "pass": "forward+backward" if backward else "forward",
            **({"block": block} if block else {}), "device": device, "kernel": _kernel(impl, device, backward),
            "ms": round(ms, 2), "peak_mb": peak_mb,
            "gflops": gflops, "gemm_gflops": round(max(beside + [gemm() for _ in range(3)]), 1),
            "gemm_gflops_beside": gemm_beside, "beside_fraction": round(gflops / gemm_beside, 3),
            "gemm_backend": gemm.backend}


def _kernel(impl: str, device: str, backward: bool = False) -> str:
    """What ran: "native" (the C++ kernel; "native, P recomputed" for a training step whose
    backward recomputes the attention weights, ``SEQATTN_SAVE_PROBS=0``), "torch" or "compiled"
    (FlexAttention)."""
    from seqattn.nn import native

    if impl == "flex":
        return "compiled"
    if impl == "seqattn" and device == "cpu" and native.available():
        return "native, P recomputed" if backward and not native.saves_probs() else "native"
    return "torch"


def dense_bytes(n: int, backward: bool = False) -> float:
    """Estimated memory (bytes) of dense SDPA with a band mask: the float N x N mask plus SDPA's
    working memory (1.33 GB measured at N = 16384 forward); a training step also keeps the scores
    for the backward.  Beyond ``DENSE_LIMIT_BYTES`` the benchmarks skip it."""
    return 4 * n * n * (3.0 if backward else 1.5)


def run_child(impl: str, n: int, window: int, timeout_s: float = 600, backward: bool = False) -> dict:
    """``measure`` in a fresh process; a skip or failure comes back as a dict with ``skipped``."""
    head = {"length": n, "window": window, "impl": impl, "pass": "forward+backward" if backward else "forward"}
    need = dense_bytes(n, backward)
    if impl == "dense" and need > DENSE_LIMIT_BYTES:
        return {**head, "skipped": f"N x N mask and scores need about {need / 2**30:.0f} GiB"}
    try:
        proc = subprocess.run([sys.executable, "-m", "seqattn.bench.attention", impl, str(n), str(window),
                               "train" if backward else "forward"], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {**head, "skipped": f"timed out after {timeout_s:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {**head, "skipped": last[:200]}
    return json.loads(proc.stdout)


def _median_child(runs: list[dict]) -> dict:
    """The measured run with the median time (the lower one of an even count), with every run's
    time in ``ms_processes``; the first skip where no run measured anything."""
    measured = sorted((r for r in runs if "ms" in r), key=lambda r: r["ms"])
    if not measured:
        return runs[0]
    chosen = dict(measured[(len(measured) - 1) // 2])
    if len(runs) > 1:
        chosen["ms_processes"] = [r["ms"] if "ms" in r else None for r in runs]
    return chosen


def benchmark(lengths: list[int], windows: list[int], impls: list[str], on_result=None,
              passes: tuple[bool, ...] = (False,), processes: int = 1) -> dict:
    """Measure every (N, w, impl, pass) and the GEMM peak; returns {"gemm_gflops", "results": [...]}.

    ``passes``: False for the forward, True for a training step (forward + backward).
    Each result has length, window, impl, pass, ms, peak_mb, gflops, peak_fraction (or ``skipped``).

    ``processes`` > 1 measures each one that many times, in as many sweeps over the whole grid
    (so a measurement's processes are minutes apart, not back to back), and reports the process
    with the median time, all times listed in ``ms_processes``: pyperf's remedy for a noisy
    machine (several worker processes), since one slow stretch of the VM can cover a whole
    process.  ``on_result`` sees every process's result as it comes.

    The GEMM peak (``gemm_gflops``) is the highest matmul rate seen in the run: measured here
    first, then again in every child right after its kernel.  This VM slows down by up to 10x for seconds; one
    measurement taken in such a moment once gave half the usual peak (152 against 250-290 GFLOP/s)
    and would have doubled every ``peak_fraction``.  The maximum can only make the fractions
    smaller, never flatter the kernels.  ``gemm_gflops_lowest``, the slowest child's rate, shows
    how disturbed the run was: far below the peak, the times of that run are suspect too.

    Raises:
        ValueError: processes < 1.
    """
    import torch

    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    keep_freed_memory()
    peak = gemm_gflops()
    flex_backward = torch.cuda.is_available()
    grid = [(backward, n, window, impl) for backward in passes for n in lengths for window in windows
            for impl in impls]
    runs: dict[tuple, list[dict]] = {key: [] for key in grid}
    for sweep in range(processes):
        for key in grid:
            backward, n, window, impl = key
            if sweep and not any("ms" in r for r in runs[key]):
                continue  # skipped in the first sweep (too big, no backward, failed): not tried again
            if impl == "flex" and backward and not flex_backward:
                result = {"length": n, "window": window, "impl": impl, "pass": "forward+backward",
                          "skipped": "FlexAttention has no CPU backward in torch 2.13"}
            else:
                result = run_child(impl, n, window, backward=backward)
            peak = max(peak, result.get("gemm_gflops", 0.0))
            runs[key].append(result)
            if on_result:
                on_result(result)
    results = [_median_child(runs[key]) for key in grid]
    for result in results:
        if "gflops" in result:
            result["peak_fraction"] = round(result["gflops"] / peak, 3)
    rates = [r["gemm_gflops"] for rs in runs.values() for r in rs if "gemm_gflops" in r]
    backends = sorted({r["gemm_backend"] for rs in runs.values() for r in rs if "gemm_backend" in r})
    return {"gemm_gflops": round(peak, 1), "gemm_gflops_lowest": round(min(rates or [peak]), 1),
            "gemm_backends": backends, "processes": processes, "results": results}


if __name__ == "__main__":
    keep_freed_memory()
    impl, n, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure(impl, n, window, backward=sys.argv[4:5] == ["train"])))
