"""Seq2seq featurising: text <-> symbol ids (chars, words, sentencepiece), frame features, padded batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seqattn.errors import ModelError
from seqattn.models.seq2seq import BOS, EOS, PAD, SPECIALS, UNK, Seq2SeqConfig


class Symbols:
    """Text <-> symbol ids for one side of a model (``chars``, ``words`` or ``sentencepiece``).

    Unknown symbols map to UNK; ``decode`` drops the special symbols.  With ``fold_case`` (the
    source side, which reads what users type), a ``chars`` vocabulary whose letters all have one
    case (CMUdict's words are upper case) reads text in that case, so that "hello" is read as
    "HELLO" rather than as five unknown symbols.  The target side never folds: references are
    scored as written.
    """

    def __init__(self, kind: str, symbols: list[str], subword_model: Path | None = None, fold_case: bool = False):
        self.kind, self.symbols = kind, symbols
        self.ids = {s: i for i, s in enumerate(symbols)}
        folds = kind == "chars" and fold_case
        letters = [c for s in symbols[len(SPECIALS):] for c in s if c.isalpha()] if folds else []
        self.fold = None  # str.upper or str.lower where the vocabulary's letters have one case
        if letters and all(c.isupper() for c in letters):
            self.fold = str.upper
        elif letters and all(c.islower() for c in letters):
            self.fold = str.lower
        self.processor = None
        if kind == "sentencepiece":
            import sentencepiece as spm

            if subword_model is None or not Path(subword_model).is_file():
                raise ModelError(f"{subword_model}: the sentencepiece model of this side is missing")
            self.processor = spm.SentencePieceProcessor()
            self.processor.Load(str(subword_model))

    def split(self, text: str) -> list[str]:
        if self.kind == "chars":
            return list(self.fold(text) if self.fold else text)
        if self.kind == "words":
            return text.split()
        return self.processor.EncodeAsPieces(text)

    def join(self, symbols: list[str]) -> str:
        if self.kind == "chars":
            return "".join(symbols)
        if self.kind == "words":
            return " ".join(symbols)
        return self.processor.DecodePieces(symbols)

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(s, UNK) for s in self.split(text)]

    def unknown(self, text: str) -> list[str]:
        """The distinct symbols of ``text`` outside the vocabulary (read as UNK), in order of
        appearance; characters as the text spells them ("é", not the "É" it is read as)."""
        if self.kind == "chars":
            return [c for c in dict.fromkeys(text) if any(s not in self.ids for s in self.split(c))]
        return list(dict.fromkeys(s for s in self.split(text) if s not in self.ids))

    def decode(self, ids: list[int]) -> list[str]:
        return [self.symbols[i] for i in ids if i >= len(SPECIALS)]


def build_symbols(kind: str, texts: list[str], subword_model: Path | None = None) -> list[str]:
    """Vocabulary (id -> symbol, SPECIALS first) of one side from its training texts."""
    if kind == "sentencepiece":
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor()
        processor.Load(str(subword_model))
        pieces = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]
        return SPECIALS + [p for p in pieces if p not in ("<unk>", "<s>", "</s>")]
    found = Symbols(kind, SPECIALS)
    return SPECIALS + sorted({s for text in texts for s in found.split(text)})


def frame_features(frames: np.ndarray, deltas: bool) -> np.ndarray:
    """Per-utterance mean and variance normalisation (CMVN), then optionally deltas and delta-deltas.

    Deltas are the regression over +-2 frames (HTK's formula), the usual first step from static MFCCs.

    Shapes:
        frames: (N, D) -> (N, D) or (N, 3D) float32
    """
    x = (frames - frames.mean(0)) / (frames.std(0) + 1e-5)
    if not deltas:
        return x.astype(np.float32)

    def delta(f: np.ndarray) -> np.ndarray:
        padded = np.pad(f, ((2, 2), (0, 0)), mode="edge")
        n = len(f)
        return (padded[3:3 + n] - padded[1:1 + n] + 2 * (padded[4:4 + n] - padded[:n])) / 10.0

    d1 = delta(x)
    return np.concatenate([x, d1, delta(d1)], axis=1).astype(np.float32)


class Featurizer:
    """Sources and targets -> padded tensors for ``Seq2Seq``.

    Shapes (``batch``):
        B sources -> source (B, S) int64 or (B, S, frame_dim) float32, source_padding (B, S) bool;
        with targets also target_in (B, T) = BOS + ids, target_out (B, T) = ids + EOS (PAD-filled).
    """

    def __init__(self, cfg: Seq2SeqConfig, source: Symbols | None, target: Symbols):
        self.cfg, self.source, self.target = cfg, source, target

    def source_length(self, source: str | np.ndarray) -> int:
        return len(source) if isinstance(source, np.ndarray) else len(self.source.split(source))

    def batch(self, sources: list, targets: list[str] | None = None) -> dict:
        out = {}
        if self.cfg.source == "frames":
            feats = [torch.from_numpy(frame_features(s, self.cfg.frame_deltas)) for s in sources]
            lengths = torch.tensor([len(f) for f in feats])
            out["source"] = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        else:
            ids = [torch.tensor(self.source.encode(s) or [UNK]) for s in sources]
            lengths = torch.tensor([len(i) for i in ids])
            out["source"] = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=PAD)
        out["source_padding"] = torch.arange(out["source"].shape[1])[None, :] >= lengths[:, None]
        if targets is not None:
            ids = [self.target.encode(t) for t in targets]
            out["target_in"] = torch.nn.utils.rnn.pad_sequence([torch.tensor([BOS] + i) for i in ids],
                                                               batch_first=True, padding_value=PAD)
            out["target_out"] = torch.nn.utils.rnn.pad_sequence([torch.tensor(i + [EOS]) for i in ids],
                                                                batch_first=True, padding_value=PAD)
        return out
