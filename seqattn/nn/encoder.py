"""The self-attention encoder: pre-LayerNorm blocks (attention + FFN, each with a residual).

Block (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture"):
    x = x + Dropout(SelfAttention(LayerNorm(x)))
    x = x + Dropout(FFN(LayerNorm(x)))            FFN(x) = W_2 GELU(W_1 x)
and a final LayerNorm after the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from seqattn.models.config import Config, bounded
from seqattn.nn.attention import ACTIVATIONS, SCORES, MultiHeadSelfAttention
from seqattn.nn.positional import POSITIONALS, positional_encoding


# Bounds of a config (seqattn.models.config): beyond them a model is no longer a CPU-sized
# sequence model, and a hostile config.json would allocate gigabytes before any check of its weights.
MAX_D_MODEL = 16_384
MAX_HEADS = 1_024
MAX_LAYERS = 256
MAX_D_FF = 65_536
MAX_WINDOW = 4_096  # attention memory grows with 2w + 1 per position, whatever the sentence's length
MAX_BAND_SCORES = 16_384  # H x (2w + 1) scores per position: 64 KiB, 256 MiB for a batch of 4096 positions
MAX_POSITIONS = 1_000_000


@dataclass
class EncoderConfig(Config):
    """Hyper-parameters of ``Encoder``; saved as JSON next to a model's weights.

    Raises (constructor, ``from_dict``):
        ConfigError: a value outside its field's rule, or n_heads not dividing d_model, or a
            relative bias without a window (seqattn.models.config).
    """

    d_model: int = bounded(256, min=1, max=MAX_D_MODEL)  # size of every vector in the sequence
    n_heads: int = bounded(4, min=1, max=MAX_HEADS)  # attention heads H; d_model / n_heads per head
    n_layers: int = bounded(2, min=1, max=MAX_LAYERS)  # stacked blocks L
    d_ff: int = bounded(1024, min=1, max=MAX_D_FF)  # hidden size of the position-wise FFN
    dropout: float = bounded(0.1, min=0.0, below=1.0)  # on residual branches
    attention_dropout: float = bounded(0.1, min=0.0, below=1.0)  # on attention weights
    window: int | None = bounded(None, min=0, max=MAX_WINDOW)  # attention half-width w (positions); None = full
    score: str = bounded("dot", choices=SCORES)  # "dot" (scaled dot-product) or "additive"
    positional: str = bounded("sinusoidal", choices=POSITIONALS)  # "sinusoidal", "learned" or "none"
    max_len: int = bounded(512, min=1, max=MAX_POSITIONS)  # longest sequence a learned positional table covers
    relative_bias: bool = False  # learned bias per head and offset j - i (needs a window)
    # scores -> weights: "softmax", "relu", "sigmoid" or "sparsemax"; added after models shipped
    activation: str = bounded("softmax", choices=ACTIVATIONS, omit_default=True)

    def check(self) -> None:
        if self.d_model % self.n_heads:
            raise self.invalid("n_heads", f"must divide d_model ({self.d_model}), got {self.n_heads}")
        if self.relative_bias and self.window is None:
            raise self.invalid("relative_bias", "needs a window (window is null: full attention)")
        if self.window is not None and self.n_heads * (2 * self.window + 1) > MAX_BAND_SCORES:
            raise self.invalid("window", f"gives n_heads x (2 window + 1) = {self.n_heads * (2 * self.window + 1):,} "
                                         f"scores per position, more than {MAX_BAND_SCORES:,}, got {self.window}")


class EncoderBlock(nn.Module):
    """One pre-LN block: self-attention and FFN, each inside a residual connection.

    Shapes:
        x: (B, N, d_model), key_padding_mask: (B, N) bool -> (B, N, d_model), weights
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.attn = MultiHeadSelfAttention(cfg.d_model, cfg.n_heads, window=cfg.window, score=cfg.score,
                                           relative_bias=cfg.relative_bias, dropout=cfg.attention_dropout,
                                           activation=cfg.activation)
        self.norm_ffn = nn.LayerNorm(cfg.d_model)
        self.ffn = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        h, weights = self.attn(self.norm_attn(x), key_padding_mask, need_weights)
        x = x + self.drop(h)
        x = x + self.drop(self.ffn(self.norm_ffn(x)))
        return x, weights


class Encoder(nn.Module):
    """Positional encoding, then L pre-LN self-attention blocks, then LayerNorm.

    Args:
        cfg: an ``EncoderConfig``.
    Shapes:
        x: (B, N, d_model), key_padding_mask: (B, N) bool (True = padding)
        -> out: (B, N, d_model), and with ``return_weights`` a list of L weight tensors,
           each (B, H, N, N) for full attention or (B, H, N, 2w + 1) for truncated attention.
           Without ``return_weights`` dot-product layers take the fused fast path.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.positional = positional_encoding(cfg.positional, cfg.d_model, cfg.max_len)
        self.blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None, return_weights: bool = False):
        x = self.positional(x)
        all_weights = []
        for block in self.blocks:
            x, weights = block(x, key_padding_mask, need_weights=return_weights)
            all_weights.append(weights)
        x = self.norm(x)
        return (x, all_weights) if return_weights else x
