"""A made-up seq2seq task that a tiny encoder-decoder learns in seconds: reverse a short word.

Source ``abc`` -> target ``c b a`` (characters in, space-separated symbols out), so the
output length is decided by the model and the alignment is an anti-diagonal.
"""

from __future__ import annotations

import random
from pathlib import Path

LETTERS = "abcdef"


def reverse_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = ["".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 5))) for _ in range(n)]
    return [(w, " ".join(reversed(w))) for w in words]


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def tiny_seq2seq_config():
    from seqattn.models.seq2seq import Seq2SeqConfig
    from seqattn.nn.decoder import DecoderConfig
    from seqattn.nn.encoder import EncoderConfig

    return Seq2SeqConfig(source="chars", target="words",
                         encoder=EncoderConfig(d_model=32, n_heads=2, n_layers=2, d_ff=64, dropout=0.0,
                                               attention_dropout=0.0),
                         decoder=DecoderConfig(d_model=32, n_heads=2, n_layers=2, d_ff=64, dropout=0.0))


_TRAINED: dict[str, Path] = {}


def trained_reverser(root: Path) -> Path:
    """A tiny model trained for a few seconds on reversing (once per test session)."""
    if "model" not in _TRAINED:
        from seqattn.readers.pairs import read_pairs
        from seqattn.tasks.seq2seq import Seq2SeqOptions, seq2seq_settings, train_seq2seq

        train = read_pairs(write_pairs(root / "train.tsv", reverse_pairs(600, 0)))
        dev = read_pairs(write_pairs(root / "dev.tsv", reverse_pairs(60, 1)))
        train_seq2seq(train, dev, root / "reverser", tiny_seq2seq_config(),
                      seq2seq_settings(epochs=12, batch_size=300, lr=5e-3, warmup_steps=30),
                      Seq2SeqOptions(label_smoothing=0.0))
        _TRAINED["model"] = root / "reverser"
    return _TRAINED["model"]
