"""Scale of self-attention along edges: inference on a random graph of 1M nodes and 10M edges.

Runs the cora model's architecture (2 layers of GAT attention, 8 heads x 8, one output head) on
random 64-dimensional node features, one layer of dot-product edge attention on the same graph,
and prints one JSON object: sizes, seconds, and peak resident memory (getrusage, this process).
The computation is O(E) in time and memory: scores and weights live on the edges, never in an
N x N matrix (which would need 4 TB at this size).
Usage: python benchmarks/bench_graph.py [--nodes N] [--edges E] [--threads T]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from seqattn.models.graph import NodeClassifier, NodeClassifierConfig
    from seqattn.nn.graph_attention import GraphMultiHeadAttention, add_self_loops

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, args.nodes, (2, args.edges), generator=generator)  # (2, E), directed
    x = torch.randn(args.nodes, args.features, generator=generator)  # (N, F)
    model = NodeClassifier(NodeClassifierConfig(in_features=args.features, classes=[str(c) for c in range(7)])).eval()
    dot_layer = GraphMultiHeadAttention(args.features, 8, 8, score="dot").eval()
    rss_inputs = peak_rss_gib()

    with torch.inference_mode():
        start, cpu_start = time.perf_counter(), time.process_time()
        logits = model(x, edge_index)  # (N, 7)
        gat_seconds, gat_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        assert logits.shape == (args.nodes, 7) and bool(torch.isfinite(logits).all())
        del logits
        start, cpu_start = time.perf_counter(), time.process_time()
        looped = add_self_loops(edge_index, args.nodes)
        out, weights = dot_layer(x, looped)  # (N, 64), (E + N, 8)
        dot_seconds, dot_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        assert out.shape == (args.nodes, 64) and weights.shape == (looped.shape[1], 8)
    print(json.dumps({
        "nodes": args.nodes, "edges": args.edges, "edges_with_self_loops": int(looped.shape[1]),
        "features": args.features, "threads": args.threads,
        # wall-clock seconds, and CPU seconds of this process (the honest number on a shared machine)
        "gat_2_layers_seconds": round(gat_seconds, 2), "gat_2_layers_cpu_seconds": round(gat_cpu_seconds, 2),
        "dot_1_layer_seconds": round(dot_seconds, 2), "dot_1_layer_cpu_seconds": round(dot_cpu_seconds, 2),
        "edges_per_cpu_second_gat": round(looped.shape[1] / gat_cpu_seconds),
        "peak_rss_gib": round(peak_rss_gib(), 2), "rss_after_inputs_gib": round(rss_inputs, 2),
        "limit_gib": 24, "fits": peak_rss_gib() < 24,
        "load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),  # other jobs share the CPU
        "torch": torch.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
