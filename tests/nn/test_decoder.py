"""The decoder: the causal mask hides the future, cached decoding equals uncached, searches agree."""

import pytest
import torch

from seqattn.nn.decoder import Decoder, DecoderConfig, beam_search, greedy_search

VOCAB, BOS, EOS = 12, 1, 2


def _decoder(seed=0):
    torch.manual_seed(seed)
    return Decoder(DecoderConfig(d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0), VOCAB).eval()


def test_the_mask_hides_the_future():
    dec = _decoder()
    memory = torch.randn(1, 7, 16)
    targets = torch.tensor([[BOS, 5, 6, 7, 8, 9]])
    logits, _ = dec(targets, memory)
    for t in range(1, 6):
        changed = targets.clone()
        changed[0, t:] = 3
        changed_logits, _ = dec(changed, memory)
        assert torch.allclose(logits[:, :t], changed_logits[:, :t], atol=1e-6)
        assert not torch.allclose(logits[:, t:], changed_logits[:, t:], atol=1e-3)


def test_cached_decoding_equals_uncached():
    dec = _decoder()
    memory = torch.randn(2, 9, 16)
    padding = torch.zeros(2, 9, dtype=torch.bool)
    padding[1, 6:] = True
    targets = torch.tensor([[BOS, 4, 5, 6, 7], [BOS, 8, 9, 10, 11]])
    full, full_weights = dec(targets, memory, padding)
    allowed = ~padding[:, None, None, :]
    caches = [dict() for _ in dec.blocks]
    kv = dec.memory(memory)
    for t in range(targets.shape[1]):
        step_logits, step_weights = dec.step(targets[:, t:t + 1], kv, allowed, caches, t)
        assert (step_logits - full[:, t]).abs().max() <= 1e-5
        assert (step_weights[:, :, 0] - full_weights[:, :, t]).abs().max() <= 1e-5


def test_cross_attention_rows_sum_to_one_and_skip_padding():
    dec = _decoder()
    memory = torch.randn(1, 8, 16)
    padding = torch.zeros(1, 8, dtype=torch.bool)
    padding[0, 5:] = True
    _, weights = dec(torch.tensor([[BOS, 4, 5]]), memory, padding)
    assert torch.allclose(weights.sum(-1), torch.ones(1, 2, 3), atol=1e-6)
    assert weights[..., 5:].abs().max() == 0
    logits, _ = dec(torch.tensor([[BOS, 4, 5]]), memory, padding)
    short, _ = dec(torch.tensor([[BOS, 4, 5]]), memory[:, :5])
    assert (logits - short).abs().max() <= 1e-5


def test_greedy_is_argmax_of_teacher_forcing_and_beam_one_is_greedy():
    dec = _decoder(3)
    memory = torch.randn(2, 6, 16)
    greedy = greedy_search(dec, memory, BOS, EOS, max_len=8)
    for b, hyp in enumerate(greedy):
        prefix = torch.tensor([[BOS] + hyp.ids])
        logits, _ = dec(prefix, memory[b:b + 1])
        chosen = logits[0].argmax(-1).tolist()
        assert chosen[: len(hyp.ids)] == hyp.ids
        if len(hyp.ids) < 8:  # stopped by EOS
            assert chosen[len(hyp.ids)] == EOS
        assert hyp.attention.shape[1] == 6
    beam_one = [beams[0] for beams in beam_search(dec, memory, BOS, EOS, max_len=8, beam=1)]
    assert [h.ids for h in beam_one] == [h.ids for h in greedy]


def test_beam_search_ranks_by_normalised_score_and_finds_no_worse_than_greedy():
    dec = _decoder(5)
    memory = torch.randn(3, 5, 16)
    beams = beam_search(dec, memory, BOS, EOS, max_len=6, beam=4, length_alpha=0.0)
    greedy = greedy_search(dec, memory, BOS, EOS, max_len=6)
    for hyps, g in zip(beams, greedy):
        assert 1 <= len(hyps) <= 4
        assert [h.log_prob for h in hyps] == sorted((h.log_prob for h in hyps), reverse=True)
        if len(g.ids) < 6:  # greedy finished: beam's best (alpha 0 = raw log-prob) is at least as good
            assert hyps[0].log_prob >= g.log_prob - 1e-5
    with pytest.raises(ValueError):
        beam_search(dec, memory, BOS, EOS, max_len=5, beam=0)


def test_attention_weights_are_what_the_search_saw():
    """The attention view's teacher-forced pass (every layer's masked self- and cross attention)
    holds the beam search's alignment rows, and the self-attention is causal with rows summing to 1."""
    dec = _decoder()
    memory = torch.randn(1, 6, 16)
    best = beam_search(dec, memory, BOS, EOS, max_len=8, beam=2)[0][0]
    targets = torch.tensor([[BOS] + best.ids])
    self_weights, cross = dec.attention_weights(targets, memory)
    assert len(self_weights) == len(cross) == 2
    t = targets.shape[1]
    assert self_weights[0].shape == (1, 2, t, t) and cross[-1].shape == (1, 2, t, 6)
    assert torch.allclose(cross[-1][0].mean(0)[:len(best.attention)], best.attention, atol=1e-5)
    for w in self_weights:
        assert torch.allclose(w.sum(-1), torch.ones(1, 2, t), atol=1e-6)
        assert torch.all(w[0].triu(1) == 0)
