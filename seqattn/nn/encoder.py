"""The self-attention encoder: pre-LayerNorm blocks (attention + FFN, each with a residual).

Block (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture"):
    x = x + Dropout(SelfAttention(LayerNorm(x)))
    x = x + Dropout(FFN(LayerNorm(x)))            FFN(x) = W_2 GELU(W_1 x)
and a final LayerNorm after the stack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from torch import Tensor, nn

from seqattn.nn.attention import SCORES, MultiHeadSelfAttention
from seqattn.nn.positional import POSITIONALS, positional_encoding


@dataclass
class EncoderConfig:
    """Hyper-parameters of ``Encoder``; saved as JSON next to a model's weights."""

    d_model: int = 256  # size of every vector in the sequence
    n_heads: int = 4  # attention heads H; d_model / n_heads per head
    n_layers: int = 2  # stacked blocks L
    d_ff: int = 1024  # hidden size of the position-wise FFN
    dropout: float = 0.1  # on residual branches
    attention_dropout: float = 0.1  # on attention weights
    window: int | None = None  # attention half-width w (positions); None = full attention
    score: str = "dot"  # "dot" (scaled dot-product) or "additive"
    positional: str = "sinusoidal"  # "sinusoidal", "learned" or "none"
    max_len: int = 512  # longest sequence a learned positional table covers
    relative_bias: bool = False  # learned bias per head and offset j - i (needs a window)
    activation: str = "softmax"  # scores -> weights: "softmax", "relu", "sigmoid" or "sparsemax"

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; expected one of {SCORES}")
        if self.positional not in POSITIONALS:
            raise ValueError(f"unknown positional encoding {self.positional!r}; expected one of {POSITIONALS}")
        if self.window is not None and self.window < 0:
            raise ValueError(f"window must be >= 0 or None, got {self.window}")

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        """Build from a JSON dict, ignoring no keys silently: unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown encoder config keys: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


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
