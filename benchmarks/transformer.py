"""A video transformer made frame-flexible: tiny TimeSformer vs tiny TSM on the demo's task.

For each model family, two runs with the same seed, initial weights, videos and steps:

- ``single-H``: trained at 16 frames only. To run it at other frame counts at all it is
  converted with one branch (``ff.convert(m, [16])``): for a transformer that resamples its
  temporal position table to the clip, for TSM it changes nothing.
- ``FFN``: ``ff.convert(m, [4, 8, 16], adapters=...)``, trained on the 4/8/16-frame clips
  of every video at once (``ff.forward_multi`` + ``ff.FFNLoss``).

The transformer is transformers' ``TimesformerForVideoClassification`` from a tiny config
(:func:`timesformer_tiny`), trained from scratch on frames standardised with the task's
mean and std; it takes frameflex's (B, C, T, H, W) batches like TSM (training and
evaluation move T to its ``time_dim``, found by ``convert``). Top-1 at 4, 8, 16 and at 6
and 12 frames, which no model trained on. The task, batch, steps and schedule are the
demo's (``frameflex.demo.fit``: the one training loop, ``frameflex.training.train_one_epoch``;
the learning rate is the family's own, :data:`LR`); top-1 comes from
``frameflex.evaluate.evaluate``. ``--task motion --families videomae_tiny tsm_tiny`` is the
earlier 8-class SyntheticMotion table with a tiny VideoMAE.

Run (2-core CPU, ~30 min with other jobs on it):

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


def timesformer_tiny(num_classes: int, frames: int = 16, size: int = 32):
    """transformers' TimeSformer classifier, tiny: patch 8, hidden 96, 3 layers of 4 heads, MLP 192,
    32 px, built for 16 frames, transformers' init (std 0.02); trained with AdamW at lr 1e-3 (:data:`LR`).

    Why this one: on SyntheticActions, whose class is in how two small objects move over a
    static background, its divided space-time attention (each patch attends to its own place
    in every frame, then to its frame) learns in the demo's 400 steps: 34% top-1 at 16 frames
    (chance 7%) in a 256-video check, where VideoMAE and ViViT (joint attention over all
    tokens; patch 4 or 8, tubelet 2 or 4, hidden 64-128, 2-4 layers, init std 0.02 or 0.1,
    lr 1e-3 or 3e-3) were still at chance after 100-200 steps (one run to 400: 5.9%).
    """
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    config = TimesformerConfig(image_size=size, patch_size=8, num_frames=frames, hidden_size=96, num_hidden_layers=3,
                               num_attention_heads=4, intermediate_size=192, num_labels=num_classes)
    return TimesformerForVideoClassification(config)


# The task's pixel mean and std: what an image processor would standardise the transformer's input with.
STANDARDISE = Normalize([0.48] * 3, [0.114] * 3)


FAMILIES = {
    # name: (build(num_classes, cfg), adapters, time_dim, transform of the frames)
    "timesformer_tiny": (lambda n, cfg: timesformer_tiny(n, size=cfg.size), "auto", None, STANDARDISE),
    "videomae_tiny": (lambda n, cfg: videomae_tiny(n, size=cfg.size), "auto", None, STANDARDISE),
    "tsm_tiny": (lambda n, cfg: tsm_tiny(n, width=cfg.width), [TSM_ADAPTERS], 2, None),
}


# A family's own learning rate (the rest train at the demo's).
LR = {"timesformer_tiny": 1e-3}

# --task motion: the demo's earlier task, 8 classes (4 directions x slow/fast) of SyntheticMotion.
MOTION = dict(num_classes=8, video_frames=32, size=32, paced=True, speed=(2.0, 3.0), noise=0.03, clutter=0.3,
              pace_ratio=3.0)


def run(cfg: demo.DemoConfig, families, log=print, task: str = "actions") -> dict:
    dataset, kw = (SyntheticMotion, MOTION) if task == "motion" else (SyntheticActions, cfg.data_kw())
    classes = kw["num_classes"] if task == "motion" else cfg.num_classes
    device = demo._device(cfg.device)
    out = {"top1": {}, "train_s": {}, "train_cpu_s": {}}
    high = max(cfg.train_frames)
    for family in families:
        build, adapters, time_dim, transform = FAMILIES[family]
        test = dataset(cfg.test_videos, frame_sets=cfg.eval_frames, train=False, seed=cfg.seed + 1_000_000,
                       transform=transform, **kw)
        test_batches = list(demo.loader(test, cfg, train=False))
        fam_cfg = dataclasses.replace(cfg, lr=LR.get(family, cfg.lr))
        for name, sets in (("single-H", (high,)), ("FFN", tuple(cfg.train_frames))):
            torch.manual_seed(cfg.seed)
            model = ff.convert(build(classes, cfg), sets, adapters=adapters if name == "FFN" else None,
                               time_dim=time_dim).to(device)
            train = dataset(cfg.steps * cfg.batch_size, frame_sets=sets, train=True, seed=cfg.seed,
                            transform=transform, **kw)
            cpu = time.process_time()  # this process's CPU (the data worker renders videos beside it)
            seconds = demo.fit(model, demo.loader(train, cfg, train=True), fam_cfg, device, desc=f"{family} {name}")
            cpu = time.process_time() - cpu
            top1 = evaluate(model, test_batches, cfg.eval_frames, progress=False)["top1"]
            key = f"{family} {name}"
            out["top1"][key] = {t: round(v, 1) for t, v in top1.items()}
            out["train_s"][key], out["train_cpu_s"][key] = round(seconds, 1), round(cpu, 1)
            log(f"{key}: {out['top1'][key]} ({seconds:.0f} s, {cpu:.0f} s CPU)")
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
    p.add_argument("--families", nargs="+", default=["timesformer_tiny", "tsm_tiny"], choices=list(FAMILIES),
                   help="default: timesformer_tiny tsm_tiny (videomae_tiny learns only --task motion)")
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
