"""TSM: the temporal shift, its per-call frame count, and the tiny model."""

import pytest
import timm
import torch
import torchvision
from torch import nn

from frameflex.models import TSM, TemporalShift, tsm_tiny
from frameflex.models.tsm import temporal_shift


def reference_shift(x: torch.Tensor, t: int, fold_div: int) -> torch.Tensor:
    """Element-by-element TSM shift: channels [0, fold) read frame t+1, [fold, 2 fold) frame t-1."""
    nt, c, h, w = x.shape
    fold = c // fold_div
    out = torch.zeros_like(x)
    for b in range(nt // t):
        for f in range(t):
            for ch in range(c):
                src = f + 1 if ch < fold else f - 1 if ch < 2 * fold else f
                if 0 <= src < t:
                    out[b * t + f, ch] = x[b * t + src, ch]
    return out


@pytest.mark.parametrize("t, c, fold_div", [(4, 8, 8), (3, 16, 4), (1, 8, 8), (5, 7, 2)])
def test_shift_matches_reference(t, c, fold_div):
    x = torch.randn(2 * t, c, 3, 2)
    assert torch.equal(temporal_shift(x, t, fold_div), reference_shift(x, t, fold_div))


def test_shift_is_out_of_place_and_checks_the_batch():
    x = torch.randn(8, 8, 2, 2)
    before = x.clone()
    temporal_shift(x, 4)
    assert torch.equal(x, before)
    with pytest.raises(ValueError, match="9 frames.*num_frames=4"):
        temporal_shift(torch.randn(9, 8, 2, 2), 4)


def test_temporal_shift_needs_a_frame_count():
    shift = TemporalShift(nn.Identity())
    with pytest.raises(RuntimeError, match="num_frames is not set"):
        shift(torch.randn(4, 8, 2, 2))
    shift.num_frames = 4
    x = torch.randn(8, 8, 2, 2)
    assert torch.equal(shift(x), reference_shift(x, 4, 8))
    with pytest.raises(ValueError, match="fold_div"):
        TemporalShift(nn.Identity(), fold_div=1)


def test_tsm_uses_each_clips_own_frame_count_and_leaves_no_state():
    torch.manual_seed(0)
    model = tsm_tiny(num_classes=3, width=8).eval()
    seen = []
    for m in model.shifts():
        m.register_forward_pre_hook(lambda mod, args: seen.append(mod.num_frames))
    for t in (2, 5, 8):
        assert model(torch.randn(3, 3, t, 16, 16)).shape == (3, 3)
    assert set(seen[:4]) == {2} and set(seen[4:8]) == {5} and set(seen[8:]) == {8}
    assert all(m.num_frames is None for m in model.shifts())
    with pytest.raises(ValueError, match=r"\(2, 3, 16, 16\)"):
        model(torch.randn(2, 3, 16, 16))
    assert all(m.num_frames is None for m in model.shifts())  # reset after a failing call too


def test_tsm_equals_frames_as_batch_with_the_shift_in_every_block():
    """TSM = fold T into the batch, shift before each block's conv1, per-frame fc, mean over T."""
    torch.manual_seed(0)
    model = tsm_tiny(num_classes=4, width=8).eval()
    x = torch.randn(2, 3, 4, 16, 16)
    frames = x.transpose(1, 2).reshape(8, 3, 16, 16)
    for m in model.shifts():
        m.num_frames = 4
    feats = model.backbone(frames)
    expected = model.fc(feats).view(2, 4, -1).mean(1)
    for m in model.shifts():
        m.num_frames = None
    assert torch.allclose(model(x), expected, atol=1e-6)
    # the order of frames matters (the shift mixes neighbours), unlike a plain 2D model
    assert not torch.allclose(model(x), model(x.flip(2)), atol=1e-4)


def test_tsm_wraps_timm_and_torchvision_resnets_with_stable_names():
    tv = TSM(torchvision.models.resnet18(num_classes=10), num_classes=5)
    tm = TSM(timm.create_model("resnet18", num_classes=0), num_classes=5)
    for model in (tv, tm):
        names = dict(model.named_parameters())
        assert "backbone.layer1.0.conv1.net.weight" in names
        assert "backbone.layer4.1.conv1.net.weight" in names
        assert names["fc.weight"].shape == (5, 512)
        assert sum(isinstance(m, TemporalShift) for m in model.modules()) == 8
        assert not isinstance(model.backbone.layer1[0].conv1.net, TemporalShift)
    plain = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match="feature size of Sequential"):
        TSM(plain, num_classes=2)
    plain.num_features = 4
    with pytest.raises(ValueError, match="no timm/torchvision ResNet blocks"):
        TSM(plain, num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        tsm_tiny(0)
