"""FFN training of someone else's model, start to finish, in your own loop.

Takes torchvision's R3D-18, makes it frame-flexible, trains it on the built-in
synthetic motion dataset with multi-frame steps, evaluates every frame count,
calibrates an untrained count and exports a plain model for deployment.

    python examples/train_any_model.py --steps 60
"""
from __future__ import annotations

import argparse

import torch
import torchvision
from torch.utils.data import DataLoader

import frameflex as ff


def evaluate(model, frames: int, seed: int, n: int = 64, size: int = 32) -> float:
    """Top-1 on a held-out synthetic split at one frame count."""
    data = ff.SyntheticMotion(n, num_classes=4, size=size, frame_sets=(frames,), train=False, seed=seed)
    loader = DataLoader(data, batch_size=16, collate_fn=ff.collate_clips)
    model.eval()
    correct = 0
    with torch.no_grad():
        for clips, y in loader:
            correct += (model(clips[frames]).argmax(-1) == y).sum().item()
    return correct / n


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
    train = ff.SyntheticMotion(args.steps * args.batch, num_classes=4, size=args.size,
                               frame_sets=frame_sets, train=True, seed=args.seed)
    loader = DataLoader(train, batch_size=args.batch, shuffle=True, collate_fn=ff.collate_clips)

    # 3. the FFN step: every frame count through its own branch, CE + distillation
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = ff.FFNLoss()
    model.train()
    for step, (clips, y) in enumerate(loader):
        loss = loss_fn(ff.forward_multi(model, clips), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            print(f"step {step:4d}  " + "  ".join(f"{k} {v:.3f}" for k, v in loss_fn.parts.items()))

    # 4. every trained count, and an untrained one through the nearest branch
    n = args.eval_videos
    results = {t: evaluate(model, t, seed=args.seed + 1, n=n, size=args.size) for t in (*frame_sets, 12)}

    # 5. a branch of its own for 12 frames: BatchNorm statistics from a few batches
    calib = ff.SyntheticMotion(n, num_classes=4, size=args.size, frame_sets=(12,), train=True, seed=args.seed + 2)
    ff.calibrate(model, DataLoader(calib, batch_size=16, collate_fn=ff.collate_clips), frames=12)
    results["12 calibrated"] = evaluate(model, 12, seed=args.seed + 1, n=n, size=args.size)
    for name, acc in results.items():
        print(f"top-1 at {name} frames: {100 * acc:.1f}%")

    # 6. deploy one frame count as a plain model
    plain = ff.specialize(model, 8)
    x = torch.randn(1, 3, 8, args.size, args.size)
    torch.testing.assert_close(plain(x), model.eval()(x), atol=1e-5, rtol=0)
    torch.export.export(plain, (x,))
    print("specialised 8-frame model exported with torch.export")
    return results


if __name__ == "__main__":
    main()
