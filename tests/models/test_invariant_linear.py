"""The Linear layers of --precision: a row's output depends on that row alone, bit for bit."""

from __future__ import annotations

import torch
from torch import nn

from seqattn.models.invariant_linear import RowPaddedLinear, RowwiseInt8Linear
from seqattn.models.precision import for_inference


def _linear(k: int = 48, n: int = 20) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(k, n)


def test_int8_rows_are_the_same_bits_alone_and_in_any_batch():
    layer = RowwiseInt8Linear(_linear())
    x = torch.randn(37, 48, generator=torch.Generator().manual_seed(1))
    x[5] *= 1000  # a loud row: under one scale per batch it would coarsen every other row
    full = layer(x)
    for rows in ([0], [1, 2, 3], list(range(6)), list(range(10, 37)), [36, 0, 5]):
        assert torch.equal(layer(x[rows]), full[rows])
    assert torch.equal(layer(x.view(37, 1, 48)).view(37, 20), full)  # (..., in) shapes


def test_int8_is_close_to_fp32_and_an_all_zero_row_gives_the_bias():
    linear = _linear()
    layer = RowwiseInt8Linear(linear)
    x = torch.randn(64, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        exact = linear(x)
        err = (layer(x) - exact).abs().max() / exact.abs().max()
        assert 0 < err < 0.02  # int8 really ran, within 8-bit error
        assert torch.equal(layer(torch.zeros(2, 48)), linear.bias.expand(2, 20))
    assert not list(layer.parameters())  # buffers only: nothing to train, moves with .to()


def test_fp32_padded_rows_same_state_and_same_bits_in_any_batch():
    linear = _linear(256, 64)
    padded = for_inference(nn.Sequential(linear), "fp32")[0]
    assert type(padded) is RowPaddedLinear and type(linear) is nn.Linear  # a copy; the original untouched
    assert padded.state_dict().keys() == linear.state_dict().keys()
    x = torch.randn(300, 256, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = padded(x)
        assert (full - linear(x)).abs().max() <= 1e-5
        for m in (1, 2, 3, 5, 7, 9, 11):  # padded; bit-exact with MKL here (measured), held to 1e-6 anywhere
            assert (padded(x[:m]) - full[:m]).abs().max() <= 1e-6


def test_for_inference_int8_replaces_every_linear_and_keeps_the_model():
    model = nn.Sequential(_linear(), nn.ReLU(), nn.Linear(20, 3))
    quantised = for_inference(model, "int8")
    assert [type(m) for m in quantised] == [RowwiseInt8Linear, nn.ReLU, RowwiseInt8Linear]
    assert type(model[0]) is nn.Linear and not quantised.training
