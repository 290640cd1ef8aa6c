"""Copy a trained model directory into the package and record it in seqattn/models/registry.json.

Usage:
  python scripts/ship_model.py MODEL_DIR NAME --data "..." --license "..." --metric "..." [--card docs/models/NAME.md]
The registry entry keeps the sha256 of every file, which `read_model_dir` verifies on load, and
the attention window, which `seqattn models` shows without importing torch.
"""

import argparse
import json
import shutil
from pathlib import Path

from seqattn.models.io import REGISTRY, SHIPPED_DIR, sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--data", required=True)
    parser.add_argument("--license", required=True)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--card", default=None)
    args = parser.parse_args()

    config = json.loads((args.model_dir / "config.json").read_text())
    target = SHIPPED_DIR / args.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(args.model_dir, target)
    encoder = config.get("config", {}).get("encoder", {})
    registry = json.loads(REGISTRY.read_text())
    registry["models"][args.name] = {
        "task": config["task"],
        "path": args.name,
        "window": encoder.get("window"),
        "data": args.data,
        "license": args.license,
        "metric": args.metric,
        "card": args.card or f"docs/models/{args.name}.md",
        "files": {f.name: sha256(f) for f in sorted(target.iterdir())},
    }
    REGISTRY.write_text(json.dumps(registry, indent=1, sort_keys=True) + "\n")
    size = sum(f.stat().st_size for f in target.iterdir())
    print(f"shipped {args.name}: {target} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
