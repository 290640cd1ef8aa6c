"""Train and score whole-graph attention models on MoleculeNet ESOL and BBBP (scaffold split).

Prints one JSON line per run and a summary line per data set (mean and standard deviation of the
test metric over the seeds, each run selected on the valid split).  The numbers in docs/graph.md
come from:

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/train_molecules.py --seeds 0 1 2

Usage: python scripts/train_molecules.py [--data ../shared/data/moleculenet] [--sets esol bbbp]
       [--seeds 0 1 2] [--epochs N] [--out DIR]

Training runs through the one training engine (``seqattn.tasks.molecules.train_graph_predictor``,
recipe ``molecule_settings``).  With ``--out DIR`` each run writes its model to DIR/SET-seedN, with
checkpoints after every epoch; a run that was interrupted continues from its checkpoint when the
same command is run again (a run without a checkpoint trains anew and replaces its directory).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = {  # name -> (task, files stem)
    "esol": "regression",
    "bbbp": "binary",
}


def main(argv: list[str] | None = None) -> int:
    import torch

    from seqattn.models.graph import GraphPredictorConfig
    from seqattn.readers.molecules import read_molecules
    from seqattn.tasks.molecules import molecule_settings, train_graph_predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "moleculenet")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=molecule_settings().epochs)
    parser.add_argument("--out", type=Path, default=None, help="Write each run's model (and checkpoints) under it.")
    parser.add_argument("--split", default="scaffold", choices=["scaffold", "random"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.sets:
        data = read_molecules(args.data / f"{name}_graphs.jsonl", args.data / f"{name}_splits.csv", args.split)
        results = []
        for seed in args.seeds:
            out = resume = None
            if args.out is not None:
                out = args.out / f"{name}-{args.split}-seed{seed}"
                checkpoint = out.with_name(out.name + ".checkpoint")
                resume = checkpoint if checkpoint.is_dir() else None
            result = train_graph_predictor(data, GraphPredictorConfig(task=SETS[name]),
                                           molecule_settings(len(data["train"]), epochs=args.epochs, seed=seed),
                                           out=out, resume=resume, force=out is not None and resume is None)
            for key in ("state", "config", "saved"):
                result.pop(key)
            results.append(result)
            print(json.dumps({"set": name, "split": args.split, **result}), flush=True)
        tests = [r["test"] for r in results]
        print(json.dumps({"set": name, "split": args.split, "metric": results[0]["metric"],
                          "test_mean": round(statistics.mean(tests), 4),
                          "test_std": round(statistics.stdev(tests), 4) if len(tests) > 1 else 0.0,
                          "valid_mean": round(statistics.mean(r["valid"] for r in results), 4),
                          "seeds": args.seeds, "sizes": {k: len(v) for k, v in data.items()},
                          "seconds_per_run": round(statistics.mean(r["seconds"] for r in results), 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
