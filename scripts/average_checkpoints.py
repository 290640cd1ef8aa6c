"""Average the weights of several training checkpoints of one run into a model directory.

Usage:
  python scripts/average_checkpoints.py --like MODEL_DIR --out DIR CHECKPOINT_DIR_OR_FILE...

Each checkpoint is a training checkpoint (`OUT.checkpoint/` of `seqattn train ...`, or a copy of
its `checkpoint.safetensors`), whose `model.*` tensors are the weights after that epoch, or a
saved model directory (for the last epoch, whose checkpoint the trainer removes). They are
averaged in the order given with the same code as `seqattn train seq2seq --average-last K`
(seqattn.training.schedule.WeightAverage), so averaging copies of the last K checkpoints of a run
gives the model that `--average-last K` would have scored. The config and any vocabulary files
come from MODEL_DIR (the model the run saved); the config records the averaged checkpoints.
Then score DIR with `seqattn evaluate ... --model DIR`.
"""

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from seqattn.models.io import CONFIG, WEIGHTS, write_model_dir
from seqattn.training.schedule import WeightAverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--like", type=Path, required=True, help="the run's saved model directory")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("give at least two checkpoints")

    average = WeightAverage(last=len(args.checkpoints), epochs=len(args.checkpoints))
    for epoch, path in enumerate(args.checkpoints, 1):
        if (path / WEIGHTS).is_file():  # a saved model directory (the run's last epoch, say)
            weights = load_file(str(path / WEIGHTS))
        else:
            file = path / "checkpoint.safetensors" if path.is_dir() else path
            weights = {k[len("model."):]: v for k, v in load_file(str(file)).items() if k.startswith("model.")}
            if not weights:
                raise SystemExit(f"{file}: no model.* tensors (not a training checkpoint)")
        average.add(epoch, weights)
    config = json.loads((args.like / CONFIG).read_text(encoding="utf-8"))
    config.setdefault("training", {})["averaged_checkpoints"] = [str(p) for p in args.checkpoints]
    config.pop("format_version", None)
    extra = {f.name: f for f in args.like.iterdir() if f.name not in (CONFIG, WEIGHTS)}
    write_model_dir(args.out, config, average.average(), extra)
    print(f"averaged {len(args.checkpoints)} checkpoints into {args.out}")


if __name__ == "__main__":
    main()
