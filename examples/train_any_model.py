"""FFN training of someone else's model, start to finish.

Takes torchvision's R3D-18, makes it frame-flexible, trains it on the built-in
synthetic motion dataset with multi-frame steps (frameflex's training loop),
evaluates every frame count, calibrates an untrained count and exports a plain
model for deployment.

    python examples/train_any_model.py --steps 60
"""
from __future__ import annotations

import argparse

import torch
import torchvision
from torch.utils.data import DataLoader

import frameflex as ff
from frameflex.evaluate import evaluate
from frameflex.training import MultiClipModel, train_one_epoch


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--eval-videos", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    frame_sets = (4, 8, 16)

    # 1. any model in, frame-flexible model out; adapters on the first conv of every block
    model = torchvision.models.video.r3d_18(num_classes=4)
    model = ff.convert(model, frame_sets, adapters="auto", time_dim=2)

    # 2. one clip per frame count per video, one shared augmentation
    data = dict(num_classes=4, size=args.size)
    train = ff.SyntheticMotion(args.steps * args.batch, **data, frame_sets=frame_sets, train=True, seed=args.seed)
    loader = DataLoader(train, batch_size=args.batch, shuffle=True, collate_fn=ff.collate_clips)

    # 3. the FFN step: every frame count through its own branch, CE + distillation
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sums = train_one_epoch(MultiClipModel(model), ff.FFNLoss(), opt, None, loader, "cpu")
    print("mean loss " + "  ".join(f"{k} {v / sums['n']:.3f}" for k, v in sums.items() if k != "n"))

    # 4. every trained count, and an untrained one through the nearest branch (held-out videos)
    test = ff.SyntheticMotion(args.eval_videos, **data, frame_sets=(*frame_sets, 12), train=False, seed=args.seed + 1)
    test_loader = DataLoader(test, batch_size=16, collate_fn=ff.collate_clips)
    results = evaluate(model, test_loader, (*frame_sets, 12), progress=False)["top1"]

    # 5. a branch of its own for 12 frames: BatchNorm statistics from a few batches
    calib = ff.SyntheticMotion(args.eval_videos, **data, frame_sets=(12,), train=True, seed=args.seed + 2)
    ff.calibrate(model, DataLoader(calib, batch_size=16, collate_fn=ff.collate_clips), frames=12)
    results["12 calibrated"] = evaluate(model, test_loader, (12,), progress=False)["top1"][12]
    for name, acc in results.items():
        print(f"top-1 at {name} frames: {acc:.1f}%")

    # 6. deploy one frame count as a plain model
    plain = ff.specialize(model.eval(), 8)
    x = torch.randn(1, 3, 8, args.size, args.size)
    torch.testing.assert_close(plain(x), model(x), atol=1e-5, rtol=1e-5)
    torch.export.export(plain, (x,))
    print("specialised 8-frame model exported with torch.export")
    return {"model": model, "top1": results, "loss": {k: v / sums["n"] for k, v in sums.items() if k != "n"}}


if __name__ == "__main__":
    main()
