"""The encoder: permutation equivariance without positions, padding invariance, weights per layer."""

import pytest
import torch

from seqattn.nn.encoder import Encoder, EncoderConfig


def _encoder(**kw):
    torch.manual_seed(0)
    cfg = EncoderConfig(d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0, attention_dropout=0.0, **kw)
    return Encoder(cfg).eval()


@pytest.mark.parametrize("score", ["dot", "additive"])
def test_without_positions_the_encoder_is_permutation_equivariant(score):
    enc = _encoder(positional="none", score=score)
    x = torch.randn(1, 9, 16)
    perm = torch.randperm(9)
    assert torch.allclose(enc(x)[:, perm], enc(x[:, perm]), atol=1e-5)


@pytest.mark.parametrize("kw", [dict(positional="sinusoidal"), dict(positional="learned"),
                                dict(positional="none", window=2, relative_bias=True)])
def test_with_positions_it_is_not(kw):
    enc = _encoder(**kw)
    if kw["positional"] == "learned":  # the learned table starts near zero: make it matter
        torch.nn.init.normal_(enc.positional.table.weight, std=1.0)
    if kw.get("relative_bias"):  # the relative bias starts at zero: make it matter
        for block in enc.blocks:
            torch.nn.init.normal_(block.attn.relative_bias, std=1.0)
    x = torch.randn(1, 9, 16)
    perm = torch.arange(8, -1, -1)
    assert not torch.allclose(enc(x)[:, perm], enc(x[:, perm]), atol=1e-3)


@pytest.mark.parametrize("window", [None, 1, 3])
def test_padding_does_not_change_real_positions(window):
    enc = _encoder(window=window)
    x = torch.randn(2, 30, 16)
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[1, 12:] = True
    out = enc(x, mask)
    alone = enc(x[1:, :12])
    assert (out[1, :12] - alone[0]).abs().max() < 1e-5


def test_every_layer_returns_its_weights():
    enc = _encoder(window=2)
    _, weights = enc(torch.randn(1, 40, 16), return_weights=True)
    assert len(weights) == 2 and weights[0].shape == (1, 2, 40, 5)
    _, weights = _encoder()(torch.randn(1, 7, 16), return_weights=True)
    assert weights[-1].shape == (1, 2, 7, 7)


def test_learned_positions_refuse_longer_sequences():
    enc = _encoder(positional="learned", max_len=8)
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.randn(1, 9, 16))


def test_config_round_trip_and_validation():
    cfg = EncoderConfig(window=4, score="additive")
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        EncoderConfig.from_dict({"d_model": 8, "bogus": 1})
    with pytest.raises(ValueError):
        EncoderConfig(positional="rotary")


@pytest.mark.parametrize("window", [None, 3])
def test_without_weights_the_encoder_gives_the_same_output(window):
    torch.manual_seed(0)
    enc = Encoder(EncoderConfig(d_model=16, n_heads=2, n_layers=2, d_ff=32, window=window,
                                relative_bias=window is not None)).eval()
    x = torch.randn(2, 50, 16)
    with_weights, weights = enc(x, return_weights=True)
    assert torch.allclose(enc(x), with_weights, atol=1e-5) and len(weights) == 2
