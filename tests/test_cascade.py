"""ff.cascade: escalate the frame count only for unsure clips."""
from __future__ import annotations

import pytest
import torch
from _models import SharedNormNet, randomize_norms

import frameflex as ff

SETS = (4, 8, 16)


def _model():
    torch.manual_seed(0)
    return ff.convert(randomize_norms(SharedNormNet(classes=5)), SETS, adapters=["head"], time_dim=2).eval()


def _clips(batch=6):
    g = torch.Generator().manual_seed(0)
    return {t: 3 * torch.randn(batch, 3, t, 8, 8, generator=g) for t in SETS}


def test_each_clip_stops_at_the_first_confident_frame_count():
    model, clips = _model(), _clips()
    with torch.no_grad():
        full = ff.forward_multi(model, clips)
    conf = {t: full[t].softmax(-1).amax(-1) for t in SETS}
    threshold = conf[4].median().item()
    out = ff.cascade(model, clips, threshold=threshold)
    for i in range(6):
        expected = next((t for t in SETS[:-1] if conf[t][i] >= threshold), 16)
        assert out.frames[i] == expected
        torch.testing.assert_close(out.logits[i], full[expected][i])
    assert 4 in out.frames.tolist() and out.frames.ne(4).any()


def test_thresholds_zero_and_one_are_the_fixed_frame_counts():
    model, clips = _model(), _clips()
    with torch.no_grad():
        full = ff.forward_multi(model, clips)
    low, high = ff.cascade(model, clips, threshold=0.0), ff.cascade(model, clips, threshold=1.0)
    assert low.frames.eq(4).all() and high.frames.eq(16).all()
    torch.testing.assert_close(low.logits, full[4])
    torch.testing.assert_close(high.logits, full[16])


def test_a_video_is_sampled_into_clips():
    model = _model()
    video = torch.randn(2, 3, 32, 8, 8)
    out = ff.cascade(model, video, threshold=1.0)
    clip16 = video[:, :, ff.segment_indices(32, 16, train=False)]
    with torch.no_grad():
        torch.testing.assert_close(out.logits, model(clip16))


def test_bad_input():
    model = _model()
    with pytest.raises(ValueError, match="threshold"):
        ff.cascade(model, _clips(), threshold=1.5)
    with pytest.raises(KeyError, match=r"no clip for frame counts \[16\]"):
        ff.cascade(model, {4: _clips()[4], 8: _clips()[8]}, threshold=0.5, frame_sets=SETS)


def test_modes_are_restored_per_submodule():
    model = _model().train()
    model.head.eval()  # e.g. a frozen head
    seen = []
    hook = model.register_forward_hook(lambda m, i, o: seen.append([x.training for x in m.modules()]))
    ff.cascade(model, _clips(), threshold=0.0)
    hook.remove()
    assert seen and not any(any(s) for s in seen)  # eval during the call
    assert model.training and not model.head.training


def test_temperature_sharpens_each_count_before_the_threshold():
    model, clips = _model(), _clips()
    with torch.no_grad():
        full = ff.forward_multi(model, clips)
    temps = {4: 0.5, 8: 0.25, 16: 2.0}
    conf = {t: (full[t] / temps[t]).softmax(-1).amax(-1) for t in SETS}
    threshold = conf[4].median().item()
    out = ff.cascade(model, clips, threshold=threshold, temperature=temps)
    for i in range(6):
        expected = next((t for t in SETS[:-1] if conf[t][i] >= threshold), 16)
        assert out.frames[i] == expected
        torch.testing.assert_close(out.logits[i], full[expected][i])  # the model's logits, not scaled ones
    plain = ff.cascade(model, clips, threshold=threshold)
    assert not torch.equal(out.frames, plain.frames)  # the temperatures changed who stops where
    one = ff.cascade(model, clips, threshold=threshold, temperature=0.5)
    assert torch.equal(one.frames, ff.cascade(model, clips, threshold, temperature=dict.fromkeys(SETS, 0.5)).frames)


def test_bad_temperature():
    model, clips = _model(), _clips()
    with pytest.raises(KeyError, match=r"no temperature for frame counts \[16\]"):
        ff.cascade(model, clips, 0.5, temperature={4: 1.0, 8: 1.0})
    with pytest.raises(ValueError, match="temperature of 8 frames must be > 0"):
        ff.cascade(model, clips, 0.5, temperature={4: 1.0, 8: 0.0, 16: 1.0})
    with pytest.raises(TypeError, match="temperature of 4 frames must be a number"):
        ff.cascade(model, clips, 0.5, temperature="hot")
