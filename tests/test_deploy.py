"""specialize(): a plain model for one frame count, for deployment."""
from __future__ import annotations

import pytest
import torch
from _models import clip, trained_like
from torch import nn

import frameflex as ff

SETS = (4, 8, 16)


def _frameflex_modules(model):
    return [type(m).__name__ for m in model.modules() if type(m).__module__.startswith("frameflex")]


@pytest.mark.parametrize("frames", [4, 8, 16, 12])
def test_specialize_gives_a_plain_model_with_the_same_outputs(frames):
    model = trained_like()
    x = clip(frames)
    with torch.no_grad():
        expected = model(x)
    plain = ff.specialize(model, frames)
    assert _frameflex_modules(plain) == []
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())
    assert not plain.training
    with torch.no_grad():
        torch.testing.assert_close(plain(x), expected, atol=1e-5, rtol=0)
    with torch.no_grad():  # the converted model is untouched and still runs
        assert torch.equal(model(x), expected)


def test_specialize_folds_adapters_into_weights():
    model = trained_like()
    plain = ff.specialize(model, 8)
    conv = model.layer1[0].conv1[0]
    w = conv.parametrizations.weight.original
    s = 1 + conv.parametrizations.weight[0].scales["8"]
    torch.testing.assert_close(plain.layer1[0].conv1[0].weight, w * s.view(1, -1, 1, 1, 1))


def test_specialize_keeps_unfoldable_adapters_as_a_fixed_scale():
    class Block(nn.Module):
        in_channels = 3

        def forward(self, x):
            return x * 2

    model = ff.convert(nn.Sequential(Block(), nn.BatchNorm1d(3)), SETS, adapters=["0"]).eval()
    with torch.no_grad():
        model[0].scale.scales["4"].fill_(0.5)
    x = torch.randn(4, 3)
    with ff.frames(model, 4):
        expected = model(x)
    plain = ff.specialize(model, 4)
    assert _frameflex_modules(plain) == ["InputScale", "ChannelScale"]
    torch.testing.assert_close(plain(x), expected)


def test_specialized_model_exports_and_compiles():
    model = trained_like("shared_bn3d", adapters=["stage1.0", "head"])
    x = clip(8, 16)
    with torch.no_grad():
        expected = model(x)
    plain = ff.specialize(model, 8)
    exported = torch.export.export(plain, (x,))
    torch.testing.assert_close(exported.module()(x), expected, atol=1e-5, rtol=0)
    compiled = torch.compile(plain)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), expected, atol=1e-5, rtol=0)
