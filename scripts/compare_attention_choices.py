"""The lecture's choices, measured on one task: UPOS tagging on a slice of UD English EWT.

Each variant changes one choice of a small truncated-attention tagger (the baseline: scaled
dot-product scores, softmax, sinusoidal positions plus a learned relative bias, w = 8: the
en-upos architecture at half its size) and trains through the same engine
with the same seed, data and budget; the table gives the best dev UPOS accuracy and the training
time.  The data: the first 3,000 sentences of en_ewt-ud-train, scored on the whole of
en_ewt-ud-dev (2,001 sentences).  Test data is not read.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/compare_attention_choices.py --out docs/attention-choices.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EWT = ROOT.parent / "shared" / "data" / "ud_english_ewt"
VARIANTS = [  # (name, ModelOptions fields)
    ("baseline: dot, softmax, sinusoidal + relative bias, w = 8", {}),
    ("additive scores", {"score": "additive"}),
    ("sinusoidal positions only", {"positional": "sinusoidal"}),
    ("learned positions only", {"positional": "learned"}),
    ("relative bias only", {"positional": "relative"}),
    ("no positions at all", {"positional": "none"}),
    ("full attention (+ sinusoidal positions)", {"attention_window": -1, "positional": "sinusoidal"}),
    ("relu instead of softmax", {"attention_activation": "relu"}),
    ("sigmoid instead of softmax", {"attention_activation": "sigmoid"}),
    ("sparsemax instead of softmax", {"attention_activation": "sparsemax"}),
]


def first_sentences(source: Path, target: Path, n: int) -> Path:
    blocks = source.read_text(encoding="utf-8").split("\n\n")
    target.write_text("\n\n".join(b for b in blocks[:n] if b.strip()) + "\n\n", encoding="utf-8")
    return target


def main() -> int:
    import torch

    from seqattn.models.tagger import TaggerConfig
    from seqattn.tasks.tagging import tagger_settings, train_tagger
    from seqattn.training.options import ModelOptions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--only", nargs="*", type=int, help="variant numbers (default: all)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train = first_sentences(EWT / "en_ewt-ud-train.conllu", Path(tmp) / "train.conllu", args.sentences)
        for number, (name, changes) in enumerate(VARIANTS):
            if args.only and number not in args.only:
                continue
            config = TaggerConfig()
            options = ModelOptions(layers=2, d_model=128, heads=4, d_ff=256, **changes)
            options.apply_to_encoder(config.encoder)
            settings = tagger_settings(epochs=args.epochs, warmup_steps=200, seed=0)
            start = time.perf_counter()
            saved = train_tagger(train, EWT / "en_ewt-ud-dev.conllu", None, settings, config)
            seconds = time.perf_counter() - start
            history = saved["training"]["history"]
            row = {"variant": name, "options": options.given(), "dev_upos": saved["metrics"]["dev_upos_accuracy"],
                   "best_epoch": saved["training"]["best_epoch"], "seconds": round(seconds, 1),
                   "seconds_per_epoch": round(sum(h["seconds"] for h in history) / len(history), 1),
                   "final_train_loss": history[-1]["train_loss"], "torch_threads": torch.get_num_threads()}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"data": f"first {args.sentences} sentences of en_ewt-ud-train, "
                                                "dev: en_ewt-ud-dev", "epochs": args.epochs, "results": rows},
                                       indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
