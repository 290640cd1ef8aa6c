"""Truncated attention, forward and training step, on the grid of issue 6: N in {1024..65536} x w in {16, 64, 256}.

Prints one JSON object: the GEMM peak and, per (N, w, impl), median ms, peak MB, GFLOP/s and
share of the peak (dense SDPA skipped where its N x N scores would not fit).  Each is measured
in three processes, in three sweeps over the grid, and the median process is kept: one process
can fall wholly into a slow stretch of this VM.  The whole grid takes 30-45 minutes on 2 cores;
``--windows 64 256 --impls seqattn`` (the cells of the 50% target) about 5.
"""

import argparse
import json

from seqattn.bench.attention import IMPLS, benchmark

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536], metavar="N")
    parser.add_argument("--windows", type=int, nargs="+", default=[16, 64, 256], metavar="W")
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--processes", type=int, default=3)
    args = parser.parse_args()
    if args.processes < 1 or min(args.lengths + args.windows) < 1:
        parser.error("--processes, --lengths and --windows must be >= 1")
    print(json.dumps(benchmark(args.lengths, args.windows, args.impls, passes=(False, True),
                               processes=args.processes)))
