"""The examples run end to end (tiny budgets) and report what they measured."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch
import torchvision

import frameflex as ff

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_train_any_model_trains_every_branch_and_reports_its_accuracy(capsys):
    main = runpy.run_path(str(EXAMPLES / "train_any_model.py"))["main"]
    torch.manual_seed(0)  # the example's seed: the same initial weights
    before = ff.convert(torchvision.models.video.r3d_18(num_classes=4), (4, 8, 16), adapters="auto",
                        time_dim=2).state_dict()
    out = main(["--steps", "2", "--batch", "2", "--size", "16", "--eval-videos", "4"])
    model, top1 = out["model"], out["top1"]
    assert set(top1) == {4, 8, 16, 12, "12 calibrated"}
    assert ff.frame_sets(model) == (4, 8, 12, 16)  # calibrate added a 12-frame branch
    assert set(out["loss"]) == {"loss", "ce", "kl_4", "kl_8"}  # FFNLoss: CE at 16, KL to 4 and 8
    after = model.state_dict()
    for t in (4, 8, 16):  # the FFN step reached every branch: its norm and its adapter (zero at the start)
        for key in (f"stem.1.branches.{t}.running_mean", f"layer1.0.conv1.0.parametrizations.weight.0.scales.{t}"):
            assert not torch.equal(after[key], before[key]), key
    # the printed accuracies are the model's on the held-out videos, recomputed here one clip at a time
    test = ff.SyntheticMotion(4, num_classes=4, size=16, frame_sets=(4, 8, 16, 12), train=False, seed=1)
    model.eval()
    with torch.no_grad():
        for t in (4, 8, 16):
            hits = 0
            for i in range(len(test)):
                clips, label = test[i]
                with ff.frames(model, t):
                    hits += int(model(clips[t][None]).argmax(1).item() == label)
            assert top1[t] == pytest.approx(100 * hits / len(test))
    text = capsys.readouterr().out
    assert f"top-1 at 4 frames: {top1[4]:.1f}%" in text and "exported with torch.export" in text
