"""What an attention export holds: one ``AttentionRecord`` per input, each with its attention maps.

Weights are kept as the model gives them: dense (L, H, N, M), or the band layout
(L, H, N, 2w + 1) of truncated attention, where ``band[l, h, i, s]`` is the weight of query i
on key ``j = i + s - w`` (0 where j falls outside the sequence).  A band is never densified
here: a 15-minute clip is 45,000 attention steps, and its N x N matrix would not fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

KINDS = ("tokens", "speech", "graph", "seq2seq", "classify")


@dataclass
class AttentionMap:
    """One attention of one input, at every layer and head.

    ``weights`` may be a numpy array or anything with ``shape`` that answers
    ``weights[layer, head, a:b]`` with an array (``seqattn.export.spill.SpillArray`` keeps a long
    clip's band on disk); the exporters read it in slices of rows, never whole.

    Shapes:
        weights: (L, H, N, M) dense, or (L, H, N, 2w + 1) band when ``window`` is w
        queries: N labels (None: positions, as for speech steps); keys: M labels (None: the
            queries, as for self-attention)
    """

    key: str  # short id: "self", "encoder", "decoder", "cross", "pooling"
    title: str  # shown to people: "encoder self-attention", ...
    weights: Any
    queries: Optional[Sequence[str]] = None
    keys: Optional[Sequence[str]] = None
    window: Optional[int] = None  # band half-width w in steps; None: dense

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(int(n) for n in self.weights.shape)  # type: ignore[return-value]

    @property
    def n_keys(self) -> int:
        """M: the number of keys (N for a band)."""
        return self.shape[2] if self.window is not None else self.shape[3]

    def key_labels(self) -> Optional[Sequence[str]]:
        return self.queries if self.keys is None else self.keys

    def check(self) -> None:
        """Raises ValueError on shapes that disagree with the labels or the window."""
        shape = self.shape
        if len(shape) != 4:
            raise ValueError(f"{self.key}: weights must be (L, H, N, M), got {shape}")
        if self.window is not None and shape[3] != 2 * self.window + 1:
            raise ValueError(f"{self.key}: a band of window {self.window} has {2 * self.window + 1} columns, "
                             f"got {shape[3]}")
        if self.queries is not None and len(self.queries) != shape[2]:
            raise ValueError(f"{self.key}: {len(self.queries)} query labels for {shape[2]} rows")
        keys = self.key_labels()
        if keys is not None and len(keys) != self.n_keys:
            raise ValueError(f"{self.key}: {len(keys)} key labels for {self.n_keys} keys")


@dataclass
class GraphAttention:
    """Attention along the edges of a graph: node ``target`` attends to node ``source``.

    Each layer's weights are a softmax over every node's incoming edges (self-loop included),
    so for each target node and head they sum to 1.  Layers may have different head counts
    (a GAT's output layer often has one head).

    Shapes:
        edge_index: (2, E) int, rows source and target; weights: L x (H_l, E)
    """

    nodes: Sequence[str]
    edge_index: np.ndarray
    weights: list
    classes: Optional[Sequence[str]] = None  # predicted class of each node
    focus: Optional[int] = None  # the node the views open on


@dataclass
class SpeechExtras:
    """What a speech record shows beside its banded attention.

    Shapes:
        spectrogram: (frames, bins) log-mel, or anything that answers ``spectrogram[a:b]``
    """

    spectrogram: Any
    frame_hop_s: float  # seconds between frames
    step_s: float  # seconds between attention steps (hop x stride)
    segments: list = field(default_factory=list)  # (start_s, end_s, label) of the frame-tag runs
    silence: str = "sil"  # the label of silent segments (drawn grey)


@dataclass
class AttentionRecord:
    """The attention of one input: a sentence, a clip, a graph, a source and its output."""

    name: str  # shown in the input picker: the sentence, the file name
    kind: str  # one of KINDS
    maps: list[AttentionMap] = field(default_factory=list)
    primary: int = 0  # index of the map a view opens on (and a picture shows)
    caption: str = ""  # one line under the name: tags, the class, the output
    graph: Optional[GraphAttention] = None
    speech: Optional[SpeechExtras] = None

    def check(self) -> None:
        """Raises ValueError on an unknown kind or maps whose shapes disagree with their labels."""
        if self.kind not in KINDS:
            raise ValueError(f"unknown record kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.kind == "graph":
            if self.graph is None:
                raise ValueError("a graph record needs its GraphAttention")
            edges = np.asarray(self.graph.edge_index)
            if edges.ndim != 2 or edges.shape[0] != 2:
                raise ValueError(f"edge_index must be (2, E), got {edges.shape}")
            for layer, w in enumerate(self.graph.weights):
                if w.ndim != 2 or w.shape[1] != edges.shape[1]:
                    raise ValueError(f"graph layer {layer}: weights must be (H, {edges.shape[1]}), got {w.shape}")
        elif not self.maps:
            raise ValueError(f"{self.kind} record {self.name!r} has no attention map")
        for m in self.maps:
            m.check()
        if self.maps and not 0 <= self.primary < len(self.maps):
            raise ValueError(f"primary map {self.primary} of {len(self.maps)}")


def tokens_record(name: str, labels: Sequence[str], per_layer: Sequence, window: Optional[int],
                  caption: str = "") -> AttentionRecord:
    """A sentence's self-attention from a model's per-layer weights (tensors or arrays).

    Shapes:
        per_layer: L x (H, N, N), or L x (H, N, 2w + 1) with ``window`` w
    """
    weights = np.stack([_numpy(w) for w in per_layer]).astype(np.float32, copy=False)
    return AttentionRecord(name, "tokens", [AttentionMap("self", "self-attention", weights, list(labels),
                                                         window=window)], caption=caption)


def classify_record(name: str, words: Sequence[str], pooling, per_layer: Sequence, window: Optional[int],
                    caption: str = "") -> AttentionRecord:
    """A text's class attention: the pooling attention (the class vector's query over the words,
    per head) and every encoder layer's self-attention.

    Shapes:
        pooling: (H_pool, N); per_layer: L x (H, N, N), or L x (H, N, 2w + 1) with ``window``
    """
    pooled = _numpy(pooling)[None, :, None, :]  # (1, H_pool, 1, N): one layer, one query
    self_attention = np.stack([_numpy(w) for w in per_layer])
    maps = [AttentionMap("pooling", "attention pooling (the text's vector)", pooled, ["[text]"], list(words)),
            AttentionMap("self", "self-attention", self_attention, list(words), window=window)]
    return AttentionRecord(name, "classify", maps, primary=0, caption=caption)


def seq2seq_record(name: str, source: Sequence[str], output: Sequence[str], encoder: Sequence, decoder: Sequence,
                   cross: Sequence, window: Optional[int] = None, caption: str = "") -> AttentionRecord:
    """A source and its decoded output: the three attentions of an encoder-decoder, cross first shown.

    Decoder position t reads ``<s>`` (t = 0) or output symbol t - 1 and predicts output symbol t
    (the last predicts ``</s>``): its queries are labelled by what they predict, its keys by what
    they read.
    Shapes:
        encoder: L x (H, S, S) (or (H, S, 2w + 1) with ``window``); decoder: L x (H, T, T);
        cross: L x (H, T, S), T = len(output) + 1
    """
    predicted = list(output) + ["</s>"]
    read = ["<s>"] + list(output)
    stack = lambda per_layer: np.stack([_numpy(w) for w in per_layer])  # noqa: E731
    maps = [AttentionMap("encoder", "encoder self-attention", stack(encoder), list(source), window=window),
            AttentionMap("decoder", "decoder masked self-attention", stack(decoder), predicted, read),
            AttentionMap("cross", "cross-attention (encoder-decoder)", stack(cross), predicted, list(source))]
    return AttentionRecord(name, "seq2seq", maps, primary=2, caption=caption)


def graph_record(name: str, nodes: Sequence[str], edge_index, per_layer: Sequence, classes=None,
                 focus: Optional[int] = None, caption: str = "") -> AttentionRecord:
    """A graph's attention from a model's per-layer edge weights (tensors or arrays).

    Shapes:
        edge_index: (2, E) (source, target); per_layer: L x (E, H_l), a row per edge
    """
    weights = [np.ascontiguousarray(_numpy(w).T) for w in per_layer]  # L x (H_l, E)
    edges = edge_index.detach().cpu().numpy() if hasattr(edge_index, "detach") else np.asarray(edge_index)
    graph = GraphAttention(list(nodes), edges.astype(np.int64), weights, None if classes is None else list(classes),
                           focus)
    return AttentionRecord(name, "graph", caption=caption, graph=graph)


def _numpy(x) -> np.ndarray:
    """A torch tensor (any dtype, any device) or array as a float32 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def as_numpy(x) -> np.ndarray:
    """Public form of the tensor-to-array conversion the builders use."""
    return _numpy(x)
