"""ff.profile: multiply-adds per view, parameters and latency per frame count."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import frameflex as ff


def test_count_gmacs_counts_one_per_multiply_add():
    conv = nn.Conv3d(3, 8, (3, 5, 5), padding=(1, 2, 2), bias=False)
    x = torch.randn(1, 3, 4, 16, 16)
    macs = 8 * 4 * 16 * 16 * (3 * 3 * 5 * 5)  # outputs x MACs per output
    assert ff.flops.count_gmacs(conv, x) == pytest.approx(macs / 1e9)


def test_profile_rows_per_frame_count():
    plain = torchvision.models.video.r3d_18(num_classes=5)
    model = ff.convert(plain, [4, 8], adapters="auto", time_dim=2, inplace=False)
    rows = ff.profile(model, input_size=32, repeats=1)
    assert [r.frames for r in rows] == [4, 8]
    assert 1.8 < rows[1].gmacs / rows[0].gmacs < 2.1  # a 3D CNN grows ~linearly in T
    plain_rows = ff.profile(plain, frame_sets=[4, 8], input_size=32, latency=False)
    assert rows[0].params_m > plain_rows[0].params_m  # private norms and adapters are counted
    assert plain_rows[0].latency_ms is None and rows[0].latency_ms > 0
    assert rows[0].gmacs == pytest.approx(plain_rows[0].gmacs, rel=0.01)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="frame_sets"):
        ff.profile(plain)


PUBLISHED = [(name, t, size, gmacs) for name in ff.list_models()
             for (t, size), gmacs in ff.models._registry.get_spec(name).published_gmacs.items()]


@pytest.mark.parametrize("name,frames,size,published", PUBLISHED,
                         ids=[f"{n}-{t}x{s}" for n, t, s, _ in PUBLISHED])
def test_zoo_compute_is_within_2_percent_of_the_papers(name, frames, size, published):
    spec = ff.models._registry.get_spec(name)
    with torch.device("meta"):
        model = ff.create_model(name, num_classes=174, frame_sets=spec.frame_sets)
    (row,) = ff.profile(model, frame_sets=[frames], input_size=size)
    assert row.gmacs == pytest.approx(published, rel=0.02)


def test_profile_restores_every_submodule_mode():
    model = ff.convert(torchvision.models.video.r3d_18(num_classes=5), [4], time_dim=2).train()
    model.fc.eval()
    seen = []
    hook = model.register_forward_hook(lambda m, i, o: seen.append(any(x.training for x in m.modules())))
    ff.profile(model, input_size=16, latency=False)
    hook.remove()
    assert seen == [False]
    assert model.training and model.layer1.training and not model.fc.training
