"""The tagger's featurising: sentences (lists of words) -> the padded tensors ``Tagger`` reads.

Word ids come from the config's vocabulary (``normalise_word`` keys), character ids per word
(long words keep their first and last characters), and sentencepiece subword pieces per word
(seqattn.readers.subwords), computed once per distinct word of a batch.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from seqattn.models.tagger import PAD, UNK, TaggerConfig, normalise_word


class Featurizer:
    """Turns sentences (lists of words) into the tensors ``Tagger`` reads.

    Args:
        cfg: the tagger's config (vocabularies).
        subwords: a ``SubwordModel`` whose vocabulary matches ``cfg.subword_vocab_size``.
    """

    def __init__(self, cfg: TaggerConfig, subwords):
        self.cfg, self.subwords = cfg, subwords
        self.word_ids = {w: i for i, w in enumerate(cfg.words)}
        self.char_ids = {c: i for i, c in enumerate(cfg.chars)}
        self.tag_ids = {t: i for i, t in enumerate(cfg.tags)}
        self._cached_chars = lru_cache(maxsize=200_000)(self._chars)

    def _chars(self, word: str) -> tuple[int, ...]:
        m = self.cfg.max_word_chars
        if len(word) > m:
            word = word[: m // 2] + word[-(m - m // 2):]
        return tuple(self.char_ids.get(c, UNK) for c in word)

    def batch(self, sentences: list[list[str]], tags: list[list[str]] | None = None,
              word_dropout: float = 0.0, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Pad a list of sentences into one batch.

        Args:
            tags: gold tags (training); unknown tags raise KeyError.
            word_dropout: probability of replacing a word id by UNK (training only), so the
                model learns to tag from characters and subwords alone.
        Shapes (U distinct words in the batch, plus the padding row 0):
            -> words (B, N), slots (B, N) row of each word slot, chars (U + 1, C), pieces (P,),
               piece_offsets (U + 1,), padding (B, N) [, labels (B, N) with -100 at padding]
        """
        b, n = len(sentences), max(len(s) for s in sentences)
        # Character and subword features depend on the word alone, so they are computed once per
        # distinct word of the batch ("the", "," ...) and gathered into place by ``slots``.
        # Row 0 is the padding slot: no characters, one dummy piece.
        rows: dict[str, int] = {}
        char_rows: list[tuple[int, ...]] = [()]
        pieces, offsets = [0], [0]
        word_rows, slot_rows = [], []
        for sentence in sentences:
            slot_row = []
            for word in sentence:
                row = rows.get(word)
                if row is None:
                    row = rows[word] = len(char_rows)
                    char_rows.append(self._cached_chars(word))
                    offsets.append(len(pieces))
                    pieces.extend(self.subwords.pieces(word))
                slot_row.append(row)
            pad = n - len(sentence)
            slot_rows.append(slot_row + [0] * pad)
            word_rows.append([self.word_ids.get(normalise_word(w), UNK) for w in sentence] + [PAD] * pad)
        c = max(self.cfg.char_kernel, max(len(r) for r in char_rows))
        chars = torch.tensor([r + (PAD,) * (c - len(r)) for r in char_rows], dtype=torch.long)
        words = torch.tensor(word_rows, dtype=torch.long)
        lengths = torch.tensor([len(s) for s in sentences])
        padding = torch.arange(n)[None, :] >= lengths[:, None]
        if word_dropout:
            drop = torch.rand(b, n, generator=generator) < word_dropout
            words = words.masked_fill(drop & ~padding, UNK)
        batch = {"words": words, "chars": chars, "pieces": torch.tensor(pieces, dtype=torch.long),
                 "piece_offsets": torch.tensor(offsets, dtype=torch.long), "padding": padding,
                 "slots": torch.tensor(slot_rows, dtype=torch.long)}
        if tags is not None:
            labels = torch.tensor([[self.tag_ids[t] for t in sentence_tags] + [-100] * (n - len(sentence_tags))
                                   for sentence_tags in tags], dtype=torch.long)
            batch["labels"] = labels
        return batch
