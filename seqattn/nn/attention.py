"""Self-attention: score functions, full and truncated (banded) attention, multi-head attention.

Everything here follows the self-attention lecture (../shared/seeds): a query q_i is compared
with every key k_j by a *score function* (scaled dot-product or additive), the scores of one
query are normalised by a softmax into attention weights, and the output is the weighted sum of
the values v_j.  *Truncated* self-attention (the lecture's speech case; Longformer's sliding
window) lets position i see only the positions j with |i - j| <= w.

Conventions used throughout:
    B batch, H heads, N sequence length, Dh size of one head, w window half-width.
    key_padding_mask: (B, N) bool, True where the position is padding (PyTorch's convention).
    Masked scores are filled with a large *finite* negative number, never -inf: a row whose
    keys are all masked would otherwise give NaN that poisons the gradients of K and V.

Attention weights come back in one of two documented layouts:
    full attention (window=None):  (B, H, N, N)        weights[b, h, i, j]
    truncated attention (window=w): (B, H, N, 2w + 1)   weights[b, h, i, s] for j = i + s - w
The band layout is O(N * w) like the computation itself; ``band_to_dense`` expands it for
visualising short sequences.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.nn import native

Score = Literal["dot", "additive"]
SCORES: tuple[str, ...] = ("dot", "additive")
# Scores -> weights.  The lecture: "softmax, or another activation (ReLU works too)".  Only softmax
# normalises a row to 1; relu and sigmoid weigh each key on its own; sparsemax (Martins & Astudillo
# 2016, from the entmax package) normalises to 1 with exact zeros.  The fused kernels are softmax only.
Activation = Literal["softmax", "relu", "sigmoid", "sparsemax"]
ACTIVATIONS: tuple[str, ...] = ("softmax", "relu", "sigmoid", "sparsemax")
MASK_VALUE = -1e9  # finite "minus infinity" (see module docstring)
# Inference reads K and V in place (``_banded_sdpa_views``) for one sequence, or for a batch of
# sequences at least this many query blocks long.  That path makes up to three SDPA calls per
# sequence; on a batch of short sequences one call over copied windows is faster (measured, 4
# heads of 64: 64 x 40 tokens 3x, 32 x 100 tokens 1.8x; from 25 blocks per sequence on, the views
# are as fast or faster).
VIEWS_MIN_BLOCKS = 32
# On a CUDA GPU a truncated call up to this length runs as one dense SDPA call with a band mask
# when it has at most GPU_DENSE_MAX_SCORES scores, batch x heads x N^2 (``dense_is_faster``).
GPU_DENSE_MAX_N, GPU_DENSE_MAX_SCORES = 2048, 1 << 26


# --------------------------------------------------------------------------- masks and scores


def band_mask(n_queries: int, n_keys: int, window: int | None, device=None) -> Tensor:
    """Boolean mask of allowed (query, key) pairs: |i - j| <= window.

    Shapes:
        -> (n_queries, n_keys) bool, True where attention is allowed.
    """
    i = torch.arange(n_queries, device=device)[:, None]
    j = torch.arange(n_keys, device=device)[None, :]
    if window is None:
        return torch.ones(n_queries, n_keys, dtype=torch.bool, device=device)
    return (i - j).abs() <= window


def dot_product_scores(q: Tensor, k: Tensor) -> Tensor:
    """Scaled dot-product scores q k^T / sqrt(Dh) (Vaswani et al. 2017; lecture: "Dot-product").

    Shapes:
        q: (..., Nq, Dh), k: (..., Nk, Dh)  ->  (..., Nq, Nk)
    """
    return torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])


def additive_scores(q: Tensor, k: Tensor, v_score: Tensor) -> Tensor:
    """Additive scores v^T tanh(q'_i + k'_j) (Bahdanau et al. 2015; lecture: "Additive").

    ``q`` and ``k`` are already projected (q' = W_q q, k' = W_k k); ``v_score`` is the learned
    vector v of each head.  Memory is O(Nq * Nk * Da): use it on short sequences or inside
    the banded layout, where Nk is the band.

    Shapes:
        q: (B, H, ..., Nq, Da), k: (B, H, ..., Nk, Da), v_score: (H, Da)  ->  (B, H, ..., Nq, Nk)
    """
    hidden = torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3))  # (B, H, ..., Nq, Nk, Da)
    v = v_score.view(1, v_score.shape[0], *([1] * (q.dim() - 3)), v_score.shape[1], 1)  # (1, H, 1.., Da, 1)
    return torch.matmul(hidden, v).squeeze(-1)


def _scores(q: Tensor, k: Tensor, score: Score, v_score: Tensor | None) -> Tensor:
    if score == "dot":
        return dot_product_scores(q, k)
    if score == "additive":
        if v_score is None:
            raise ValueError("additive scores need v_score, the per-head vector v")
        return additive_scores(q, k, v_score)
    raise ValueError(f"unknown score function {score!r}; expected one of {SCORES}")


def _masked_softmax(scores: Tensor, allowed: Tensor, activation: str = "softmax") -> Tensor:
    """Scores -> weights over the last axis where ``allowed``; rows with nothing allowed become all zero.

    ``activation`` (see ``ACTIVATIONS``): softmax (the default), sparsemax (normalised, sparse),
    relu or sigmoid (element-wise, zero where not allowed).
    Raises:
        ValueError: an unknown activation.
    """
    if activation == "softmax":
        weights = torch.softmax(scores.masked_fill(~allowed, MASK_VALUE), dim=-1)
    elif activation == "sparsemax":
        from entmax import sparsemax

        weights = sparsemax(scores.masked_fill(~allowed, MASK_VALUE), dim=-1)
    elif activation == "relu":
        return torch.relu(scores) * allowed
    elif activation == "sigmoid":
        return torch.sigmoid(scores) * allowed
    else:
        raise ValueError(f"unknown attention activation {activation!r}; expected one of {ACTIVATIONS}")
    return weights * allowed.any(dim=-1, keepdim=True)


def _check_qkv(q: Tensor, k: Tensor, v: Tensor, window: int | None) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"q, k, v must be (B, H, N, Dh); got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[:3] != k.shape[:3] or k.shape[:3] != v.shape[:3]:
        raise ValueError(f"q, k, v disagree in (B, H, N): {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if window is not None and window < 0:
        raise ValueError(f"window must be >= 0 or None, got {window}")


# --------------------------------------------------------------------------- attention functions


def dense_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    window: int | None = None,
    key_padding_mask: Tensor | None = None,
    score: Score = "dot",
    v_score: Tensor | None = None,
    relative_bias: Tensor | None = None,
    dropout: float = 0.0,
    activation: Activation = "softmax",
) -> tuple[Tensor, Tensor]:
    """Attention with the full N x N score matrix (the reference path; O(N^2) memory).

    softmax(score(q_i, k_j) + b_{j-i}) v over the keys j allowed by the band |i - j| <= window
    (all keys when window is None) and by the padding mask.

    Args:
        relative_bias: optional (H, 2w + 1) learned bias per head and offset j - i (Shaw et al.
            2018 style relative position); only with a window.
    Shapes:
        q, k, v: (B, H, N, Dh)  ->  out: (B, H, N, Dh), weights: (B, H, N, N)
    Raises:
        ValueError: window < 0, q/k/v shapes disagree, or an unknown score.
    """
    _check_qkv(q, k, v, window)
    n = q.shape[2]
    scores = _scores(q, k, score, v_score)  # (B, H, N, N)
    if relative_bias is not None:
        if window is None:
            raise ValueError("relative_bias needs a window")
        offset = torch.arange(n, device=q.device)[None, :] - torch.arange(n, device=q.device)[:, None]
        index = (offset + window).clamp(0, 2 * window)  # (N, N); outside the band masked below
        scores = scores + relative_bias[:, index].unsqueeze(0)
    allowed = band_mask(n, n, window, q.device)[None, None]  # (1, 1, N, N)
    if key_padding_mask is not None:
        allowed = allowed & ~key_padding_mask[:, None, None, :]
    weights = _masked_softmax(scores, allowed, activation)
    out = torch.matmul(F.dropout(weights, dropout) if dropout else weights, v)
    return out, weights


def default_block_size(window: int, device: torch.device | str | None = None) -> int:
    """Query block size for the banded layout: on the CPU 16 for w <= 16, else 32; on a CUDA
    device 64 for w <= 64, else 128.

    Each block of B queries reads B + 2w keys, so the work is N (B + 2w) against the useful
    N (2w + 1): small blocks waste less, but SDPA's CPU kernel works on tiles of 32 queries and
    loses speed below that.  Measured with ``seqattn benchmark attention`` (fp32, 4 heads of 64,
    2 threads) over N in {1024, ..., 65536} and w in {16, 64, 256}: B = 16-32 was best for
    w = 16, 32 for w = 64 and 32-64 for w = 256, at every N (the old rule B = w, up to 128, was
    up to 1.4x slower at w >= 64).  N only decides whether the banded layout is used at all:
    sequences with N <= B + 2w take one full SDPA call (``fused_attention``).

    On a GPU each SDPA call has a fixed cost and larger tiles pay: measured on an H200 (fp32,
    4 heads of 64, N in {16384, 65536}, w in {16, 64, 256}; docs/performance.md, "On a GPU"),
    these sizes made the forward and the training step 1.5-2.0x faster than the CPU's 16-32 at
    N = 65536 (w = 256: training step 15.5 -> 7.7 ms with B = 128); B = 256 gained nothing more.
    """
    if device is not None and torch.device(device).type == "cuda":
        return 64 if window <= 64 else 128
    return 16 if window <= 16 else 32


def dense_is_faster(device: torch.device | str, n: int, scores: int) -> bool:
    """Whether truncated attention over N positions should run as one dense SDPA call with a band
    mask instead of SDPA per query block; ``scores`` is batch x heads x N^2, the dense call's work.

    Only on a CUDA GPU, where each SDPA call has a fixed cost of about 0.8 ms below N = 16384
    whatever its size: measured on an H200 (fp32, batch 1, 4 heads of 64; docs/benchmarks-gpu.json),
    dense SDPA took 0.16 ms against 0.82-0.85 for the blocks at N = 1024 (training step 0.49-0.56
    against 1.84-2.62 ms) for w in {16, 64, 256}, and at N = 4096, 2^26 scores, it was a toss-up
    (0.71 against 0.87-1.01 ms; training 2.07-2.12 against 1.86-2.97).  So dense up to N = 2048
    (between the two; not measured itself) and up to those 2^26 scores, beyond which its N^2 work
    (and its float mask, at most that size) outgrows the blocks' N (block + 2w); batches were not
    measured.  On the CPU the C++ kernel or the blocks win at every N above one block
    (``default_block_size``).
    """
    return torch.device(device).type == "cuda" and n <= GPU_DENSE_MAX_N and scores <= GPU_DENSE_MAX_SCORES


def _blocks(x: Tensor, block: int, n_blocks: int) -> Tensor:
    """(B, H, N, D) -> (B, H, n_blocks, block, D), zero-padded at the end."""
    pad = n_blocks * block - x.shape[2]
    return F.pad(x, (0, 0, 0, pad)).view(x.shape[0], x.shape[1], n_blocks, block, x.shape[3])


def _key_windows(x: Tensor, window: int, block: int, n_blocks: int) -> Tensor:
    """Key/value windows of each query block.

    Block b holds queries [b*block, (b+1)*block) and sees keys [b*block - w, (b+1)*block + w).

    Shapes:
        x: (B, H, N, D)  ->  (B, H, n_blocks, block + 2w, D)
    """
    span = block + 2 * window
    pad_end = n_blocks * block - x.shape[2] + window
    padded = F.pad(x, (0, 0, window, pad_end))  # (B, H, n_blocks*block + 2w, D)
    return padded.unfold(2, span, block).transpose(-1, -2)


class _BlockWindows(torch.autograd.Function):
    """The key (or value) window of every query block as one contiguous batch, with a cheap backward.

    Forward copies the overlapping windows once: row b of the result is x[b*block - w :
    (b+1)*block + w] (zeros outside the sequence).  It works on the sequence-major view
    (B, N, H, D), where the projections of ``MultiHeadSelfAttention`` are nearly contiguous, so
    the padding copy moves whole rows of H * D numbers.  ``Tensor.unfold``'s own backward
    (``unfold_backward``) took a quarter of a training step at N = 16384; here the backward adds
    the window gradients back with ceil(span / block) strided adds.

    Shapes:
        x: (B, H, N, D)  ->  (B * n_blocks, H, block + 2w, D)
    """

    @staticmethod
    def forward(ctx, x: Tensor, window: int, block: int, n_blocks: int) -> Tensor:
        bsz, heads, n, dim = x.shape
        ctx.shape, ctx.params = x.shape, (window, block, n_blocks)
        span = block + 2 * window
        padded = F.pad(x.transpose(1, 2), (0, 0, 0, 0, window, n_blocks * block - n + window))  # (B, N', H, D)
        windows = padded.unfold(1, span, block)  # (B, nb, H, D, span), a view
        return windows.permute(0, 1, 2, 4, 3).reshape(bsz * n_blocks, heads, span, dim)

    @staticmethod
    def backward(ctx, grad: Tensor):
        bsz, heads, n, dim = ctx.shape
        window, block, n_blocks = ctx.params
        span = block + 2 * window
        chunks = -(-span // block)
        grad = grad.view(bsz, n_blocks, heads, span, dim)
        padded = grad.new_zeros(bsz, n_blocks + chunks, block, heads, dim)  # x padded by w in front, blocked
        for j in range(chunks):  # window rows [j*block, (j+1)*block) come from block b + j
            rows = min(block, span - j * block)
            padded[:, j:j + n_blocks, :rows] += grad[:, :, :, j * block:j * block + rows].transpose(2, 3)
        return padded.view(bsz, -1, heads, dim)[:, window:window + n].transpose(1, 2), None, None, None


def _query_blocks(q: Tensor, block: int, n_blocks: int) -> Tensor:
    """(B, H, N, D) -> (B * n_blocks, H, block, D), zero-padded at the end (through the (B, N, H, D) view)."""
    bsz, heads, n, dim = q.shape
    padded = F.pad(q.transpose(1, 2), (0, 0, 0, 0, 0, n_blocks * block - n))  # (B, nb * block, H, D)
    return padded.view(bsz, n_blocks, block, heads, dim).transpose(2, 3).reshape(bsz * n_blocks, heads, block, dim)


def banded_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    window: int,
    *,
    key_padding_mask: Tensor | None = None,
    score: Score = "dot",
    v_score: Tensor | None = None,
    relative_bias: Tensor | None = None,
    dropout: float = 0.0,
    block: int | None = None,
    activation: Activation = "softmax",
) -> tuple[Tensor, Tensor]:
    """Truncated self-attention: position i sees only |i - j| <= window.

    softmax(score(q_i, k_j) + b_{j-i}) v restricted to a band ("truncated self-attention",
    the speech example of the lecture; Longformer's sliding window).  Queries are cut into
    blocks of ``block`` positions; each block attends to its own keys and the ``window`` keys
    on either side, so memory is O(N * (block + 2 * window)) = O(N * window), never N x N.

    Args:
        window: half-width w >= 0.
        relative_bias: optional (H, 2w + 1) bias per head and offset j - i.
        block: query block size; default ``default_block_size(window)``.
    Shapes:
        q, k, v: (B, H, N, Dh)  ->  out: (B, H, N, Dh), weights: (B, H, N, 2w + 1)
        (weights[..., i, s] belongs to key j = i + s - w; zero outside the sequence.)
    Raises:
        ValueError: window < 0, q/k/v shapes disagree, or an unknown score.
    """
    _check_qkv(q, k, v, window)
    bsz, heads, n, _ = q.shape
    block = block or default_block_size(window)
    n_blocks = max(1, -(-n // block))
    span = block + 2 * window

    q_blocks = _blocks(q, block, n_blocks)  # (B, H, nb, block, Dh)
    k_windows = _key_windows(k, window, block, n_blocks)  # (B, H, nb, span, Dh)
    v_windows = _key_windows(v, window, block, n_blocks)
    scores = _scores(q_blocks, k_windows, score, v_score)  # (B, H, nb, block, span)

    # Query r of a block and key c of its window are at offset j - i = c - w - r.
    r = torch.arange(block, device=q.device)[:, None]
    c = torch.arange(span, device=q.device)[None, :]
    slot = c - r  # (block, span): band slot s = j - i + w
    in_band = (slot >= 0) & (slot <= 2 * window)
    if relative_bias is not None:
        scores = scores + relative_bias[:, slot.clamp(0, 2 * window)][None, :, None]

    key_valid = torch.ones(bsz, n, dtype=torch.bool, device=q.device)
    if key_padding_mask is not None:
        key_valid = ~key_padding_mask
    key_valid = _key_windows(key_valid[:, None, :, None], window, block, n_blocks)  # (B,1,nb,span,1)
    allowed = in_band[None, None, None] & key_valid.squeeze(-1)[:, :, :, None, :]  # (B,1,nb,block,span)

    weights = _masked_softmax(scores, allowed, activation)
    out = torch.matmul(F.dropout(weights, dropout) if dropout else weights, v_windows)
    out = out.reshape(bsz, heads, n_blocks * block, -1)[:, :, :n]

    # Band layout: slot s of query r sits at window column c = r + s.
    gather = (r + torch.arange(2 * window + 1, device=q.device)[None, :])  # (block, 2w+1)
    band = torch.gather(weights, -1, gather.expand(bsz, heads, n_blocks, block, 2 * window + 1))
    band = band.reshape(bsz, heads, n_blocks * block, 2 * window + 1)[:, :, :n]
    return out, band


def _float_mask(allowed: Tensor, bias: Tensor | None) -> Tensor:
    """Additive float mask for SDPA: 0 (or the bias) where allowed, MASK_VALUE elsewhere.

    A float mask, not a boolean one: SDPA converts boolean masks to float on every call.
    """
    mask = torch.zeros(allowed.shape, dtype=torch.float32, device=allowed.device).masked_fill(~allowed, MASK_VALUE)
    return mask if bias is None else mask + bias


def _row_windows(x: Tensor, first_row: int, count: int, step: int, rows: int) -> Tensor:
    """Overlapping row windows of a sequence-major tensor as a strided view (no copy).

    Window j holds rows first_row + j * step + [0, rows) of x.  SDPA's fused CPU kernel reads
    such views in place (../shared/notes, trap 3).

    Shapes:
        x: (L, H, D), last stride 1  ->  (count, H, rows, D)
    """
    row_stride, head_stride, _ = x.stride()
    return x.as_strided((count, x.shape[1], rows, x.shape[2]), (step * row_stride, head_stride, row_stride, 1),
                        x.storage_offset() + first_row * row_stride)


def _banded_sdpa_views(q: Tensor, k: Tensor, v: Tensor, window: int, block: int, in_band: Tensor,
                       bias: Tensor | None, key_padding_mask: Tensor | None) -> Tensor:
    """Inference path of the banded layout: SDPA on strided views of Q, K, V, nothing copied.

    The training path copies every key window (span / block times the keys); here the query
    blocks whose windows lie inside the sequence (all but about (2w + block) / block of them)
    read K and V in place through ``_row_windows``, with one (block, span) mask broadcast over
    all blocks.  Only the blocks at the two ends, whose windows reach past the sequence, work on
    small zero-padded copies with a mask per block.  Measured at N = 16384 (fp32, 4 heads of 64,
    2 threads): 1.3-1.4x faster than the copying path, with the same outputs (same kernel, same
    blocks).  A batch is done one sequence at a time (see ``VIEWS_MIN_BLOCKS``).  Rows with no
    allowed key are zeros.

    Shapes:
        q, k, v: (B, H, N, Dh); in_band: (block, span) bool; bias: (1, H, block, span) or None;
        key_padding_mask: (B, N) bool or None  ->  (B, H, N, Dh)
    """
    bsz, heads, n, d_head = q.shape
    span = block + 2 * window
    n_blocks = -(-n // block)
    head = min(n_blocks, -(-window // block))  # blocks [0, head) see keys before position 0
    tail = min(n_blocks, max(head, (n - window) // block))  # blocks [tail, nb) see keys past N - 1
    band_only = _float_mask(in_band[None, None], bias).to(q.dtype)  # (1, 1 or H, block, span), all blocks
    out = q.new_empty(bsz, n_blocks * block, heads, d_head)
    for b in range(bsz):
        q_rows, k_rows, v_rows = (t[b].transpose(0, 1) for t in (q, k, v))  # (N, H, Dh) views
        valid = None if key_padding_mask is None else ~key_padding_mask[b]
        for first, last in ((0, head), (head, tail), (tail, n_blocks)):
            if last <= first:
                continue
            count, lo, hi = last - first, first * block - window, last * block + window  # key rows [lo, hi)
            inside = lo >= 0 and hi <= n
            if inside:  # read in place
                qw = _row_windows(q_rows, first * block, count, block, block)
                kw, vw = (_row_windows(t, lo, count, block, span) for t in (k_rows, v_rows))
            else:  # the ends: a zero-padded copy of the few rows involved
                pad = (0, 0, 0, 0, max(0, -lo), max(0, hi - n))
                kp, vp = (F.pad(t[max(lo, 0):min(hi, n)], pad) for t in (k_rows, v_rows))
                qp = F.pad(q_rows[first * block:min(last * block, n)], (0, 0, 0, 0, 0, max(0, last * block - n)))
                qw = _row_windows(qp, 0, count, block, block)
                kw, vw = (_row_windows(t, 0, count, block, span) for t in (kp, vp))
            if inside and valid is None:
                mask, allowed = band_only, None
            else:
                key_ok = torch.zeros(hi - lo, dtype=torch.bool, device=q.device)  # key rows [lo, hi) that exist
                key_ok[max(lo, 0) - lo:min(hi, n) - lo] = True if valid is None else valid[max(lo, 0):min(hi, n)]
                allowed = in_band[None] & key_ok.as_strided((count, span), (block, 1))[:, None, :]  # (count, block, span)
                mask = _float_mask(allowed[:, None], bias).to(q.dtype)
            rows = F.scaled_dot_product_attention(qw, kw, vw, attn_mask=mask)  # (count, H, block, Dh)
            if allowed is not None and valid is not None:  # rows with no key: zeros, as the reference
                rows = rows * allowed.any(-1)[:, None, :, None].to(rows.dtype)
            out[b, first * block:last * block] = rows.transpose(1, 2).reshape(count * block, heads, d_head)
    return out[:, :n].transpose(1, 2)


def fused_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    window: int | None,
    key_padding_mask: Tensor | None = None,
    relative_bias: Tensor | None = None,
    dropout: float = 0.0,
    block: int | None = None,
) -> Tensor:
    """Scaled dot-product attention through a fused kernel (no weights returned).

    The same function as ``dense_attention`` / ``banded_attention`` with score="dot".  Full
    attention, short sequences (N <= block + 2w) and, on a CUDA GPU, sequences up to 2048 long
    (``dense_is_faster``) go through ``F.scaled_dot_product_attention`` over the whole sequence
    with a band mask.  Truncated attention runs in seqattn's C++ kernel (forward and backward, attention
    dropout included; ``seqattn.nn.native``: fp32 on an AVX-512 CPU, head size 16/32/64/128)
    where it applies.  Otherwise SDPA runs over all query blocks of the banded layout (each block with its B + 2w
    keys), which keeps memory O(N * w): without gradients (and for one sequence or long ones)
    it reads the key windows in place (``_banded_sdpa_views``); for training they are copied into
    one contiguous batch with a cheap backward (``_BlockWindows``).  Rows with no allowed key come
    out as zeros, as in the reference path.

    Shapes:
        q, k, v: (B, H, N, Dh)  ->  (B, H, N, Dh)
    Raises:
        ValueError: window < 0 or q/k/v shapes disagree.
    """
    _check_qkv(q, k, v, window)
    bsz, heads, n, d_head = q.shape
    dropout_p = dropout
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, relative_bias) if t is not None)
    if window is not None and not needs_grad:
        # Inference takes the C++ kernel at every length, short sequences included: each query's
        # result there is a fixed sequence of operations over its own band, padding keys adding
        # exact zeros, so a sentence gets the same bits alone, in any batch and beside any padding
        # (the dense SDPA call below, taken by batches padded to N <= block + 2w, and the block
        # paths round differently; issue 26).  It is also 3-6x faster than that SDPA call there.
        out = native.banded_attention(q, k, v, window, key_padding_mask, relative_bias, dropout)
        if out is not None:
            return out
    if window is not None:
        block = block or default_block_size(window, q.device)
    if window is None or n <= block + 2 * window or dense_is_faster(q.device, n, bsz * heads * n * n):
        allowed = band_mask(n, n, window, q.device)[None, None]  # (1, 1, N, N)
        if key_padding_mask is not None:
            allowed = allowed & ~key_padding_mask[:, None, None, :]
        bias = None
        if relative_bias is not None:
            offset = torch.arange(n, device=q.device)[None, :] - torch.arange(n, device=q.device)[:, None]
            bias = relative_bias[:, (offset + window).clamp(0, 2 * window)][None]  # (1, H, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=_float_mask(allowed, bias).to(q.dtype),
                                             dropout_p=dropout_p)
        return out * allowed.any(-1, keepdim=True).to(out.dtype) if key_padding_mask is not None else out

    out = None if not needs_grad else native.banded_attention(q, k, v, window, key_padding_mask, relative_bias,
                                                              dropout)
    if out is not None:  # the C++ kernel (fp32, AVX-512, built by setup.py), with its backward
        return out
    n_blocks = -(-n // block)
    span = block + 2 * window
    slot = torch.arange(span, device=q.device)[None, :] - torch.arange(block, device=q.device)[:, None]
    in_band = (slot >= 0) & (slot <= 2 * window)  # (block, span)
    bias = None
    if relative_bias is not None:
        bias = relative_bias[:, slot.clamp(0, 2 * window)][None]  # (1, H, block, span)
    if not needs_grad and not dropout and (bsz == 1 or n_blocks >= VIEWS_MIN_BLOCKS):
        return _banded_sdpa_views(q, k, v, window, block, in_band, bias, key_padding_mask)

    # Training, and batches of short sequences: blocks become the batch of one SDPA call,
    # (B * nb, H, block, Dh) queries against contiguous (B * nb, H, span, Dh) key/value windows.
    # SDPA's fused CPU kernel takes this layout; overlapping 5-D views would send it to the slow
    # math path (../shared/notes, trap 3).
    q_blocks = _query_blocks(q, block, n_blocks)  # (B * nb, H, block, Dh)
    k_windows = _BlockWindows.apply(k, window, block, n_blocks)  # (B * nb, H, span, Dh)
    v_windows = _BlockWindows.apply(v, window, block, n_blocks)
    key_valid = torch.ones(bsz, n, dtype=torch.bool, device=q.device)
    if key_padding_mask is not None:
        key_valid = ~key_padding_mask
    key_valid = _key_windows(key_valid[:, None, :, None], window, block, n_blocks)  # (B, 1, nb, span, 1)
    key_valid = key_valid.reshape(bsz * n_blocks, 1, 1, span)
    allowed = in_band[None, None] & key_valid  # (B * nb, 1, block, span)
    mask = _float_mask(allowed, bias).to(q.dtype)
    out = F.scaled_dot_product_attention(q_blocks, k_windows, v_windows, attn_mask=mask, dropout_p=dropout_p)
    if key_padding_mask is not None:  # rows with no key: zeros, as the reference
        out = out * allowed.any(-1, keepdim=True).to(out.dtype)
    out = out.view(bsz, n_blocks, heads, block, d_head).transpose(2, 3)  # (B, nb, block, H, Dh)
    # Sequence-major, so that the caller's (B, N, H * Dh) view of the heads needs no copy.
    return out.reshape(bsz, n_blocks * block, heads, d_head)[:, :n].transpose(1, 2)  # (B, H, N, Dh)


def dense_to_band(weights: Tensor, window: int) -> Tensor:
    """(B, H, N, N) dense weights -> (B, H, N, 2w + 1) band layout (zeros outside the sequence)."""
    n = weights.shape[-1]
    j = torch.arange(n, device=weights.device)[:, None] + torch.arange(-window, window + 1, device=weights.device)
    valid = (j >= 0) & (j < n)  # (N, 2w+1)
    band = torch.gather(weights, -1, j.clamp(0, n - 1).expand(*weights.shape[:-1], -1))
    return band * valid


def band_to_dense(weights: Tensor, window: int) -> Tensor:
    """(..., N, 2w + 1) band layout -> (..., N, N) dense weights, for visualising short sequences."""
    n = weights.shape[-2]
    dense = weights.new_zeros(*weights.shape[:-1], n + 2 * window)
    j = torch.arange(n, device=weights.device)[:, None] + torch.arange(2 * window + 1, device=weights.device)
    dense.scatter_(-1, j.expand(*weights.shape[:-2], -1, -1), weights)
    return dense[..., window : window + n]


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    window: int | None,
    key_padding_mask: Tensor | None = None,
    score: Score = "dot",
    v_score: Tensor | None = None,
    relative_bias: Tensor | None = None,
    dropout: float = 0.0,
    need_weights: bool = True,
    activation: Activation = "softmax",
) -> tuple[Tensor, Tensor | None]:
    """Full or truncated attention, whichever ``window`` asks for, in the cheaper layout.

    A truncated call on a sequence no longer than one block plus its band (N <= block + 2w)
    uses the dense path with a band mask, which is then no larger than the banded layout; the
    weights come back in band layout either way.  Without ``need_weights``, dot-product softmax
    attention runs through ``fused_attention`` (torch's fused kernel) and weights are None; other
    scores and activations (``ACTIVATIONS``) take the reference paths.

    Shapes:
        q, k, v: (B, H, N, Dh) -> out: (B, H, N, Dh),
        weights: (B, H, N, N) when window is None, else (B, H, N, 2w + 1); None without need_weights
    """
    if not need_weights and score == "dot" and activation == "softmax":
        return fused_attention(q, k, v, window=window, key_padding_mask=key_padding_mask,
                               relative_bias=relative_bias, dropout=dropout), None
    kwargs = dict(key_padding_mask=key_padding_mask, score=score, v_score=v_score,
                  relative_bias=relative_bias, dropout=dropout, activation=activation)
    if window is None:
        return dense_attention(q, k, v, window=None, **kwargs)
    if q.shape[2] <= default_block_size(window) + 2 * window:
        out, weights = dense_attention(q, k, v, window=window, **kwargs)
        return out, dense_to_band(weights, window)
    return banded_attention(q, k, v, window, **kwargs)


# --------------------------------------------------------------------------- modules


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with Q/K/V projections, full or truncated (lecture: "Multi-head").

    Each head h has its own W_q, W_k, W_v (all heads in one Linear), attends with the chosen
    score function, and the heads' outputs are concatenated and mixed by W_o.

    Args:
        d_model: input and output size.
        n_heads: number of heads H; d_model must divide by it.
        window: attention half-width w (None = full attention).
        score: "dot" (scaled dot-product) or "additive" (v^T tanh(W_q q + W_k k)).
        relative_bias: learn a bias per head and offset j - i in [-w, w] (needs a window).
        dropout: dropout on the attention weights.
        activation: scores -> weights, one of ``ACTIVATIONS`` (softmax: the fused fast path).
    Shapes:
        x: (B, N, d_model), key_padding_mask: (B, N) bool  ->  out: (B, N, d_model),
        weights: see ``attention`` (None when need_weights is False and the score is "dot").
    Raises:
        ValueError: d_model not divisible by n_heads, unknown score or activation, relative_bias
            without window.
    """

    def __init__(self, d_model: int, n_heads: int, *, window: int | None = None, score: Score = "dot",
                 relative_bias: bool = False, dropout: float = 0.0, activation: Activation = "softmax"):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        if score not in SCORES:
            raise ValueError(f"unknown score function {score!r}; expected one of {SCORES}")
        if relative_bias and window is None:
            raise ValueError("relative_bias needs a window")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown attention activation {activation!r}; expected one of {ACTIVATIONS}")
        self.activation = activation
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.window, self.score, self.dropout = window, score, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.v_score = nn.Parameter(torch.randn(n_heads, self.d_head) / math.sqrt(self.d_head)) if score == "additive" else None
        self.relative_bias = nn.Parameter(torch.zeros(n_heads, 2 * window + 1)) if relative_bias else None

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        bsz, n, d = x.shape
        q, k, v = self.qkv(x).view(bsz, n, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, Dh)
        out, weights = attention(
            q, k, v, window=self.window, key_padding_mask=key_padding_mask, score=self.score,
            v_score=self.v_score, relative_bias=self.relative_bias,
            dropout=self.dropout if self.training else 0.0, need_weights=need_weights,
            activation=self.activation,
        )
        out = out.transpose(1, 2).reshape(bsz, n, d)  # (B, N, d_model)
        return self.out(out), weights
