"""The word tagger: word, character and subword features -> truncated self-attention -> a tag per word.

Word vector (what the encoder sees as one element of the set):
    x_i = W [ e_word(lower(w_i)) ; CharCNN(w_i) ; mean_k e_piece(p_ik) ]
    - a word embedding for the lower-cased form (train words seen >= min_word_count times),
    - a character CNN with max-pooling over the word's characters (Ma & Hovy 2016): case,
      suffixes and shape, so unknown words still get a good vector,
    - the mean of the word's sentencepiece subword embeddings (seqattn.readers.subwords).
Then positional encoding, L pre-LN blocks of truncated self-attention (|i - j| <= window, with
a learned relative bias per offset), and a linear TaggingHead.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.heads.tagging import TaggingHead
from seqattn.models.config import Config, bounded
from seqattn.nn.encoder import Encoder, EncoderConfig

PAD, UNK = 0, 1  # ids shared by the word and character vocabularies
_DIGITS = re.compile(r"\d")


def normalise_word(word: str) -> str:
    """Key of the word embedding: lower case, every digit 0 (numbers share statistics)."""
    return _DIGITS.sub("0", word.lower())


MAX_VOCABULARY = 1_000_000  # words (or subword pieces) a tagger may know
MAX_EMBEDDING = 8_192  # size of a word, character or subword vector
MAX_TAGS = 10_000


@dataclass
class TaggerConfig(Config):
    """Hyper-parameters and vocabularies of ``Tagger``; saved as the model's config.json.

    Raises (constructor, ``from_dict``):
        ConfigError: a value outside its field's rule (seqattn.models.config).
    """

    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        d_model=256, n_heads=4, n_layers=3, d_ff=512, dropout=0.25, attention_dropout=0.1,
        window=8, positional="sinusoidal", relative_bias=True))
    word_dim: int = bounded(128, min=1, max=MAX_EMBEDDING)  # word embedding size
    char_dim: int = bounded(48, min=1, max=MAX_EMBEDDING)  # character embedding size
    char_filters: int = bounded(160, min=1, max=MAX_EMBEDDING)  # CharCNN output size
    char_kernel: int = bounded(3, min=1, max=63)  # CharCNN width (characters)
    max_word_chars: int = bounded(24, min=1, max=1_024)  # longer words keep their first and last 12 characters
    subword_dim: int = bounded(96, min=1, max=MAX_EMBEDDING)  # sentencepiece embedding size
    subword_vocab_size: int = bounded(4000, min=1, max=MAX_VOCABULARY)
    min_word_count: int = bounded(2, min=1, max=1_000_000_000)
    words: list[str] = bounded(default_factory=list, max_items=MAX_VOCABULARY)  # id -> word (0 PAD, 1 UNK)
    chars: list[str] = bounded(default_factory=list, max_items=MAX_VOCABULARY)  # id -> character (0 PAD, 1 UNK)
    tags: list[str] = bounded(default_factory=list, max_items=MAX_TAGS)  # id -> UPOS tag

    def check_trained(self) -> None:
        for name in ("words", "chars"):
            entries = len(getattr(self, name))
            if entries < 2:
                raise self.invalid(name, f"must hold <pad>, <unk> and the vocabulary, got {entries} entries")
        if not self.tags:
            raise self.invalid("tags", "must hold at least one tag, got none")

    def build_vocabularies(self, sentences: list[list[str]], tags: list[list[str]]) -> None:
        """Fill ``words``, ``chars`` and ``tags`` from training sentences."""
        words = Counter(normalise_word(w) for s in sentences for w in s)
        chars = Counter(c for s in sentences for w in s for c in w)
        self.words = ["<pad>", "<unk>"] + sorted(w for w, n in words.items() if n >= self.min_word_count)
        self.chars = ["<pad>", "<unk>"] + sorted(chars)
        self.tags = sorted({t for s in tags for t in s})


class CharCNN(nn.Module):
    """Character CNN word encoder: embed characters, convolve, max-pool over the word.

    Shapes:
        chars: (W, C) int64 (0 = padding)  ->  (W, n_filters)
    """

    def __init__(self, n_chars: int, char_dim: int, n_filters: int, kernel: int):
        super().__init__()
        self.embed = nn.Embedding(n_chars, char_dim, padding_idx=PAD)
        self.conv = nn.Conv1d(char_dim, n_filters, kernel, padding=kernel // 2)

    def forward(self, chars: Tensor) -> Tensor:
        h = self.conv(self.embed(chars).transpose(1, 2))  # (W, n_filters, C)
        h = h.masked_fill((chars == PAD)[:, None, :], -1e4)
        return torch.relu(h.max(dim=2).values)


class WordFeatures(nn.Module):
    """The word vector x_i of the module docstring, shared by the tagger and the sentence classifier.

    ``_build_features`` adds the submodules (their names are the keys of shipped weights);
    ``features`` computes the vectors.
    Shapes (a batch of B sentences, N words at most, U distinct words; see ``seqattn.featurise.text.Featurizer.batch``):
        words, slots: (B, N) int64, chars: (U + 1, C) int64, pieces: (P,) int64,
        piece_offsets: (U + 1,) int64  ->  (B, N, d_model)
    """

    def _build_features(self, cfg: TaggerConfig) -> None:
        self.word_embed = nn.Embedding(len(cfg.words), cfg.word_dim, padding_idx=PAD)
        self.char_cnn = CharCNN(len(cfg.chars), cfg.char_dim, cfg.char_filters, cfg.char_kernel)
        self.piece_embed = nn.EmbeddingBag(cfg.subword_vocab_size, cfg.subword_dim, mode="mean")
        self.project = nn.Linear(cfg.word_dim + cfg.char_filters + cfg.subword_dim, cfg.encoder.d_model)
        self.input_drop = nn.Dropout(cfg.encoder.dropout)

    def features(self, batch: dict[str, Tensor]) -> Tensor:
        slots = batch["slots"]
        # Rows gathered with F.embedding, not x[slots]: the backward of advanced indexing adds a
        # non-contiguous gradient in a thread-dependent order on the CPU (weights differed in the
        # last bits between two runs on 2 threads); embedding's backward is deterministic.
        chars = F.embedding(slots, self.char_cnn(batch["chars"]))  # (U + 1, filters) -> (B, N, filters)
        pieces = F.embedding(slots, self.piece_embed(batch["pieces"], batch["piece_offsets"]))  # (B, N, subword_dim)
        x = torch.cat([self.word_embed(batch["words"]), chars, pieces], dim=-1)  # (B, N, word+char+subword)
        return self.input_drop(self.project(x))  # (B, N, d_model)


class Tagger(WordFeatures):
    """Word features -> truncated self-attention encoder -> a tag per word.

    Shapes (see ``WordFeatures``; padding: (B, N) bool):
        batch  ->  logits (B, N, n_tags) [, attention weights per layer]
    """

    def __init__(self, cfg: TaggerConfig):
        super().__init__()
        self.cfg = cfg
        self._build_features(cfg)
        self.encoder = Encoder(cfg.encoder)
        self.head = TaggingHead(cfg.encoder.d_model, len(cfg.tags))

    def forward(self, batch: dict[str, Tensor], return_weights: bool = False):
        x = self.features(batch)  # (B, N, d_model)
        if return_weights:
            h, weights = self.encoder(x, batch["padding"], return_weights=True)
            return self.head(h), weights
        return self.head(self.encoder(x, batch["padding"]))

