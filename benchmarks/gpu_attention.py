"""Truncated attention on a GPU, in one process: exactness against the dense reference, then
issue 6's grid (N in {1024, 4096, 16384, 65536} x w in {16, 64, 256}; fp32, batch 1, 4 heads of
64) for seqattn's path, dense SDPA with a band mask and compiled FlexAttention, forward and
training step, then seqattn's torch path at other query-block sizes.

Not a bench_*.py: ``make bench`` runs on the CPU, where this has nothing to measure.  Each
measurement is ``seqattn.bench.attention.measure`` (the fields of ``seqattn benchmark attention``),
run in this process instead of a child each: a child pays ``import torch`` and CUDA's start-up,
seconds a time, and the GPU's timings do not drift as this VM's CPUs do.
Usage, where torch sees a CUDA device:

    python benchmarks/gpu_attention.py OUT_DIR [--budget-s 330] [--lengths N ...] [--windows W ...]

Writes OUT_DIR/gpu_attention.jsonl line by line as results come (a run cut short keeps what it
measured) and OUT_DIR/gpu_attention.json at the end: {"device", "torch", "gemm_gflops",
"exactness": [...], "results": [...]}.  No new measurement starts after ``--budget-s`` seconds.
Exit code 2 where torch sees no GPU (``--cpu`` runs the same on the CPU: a smoke test of this
script with small ``--lengths``, nothing to publish).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

LENGTHS, WINDOWS = (1024, 4096, 16384, 65536), (16, 64, 256)
PHASES = ("exactness", "grid", "flex", "blocks")
BLOCKS = (64, 128, 256)  # query-block sizes of seqattn's torch path tried beside its own choice
# (B, N, w, padded, relative bias): shapes that cross the default block size, padding that leaves
# query rows with no key in their band, and the learned relative bias of the shipped models.
EXACTNESS_CASES = ((2, 1000, 16, False, False), (2, 4100, 64, True, True), (2, 3000, 256, True, False))


def flex_banded(q, k, v, window: int, key_padding_mask=None, relative_bias=None):
    """Truncated attention |i - j| <= window through compiled FlexAttention (Dong et al. 2024): a
    sliding-window block mask (only the blocks near the diagonal are computed), the padding in
    ``mask_mod``, the relative bias b[h, j - i] in ``score_mod``.

    Shapes: q, k, v (B, H, N, Dh); key_padding_mask (B, N) bool, True = padding; relative_bias
    (H, 2w + 1)  ->  (B, H, N, Dh).
    """
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    bsz, _, n, _ = q.shape
    valid = None if key_padding_mask is None else ~key_padding_mask

    def mask_mod(b, h, q_idx, kv_idx):
        band = (q_idx - kv_idx).abs() <= window
        return band if valid is None else band & valid[b, kv_idx]

    # One mask for every sequence unless padding makes them differ.
    block_mask = create_block_mask(mask_mod, None if valid is None else bsz, None, n, n, device=q.device)
    score_mod = None
    if relative_bias is not None:
        def score_mod(score, b, h, q_idx, kv_idx):
            return score + relative_bias[h, (kv_idx - q_idx + window).clamp(0, 2 * window)]
    return torch.compile(flex_attention, dynamic=False)(q, k, v, score_mod=score_mod, block_mask=block_mask)


def exactness(case: tuple, device: str = "cuda") -> dict:
    """Max abs error of seqattn's path and of FlexAttention (fp32) against the dense reference in
    fp64, forward and gradients (q, k, v and the relative bias), on one case of EXACTNESS_CASES."""
    import torch

    from seqattn.nn.attention import dense_attention, fused_attention

    bsz, n, window, padded, biased = case
    torch.manual_seed(0)
    q, k, v = (torch.randn(bsz, 4, n, 64, device=device) for _ in range(3))
    bias = torch.randn(4, 2 * window + 1, device=device) if biased else None
    pad = None
    if padded:  # the second sequence ends at 70% of N: its last queries see no key in their band
        pad = torch.zeros(bsz, n, dtype=torch.bool, device=device)
        pad[1, int(0.7 * n):] = True
    upstream = torch.randn(bsz, 4, n, 64, device=device)

    def grads(fn, dtype):
        # Fresh leaves each time (.to(float32) of a float32 tensor is that tensor: its .grad would
        # add up over the implementations; the first GPU run reported flex's gradients as 2-4 off).
        leaves = [t.detach().to(dtype).requires_grad_() for t in (q, k, v)]
        leaf_bias = bias.detach().to(dtype).requires_grad_() if biased else None
        out = fn(*leaves, leaf_bias)
        out.backward(upstream.to(dtype))
        return [out] + [t.grad for t in leaves] + ([leaf_bias.grad] if biased else [])

    reference = grads(lambda a, b, c, r: dense_attention(a, b, c, window=window, key_padding_mask=pad,
                                                         relative_bias=r)[0], torch.float64)
    result = {"batch": bsz, "length": n, "window": window, "padded": padded, "relative_bias": biased}
    for name, fn in (("seqattn", lambda a, b, c, r: fused_attention(a, b, c, window=window, key_padding_mask=pad,
                                                                     relative_bias=r)),
                     ("flex", lambda a, b, c, r: flex_banded(a, b, c, window, pad, r))):
        try:
            got = grads(fn, torch.float32)
        except Exception as error:  # noqa: BLE001 - a report, not a program: say what failed, go on
            result[name] = {"failed": f"{type(error).__name__}: {str(error)[:300]}"}
            continue
        labels = ["out", "dq", "dk", "dv"] + (["dbias"] if biased else [])
        result[name] = {label: float((g.detach().double() - r.detach()).abs().max())
                        for label, g, r in zip(labels, got, reference)}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--budget-s", type=float, default=330.0)
    parser.add_argument("--lengths", type=int, nargs="+", default=LENGTHS)
    parser.add_argument("--windows", type=int, nargs="+", default=WINDOWS)
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=PHASES,
                        help="exactness; grid: seqattn and dense; flex; blocks: seqattn's other block sizes")
    parser.add_argument("--cpu", action="store_true", help="smoke-test this script on the CPU")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.cpu:
        print("gpu_attention: torch sees no CUDA device", file=sys.stderr)
        return 2
    import torch._dynamo

    from seqattn.bench import attention as bench

    bench.MIN_TIMED_S = 0.25  # GPU calls are steady; the CPU's 1 s would not fit the lease
    for limit in ("recompile_limit", "cache_size_limit"):  # FlexAttention recompiles per shape (dynamic=False)
        if hasattr(torch._dynamo.config, limit):
            setattr(torch._dynamo.config, limit, 1000)
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = open(args.out / "gpu_attention.jsonl", "w")

    def emit(record: dict) -> dict:
        record["elapsed_s"] = round(time.perf_counter() - start, 1)
        lines.write(json.dumps(record) + "\n")
        lines.flush()
        print(json.dumps(record), flush=True)
        return record

    device = "cpu" if args.cpu else "cuda"
    report = {"device": "cpu" if args.cpu else torch.cuda.get_device_name(), "torch": torch.__version__,
              "gemm_gflops": round(bench.gemm_gflops(), 1), "exactness": [], "results": []}
    emit({k: report[k] for k in ("device", "torch", "gemm_gflops")})
    for case in EXACTNESS_CASES if "exactness" in args.phases else ():
        report["exactness"].append(emit(exactness(case, device)))
    grid = [(n, w) for n in args.lengths for w in args.windows]
    # FlexAttention compiles for every shape and pass (seconds each): the long sequences first.
    longest_first = sorted(grid, key=lambda shape: (-shape[0], shape[1] != 64))
    plan = []
    if "grid" in args.phases:
        plan += [(impl, n, w, backward, None) for impl in ("seqattn", "dense") for backward in (False, True)
                 for n, w in grid]
    if "flex" in args.phases:
        plan += [("flex", n, w, backward, None) for n, w in longest_first for backward in (False, True)]
    if "blocks" in args.phases:
        plan += [("seqattn", n, w, backward, block) for block in BLOCKS for backward in (False, True)
                 for n, w in grid if n >= 16384 or n == max(args.lengths)]
    for done, (impl, n, w, backward, block) in enumerate(plan):
        if time.perf_counter() - start > args.budget_s:
            emit({"stopped": f"budget of {args.budget_s:.0f} s spent", "left": len(plan) - done})
            break
        head = {"length": n, "window": w, "impl": impl, "pass": "forward+backward" if backward else "forward"}
        if impl == "dense" and bench.dense_bytes(n, backward) > bench.DENSE_LIMIT_BYTES:
            continue  # the N x N scores: 24 GiB and more at N = 65536
        try:
            if impl == "flex":
                torch._dynamo.reset()
            result = bench.measure(impl, n, w, backward=backward, block=block)
            result["peak_fraction"] = round(result["gflops"] / report["gemm_gflops"], 3)
        except Exception as error:  # noqa: BLE001 - a skip with its reason, as run_child reports one
            result = {**head, "skipped": f"{type(error).__name__}: {str(error)[:200]}"}
            if device == "cuda":
                torch.cuda.empty_cache()
        report["results"].append(emit(result))
    lines.close()
    (args.out / "gpu_attention.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
