"""The model vocabulary every ``seqattn train`` command shares, and how it reaches a config.

The lecture's choices as options: dot-product or additive scores, softmax or another
activation, sinusoidal, learned, relative or no positional encoding, full or truncated
attention, and the size of the encoder.  ``None`` means "the task's recipe default".  A task
states which options apply to it; an option given to a task it does not apply to is an error
(``--positional`` means nothing to a graph, whose nodes have no order).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from seqattn.errors import InputError
from seqattn.nn.attention import ACTIVATIONS, SCORES

POSITIONAL_CHOICES = ("sinusoidal", "learned", "relative", "none")


@dataclass
class ModelOptions:
    """Architecture options shared by the train commands (None: the recipe's default)."""

    layers: int | None = None  # encoder blocks L
    d_model: int | None = None  # size of every vector in the encoder
    heads: int | None = None  # attention heads H (d_model divisible by H)
    d_ff: int | None = None  # hidden size of the position-wise FFN
    dropout: float | None = None  # dropout on residual branches and attention weights
    attention_window: int | None = None  # truncated attention |i - j| <= w; -1 = full attention
    score: str | None = None  # dot | additive
    positional: str | None = None  # sinusoidal | learned | relative | none
    attention_activation: str | None = None  # softmax | relu | sigmoid | sparsemax

    def given(self) -> dict:
        """The options that were set, by field name."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def check(self, task: str, applies: tuple[str, ...]) -> None:
        """Ranges and choices, and that every given option applies to ``task``.

        Raises:
            InputError: naming the flag (``--d-model``) and what is wrong.
        """
        for name, value in self.given().items():
            flag = "--" + name.replace("_", "-")
            if name not in applies:
                raise InputError(f"{flag} does not apply to train {task} (its options: "
                                 f"{', '.join('--' + a.replace('_', '-') for a in applies)})")
            if name in ("layers", "d_model", "heads", "d_ff") and not 1 <= value <= 65536:
                raise InputError(f"{flag} must be between 1 and 65536, got {value}")
        if self.dropout is not None and not (math.isfinite(self.dropout) and 0 <= self.dropout < 1):
            raise InputError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.attention_window is not None and self.attention_window < -1:
            raise InputError(f"--attention-window must be >= 0, or -1 for full attention; got {self.attention_window}")
        for name, value, choices in (("--score", self.score, SCORES),
                                     ("--positional", self.positional, POSITIONAL_CHOICES),
                                     ("--attention-activation", self.attention_activation, ACTIVATIONS)):
            if value is not None and value not in choices:
                raise InputError(f"{name} {value!r}: expected one of {', '.join(choices)}")

    def apply_to_encoder(self, encoder) -> None:
        """Set an ``EncoderConfig`` from the given options (in place).

        ``--positional relative`` is a learned bias per head and offset j - i on the scores
        (Shaw et al. 2018) without absolute positions; it needs truncated attention.
        Raises:
            InputError: heads not dividing d_model, or relative positions with full attention.
        """
        if self.layers is not None:
            encoder.n_layers = self.layers
        if self.d_model is not None:
            encoder.d_model = self.d_model
            if self.d_ff is None:
                encoder.d_ff = 4 * self.d_model
        if self.heads is not None:
            encoder.n_heads = self.heads
        if self.d_ff is not None:
            encoder.d_ff = self.d_ff
        if self.dropout is not None:
            encoder.dropout = encoder.attention_dropout = self.dropout
        if self.attention_window is not None:
            encoder.window = None if self.attention_window == -1 else self.attention_window
            if encoder.window is None:
                encoder.relative_bias = False
        if self.score is not None:
            encoder.score = self.score
        if self.attention_activation is not None:
            encoder.activation = self.attention_activation
        if self.positional is not None:
            encoder.relative_bias = self.positional == "relative"
            encoder.positional = "none" if self.positional == "relative" else self.positional
        if encoder.d_model % encoder.n_heads:
            raise InputError(f"--d-model {encoder.d_model} is not divisible by --heads {encoder.n_heads}")
        if encoder.relative_bias and encoder.window is None:
            raise InputError("--positional relative needs truncated attention (--attention-window >= 0)")


ENCODER_OPTIONS = tuple(f.name for f in fields(ModelOptions))
