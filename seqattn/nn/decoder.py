"""The decoder of seq2seq (N -> M): masked self-attention, encoder-decoder attention, search.

Lecture ("Seq2seq", after "Self-attention"): the decoder produces the output one symbol at a
time.  Its self-attention is *masked* (causal): position t sees only positions <= t, because
later outputs do not exist yet when t is produced.  Its *encoder-decoder* (cross) attention
takes the queries from the decoder and the keys and values from the encoder's output.

Incremental decoding keeps the keys and values of past positions (a KV cache), so producing
symbol t costs O(t) instead of recomputing the whole prefix (O(t^2)).  Both searches are here:
greedy and beam search with length normalisation (Wu et al. 2016: score / length^alpha).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.models.config import Config, bounded
from seqattn.nn.attention import _masked_softmax
from seqattn.nn.encoder import MAX_D_FF, MAX_D_MODEL, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS
from seqattn.nn.positional import positional_encoding


@dataclass
class DecoderConfig(Config):
    """Hyper-parameters of ``Decoder``; saved as JSON next to a model's weights.

    Raises (constructor, ``from_dict``):
        ConfigError: a value outside its field's rule, or n_heads not dividing d_model
            (seqattn.models.config).
    """

    d_model: int = bounded(256, min=1, max=MAX_D_MODEL)
    n_heads: int = bounded(4, min=1, max=MAX_HEADS)
    n_layers: int = bounded(3, min=1, max=MAX_LAYERS)
    d_ff: int = bounded(1024, min=1, max=MAX_D_FF)
    dropout: float = bounded(0.1, min=0.0, below=1.0)
    positional: str = bounded("sinusoidal", choices=("sinusoidal", "learned"))
    max_len: int = bounded(512, min=1, max=MAX_POSITIONS)  # longest output a learned positional table covers

    def check(self) -> None:
        if self.d_model % self.n_heads:
            raise self.invalid("n_heads", f"must divide d_model ({self.d_model}), got {self.n_heads}")


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query and key/value inputs (scaled dot-product).

    Used as masked self-attention (query = key/value = decoder states, causal mask) and as
    encoder-decoder attention (query = decoder states, key/value = encoder output).

    Shapes:
        query: (B, T, d), memory: (B, S, d), allowed: broadcastable to (B, H, T, S) bool
        -> out (B, T, d), weights (B, H, T, S)
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.d_head, self.dropout = n_heads, d_model // n_heads, dropout
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def split(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.d_head).transpose(1, 2)  # (B, H, L, Dh)

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.kv(memory).chunk(2, dim=-1)
        return self.split(k), self.split(v)  # 2 x (B, H, S, Dh)

    def attend(self, query: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> tuple[Tensor, Tensor]:
        q = self.split(self.q(query))  # (B, H, T, Dh)
        if q.shape[2] == 1 and not self.training:
            # One query per row (incremental decoding): broadcast products instead of B*H tiny
            # matrix products, whose per-call overhead dominates on a CPU.
            scores = (q * k).sum(-1).unsqueeze(2) / math.sqrt(self.d_head)  # (B, H, 1, S)
            weights = _masked_softmax(scores, allowed)
            out = (weights.transpose(-1, -2) * v).sum(2, keepdim=True)  # (B, H, 1, Dh)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d_head)  # (B, H, T, S)
            weights = _masked_softmax(scores, allowed)
            out = torch.matmul(F.dropout(weights, self.dropout, self.training), v)
        out = out.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)
        return self.out(out), weights


class DecoderBlock(nn.Module):
    """Pre-LN decoder block: masked self-attention, encoder-decoder attention, FFN; each residual."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.norm_self = nn.LayerNorm(cfg.d_model)
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.norm_cross = nn.LayerNorm(cfg.d_model)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.norm_ffn = nn.LayerNorm(cfg.d_model)
        self.ffn = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, memory_kv: tuple[Tensor, Tensor], memory_allowed: Tensor,
                self_allowed: Tensor, cache: dict | None = None,
                self_weights: list | None = None) -> tuple[Tensor, Tensor]:
        """-> (x, cross weights); the masked self-attention weights are appended to ``self_weights``
        when a list is given (the attention view; (B, H, T, T) in teacher forcing)."""
        h = self.norm_self(x)
        k, v = self.self_attn.keys_values(h)
        if cache is not None:  # incremental: prepend the keys/values of earlier positions
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        out, weights = self.self_attn.attend(h, k, v, self_allowed)
        if self_weights is not None:
            self_weights.append(weights)
        x = x + self.drop(out)
        out, cross_weights = self.cross_attn.attend(self.norm_cross(x), *memory_kv, memory_allowed)
        x = x + self.drop(out)
        x = x + self.drop(self.ffn(self.norm_ffn(x)))
        return x, cross_weights


def causal_mask(t: int, offset: int = 0, device=None) -> Tensor:
    """(t, offset + t) bool: query i (at absolute position offset + i) sees keys j <= offset + i."""
    i = torch.arange(t, device=device)[:, None] + offset
    j = torch.arange(offset + t, device=device)[None, :]
    return j <= i


class Decoder(nn.Module):
    """Target embedding + positions, L decoder blocks, LayerNorm, output projection (logits).

    Args:
        cfg: a ``DecoderConfig``.
        vocab_size: output symbols, including the special ids below.
    Shapes:
        targets: (B, T) int64, memory: (B, S, d), memory_padding: (B, S) bool (True = padding)
        -> logits (B, T, vocab_size), cross-attention weights of the last layer (B, H, T, S)
    """

    def __init__(self, cfg: DecoderConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.positional = positional_encoding(cfg.positional, cfg.d_model, cfg.max_len)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, vocab_size)

    def memory(self, memory: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Keys and values of the encoder output for every layer (computed once per input)."""
        return [block.cross_attn.keys_values(memory) for block in self.blocks]

    def _embed(self, targets: Tensor, offset: int) -> Tensor:
        x = self.embed(targets) * math.sqrt(self.cfg.d_model)
        if offset == 0:
            return self.positional(x)
        # positions offset..offset+T-1: encode a longer zero prefix and keep its tail
        padded = torch.cat([x.new_zeros(x.shape[0], offset, x.shape[2]), x], dim=1)
        return self.positional(padded)[:, offset:]

    def forward(self, targets: Tensor, memory: Tensor, memory_padding: Tensor | None = None,
                target_padding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Teacher forcing: all T positions at once under the causal mask."""
        t = targets.shape[1]
        allowed_self = causal_mask(t, device=targets.device)[None, None]  # (1, 1, T, T)
        if target_padding is not None:
            allowed_self = allowed_self & ~target_padding[:, None, None, :]
        allowed_memory = _memory_allowed(memory, memory_padding)
        x = self._embed(targets, 0)
        weights = None
        for block, kv in zip(self.blocks, self.memory(memory)):
            x, weights = block(x, kv, allowed_memory, allowed_self)
        return self.proj(self.norm(x)), weights

    def attention_weights(self, targets: Tensor, memory: Tensor,
                          memory_padding: Tensor | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """Every layer's masked self-attention and encoder-decoder attention weights, by teacher
        forcing ``targets`` (BOS + the output's ids): row t is the query that predicts output t.
        Equal to what incremental decoding computes (cached decoding equals uncached decoding).

        Shapes:
            targets: (B, T), memory: (B, S, d)  ->  L x (B, H, T, T) self, L x (B, H, T, S) cross
        """
        allowed_self = causal_mask(targets.shape[1], device=targets.device)[None, None]  # (1, 1, T, T)
        allowed_memory = _memory_allowed(memory, memory_padding)
        x = self._embed(targets, 0)
        self_weights: list[Tensor] = []
        cross_weights: list[Tensor] = []
        for block, kv in zip(self.blocks, self.memory(memory)):
            x, weights = block(x, kv, allowed_memory, allowed_self, self_weights=self_weights)
            cross_weights.append(weights)
        return self_weights, cross_weights

    def step(self, last: Tensor, memory_kv: list, allowed_memory: Tensor, caches: list[dict],
             position: int) -> tuple[Tensor, Tensor]:
        """One incremental step: logits for position ``position`` given the cached prefix.

        Shapes:
            last: (B, 1) int64 -> logits (B, vocab_size), cross weights (B, H, 1, S)
        """
        x = self._embed(last, position)
        allowed_self = torch.ones(1, 1, 1, position + 1, dtype=torch.bool, device=last.device)
        weights = None
        for block, kv, cache in zip(self.blocks, memory_kv, caches):
            x, weights = block(x, kv, allowed_memory, allowed_self, cache)
        return self.proj(self.norm(x))[:, -1], weights


def _memory_allowed(memory: Tensor, memory_padding: Tensor | None) -> Tensor:
    if memory_padding is None:
        return torch.ones(1, 1, 1, memory.shape[1], dtype=torch.bool, device=memory.device)
    return ~memory_padding[:, None, None, :]  # (B, 1, 1, S)


@dataclass
class Hypothesis:
    """One decoded output: symbol ids (without BOS/EOS), log-probability, cross-attention rows."""

    ids: list[int]
    log_prob: float
    attention: Tensor | None = None  # (T, S): last layer's cross-attention, mean over heads


def greedy_search(decoder: Decoder, memory: Tensor, bos: int, eos: int, max_len: int,
                  memory_padding: Tensor | None = None) -> list[Hypothesis]:
    """Pick the most probable symbol at each step (KV-cached) until EOS or ``max_len``.

    Shapes:
        memory: (B, S, d) -> B hypotheses
    """
    return [beams[0] for beams in beam_search(decoder, memory, bos, eos, max_len, beam=1,
                                               memory_padding=memory_padding)]


def beam_search(decoder: Decoder, memory: Tensor, bos: int, eos: int, max_len: int, beam: int = 5,
                length_alpha: float = 0.6, memory_padding: Tensor | None = None,
                with_attention: bool = True) -> list[list[Hypothesis]]:
    """Beam search with length normalisation; returns each input's finished hypotheses, best first.

    Keeps ``beam`` prefixes per input; a prefix that emits EOS is finished and scored
    log P / length^alpha (Wu et al. 2016).  Decoding is incremental with a KV cache.
    Without ``with_attention`` the hypotheses carry no attention rows (faster).

    Shapes:
        memory: (B, S, d) -> B lists of up to ``beam`` Hypothesis
    Raises:
        ValueError: beam < 1 or max_len < 1.
    """
    if beam < 1 or max_len < 1:
        raise ValueError(f"beam and max_len must be >= 1, got beam={beam}, max_len={max_len}")
    bsz, s, _ = memory.shape
    # Every input's beam is a row of a (B * beam) batch.
    memory = memory.repeat_interleave(beam, dim=0)
    padding = memory_padding.repeat_interleave(beam, dim=0) if memory_padding is not None else None
    allowed = _memory_allowed(memory, padding)
    memory_kv = decoder.memory(memory)
    caches = [dict() for _ in decoder.blocks]
    last = torch.full((bsz * beam, 1), bos, dtype=torch.long, device=memory.device)
    scores = torch.zeros(bsz, beam, device=memory.device)
    scores[:, 1:] = -math.inf  # all beams start as the same empty prefix: keep one
    prefixes = [[[] for _ in range(beam)] for _ in range(bsz)]
    rows = [[[] for _ in range(beam)] for _ in range(bsz)]
    finished: list[list[Hypothesis]] = [[] for _ in range(bsz)]
    for position in range(max_len):
        logits, weights = decoder.step(last, memory_kv, allowed, caches, position)
        log_probs = torch.log_softmax(logits.float(), dim=-1).view(bsz, beam, -1)
        vocab = log_probs.shape[-1]
        candidates = (scores[:, :, None] + log_probs).view(bsz, -1)  # (B, beam * V)
        top_scores, top = candidates.topk(2 * beam, dim=-1)
        attention = weights.mean(1)[:, 0].view(bsz, beam, -1) if with_attention else None  # (B, beam, S)
        new_scores = [[-math.inf] * beam for _ in range(bsz)]  # plain lists: no tensor call per candidate
        new_last = [[eos] * beam for _ in range(bsz)]
        origin = [[0] * beam for _ in range(bsz)]
        new_prefixes = [[[] for _ in range(beam)] for _ in range(bsz)]
        new_rows = [[[] for _ in range(beam)] for _ in range(bsz)]
        all_scores, all_top = top_scores.tolist(), top.tolist()
        for b in range(bsz):
            kept = 0
            for score, index in zip(all_scores[b], all_top[b]):
                if score == -math.inf or kept == beam:
                    break
                source, symbol = divmod(index, vocab)
                row_list = rows[b][source] + [attention[b, source]] if with_attention else []
                if symbol == eos:
                    length = len(prefixes[b][source]) + 1
                    finished[b].append(Hypothesis(prefixes[b][source], score / length**length_alpha,
                                                  torch.stack(row_list) if with_attention else None))
                    continue
                new_scores[b][kept], new_last[b][kept], origin[b][kept] = score, symbol, source
                new_prefixes[b][kept] = prefixes[b][source] + [symbol]
                new_rows[b][kept] = row_list
                kept += 1
        new_scores = torch.tensor(new_scores, device=memory.device)
        new_last = torch.tensor(new_last, dtype=torch.long, device=memory.device)
        origin = torch.tensor(origin, dtype=torch.long, device=memory.device)
        # Reorder the caches so that each row continues its source beam.
        gather = (origin + torch.arange(bsz, device=memory.device)[:, None] * beam).view(-1)
        for cache in caches:
            cache["k"], cache["v"] = cache["k"][gather], cache["v"][gather]
        scores, prefixes, rows, last = new_scores, new_prefixes, new_rows, new_last.view(-1, 1)
        best_open = scores.max(dim=1).values  # a finished hypothesis cannot be beaten by a worse open one
        if all(len(finished[b]) >= beam or best_open[b] == -math.inf for b in range(bsz)):
            break
    for b in range(bsz):  # inputs that never emitted EOS keep their open prefixes
        if not finished[b]:
            for k in range(beam):
                if scores[b, k] > -math.inf:
                    length = max(1, len(prefixes[b][k]))
                    finished[b].append(Hypothesis(prefixes[b][k], scores[b, k].item() / length**length_alpha,
                                                  torch.stack(rows[b][k]) if rows[b][k] else None))
        finished[b].sort(key=lambda h: -h.log_prob)
        finished[b] = finished[b][:beam]
    return finished
