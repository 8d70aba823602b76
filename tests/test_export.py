"""specialize() for deployment and calibrate() for unseen frame counts."""
from __future__ import annotations

import pytest
import torch
from conftest import build, clip
from torch import nn

import frameflex as ff

SETS = (4, 8, 16)


def _trained_like(name="tv_r3d_18", adapters="auto"):
    """A converted model whose branches differ, as after FFN training."""
    model = ff.convert(build(name), SETS, adapters=adapters, time_dim=2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ff.FrameScale):
                for p in m.scales.values():
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
            if isinstance(m, ff.FrameNorm):
                for b in m.branches.values():
                    b.running_mean.add_(0.1 * torch.randn(b.running_mean.shape, generator=g))
    return model.eval()


def _frameflex_modules(model):
    return [type(m).__name__ for m in model.modules() if type(m).__module__.startswith("frameflex")]


@pytest.mark.parametrize("frames", [4, 8, 16, 12])
def test_specialize_gives_a_plain_model_with_the_same_outputs(frames):
    model = _trained_like()
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
    model = _trained_like()
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
    model = _trained_like("shared_bn3d", adapters=["stage1.0", "head"])
    x = clip(8, 16)
    with torch.no_grad():
        expected = model(x)
    plain = ff.specialize(model, 8)
    exported = torch.export.export(plain, (x,))
    torch.testing.assert_close(exported.module()(x), expected, atol=1e-5, rtol=0)
    compiled = torch.compile(plain)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), expected, atol=1e-5, rtol=0)


def _loader(frames, batches=3, labels=True, size=32):
    data = [clip(frames, size=size, batch=4, seed=100 + i) for i in range(batches)]
    return [(x, torch.zeros(4, dtype=torch.long)) for x in data] if labels else data


def test_calibrate_adds_a_branch_with_fresh_bn_statistics():
    model = _trained_like()
    x = {t: clip(t) for t in SETS}
    with torch.no_grad():
        before = {t: model(x[t]) for t in SETS}
    model.train()
    model.layer1.eval()
    ff.calibrate(model, _loader(12), frames=12, progress=False)
    assert ff.frame_sets(model) == (4, 8, 12, 16)
    assert model.training and not model.layer1.training  # modes restored, module by module
    model.eval()
    with torch.no_grad():
        for t in SETS:  # other branches bit-identical
            assert torch.equal(model(x[t]), before[t])
    # the new branch's statistics are the cumulative average over the data
    stem = ff.specialize(model, 12).stem  # Conv3d, BN, ReLU
    feats = torch.cat([stem[0](b) for b, _ in _loader(12)])
    bn = model.stem[1].branches["12"]
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3, 4)), atol=1e-5, rtol=1e-4)
    assert bn.momentum == model.stem[1].branches["16"].momentum
    # adapters were copied from the nearest branch (16 for 12)
    scales = model.layer1[0].conv1[0].parametrizations.weight[0].scales
    assert torch.equal(scales["12"], scales["16"])


def test_calibrate_accepts_plain_clips_and_dicts_and_limits_batches():
    model = _trained_like()
    ff.calibrate(model, _loader(6, labels=False), frames=6, num_batches=2, progress=False)
    assert int(model.stem[1].branches["6"].num_batches_tracked) == 2
    ff.calibrate(model, [{6: x, 8: x} for x in _loader(6, labels=False)], frames=6, progress=False)
    assert int(model.stem[1].branches["6"].num_batches_tracked) == 3


def test_calibrate_bad_input_leaves_the_model_as_it_was():
    model = _trained_like()
    with pytest.raises(ValueError, match=r"calibrate\(frames=12\) got a clip .* 8 frames"):
        ff.calibrate(model, _loader(8), frames=12, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        ff.calibrate(model, [], frames=12, progress=False)
    assert ff.frame_sets(model) == SETS
    assert set(model.stem[1].branches) == {"4", "8", "16"}
    with pytest.raises(ValueError, match="num_batches"):
        ff.calibrate(model, _loader(12), frames=12, num_batches=0)


def test_calibrate_leaves_non_bn_norms_as_copies():
    model = ff.convert(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)), SETS)
    with torch.no_grad():
        model[1].branches["8"].weight.fill_(2.0)
    ff.calibrate(model, [torch.randn(2, 3)], frames=10, progress=False)
    assert torch.equal(model[1].branches["10"].weight, model[1].branches["8"].weight)
