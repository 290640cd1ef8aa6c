"""Node classification with self-attention along edges: node features -> attention layers -> a class per node.

The shipped ``cora`` model is a GAT (Velickovic et al. 2018, "Graph Attention Networks", ICLR;
transductive setup of section 3.3): features are row-normalised, then
    h = ELU(concat_h GraphAttention_h(Dropout(x)))            K heads of size F'
    logits = mean_h GraphAttention_h(Dropout(h))               one head per class score
with dropout on the inputs of both layers and on the attention weights, self-loops on every node,
and every attention restricted to the edges of the graph (seqattn.nn.graph_attention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.models.config import Config, bounded
from seqattn.nn.encoder import MAX_D_FF, MAX_D_MODEL, MAX_HEADS, MAX_LAYERS
from seqattn.nn.graph_attention import GRAPH_SCORES, GraphMultiHeadAttention, add_self_loops


MAX_FEATURES = 10_000_000  # values per node's input vector (bag-of-words graphs reach a few thousand)
MAX_CLASSES = 100_000
MAX_PROPAGATION_STEPS = 100  # APPNP uses 10; each step is one pass over every edge


@dataclass
class NodeClassifierConfig(Config):
    """Hyper-parameters and classes of ``NodeClassifier``; saved as the model's config.json.

    Raises (constructor, ``from_dict``):
        ConfigError: a value outside its field's rule (seqattn.models.config).
    """

    in_features: int = bounded(0, min=0, max=MAX_FEATURES)  # size F of each node's feature vector
    # class id (as in the labels file) of each output, and its readable name ([] = the ids)
    classes: list[str] = bounded(default_factory=list, max_items=MAX_CLASSES)
    class_names: list[str] = bounded(default_factory=list, max_items=MAX_CLASSES)
    d_head: int = bounded(8, min=1, max=MAX_D_MODEL)  # size F' of each hidden head
    n_heads: int = bounded(8, min=1, max=MAX_HEADS)  # hidden heads K
    n_layers: int = bounded(2, min=1, max=MAX_LAYERS)  # attention layers; the last one outputs the class logits
    out_heads: int = bounded(1, min=1, max=MAX_HEADS)  # heads of the output layer, averaged
    score: str = bounded("gat", choices=GRAPH_SCORES)  # "gat", "dot" or "additive" (seqattn.nn.graph_attention)
    dropout: float = bounded(0.6, min=0.0, below=1.0)  # on each layer's input
    attention_dropout: float = bounded(0.6, min=0.0, below=1.0)  # on the attention weights
    normalize_features: bool = True  # divide each feature row by its sum (GCN/GAT preprocessing)
    # the output layer's attention applied this many times (1 = GAT), keeping a share of its own
    # values each step (APPNP's alpha)
    propagation_steps: int = bounded(1, min=1, max=MAX_PROPAGATION_STEPS)
    teleport: float = bounded(0.0, min=0.0, below=1.0)

    def check_trained(self) -> None:
        if self.in_features < 1:
            raise self.invalid("in_features", f"must be >= 1 for a trained model, got {self.in_features}")
        if not self.classes:
            raise self.invalid("classes", "must hold at least one class, got none")

    def display_names(self) -> list[str]:
        """What to print for each class: its name if known, else its id."""
        return self.class_names if len(self.class_names) == len(self.classes) else list(self.classes)


def sparse_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout on the stored values of a sparse COO tensor (the zeros would stay zero anyway).

    Shapes:
        x: (N, F) sparse COO  ->  (N, F) sparse COO
    """
    if not training or p == 0.0:
        return x
    x = x.coalesce()
    return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, True), x.shape, check_invariants=False)


class NodeClassifier(nn.Module):
    """Stacked multi-head attention along edges with a class score per node (GAT).

    Args:
        cfg: a ``NodeClassifierConfig`` with ``in_features`` and ``classes`` filled in.
    Shapes:
        x: (N, in_features) float32, dense or sparse COO (``features_tensor``), edge_index: (2, E) without self-loops (they are added here)
        -> logits: (N, n_classes) [, per layer (E + N, heads) attention weights and the
           (2, E + N) edge_index with self-loops they belong to]
    """

    def __init__(self, cfg: NodeClassifierConfig):
        super().__init__()
        self.cfg = cfg
        layers = []
        width = cfg.in_features
        for layer in range(cfg.n_layers):
            last = layer == cfg.n_layers - 1
            layers.append(GraphMultiHeadAttention(
                width, len(cfg.classes) if last else cfg.d_head, cfg.out_heads if last else cfg.n_heads,
                score=cfg.score, concat=not last, dropout=cfg.attention_dropout,
                steps=cfg.propagation_steps if last else 1, teleport=cfg.teleport if last else 0.0))
            width = cfg.n_heads * cfg.d_head
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, edge_index: Tensor, return_weights: bool = False):
        edge_index = add_self_loops(edge_index, x.shape[0])  # (2, E + N)
        all_weights = []
        h = x
        for layer_number, layer in enumerate(self.layers):
            h = sparse_dropout(h, self.cfg.dropout, self.training) if h.is_sparse else \
                F.dropout(h, self.cfg.dropout, self.training)
            h, weights = layer(h, edge_index)  # (N, H * F') hidden, (N, n_classes) last
            if layer_number < len(self.layers) - 1:
                h = F.elu(h)
            if return_weights:  # (E + N, H) per layer: kept only when asked for, they are O(E * H)
                all_weights.append(weights)
        return (h, all_weights, edge_index) if return_weights else h


# --------------------------------------------------------------------------- graph-level (N -> 1)


@dataclass
class GraphPredictorConfig(Config):
    """Hyper-parameters of ``GraphPredictor`` (whole-graph regression or binary classification).

    Raises (constructor, ``from_dict``):
        ConfigError: a value outside its field's rule, or n_heads not dividing d_model
            (seqattn.models.config).
    """

    in_features: int = bounded(0, min=0, max=MAX_FEATURES)  # size of each node's input vector (atom features)
    task: str = bounded("regression", choices=("regression", "binary"))  # one value, or one logit
    d_model: int = bounded(64, min=1, max=MAX_D_MODEL)  # node vector size
    n_heads: int = bounded(4, min=1, max=MAX_HEADS)  # attention heads; d_model / n_heads per head
    n_layers: int = bounded(3, min=1, max=MAX_LAYERS)  # attention blocks
    d_ff: int = bounded(128, min=1, max=MAX_D_FF)  # FFN hidden size
    score: str = bounded("dot", choices=GRAPH_SCORES)  # graph attention score ("dot", "additive" or "gat")
    n_edge_types: int = bounded(5, min=1, max=10_000)  # edge types with an attention bias per head (0 = self-loop)
    dropout: float = bounded(0.2, min=0.0, below=1.0)  # residual branches and the head's MLP
    attention_dropout: float = bounded(0.0, min=0.0, below=1.0)  # on the attention weights
    target_mean: float = 0.0  # regression targets are standardised with these (set from train data)
    target_std: float = bounded(1.0, above=0.0)

    def check(self) -> None:
        if self.d_model % self.n_heads:
            raise self.invalid("n_heads", f"must divide d_model ({self.d_model}), got {self.n_heads}")

    def check_trained(self) -> None:
        if self.in_features < 1:
            raise self.invalid("in_features", f"must be >= 1 for a trained model, got {self.in_features}")


class GraphAttentionBlock(nn.Module):
    """A pre-LN Transformer block whose self-attention runs along the edges (plus self-loops).

        h = h + Dropout(W_o EdgeAttention(LayerNorm(h)) )      scores + bias[edge type, head]
        h = h + Dropout(FFN(LayerNorm(h)))

    Shapes:
        h: (N, d_model), edge_index: (2, E) with self-loops, edge_type: (E,) int64
        -> (N, d_model), weights (E, H)
    """

    def __init__(self, cfg: GraphPredictorConfig):
        super().__init__()
        self.norm_attn, self.norm_ffn = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = GraphMultiHeadAttention(cfg.d_model, cfg.d_model // cfg.n_heads, cfg.n_heads, score=cfg.score,
                                            dropout=cfg.attention_dropout)
        self.edge_bias = nn.Embedding(cfg.n_edge_types, cfg.n_heads)
        nn.init.zeros_(self.edge_bias.weight)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.ffn = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h: Tensor, edge_index: Tensor, edge_type: Tensor) -> tuple[Tensor, Tensor]:
        a, weights = self.attn(self.norm_attn(h), edge_index, edge_bias=self.edge_bias(edge_type))
        h = h + self.drop(self.out(a))
        h = h + self.drop(self.ffn(self.norm_ffn(h)))
        return h, weights


class GraphPredictor(nn.Module):
    """Node features -> L edge-attention blocks -> attention pooling -> one output per graph.

    A batch of graphs is one disconnected graph (``batch`` says which graph each node is in), so
    attention never crosses from one graph to another.

    Shapes:
        x: (N, in_features), edge_index: (2, E) without self-loops, edge_type: (E,) int64 in
        [1, n_edge_types), batch: (N,) int64  ->  outputs (G, 1) (standardised for regression)
    """

    def __init__(self, cfg: GraphPredictorConfig):
        super().__init__()
        from seqattn.heads.pooling import AttentionPoolingHead

        self.cfg = cfg
        self.embed = nn.Linear(cfg.in_features, cfg.d_model)
        self.blocks = nn.ModuleList(GraphAttentionBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = AttentionPoolingHead(cfg.d_model, 1, dropout=cfg.dropout)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, batch: Tensor, n_graphs: int) -> Tensor:
        n = x.shape[0]
        if edge_index.numel() and bool((edge_index[0] == edge_index[1]).any()):
            raise ValueError("edge_index must not hold self-loops (they are added here, with edge type 0)")
        looped = add_self_loops(edge_index, n)  # (2, E + N); the loops come last
        types = torch.cat([edge_type, edge_type.new_zeros(n)])  # (E + N,)
        h = self.embed(x)  # (N, d_model)
        for block in self.blocks:
            h, _ = block(h, looped, types)
        outputs, _ = self.head(self.norm(h), batch, n_graphs)  # (G, 1)
        return outputs
