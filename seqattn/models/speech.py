"""The speech model: 25 ms frames -> truncated self-attention -> class, frame tags and CTC output.

    frames (N, bins) log-mel, normalised with the training data's mean and deviation
      -> Conv1d (kernel k, stride s over time) + GELU: local spectral patterns; with s = 2 each
         attention position ("step") summarises two frames, 20 ms, halving the work
      -> L pre-LN blocks of truncated self-attention over the M = ceil(N / s) steps,
         |i - j| <= w (no absolute positions: a learned relative bias per offset j - i, so the
         model is the same at every step)
      -> three heads, the three output types of the lecture:
         class      N -> 1   attention pooling + linear          the spoken label of a clip
         frame tags N -> N   linear per step, silence or label,   the segments of a clip
                             each frame taking its step's tag
         CTC        N -> M   linear per step, blank or label      the label string of a clip

Every output depends only on input frames within ``receptive_field()`` frames on either side
(the conv's half-width plus s * L * w), which is what lets long audio run chunk by chunk with
results equal to one pass over the whole clip (seqattn.tasks.speech).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from seqattn.heads.classification import AttentionPoolingHead
from seqattn.heads.ctc import CTCHead
from seqattn.heads.tagging import TaggingHead
from seqattn.models.config import Config, bounded
from seqattn.nn.encoder import Encoder, EncoderConfig
from seqattn.readers.frames import FrameSpec

SILENCE = 0  # frame-tag id of "no label here" (labels are 1..K, as in CTC where 0 is blank)
MAX_RECEPTIVE_FIELD = 8_192  # frames on each side of an output (82 s at 10 ms): a chunk's context on long audio


@dataclass
class SpeechConfig(Config):
    """Hyper-parameters, frame spec and labels of ``SpeechModel``; saved as the model's config.json.

    Raises (constructor, ``from_dict``):
        ConfigError: a value outside its field's rule, an even conv_kernel, or an encoder with
            absolute positions or full attention (seqattn.models.config).
    """

    # No dropout: speed perturbation, noise, gain and SpecAugment regularise instead, and on CPU
    # dropout's random masks cost about a fifth of a training step.
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        d_model=96, n_heads=4, n_layers=4, d_ff=192, dropout=0.0, attention_dropout=0.0,
        window=8, positional="none", relative_bias=True))  # 8 steps of 20 ms: +-160 ms per layer
    frames: FrameSpec = field(default_factory=lambda: FrameSpec(8000))  # what the model reads
    conv_kernel: int = bounded(5, min=1, max=63)  # frames seen by the convolution before attention (odd)
    stride: int = bounded(2, min=1, max=64)  # frames per attention step (the conv's stride); encoder.window in steps
    labels: list[str] = bounded(default_factory=list, max_items=100_000)  # id - 1 -> label (class, frame tag, CTC)
    silence: str = "sil"  # the frame tag of frames without a label

    def check(self) -> None:
        if self.conv_kernel % 2 == 0:
            raise self.invalid("conv_kernel", f"must be odd, got {self.conv_kernel}")
        if self.encoder.positional != "none":
            # absolute positions would make a frame's output depend on where its chunk starts
            raise self.invalid("encoder.positional", "must be 'none': a speech model uses relative positions only, "
                                                     f"got {self.encoder.positional!r}")
        if self.encoder.window is None:
            raise self.invalid("encoder.window", "must be a number of steps: a speech model uses truncated "
                                                 "attention, got null")
        if self.receptive_field() > MAX_RECEPTIVE_FIELD:
            raise self.invalid("encoder.window", f"gives a receptive field of {self.receptive_field():,} frames "
                                                 f"(conv_kernel // 2 + stride x n_layers x window), more than "
                                                 f"{MAX_RECEPTIVE_FIELD:,}, got {self.encoder.window}")

    def check_trained(self) -> None:
        if not self.labels:
            raise self.invalid("labels", "must hold at least one label, got none")

    def receptive_field(self) -> int:
        """Frames on each side of a step's centre frame that its outputs depend on: k // 2 + s * L * w."""
        return self.conv_kernel // 2 + self.stride * self.encoder.n_layers * self.encoder.window

    def steps(self, n_frames: int) -> int:
        """Attention steps of N frames: ceil(N / s) (step t is centred on frame s * t)."""
        return -(-n_frames // self.stride)


class SpeechModel(nn.Module):
    """Frame vectors -> strided conv -> truncated self-attention encoder -> class, frame-tag and CTC logits.

    Shapes (M = ceil(N / stride) steps):
        x: (B, N, bins) features, padding: (B, N) bool (True = padding)
        -> dict with class_logits (B, K), frame_logits (B, N, K + 1) [0 = silence, one per frame],
           ctc_logits (B, M, K + 1) [0 = blank], hidden (B, M, d_model), step_padding (B, M) or None,
           and with return_weights, weights: L tensors (B, H, M, 2w + 1) in band layout.
    """

    def __init__(self, cfg: SpeechConfig):
        super().__init__()
        self.cfg = cfg
        d, k = cfg.encoder.d_model, len(cfg.labels)
        # Filled from the training data (global statistics keep every frame's input local).
        self.register_buffer("feature_mean", torch.zeros(cfg.frames.bins))
        self.register_buffer("feature_std", torch.ones(cfg.frames.bins))
        self.conv = nn.Conv1d(cfg.frames.bins, d, cfg.conv_kernel, stride=cfg.stride, padding=cfg.conv_kernel // 2)
        self.act = nn.GELU()
        self.input_drop = nn.Dropout(cfg.encoder.dropout)
        self.encoder = Encoder(cfg.encoder)
        self.class_head = AttentionPoolingHead(d, k)
        self.frame_head = TaggingHead(d, k + 1)
        self.ctc_head = CTCHead(d, k)

    def step_padding(self, padding: Tensor | None) -> Tensor | None:
        """(B, N) frame padding -> (B, M) step padding: a step is padding when its centre frame is."""
        return None if padding is None else padding[:, :: self.cfg.stride]

    def encode(self, x: Tensor, padding: Tensor | None = None, return_weights: bool = False):
        """Normalise, convolve and encode.  Shapes: (B, N, bins) -> (B, M, d_model) [, weights]."""
        x = (x - self.feature_mean) / self.feature_std
        if padding is not None:
            x = x.masked_fill(padding[..., None], 0.0)  # padded frames look like the zero padding of the conv
        h = self.act(self.conv(x.transpose(1, 2)).transpose(1, 2))  # (B, M, d_model)
        h = self.input_drop(h)
        return self.encoder(h, self.step_padding(padding), return_weights=return_weights)

    def forward(self, x: Tensor, padding: Tensor | None = None, return_weights: bool = False) -> dict:
        h, weights = self.encode(x, padding, return_weights=True) if return_weights else (self.encode(x, padding), None)
        steps = self.step_padding(padding)
        frame_logits = self.frame_head(h).repeat_interleave(self.cfg.stride, dim=1)[:, : x.shape[1]]  # (B, N, K + 1)
        out = {"class_logits": self.class_head(h, steps), "frame_logits": frame_logits,
               "ctc_logits": self.ctc_head(h), "hidden": h, "step_padding": steps}
        if return_weights:
            out["weights"] = weights
        return out
