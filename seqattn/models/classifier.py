"""The sentence classifier (N -> 1): word features -> truncated self-attention -> attention pooling -> a class.

Word vectors as in the tagger (seqattn.models.tagger: word embedding, character CNN, mean of the
subword pieces), positional encoding, L pre-LN blocks of truncated self-attention with a learned
relative bias, then multi-head attention pooling (Lin et al. 2017; seqattn.heads.classification)
and an MLP.  Lecture: "Sequence Classification", one label for the whole input ("this is good"
-> positive).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from seqattn.heads.classification import MultiHeadPoolingHead
from seqattn.models.config import bounded
from seqattn.models.tagger import MAX_TAGS, TaggerConfig, WordFeatures
from seqattn.nn.encoder import MAX_HEADS, Encoder, EncoderConfig


@dataclass
class ClassifierConfig(TaggerConfig):
    """Hyper-parameters and vocabularies of ``Classifier``; saved as the model's config.json.

    The word-feature fields are the tagger's (``TaggerConfig``); ``tags`` stays empty.
    Raises (constructor, ``from_dict``):
        ConfigError: a value outside its field's rule (seqattn.models.config).
    """

    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        d_model=256, n_heads=4, n_layers=2, d_ff=512, dropout=0.3, attention_dropout=0.1,
        window=8, positional="sinusoidal", relative_bias=True))
    labels: list[str] = bounded(default_factory=list, max_items=MAX_TAGS)  # id -> class label, as in the data
    label_names: list[str] = bounded(default_factory=list, max_items=MAX_TAGS)  # id -> name printed ([]: the labels)
    pool_heads: int = bounded(4, min=1, max=MAX_HEADS)  # attention pooling heads r
    pool_hidden: int = bounded(256, min=1, max=65_536)  # hidden size of the pooling scorer and the MLP
    lowercase: bool = False  # lower-case the input first (set when the training texts had no upper case)

    def check_trained(self) -> None:
        for name in ("words", "chars"):
            entries = len(getattr(self, name))
            if entries < 2:
                raise self.invalid(name, f"must hold <pad>, <unk> and the vocabulary, got {entries} entries")
        if len(self.labels) < 2:
            raise self.invalid("labels", f"must hold at least two classes, got {len(self.labels)}")
        if self.label_names and len(self.label_names) != len(self.labels):
            raise self.invalid("label_names", f"must name each of the {len(self.labels)} labels, "
                                              f"got {len(self.label_names)} names")

    def names(self) -> list[str]:
        """The printed name of each class: ``label_names`` where given, else the data's labels."""
        return list(self.label_names or self.labels)


class Classifier(WordFeatures):
    """Word features -> self-attention encoder -> multi-head attention pooling -> logits.

    Shapes (see ``seqattn.models.tagger.WordFeatures``; padding: (B, N) bool):
        batch  ->  logits (B, n_classes)
        with ``return_weights``: (logits, pooling weights (B, r, N), [encoder weights per layer:
        (B, H, N, N) full or (B, H, N, 2w + 1) band])
    """

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self._build_features(cfg)
        self.encoder = Encoder(cfg.encoder)
        self.head = MultiHeadPoolingHead(cfg.encoder.d_model, len(cfg.labels), cfg.pool_heads, cfg.pool_hidden,
                                         cfg.encoder.dropout)

    def encode(self, batch: dict[str, Tensor]) -> Tensor:
        """The encoder's output vectors.  Shapes: batch -> (B, N, d_model)."""
        return self.encoder(self.features(batch), batch["padding"])

    def forward(self, batch: dict[str, Tensor], return_weights: bool = False):
        x = self.features(batch)  # (B, N, d_model)
        if return_weights:
            h, weights = self.encoder(x, batch["padding"], return_weights=True)
            logits, pooling = self.head(h, batch["padding"], return_weights=True)
            return logits, pooling, weights
        return self.head(self.encoder(x, batch["padding"]), batch["padding"])
