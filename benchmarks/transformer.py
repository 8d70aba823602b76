"""A video transformer made frame-flexible: tiny VideoMAE vs tiny TSM on the synthetic motion task.

For each model family, two runs with the same seed, initial weights, videos and steps:

- ``single-H``: trained at 16 frames only. To run it at other frame counts at all it is
  converted with one branch (``ff.convert(m, [16])``): for VideoMAE that resamples its
  temporal position table to the clip, for TSM it changes nothing.
- ``FFN``: ``ff.convert(m, [4, 8, 16], adapters=...)``, trained on the 4/8/16-frame clips
  of every video at once (``ff.forward_multi`` + ``ff.FFNLoss``).

VideoMAE is transformers' ``VideoMAEForVideoClassification`` from a tiny config (hidden
64, 2 layers, 32 px, patch 8, tubelet 2, built for 16 frames), fed ``pixel_values``
(B, T, C, H, W) and trained from scratch; ``time_dim`` is found by ``convert``. Top-1 at
4, 8, 16 and at 6 and 12 frames, which no model trained on. The task, optimiser and
schedule are the demo's (``frameflex.demo.fit``: the one training loop,
``frameflex.training.train_one_epoch``); top-1 comes from ``frameflex.evaluate.evaluate``.

Run (2-core CPU, ~10 min):

    .venv/bin/python benchmarks/transformer.py --out benchmarks/results/transformer.json
    .venv/bin/python benchmarks/transformer.py --quick   # seconds; numbers mean nothing
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the cores are shared: sleep, do not spin

import torch  # noqa: E402
from torchvision.transforms.v2 import Normalize  # noqa: E402

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout (last)

import frameflex as ff  # noqa: E402
from frameflex import demo  # noqa: E402
from frameflex.data import SyntheticMotion  # noqa: E402
from frameflex.synthetic import SyntheticActions  # noqa: E402
from frameflex.evaluate import evaluate  # noqa: E402
from frameflex.models.tsm import TSM_ADAPTERS, tsm_tiny  # noqa: E402


def videomae_tiny(num_classes: int, frames: int = 16, size: int = 32):
    """transformers' VideoMAE classifier at test size (hidden 64, 2 layers, patch 8, tubelet 2).

    Trained from scratch: with transformers' default init (std 0.02) the patch content is
    drowned by the fixed position table and the loss does not move in the demo's 400
    steps; std 0.1 lets it learn.
    """
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    config = VideoMAEConfig(image_size=size, patch_size=8, num_frames=frames, tubelet_size=2, hidden_size=64,
                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                            num_labels=num_classes, initializer_range=0.1)
    return VideoMAEForVideoClassification(config)


# The task's pixel mean and std: what an image processor would standardise the transformer's input with.
STANDARDISE = Normalize([0.48] * 3, [0.114] * 3)


FAMILIES = {
    # name: (build(num_classes, cfg), adapters, time_dim, transform of the frames)
    "videomae_tiny": (lambda n, cfg: videomae_tiny(n, size=cfg.size), "auto", None, STANDARDISE),
    "tsm_tiny": (lambda n, cfg: tsm_tiny(n, width=cfg.width), [TSM_ADAPTERS], 2, None),
}


# --task motion: the demo's earlier task, 8 classes (4 directions x slow/fast) of SyntheticMotion.
MOTION = dict(num_classes=8, video_frames=32, size=32, paced=True, speed=(2.0, 3.0), noise=0.03, clutter=0.3,
              pace_ratio=3.0)


def run(cfg: demo.DemoConfig, families, log=print, task: str = "actions") -> dict:
    dataset, kw = (SyntheticMotion, MOTION) if task == "motion" else (SyntheticActions, cfg.data_kw())
    classes = kw["num_classes"] if task == "motion" else cfg.num_classes
    device = demo._device(cfg.device)
    out = {"top1": {}, "train_s": {}}
    high = max(cfg.train_frames)
    for family in families:
        build, adapters, time_dim, transform = FAMILIES[family]
        test = dataset(cfg.test_videos, frame_sets=cfg.eval_frames, train=False, seed=cfg.seed + 1_000_000,
                       transform=transform, **kw)
        test_batches = list(demo.loader(test, cfg, train=False))
        for name, sets in (("single-H", (high,)), ("FFN", tuple(cfg.train_frames))):
            torch.manual_seed(cfg.seed)
            model = ff.convert(build(classes, cfg), sets, adapters=adapters if name == "FFN" else None,
                               time_dim=time_dim).to(device)
            train = dataset(cfg.steps * cfg.batch_size, frame_sets=sets, train=True, seed=cfg.seed,
                            transform=transform, **kw)
            seconds = demo.fit(model, demo.loader(train, cfg, train=True), cfg, device, desc=f"{family} {name}")
            top1 = evaluate(model, test_batches, cfg.eval_frames, progress=False)["top1"]
            out["top1"][f"{family} {name}"] = {t: round(v, 1) for t, v in top1.items()}
            out["train_s"][f"{family} {name}"] = round(seconds, 1)
            log(f"{family} {name}: {out['top1'][f'{family} {name}']} ({seconds:.0f} s)")
    return out


def markdown(result: dict, cfg: demo.DemoConfig) -> str:
    names = list(result["top1"])
    trained = set(cfg.train_frames)
    lines = ["| frames | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for t in cfg.eval_frames:
        label = f"{t}" if t in trained else f"{t}*"
        lines.append(f"| {label} | " + " | ".join(f"{result['top1'][n][t]:.1f}" for n in names) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a few steps: checks that it runs, numbers mean nothing")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default: the demo's)")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--task", default="actions", choices=["actions", "motion"],
                   help="actions: the demo's SyntheticActions (default); motion: 8-class SyntheticMotion")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    cfg = demo.DemoConfig.quick(progress=False) if args.quick else demo.DemoConfig(progress=False)
    if args.steps is not None:
        cfg = dataclasses.replace(cfg, steps=args.steps)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - cfg.workers))
    start = time.perf_counter()
    result = run(cfg, args.families, task=args.task)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["config"] = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("progress", "device")}
    print(f"\ntop-1 (%) on {cfg.test_videos} held-out {'SyntheticMotion' if args.task == 'motion' else 'SyntheticActions'} videos, {cfg.steps} steps of batch "
          f"{cfg.batch_size} per model, seed {cfg.seed}; * = no model trained at that count\n")
    print(markdown(result, cfg))
    print(f"\nwall time {result['wall_s']:.0f} s, torch {torch.__version__}, {os.cpu_count()} CPU cores")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
