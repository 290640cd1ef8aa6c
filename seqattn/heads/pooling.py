"""N -> 1: one output per set of vectors (a whole graph), by attention pooling (lecture: "one class").

Attention pooling (the readout of Li et al. 2016, "Gated Graph Sequence Neural Networks", and of
the "global attention" pooling in PyG): each node gets a score s_i = w^T tanh(W h_i), the scores
of one graph are normalised by a softmax over its nodes, and the graph vector is the weighted sum
of its node vectors.  A softmax forgets how many nodes there are, and many graph properties grow
with size (a molecule's solubility falls with its mass), so the sum and the element-wise max of
the node vectors are concatenated to it (the sum as in GIN, Xu et al. 2019; sum and max as in
dgl-lifesci's WeightedSumAndMax readout).  An MLP turns the result into the outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.nn.graph_attention import segment_softmax


def segment_sum(h: Tensor, batch: Tensor, n_graphs: int) -> Tensor:
    """Sum of the node vectors of each graph.

    Shapes:
        h: (N, d), batch: (N,) int64 graph of each node  ->  (G, d)
    """
    return h.new_zeros(n_graphs, h.shape[1]).index_add_(0, batch, h)


def segment_max(h: Tensor, batch: Tensor, n_graphs: int) -> Tensor:
    """Element-wise maximum of the node vectors of each graph (0 for a graph without nodes).

    Shapes:
        h: (N, d), batch: (N,) int64  ->  (G, d)
    """
    top = h.new_full((n_graphs, h.shape[1]), -torch.inf)
    top = top.scatter_reduce(0, batch[:, None].expand_as(h), h, reduce="amax", include_self=True)
    return torch.where(torch.isinf(top), torch.zeros_like(top), top)


class AttentionPoolingHead(nn.Module):
    """Graph-level outputs from node vectors: [attention pooling ; sum ; max] -> MLP.

    Args:
        d_model: size of the node vectors.
        n_outputs: outputs per graph (1 for a regression target or a binary class logit).
        d_hidden: hidden size of the MLP.
        dropout: dropout before each linear layer of the MLP.
    Shapes:
        h: (N, d_model), batch: (N,) int64 in [0, n_graphs)  ->  outputs (G, n_outputs),
        weights (N,) (each graph's node weights sum to 1)
    """

    def __init__(self, d_model: int, n_outputs: int, d_hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, 1, bias=False))
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(3 * d_model, d_hidden), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(d_hidden, n_outputs))

    def forward(self, h: Tensor, batch: Tensor, n_graphs: int) -> tuple[Tensor, Tensor]:
        weights = segment_softmax(self.score(h), batch, n_graphs)  # (N, 1)
        pooled = segment_sum(weights * h, batch, n_graphs)  # (G, d)
        graph = torch.cat([pooled, segment_sum(h, batch, n_graphs), segment_max(h, batch, n_graphs)], dim=-1)  # (G, 3d)
        return self.mlp(graph), weights.squeeze(-1)

    @staticmethod
    def loss(outputs: Tensor, targets: Tensor, task: str) -> Tensor:
        """Mean squared error ("regression", standardised targets) or binary cross-entropy ("binary").

        Shapes:
            outputs: (G, 1), targets: (G,)  ->  scalar
        Raises:
            ValueError: unknown task.
        """
        if task == "regression":
            return F.mse_loss(outputs.squeeze(-1), targets)
        if task == "binary":
            return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), targets)
        raise ValueError(f"unknown task {task!r}; expected 'regression' or 'binary'")
