"""calibrate(): a new branch for an unseen frame count, BatchNorm statistics from data."""
from __future__ import annotations

import pytest
import torch
from _models import clip, trained_like
from torch import nn

import frameflex as ff

SETS = (4, 8, 16)


def _loader(frames, batches=3, labels=True, size=32):
    data = [clip(frames, size=size, batch=4, seed=100 + i) for i in range(batches)]
    return [(x, torch.zeros(4, dtype=torch.long)) for x in data] if labels else data


def test_calibrate_adds_a_branch_with_fresh_bn_statistics():
    model = trained_like()
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
    model = trained_like()
    ff.calibrate(model, _loader(6, labels=False), frames=6, num_batches=2, progress=False)
    assert int(model.stem[1].branches["6"].num_batches_tracked) == 2
    ff.calibrate(model, [{6: x, 8: x} for x in _loader(6, labels=False)], frames=6, progress=False)
    assert int(model.stem[1].branches["6"].num_batches_tracked) == 3


def test_calibrate_bad_input_leaves_the_model_as_it_was():
    model = trained_like()
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
