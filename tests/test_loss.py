"""FFNLoss and forward_multi: the training step of the paper."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _models import build, clip

import frameflex as ff

SETS = (4, 8, 16)


def _logits(seed=0, classes=5, batch=3):
    g = torch.Generator().manual_seed(seed)
    return {t: torch.randn(batch, classes, generator=g, requires_grad=True) for t in SETS}


def test_ffn_loss_is_ce_on_largest_plus_kl_to_the_rest():
    outs, y = _logits(), torch.tensor([0, 3, 1])
    loss_fn = ff.FFNLoss()
    loss = loss_fn(outs, y)
    p16 = F.softmax(outs[16], -1)
    kl = {t: (p16 * (p16.log() - F.log_softmax(outs[t], -1))).sum(-1).mean() for t in (4, 8)}
    expected = F.cross_entropy(outs[16], y) + kl[4] + kl[8]
    torch.testing.assert_close(loss, expected)
    assert set(loss_fn.parts) == {"ce", "kl_4", "kl_8"}
    torch.testing.assert_close(loss_fn.parts["kl_4"], kl[4].detach())
    assert not loss_fn.parts["ce"].requires_grad


def test_teacher_is_detached_from_the_kl_terms():
    outs, y = _logits(), torch.tensor([0, 3, 1])
    ff.FFNLoss()(outs, y).backward()
    ce_only = {t: z.detach().clone().requires_grad_() for t, z in outs.items()}
    F.cross_entropy(ce_only[16], y).backward()
    torch.testing.assert_close(outs[16].grad, ce_only[16].grad)  # KL sends nothing to z_H
    assert outs[4].grad.abs().sum() > 0 and outs[8].grad.abs().sum() > 0


def test_weight_temperature_soft_targets_and_single_frame_count():
    outs, y = _logits(), torch.tensor([0, 3, 1])
    base = ff.FFNLoss()
    base(outs, y)
    half = ff.FFNLoss(kl_weight=0.5)
    torch.testing.assert_close(half(outs, y), base.parts["ce"] + 0.5 * (base.parts["kl_4"] + base.parts["kl_8"]))
    hot = ff.FFNLoss(temperature=2.0)
    hot(outs, y)
    p = F.softmax(outs[16].detach() / 2, -1)
    torch.testing.assert_close(hot.parts["kl_4"], 4 * F.kl_div(F.log_softmax(outs[4] / 2, -1), p,
                                                               reduction="batchmean").detach())
    soft = F.one_hot(y, 5).float() * 0.8 + 0.04  # mixup-style soft target
    torch.testing.assert_close(ff.FFNLoss()({16: outs[16]}, soft), F.cross_entropy(outs[16], soft))


@pytest.mark.parametrize("outs,msg", [({}, "non-empty dict"), ({4: torch.zeros(2, 5), 8: torch.zeros(2, 6)}, r"4 frames.*\(2, 5\)")])
def test_ffn_loss_bad_input(outs, msg):
    with pytest.raises(ValueError, match=msg):
        ff.FFNLoss()(outs, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        ff.FFNLoss(temperature=0)


def test_forward_multi_runs_each_clip_through_its_own_branch():
    model = ff.convert(build("tv_r3d_18"), SETS, adapters="auto", time_dim=2)
    clips = {t: clip(t, batch=1) for t in SETS}
    with torch.no_grad():
        outs = ff.forward_multi(model, clips)
        for t in SETS:
            torch.testing.assert_close(outs[t], model(clips[t]))
    with pytest.raises(ValueError, match=r"clips\[8\] has 4 frames"):
        ff.forward_multi(model, {8: clip(4, batch=1)})
    with pytest.raises(ValueError, match="non-empty dict"):
        ff.forward_multi(model, {})


def test_a_multi_frame_step_gives_gradient_to_every_branch():
    model = ff.convert(build("tv_r3d_18"), SETS, adapters="auto", time_dim=2).train()
    clips = {t: clip(t, batch=2) for t in SETS}
    ff.FFNLoss()(ff.forward_multi(model, clips), torch.tensor([1, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_forward_multi_without_time_dim_sets_frames_per_clip(shared_net):
    model = ff.convert(shared_net, SETS).train()
    ff.forward_multi(model, {4: clip(4, 16), 16: clip(16, 16)})
    branches = model.stage1[1].branches
    assert int(branches["4"].num_batches_tracked) == 2  # shared BN: two calls per forward
    assert int(branches["16"].num_batches_tracked) == 2
    assert int(branches["8"].num_batches_tracked) == 0


def test_frame_counts_must_be_ints_so_the_teacher_is_the_largest():
    z = torch.zeros(2, 5)
    with pytest.raises(TypeError, match=r"key of outputs.*'8' \(str\)"):
        ff.FFNLoss()({"8": z, "16": z}, torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("kwargs,err,msg", [
    ({"kl_weight": -1}, ff.ArgumentError, "kl_weight must be >= 0, got -1"),
    ({"kl_weight": float("nan")}, ff.ArgumentError, "kl_weight must be >= 0, got nan"),
    ({"kl_weight": "1"}, ff.ArgumentTypeError, "kl_weight must be a number"),
    ({"temperature": 0}, ff.ArgumentError, "temperature must be > 0"),
    ({"label_smoothing": 1.5}, ff.ArgumentError, r"label_smoothing must be in \[0, 1\], got 1.5"),
])
def test_bad_hyper_parameters_are_refused(kwargs, err, msg):
    with pytest.raises(err, match=msg):
        ff.FFNLoss(**kwargs)


def test_nan_logits_are_named():
    outs, y = _logits(), torch.tensor([0, 3, 1])
    outs[8] = outs[8].detach().clone()
    outs[8][1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf in logits for 8 frames$"):
        ff.FFNLoss()(outs, y)
    soft = torch.full((3, 5), float("nan"))
    with pytest.raises(ValueError, match="NaN or inf in the target"):
        ff.FFNLoss()({16: outs[16]}, soft)
