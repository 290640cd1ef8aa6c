"""Truncated attention, forward and training step, on the grid of issue 6: N in {1024..65536} x w in {16, 64, 256}.

Prints one JSON object: the GEMM peak and, per (N, w, impl), median ms, peak MB, GFLOP/s and
share of the peak (dense SDPA skipped where its N x N scores would not fit).  Each is measured
in three processes, in three sweeps over the grid, and the median process is kept: one process
can fall wholly into a slow stretch of this VM.
"""

import json

from seqattn.bench.attention import benchmark

if __name__ == "__main__":
    print(json.dumps(benchmark([1024, 4096, 16384, 65536], [16, 64, 256], ["seqattn", "blocks", "dense", "flex"],
                                passes=(False, True), processes=3)))
