"""FrameScale's two cost paths: a cached scaled weight without autograd, the smaller
product (input or weight) with it; both give the adapter's output."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import frameflex as ff
from frameflex.layers import _channel_factor

SETS = (4, 8, 16)


def _adapted(layer: nn.Module, seed: int = 0) -> nn.Sequential:
    model = ff.convert(nn.Sequential(layer), SETS, adapters=["0"])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model[0].parametrizations.weight[0].scales.values():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model


def _by_hand(model: nn.Sequential, t: int) -> torch.Tensor:
    """The adapted weight for ``t`` frames, computed here: original * (1 + s) on input channels."""
    p = model[0].parametrizations.weight
    return p.original * _channel_factor(1 + p[0].scales[str(t)], p.original, 1, p[0].groups)


class _MulShapes(TorchDispatchMode):
    """Records the output shape of every elementwise multiply."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket is torch.ops.aten.mul:
            self.shapes.append(tuple(out.shape))
        return out


def test_without_autograd_the_scaled_weight_is_computed_once_and_exact():
    model = _adapted(nn.Conv3d(4, 6, 3, padding=1))
    x = torch.randn(2, 4, 3, 5, 5)
    with ff.frames(model, 8), torch.no_grad():
        first, second = model[0].weight, model[0].weight
        assert first is second
        assert torch.equal(first, _by_hand(model, 8))
        assert torch.equal(model(x), F.conv3d(x, _by_hand(model, 8), model[0].bias, padding=1))
        with _MulShapes() as muls:
            model(x)
        assert muls.shapes == []  # nothing is rescaled per call
    with ff.frames(model, 4), torch.no_grad():  # each branch its own entry
        assert torch.equal(model[0].weight, _by_hand(model, 4))
    with ff.frames(model, 8), torch.no_grad():
        assert model[0].weight is first


@pytest.mark.parametrize("change", ["scale", "original", "load_state_dict", "dtype", "write_to_result"])
def test_the_cached_weight_follows_every_parameter_change(change):
    model = _adapted(nn.Linear(5, 3))
    with ff.frames(model, 8), torch.no_grad():
        stale = model[0].weight.clone()
        p = model[0].parametrizations.weight
        if change == "scale":  # what an optimizer step does
            p[0].scales["8"].add_(0.5)
        elif change == "original":
            p.original.mul_(2)
        elif change == "load_state_dict":
            sd = {k: v + 1 for k, v in model.state_dict().items()}
            model.load_state_dict(sd)
        elif change == "dtype":
            model.double()
        else:
            model[0].weight.zero_()  # writing to the computed weight must not poison later reads
        w = model[0].weight
        assert torch.equal(w, _by_hand(model, 8))
        assert change == "write_to_result" or not torch.equal(w.float(), stale)


def test_an_inference_mode_weight_is_not_reused_where_autograd_needs_it():
    model = _adapted(nn.Conv2d(3, 4, 3)).eval().requires_grad_(False)  # frozen: the cache path with grad on
    x = torch.randn(1, 3, 5, 5)
    with ff.frames(model, 8):
        with torch.inference_mode():
            expected = model(x)
        x.requires_grad_()
        out = model(x)  # autograd saves the weight: it must not be an inference tensor
        out.sum().backward()
    assert torch.equal(out.detach(), expected) and x.grad is not None


def test_copies_and_training_start_without_a_cache():
    model = _adapted(nn.Linear(5, 3)).eval()
    with ff.frames(model, 8), torch.no_grad():
        model(torch.randn(2, 5))
    scale = model[0].parametrizations.weight[0]
    assert len(scale._cache) == 1
    assert len(copy.deepcopy(model)[0].parametrizations.weight[0]._cache) == 0
    model.train()
    assert len(scale._cache) == 0


@pytest.mark.parametrize("layer, small, large", [
    (nn.Conv3d(8, 16, 3, padding=1), (1, 8, 2, 3, 3), (1, 8, 4, 16, 16)),
    (nn.Conv2d(6, 8, 3, groups=2), (1, 6, 4, 4), (2, 6, 16, 16)),
    (nn.Linear(12, 10), (3, 12), (20, 12)),
], ids=["conv3d", "grouped2d", "linear"])
def test_with_autograd_the_smaller_of_input_and_weight_is_scaled(layer, small, large):
    model = _adapted(layer)
    p = model[0].parametrizations.weight
    for shape, input_scaled in ((small, True), (large, False)):
        x = torch.randn(shape, requires_grad=True)
        with ff.frames(model, 8), _MulShapes() as muls:
            out = model(x)
        assert (tuple(p.original.shape) not in muls.shapes) == input_scaled, muls.shapes
        grads = torch.autograd.grad(out.square().sum(), (x, p.original, p[0].scales["8"]))
        ref_layer = copy.deepcopy(layer)  # the weight product, computed here
        ref_x = x.detach().clone().requires_grad_()
        ref_w, ref_s = p.original.detach().clone().requires_grad_(), p[0].scales["8"].detach().clone().requires_grad_()
        fn = F.linear if isinstance(layer, nn.Linear) else getattr(F, f"conv{x.dim() - 2}d")
        kw = {} if isinstance(layer, nn.Linear) else {"padding": layer.padding, "groups": layer.groups}
        factor = _channel_factor(1 + ref_s, ref_w, 1, p[0].groups)
        ref = fn(ref_x, ref_w * factor, ref_layer.bias, **kw)
        ref_grads = torch.autograd.grad(ref.square().sum(), (ref_x, ref_w, ref_s))
        torch.testing.assert_close(out, ref)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r)
    with ff.frames(model, 8), torch.no_grad():
        assert torch.equal(model[0].weight, _by_hand(model, 8))  # the input mode is over


def test_a_failed_forward_leaves_the_weight_scaled():
    model = _adapted(nn.Linear(12, 10))
    with ff.frames(model, 8):
        with pytest.raises(RuntimeError):
            model(torch.randn(1, 12)[:, :5].requires_grad_())  # wrong width: the layer raises
        # the input was scaled before the error; the weight must not stay unscaled
        torch.testing.assert_close(model[0].weight, _by_hand(model, 8))


def test_a_layer_with_its_own_forward_always_gets_the_scaled_weight():
    class StdConv(nn.Conv2d):  # like timm's StdConv2d: the weight is standardised first
        def forward(self, x):
            w = self.weight
            w = (w - w.mean((1, 2, 3), keepdim=True)) / w.std((1, 2, 3), keepdim=True)
            return F.conv2d(x, w, self.bias)

    model = _adapted(StdConv(4, 8, 3))
    x = torch.randn(1, 4, 3, 3)  # smaller than the weight
    with ff.frames(model, 8):
        out = model(x)
    w = _by_hand(model, 8).detach()
    w = (w - w.mean((1, 2, 3), keepdim=True)) / w.std((1, 2, 3), keepdim=True)
    torch.testing.assert_close(out, F.conv2d(x, w, model[0].bias))


def test_specialize_removes_the_adapter_hooks():
    model = _adapted(nn.Conv2d(4, 8, 3))
    plain = ff.specialize(model, 8)
    assert not plain[0]._forward_pre_hooks and not plain[0]._forward_hooks
    assert model[0]._forward_pre_hooks  # the converted model keeps its own
