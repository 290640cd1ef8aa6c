"""Train the shipped `cora` model: 10 seeds of the recipe, test accuracy mean +- std, ship the val-best seed.

Each seed trains on the 140 train nodes and selects its epoch on the 500 val nodes
(``seqattn.tasks.graph.train_node_classifier``, through the one training engine ``fit`` with
the recipe ``node_settings()`` + ``NodeOptions()``, the same as recipes/cora.toml); its test
accuracy on the 1000 test nodes is measured once afterwards.  The seed with the best val accuracy
(ties: lower val loss) is saved to seqattn/models/cora and listed in seqattn/models/registry.json
with its checksums, but only if it beats the shipped model on val (accuracy, then loss); the test
numbers never choose anything.  Results go to stdout (one JSON line per seed and a summary) and,
when shipped, to docs/models/cora.json.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/train_cora.py            # all 10 seeds, ship
    PYTHONPATH=. python scripts/train_cora.py --seeds 0 1 --no-ship        # a quick look
    PYTHONPATH=. python scripts/train_cora.py --plain                      # GAT training alone (baseline)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Planetoid's Cora class ids -> LINQS class names.  The ids come from the one-hot columns of the
# Planetoid pickles, which carry no names; each class size in labels.txt (351, 217, 418, 818, 426,
# 298, 180 for ids 0..6) matches exactly one class size of the original LINQS Cora release
# (Sen et al. 2008), and all seven sizes differ, so the mapping is unambiguous.
CORA_CLASS_NAMES = ["Theory", "Reinforcement_Learning", "Genetic_Algorithms", "Neural_Networks",
                    "Probabilistic_Methods", "Case_Based", "Rule_Learning"]
LICENSE = ("MIT (code and weights, seqattn); data: Planetoid split, MIT (kimiyoung/planetoid), "
           "Cora from LINQS (Sen et al. 2008), no explicit license")


def main(argv: list[str] | None = None) -> int:
    import torch

    from seqattn.models.graph import NodeClassifier, NodeClassifierConfig
    from seqattn.models.io import REGISTRY, SHIPPED_DIR, registry, sha256, write_model_dir
    from seqattn.readers.graph import read_planetoid
    from seqattn.tasks.graph import (
        LoadedNodeClassifier, NodeOptions, evaluate_node_classifier, node_settings, train_node_classifier,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "planetoid" / "cora")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--no-ship", action="store_true", help="Do not write the model or the registry.")
    parser.add_argument("--plain", action="store_true",
                        help="Without the consistency loss (one dropout sample per step); implies --no-ship.")
    args = parser.parse_args(argv)
    args.no_ship = args.no_ship or args.plain
    torch.set_num_threads(1)
    graph = read_planetoid(args.data)
    runs = []
    start = time.perf_counter()
    for seed in args.seeds:
        config = NodeClassifierConfig(classes=[str(c) for c in range(7)], class_names=CORA_CLASS_NAMES)
        options = NodeOptions(consistency_samples=1) if args.plain else NodeOptions()
        saved = train_node_classifier(graph, None, node_settings(seed=seed), config, options)
        model = NodeClassifier(NodeClassifierConfig.from_dict(saved["config"]))
        model.load_state_dict(saved.pop("state"))
        test = evaluate_node_classifier(LoadedNodeClassifier(model, saved, ROOT), graph, "test")
        runs.append({"seed": seed, "val_accuracy": saved["metrics"]["val_accuracy"],
                     "val_loss": saved["metrics"]["val_loss"], "test_accuracy": test["accuracy"],
                     "epochs": saved["training"]["epochs_run"], "best_epoch": saved["training"]["best_epoch"],
                     "seconds": saved["training"]["seconds"], "saved": saved, "state": model.state_dict()})
        print(json.dumps({k: v for k, v in runs[-1].items() if k not in ("saved", "state")}), flush=True)
    tests = [r["test_accuracy"] for r in runs]
    chosen = max(runs, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
    summary = {
        "data": str(args.data), "seeds": args.seeds, "plain": args.plain, "test_accuracy_mean": round(statistics.mean(tests), 4),
        "test_accuracy_std": round(statistics.stdev(tests), 4) if len(tests) > 1 else 0.0,
        "test_accuracy_min": min(tests), "test_accuracy_max": max(tests),
        "val_accuracy_mean": round(statistics.mean(r["val_accuracy"] for r in runs), 4),
        "seconds_per_seed": round(statistics.mean(r["seconds"] for r in runs), 1),
        "wall_seconds": round(time.perf_counter() - start, 1), "torch_threads": 1,
        "shipped_seed": chosen["seed"], "shipped_test_accuracy": chosen["test_accuracy"],
        "runs": [{k: v for k, v in r.items() if k not in ("saved", "state")} for r in runs],
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}), flush=True)
    if args.no_ship:
        return 0
    shipped = json.loads((SHIPPED_DIR / "cora" / "config.json").read_text(encoding="utf-8"))["metrics"]
    if (chosen["val_accuracy"], -chosen["val_loss"]) <= (shipped["val_accuracy"], -shipped["val_loss"]):
        print(json.dumps({"shipped": False, "reason": "the val-best seed is not better on val than the shipped model",
                          "shipped_val_accuracy": shipped["val_accuracy"], "shipped_val_loss": shipped["val_loss"]}),
              flush=True)
        return 0
    metric = (f"test accuracy {summary['test_accuracy_mean']:.3f} (mean of {len(tests)} seeds, "
              f"std {summary['test_accuracy_std']:.3f}; shipped seed {chosen['seed']}: {chosen['test_accuracy']:.3f})")
    data = "Cora citation graph, Planetoid split (140 train / 500 val / 1000 test nodes)"
    saved = {**chosen["saved"], "data": data, "license": LICENSE,
             "metrics": {**chosen["saved"]["metrics"], "test_accuracy": chosen["test_accuracy"],
                         "test_accuracy_mean_10_seeds": summary["test_accuracy_mean"],
                         "test_accuracy_std_10_seeds": summary["test_accuracy_std"]}}
    out = write_model_dir(SHIPPED_DIR / "cora", saved, chosen["state"], force=True)
    models = registry()
    models["cora"] = {"task": "graph", "path": "cora",
                      "files": {name: sha256(out / name) for name in ("config.json", "model.safetensors")},
                      "data": data, "license": LICENSE, "metric": metric, "window": None}
    REGISTRY.write_text(json.dumps({"models": models}, indent=1) + "\n", encoding="utf-8")
    (ROOT / "docs" / "models").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "models" / "cora.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
