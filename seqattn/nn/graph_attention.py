"""Self-attention along the edges of a graph: each node attends only to its neighbours (and itself).

The lecture's graph case: the nodes are the set of vectors, and the attention matrix is masked by
the adjacency matrix, so node i mixes the values of the nodes j with an edge j -> i.  Computing the
masked N x N matrix would cost O(N^2); here every score is computed once per edge instead, and the
softmax runs over each node's incoming edges (a *segment softmax*), so memory is O(E), never N x N.

Score functions (the core's, evaluated per edge j -> i):
    "dot"       q_i . k_j / sqrt(Dh)                          (Vaswani et al. 2017; graph
                                                               Transformers, Shi et al. 2021)
    "additive"  v^T tanh(q_i + k_j)                           (Bahdanau et al. 2015)
    "gat"       LeakyReLU(a_dst . q_i + a_src . k_j, 0.2)     (Velickovic et al. 2018, GAT: the
                                                               additive score with a LeakyReLU
                                                               and a split vector a = [a_dst; a_src])

Conventions:
    N nodes, E edges, H heads, Dh size of one head.
    edge_index: (2, E) int64; row 0 the source j, row 1 the target i of the message j -> i (the
    PyTorch Geometric convention).  Node i attends over the edges whose target is i.  An
    undirected edge is two directed ones.  Node tensors are node-first: (N, H, Dh).
    A node without incoming edges receives nothing (zero output); ``add_self_loops`` gives every
    node the edge i -> i, so that it attends at least to itself.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GraphScore = Literal["dot", "additive", "gat"]
GRAPH_SCORES: tuple[str, ...] = ("dot", "additive", "gat")
DEFAULT_EDGE_CHUNK = 1 << 18  # edges per chunk: the (chunk, H, Dh) temporaries stay ~64 MB at H * Dh = 64


# --------------------------------------------------------------------------- edges


def check_edge_index(edge_index: Tensor, n_nodes: int) -> None:
    """Raise ValueError unless ``edge_index`` is a (2, E) integer tensor of ids in [0, n_nodes)."""
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be (2, E); got {tuple(edge_index.shape)}")
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"edge_index must hold integer node ids, got {edge_index.dtype}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n_nodes):
        raise ValueError(f"edge_index names nodes outside [0, {n_nodes})")


def add_self_loops(edge_index: Tensor, n_nodes: int) -> Tensor:
    """Drop the edges i -> i that are there and append exactly one self-loop per node.

    The self-loops come last: the first E' columns are the original non-loop edges in order,
    the last N columns are 0 -> 0, 1 -> 1, ..., so per-edge weights stay easy to line up.

    Shapes:
        edge_index: (2, E)  ->  (2, E' + N), E' = E minus the self-loops it had
    Raises:
        ValueError: see ``check_edge_index``.
    """
    check_edge_index(edge_index, n_nodes)
    edge_index = edge_index.long()
    keep = edge_index[0] != edge_index[1]
    loops = torch.arange(n_nodes, device=edge_index.device).expand(2, n_nodes)
    return torch.cat([edge_index[:, keep], loops], dim=1)


def segment_softmax(scores: Tensor, index: Tensor, n_segments: int) -> Tensor:
    """Softmax of ``scores`` within each group of entries that share ``index`` (one group per node).

    softmax_e = exp(s_e - m_i) / sum_{e' -> i} exp(s_e' - m_i), with m_i the largest score of
    segment i (for numerical stability; the softmax does not depend on it, so no gradient flows
    through it).  Memory O(E * H + N * H).

    Shapes:
        scores: (E, H), index: (E,) int64 in [0, n_segments)  ->  (E, H); each segment sums to 1
    """
    heads = scores.shape[1]
    expanded = index[:, None].expand(-1, heads)
    top = scores.new_full((n_segments, heads), -math.inf)
    top.scatter_reduce_(0, expanded, scores.detach(), reduce="amax", include_self=True)
    exp = torch.exp(scores - top[index])  # (E, H); every entry's own segment max is finite
    total = scores.new_zeros(n_segments, heads).index_add_(0, index, exp)  # (N, H)
    return exp / total[index]


def _chunks(n_edges: int, chunk: int):
    for start in range(0, n_edges, chunk):
        yield slice(start, min(start + chunk, n_edges))


def edge_scores(
    q: Tensor,
    k: Tensor,
    edge_index: Tensor,
    *,
    score: GraphScore = "dot",
    v_score: Tensor | None = None,
    a_src: Tensor | None = None,
    a_dst: Tensor | None = None,
    negative_slope: float = 0.2,
    edge_chunk: int = DEFAULT_EDGE_CHUNK,
) -> Tensor:
    """Unnormalised attention score of every edge j -> i and every head.

    "dot" and "additive" gather (chunk, H, Dh) query/key pairs ``edge_chunk`` edges at a time;
    "gat" splits a^T [q_i ; k_j] into two per-node terms and needs only O(N * H) extra memory.

    Args:
        v_score: (H, Dh) the vector v of the additive score.
        a_src, a_dst: (H, Dh) the two halves of GAT's vector a.
        negative_slope: LeakyReLU slope of the GAT score (0.2 in the paper).
    Shapes:
        q, k: (N, H, Dh), edge_index: (2, E)  ->  scores: (E, H)
    Raises:
        ValueError: unknown score, or the score's parameters are missing.
    """
    src, dst = edge_index[0], edge_index[1]
    if score == "gat":
        if a_src is None or a_dst is None:
            raise ValueError("the gat score needs a_src and a_dst, the two halves of the vector a")
        per_dst = (q * a_dst).sum(-1)  # (N, H)
        per_src = (k * a_src).sum(-1)  # (N, H)
        return F.leaky_relu(per_dst[dst] + per_src[src], negative_slope)
    if score == "additive" and v_score is None:
        raise ValueError("additive scores need v_score, the per-head vector v")
    if score not in ("dot", "additive"):
        raise ValueError(f"unknown score function {score!r}; expected one of {GRAPH_SCORES}")
    parts = []
    for part in _chunks(src.numel(), edge_chunk):
        q_e, k_e = q[dst[part]], k[src[part]]  # (chunk, H, Dh)
        if score == "dot":
            parts.append((q_e * k_e).sum(-1) / math.sqrt(q.shape[-1]))
        else:
            parts.append((torch.tanh(q_e + k_e) * v_score).sum(-1))
    if not parts:
        return q.new_zeros(0, q.shape[1])
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def graph_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    edge_index: Tensor,
    *,
    score: GraphScore = "dot",
    v_score: Tensor | None = None,
    a_src: Tensor | None = None,
    a_dst: Tensor | None = None,
    negative_slope: float = 0.2,
    dropout: float = 0.0,
    steps: int = 1,
    teleport: float = 0.0,
    edge_bias: Tensor | None = None,
    edge_chunk: int = DEFAULT_EDGE_CHUNK,
) -> tuple[Tensor, Tensor]:
    """Attention restricted to the edges of a graph, computed sparsely.

    out_i = sum_{j -> i} alpha_ij v_j,   alpha_ij = softmax over the edges into i of score(q_i, k_j).

    Equal to dense attention with the adjacency matrix as mask (A[i, j] = 1 for an edge j -> i),
    but memory is O(E * H + N * H * Dh + edge_chunk * H * Dh), never N x N: scores and weights
    live on the edges, and the weighted values are summed into their targets with ``index_add``
    ``edge_chunk`` edges at a time.  Duplicate edges count as separate keys.

    Args:
        edge_index: (2, E) source and target ids (see module docstring); add self-loops first
            (``add_self_loops``) so that every node attends to itself.
        score: "dot", "additive" or "gat"; see ``edge_scores`` for their parameters.
        dropout: dropout on the attention weights (GAT drops 60 % of them while training).
        steps, teleport: propagate ``steps`` times with the same weights, keeping a share
            ``teleport`` of the values each time: o_0 = v, o_{t+1} = (1 - teleport) A o_t + teleport v
            (personalized PageRank as in APPNP, Gasteiger et al. 2019, over the learned attention
            A instead of a fixed normalised adjacency).  The default, one step without teleport,
            is plain attention.
        edge_bias: (E, H) added to the scores before the softmax, e.g. a learned bias per bond
            type (Graphormer's edge encoding, Ying et al. 2021); None for none.
        edge_chunk: edges processed at once; bounds the (chunk, H, Dh) temporaries.
    Shapes:
        q, k, v: (N, H, Dh), edge_index: (2, E)  ->  out: (N, H, Dh), weights: (E, H)
        (weights[e, h] belongs to the edge edge_index[:, e]; nodes without incoming edges get 0.)
    Raises:
        ValueError: q/k/v shapes disagree, a bad edge_index, an unknown score, edge_chunk < 1.
    """
    if q.dim() != 3 or q.shape[:2] != k.shape[:2] or k.shape[:2] != v.shape[:2]:
        raise ValueError(f"q, k, v must be (N, H, Dh) with equal N and H; got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if edge_chunk < 1:
        raise ValueError(f"edge_chunk must be >= 1, got {edge_chunk}")
    if steps < 1 or not 0.0 <= teleport < 1.0:
        raise ValueError(f"need steps >= 1 and 0 <= teleport < 1; got steps={steps}, teleport={teleport}")
    n_nodes = q.shape[0]
    check_edge_index(edge_index, n_nodes)
    edge_index = edge_index.long()
    scores = edge_scores(q, k, edge_index, score=score, v_score=v_score, a_src=a_src, a_dst=a_dst,
                         negative_slope=negative_slope, edge_chunk=edge_chunk)  # (E, H)
    if edge_bias is not None:
        if edge_bias.shape != scores.shape:
            raise ValueError(f"edge_bias must be (E, H) = {tuple(scores.shape)}, got {tuple(edge_bias.shape)}")
        scores = scores + edge_bias
    weights = segment_softmax(scores, edge_index[1], n_nodes)  # (E, H)
    mixing = F.dropout(weights, dropout) if dropout else weights
    out = v
    for _ in range(steps):
        mixed = aggregate(out, edge_index, mixing, edge_chunk)
        out = mixed if teleport == 0.0 else (1 - teleport) * mixed + teleport * v
    return out, weights


def aggregate(v: Tensor, edge_index: Tensor, weights: Tensor, edge_chunk: int = DEFAULT_EDGE_CHUNK) -> Tensor:
    """Weighted sum of the values of each node's sources: out_i = sum_{j -> i} w_ji v_j.

    Sums with ``index_add`` ``edge_chunk`` edges at a time, so the (chunk, H, Dh) messages are the
    only temporaries.

    Shapes:
        v: (N, H, Dh), edge_index: (2, E), weights: (E, H)  ->  (N, H, Dh)
    """
    src, dst = edge_index[0], edge_index[1]
    out = v.new_zeros(v.shape)  # (N, H, Dh)
    for part in _chunks(src.numel(), edge_chunk):
        out.index_add_(0, dst[part], weights[part, :, None] * v[src[part]])  # (chunk, H, Dh) into (N, H, Dh)
    return out


# --------------------------------------------------------------------------- module


class GraphMultiHeadAttention(nn.Module):
    """Multi-head self-attention along edges: a GAT layer, or its dot-product (Transformer) form.

    score "gat" is GAT's layer exactly (Velickovic et al. 2018, eq. 1-4): one shared projection
    z = W h serves as query, key and value of every head, e_ij = LeakyReLU(a^T [z_i ; z_j]).
    "dot" and "additive" project queries, keys and values separately (W_q, W_k, W_v), as the
    lecture's self-attention does.  The heads are concatenated (``concat``, hidden layers) or
    averaged (an output layer, as in GAT), and a bias is added; there is no output projection W_o,
    so that a one-head output layer can give class logits directly.

    Args:
        in_features: size of each input node vector.
        d_head: size Dh of each head's output.
        n_heads: heads H.
        score: "gat", "dot" or "additive".
        concat: concatenate heads (-> H * Dh) or average them (-> Dh).
        dropout: dropout on the attention weights while training.
        negative_slope: LeakyReLU slope of the gat score.
        steps, teleport: propagation with the layer's attention (see ``graph_attention``).
    Shapes:
        x: (N, in_features) dense or sparse COO, edge_index: (2, E), edge_bias: (E, H) or None
        ->  out: (N, H * Dh) or (N, Dh), weights: (E, H)
    Raises:
        ValueError: unknown score; see ``graph_attention`` for the rest.
    """

    def __init__(self, in_features: int, d_head: int, n_heads: int, *, score: GraphScore = "gat",
                 concat: bool = True, dropout: float = 0.0, negative_slope: float = 0.2, steps: int = 1,
                 teleport: float = 0.0):
        super().__init__()
        if score not in GRAPH_SCORES:
            raise ValueError(f"unknown score function {score!r}; expected one of {GRAPH_SCORES}")
        self.n_heads, self.d_head, self.score = n_heads, d_head, score
        self.concat, self.dropout, self.negative_slope = concat, dropout, negative_slope
        self.steps, self.teleport = steps, teleport
        projections = 1 if score == "gat" else 3
        self.project = nn.Linear(in_features, projections * n_heads * d_head, bias=False)
        self.bias = nn.Parameter(torch.zeros(n_heads * d_head if concat else d_head))
        if score == "gat":
            self.a_src = nn.Parameter(torch.empty(n_heads, d_head))
            self.a_dst = nn.Parameter(torch.empty(n_heads, d_head))
        if score == "additive":
            self.v_score = nn.Parameter(torch.empty(n_heads, d_head))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot (Xavier) initialisation, as in GAT's reference code."""
        nn.init.xavier_uniform_(self.project.weight)
        for name in ("a_src", "a_dst", "v_score"):
            if hasattr(self, name):
                nn.init.xavier_uniform_(getattr(self, name))
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_bias: Tensor | None = None,
                edge_chunk: int = DEFAULT_EDGE_CHUNK) -> tuple[Tensor, Tensor]:
        n = x.shape[0]
        if x.is_sparse:  # bag-of-words features: a sparse product costs O(nnz), not O(N * in_features)
            projected = torch.sparse.mm(x, self.project.weight.t())  # (N, P * H * Dh)
        else:
            projected = self.project(x)  # (N, P * H * Dh)
        if self.score == "gat":
            q = k = v = projected.view(n, self.n_heads, self.d_head)  # (N, H, Dh)
        else:
            q, k, v = projected.view(n, 3, self.n_heads, self.d_head).unbind(1)  # 3 x (N, H, Dh)
        out, weights = graph_attention(
            q, k, v, edge_index, score=self.score, v_score=getattr(self, "v_score", None),
            a_src=getattr(self, "a_src", None), a_dst=getattr(self, "a_dst", None),
            negative_slope=self.negative_slope, dropout=self.dropout if self.training else 0.0,
            steps=self.steps, teleport=self.teleport, edge_bias=edge_bias, edge_chunk=edge_chunk)
        out = out.reshape(n, -1) if self.concat else out.mean(dim=1)  # (N, H * Dh) or (N, Dh)
        return out + self.bias, weights
