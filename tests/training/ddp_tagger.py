"""Train the tiny tagger through ``train_tagger``, alone or under torchrun (tests/training/test_engine.py).

    python ddp_tagger.py DIR NAME [--fp64]
Dropout is off (its masks differ between ranks by design), so one process and N processes with
the same global batch must reach the same weights; --fp64 takes rounding out of the comparison.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import make_treebank, tiny_tagger_config  # noqa: E402

from seqattn.tasks.tagging import TaggerOptions, tagger_settings, train_tagger  # noqa: E402

root, name = Path(sys.argv[1]), sys.argv[2]
torch.set_num_threads(1)
if "--fp64" in sys.argv:
    torch.set_default_dtype(torch.float64)
train, dev = root / "train.conllu", root / "dev.conllu"
if not train.exists():
    make_treebank(train, 120, 0), make_treebank(dev, 30, 1)
cfg = tiny_tagger_config()
cfg.encoder.dropout = cfg.encoder.attention_dropout = 0.0
train_tagger(train, dev, root / name, tagger_settings(epochs=2, batch_size=256, warmup_steps=5, lr=3e-3), cfg,
             TaggerOptions(word_dropout=0.0))
