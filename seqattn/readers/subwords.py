"""Sentencepiece subwords under each word (Kudo & Richardson 2018, unigram LM segmentation).

A word is segmented on its own, so its subwords never cross word boundaries: "unhappiness" ->
["▁un", "happi", "ness"].  Models are trained on the training text of the task that ships them.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from seqattn.errors import ModelError


class SubwordModel:
    """A loaded sentencepiece model; ``pieces(word)`` gives piece ids of one word.

    Raises:
        ModelError: the model file is missing or not a sentencepiece model.
    """

    def __init__(self, path: str | Path):
        import sentencepiece as spm

        self.path = Path(path)
        self.processor = spm.SentencePieceProcessor()
        try:
            self.processor.Load(str(self.path))
        except (OSError, RuntimeError) as err:
            raise ModelError(f"{self.path}: not a sentencepiece model ({err})") from None
        self.pieces = lru_cache(maxsize=200_000)(self._pieces)

    def __len__(self) -> int:
        return self.processor.GetPieceSize()

    def _pieces(self, word: str) -> tuple[int, ...]:
        ids = self.processor.EncodeAsIds(word)
        return tuple(ids) if ids else (self.processor.unk_id(),)


def train_subwords(texts: Iterable[str], model_path: str | Path, vocab_size: int = 4000) -> Path:
    """Train a unigram sentencepiece model on ``texts`` and write it to ``model_path``.

    Single-threaded, so the same texts give the same model byte for byte.

    Returns the path of the written ``.model`` file.
    """
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.Train(
        sentence_iterator=iter(list(texts)), model_writer=model, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, minloglevel=2, num_threads=1, hard_vocab_limit=False,
    )
    path = Path(model_path)
    path.write_bytes(model.getvalue())
    return path
