"""The encoder-decoder (seq2seq, N -> M): an encoder of the kinds we have, the decoder, and their symbols.

Lecture ("Seq2seq"): the encoder turns the input into a set of vectors; the decoder produces
the output one symbol at a time with masked self-attention over what it has produced and
encoder-decoder attention over the encoder's output (Q from the decoder, K = V from the
encoder), until it emits EOS: the machine decides the output length (Vaswani et al. 2017).

Inputs are either symbols (characters, whitespace-separated words, or sentencepiece pieces;
embedded) or frames (e.g. 13-dim MFCC vectors; a strided convolution front end shortens them
before attention, as speech transformers do).  Outputs are symbols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.heads.ctc import CTCHead
from seqattn.models.config import Config, bounded
from seqattn.nn.decoder import Decoder, DecoderConfig
from seqattn.nn.encoder import Encoder, EncoderConfig

PAD, UNK, BOS, EOS = 0, 1, 2, 3  # ids shared by every symbol vocabulary
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
SYMBOL_KINDS = ("chars", "words", "sentencepiece")
SOURCE_KINDS = SYMBOL_KINDS + ("frames",)


MAX_SYMBOLS = 1_000_000  # symbols of one side's vocabulary


@dataclass
class Seq2SeqConfig(Config):
    """Hyper-parameters and vocabularies of ``Seq2Seq``; saved as the model's config.json.

    ``source`` / ``target`` say how a text becomes symbols: ``chars`` (one symbol per
    character), ``words`` (split at whitespace, e.g. ARPAbet phonemes), ``sentencepiece``
    (pieces of a unigram model trained on the data); a source may also be ``frames``
    (float vectors of ``frame_dim`` values).

    Raises (constructor, ``from_dict``):
        ConfigError: a value outside its field's rule, or encoder and decoder of different
            d_model (seqattn.models.config).
    """

    source: str = bounded("chars", choices=SOURCE_KINDS)
    target: str = bounded("words", choices=SYMBOL_KINDS)
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        d_model=256, n_heads=4, n_layers=3, d_ff=1024, dropout=0.1, attention_dropout=0.1))
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig(
        d_model=256, n_heads=4, n_layers=3, d_ff=1024, dropout=0.1))
    source_symbols: list[str] = bounded(default_factory=list, max_items=MAX_SYMBOLS)  # id -> symbol (0-3: SPECIALS)
    target_symbols: list[str] = bounded(default_factory=list, max_items=MAX_SYMBOLS)
    frame_dim: int = bounded(13, min=1, max=4_096)  # values per input frame (frames only)
    frame_deltas: bool = True  # per-utterance CMVN, then append deltas and delta-deltas (3 x frame_dim inputs)
    frame_stride: int = bounded(4, choices=(1, 2, 4))  # frames per encoder step: stride-2 convolutions (frames only)
    ctc_weight: float = bounded(0.0, min=0.0, max=1.0)  # joint CTC-attention training (Kim et al. 2017): weight of CTC
    max_output_ratio: float = bounded(3.0, above=0.0, max=20.0)  # decoding stops after ratio * source symbols + 10

    def check(self) -> None:
        if self.encoder.d_model != self.decoder.d_model:
            raise self.invalid("decoder.d_model", f"must equal encoder.d_model ({self.encoder.d_model}), "
                                                  f"got {self.decoder.d_model}")

    def check_trained(self) -> None:
        if self.source != "frames" and len(self.source_symbols) <= len(SPECIALS):
            raise self.invalid("source_symbols", f"must hold {', '.join(SPECIALS)} and at least one symbol, "
                                                 f"got {len(self.source_symbols)} entries")
        if len(self.target_symbols) <= len(SPECIALS):
            raise self.invalid("target_symbols", f"must hold {', '.join(SPECIALS)} and at least one symbol, "
                                                 f"got {len(self.target_symbols)} entries")


class FrameFrontEnd(nn.Module):
    """Frames -> encoder vectors: up to two Conv1d(kernel 3, stride 2) + GELU, then a linear map.

    Shortens the sequence by ``stride`` (1, 2 or 4) so that attention costs (N / stride)^2.

    Shapes:
        frames: (B, N, frame_dim), padding: (B, N) bool -> (B, ceil(N / stride), d), (B, N') bool
    """

    def __init__(self, frame_dim: int, d_model: int, stride: int):
        super().__init__()
        self.stride = stride
        convs, size = [], frame_dim
        for _ in range(int(math.log2(stride))):
            convs += [nn.Conv1d(size, d_model, kernel_size=3, stride=2, padding=1), nn.GELU()]
            size = d_model
        self.convs = nn.Sequential(*convs)
        self.proj = nn.Linear(size, d_model)

    def forward(self, frames: Tensor, padding: Tensor) -> tuple[Tensor, Tensor]:
        x = frames.masked_fill(padding[..., None], 0.0).transpose(1, 2)  # (B, D, N)
        lengths = (~padding).sum(1)
        for k in range(0, len(self.convs), 2):  # conv, GELU; zero the padding so it never leaks in
            x = self.convs[k + 1](self.convs[k](x))
            lengths = (lengths + 1) // 2  # output length of a stride-2, padding-1, kernel-3 conv
            padding = torch.arange(x.shape[2], device=x.device)[None, :] >= lengths[:, None]
            x = x.masked_fill(padding[:, None, :], 0.0)
        return self.proj(x.transpose(1, 2)), padding  # (B, N', d)


class Seq2Seq(nn.Module):
    """Source embedding (or frame front end) -> Encoder -> Decoder with encoder-decoder attention.

    Args:
        cfg: a ``Seq2SeqConfig`` with its vocabularies filled in.
    Shapes:
        source: (B, S) int64 symbol ids, or (B, S, frame_dim) float frames
        source_padding: (B, S) bool (True = padding); targets: (B, T) int64 starting with BOS
        -> logits (B, T, len(target_symbols)), last layer's cross-attention (B, H, T, S')
    """

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.encoder.d_model
        if cfg.source == "frames":
            self.frames = FrameFrontEnd(cfg.frame_dim * (3 if cfg.frame_deltas else 1), d, cfg.frame_stride)
        else:
            self.source_embed = nn.Embedding(len(cfg.source_symbols), d, padding_idx=PAD)
        self.encoder = Encoder(cfg.encoder)
        self.decoder = Decoder(cfg.decoder, len(cfg.target_symbols))
        # Embeddings are multiplied by sqrt(d) (Vaswani et al. 2017), so they start at N(0, 1/d) and then
        # match the unit-scale positional encoding; PyTorch's N(0, 1) would drown the positions 14:1 at d=192.
        for table in ([self.decoder.embed] + ([] if cfg.source == "frames" else [self.source_embed])):
            nn.init.normal_(table.weight, std=d ** -0.5)
            with torch.no_grad():
                table.weight[PAD].zero_()
        if cfg.ctc_weight > 0:  # PAD (id 0) doubles as the CTC blank: targets never contain it
            self.ctc = CTCHead(d, len(cfg.target_symbols) - 1)

    def encode(self, source: Tensor, source_padding: Tensor, return_weights: bool = False):
        """Encoder output and its padding mask (shorter than the input for strided frames).

        Shapes:
            -> memory (B, S', d), memory_padding (B, S') bool [, with ``return_weights`` the
               encoder's self-attention weights, L x (B, H, S', S') (band layout with a window)]
        """
        if self.cfg.source == "frames":
            x, source_padding = self.frames(source, source_padding)
        else:
            x = self.source_embed(source) * math.sqrt(self.cfg.encoder.d_model)
        if return_weights:
            memory, weights = self.encoder(x, source_padding, return_weights=True)
            return memory, source_padding, weights
        return self.encoder(x, source_padding), source_padding

    def forward(self, source: Tensor, source_padding: Tensor, targets: Tensor,
                target_padding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        memory, memory_padding = self.encode(source, source_padding)
        return self.decoder(targets, memory, memory_padding, target_padding)

    def loss(self, batch: dict, label_smoothing: float = 0.0) -> Tensor:
        """Teacher-forced cross-entropy of the next symbol (PAD ignored), plus the CTC loss when
        ``cfg.ctc_weight`` > 0: (1 - w) CE + w CTC.

        Args:
            batch: ``source``, ``source_padding``, ``target_in`` (BOS + ids), ``target_out`` (ids + EOS).
        """
        memory, memory_padding = self.encode(batch["source"], batch["source_padding"])
        logits, _ = self.decoder(batch["target_in"], memory, memory_padding, batch["target_in"] == PAD)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["target_out"].reshape(-1),
                               ignore_index=PAD, label_smoothing=label_smoothing)
        if self.cfg.ctc_weight <= 0:
            return loss
        targets = [[t for t in row if t not in (PAD, EOS)] for row in batch["target_out"].tolist()]
        ctc = CTCHead.loss(self.ctc(memory), (~memory_padding).sum(1), targets)
        return (1 - self.cfg.ctc_weight) * loss + self.cfg.ctc_weight * ctc
