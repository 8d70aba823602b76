"""Nested vs independent multi-frame sampling: what one decode per sample does to FFN's accuracy.

FFN's official code samples the 4-, 8- and 16-frame clips of a video
independently (three segment draws, up to 28 decoded frames). Nested sampling
(``MultiFrameClips(nested=True)``) draws the 16 frames only and gives the 8- and
4-frame clips every 2nd and 4th of them: 16 decoded frames, but the clips of a
video are no longer independent views of it. Both are trained here on the demo's
synthetic task (SyntheticActions; tiny TSM converted with FFN, the demo's settings)
with the same seeds, initial weights, videos and steps, and evaluated on the
same held-out videos with the standard centre sampling.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/nested.py    # 3 seeds (about an hour on a loaded 2-core CPU)
    python benchmarks/nested.py --seeds 1 --steps 40 --test-videos 64   # a quick look
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import frameflex as ff
from frameflex.synthetic import SyntheticActions
from frameflex.demo import DemoConfig, fit, loader
from frameflex.evaluate import evaluate
from frameflex.models.tsm import TSM_ADAPTERS, tsm_tiny

MODES = ("independent", "nested")


def run(cfg: DemoConfig, seeds: list[int]) -> dict[str, dict[int, list[float]]]:
    """``{mode: {T: [top-1 % per seed]}}`` for FFN trained with each sampling mode."""
    out: dict[str, dict[int, list[float]]] = {m: {} for m in MODES}
    frames = tuple(cfg.train_frames)
    for seed in seeds:
        cfg.seed = seed
        test = SyntheticActions(cfg.test_videos, frame_sets=frames, train=False, seed=seed + 1_000_000, **cfg.data_kw())
        test_batches = list(loader(test, cfg, train=False))
        for mode in MODES:
            torch.manual_seed(seed)  # same initial weights for both modes
            model = ff.convert(tsm_tiny(cfg.num_classes, width=cfg.width), frame_sets=frames,
                               adapters=[TSM_ADAPTERS], time_dim=2)
            train = SyntheticActions(cfg.steps * cfg.batch_size, frame_sets=frames, train=True, seed=seed,
                                    **cfg.data_kw())
            train.clips.nested = mode == "nested"
            fit(model, loader(train, cfg, train=True), cfg, torch.device("cpu"), desc=f"seed {seed} {mode}")
            for t, acc in evaluate(model, test_batches, frames, progress=False)["top1"].items():
                out[mode].setdefault(t, []).append(acc)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default: the demo's)")
    parser.add_argument("--test-videos", type=int, default=None, help="held-out videos (default: the demo's)")
    parser.add_argument("--width", type=int, default=None, help="tsm_tiny width (default: the demo's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the demo's data worker takes the other core)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    kw = {k: v for k, v in (("steps", args.steps), ("test_videos", args.test_videos), ("width", args.width))
          if v is not None}
    cfg = DemoConfig(progress=False, **kw)
    print(f"# frameflex {ff.__version__}, torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} "
          f"threads; tsm_tiny width {cfg.width}, {cfg.steps} steps of batch {cfg.batch_size}, {cfg.test_videos} "
          f"held-out videos, seeds 0..{args.seeds - 1}")
    start = time.perf_counter()
    result = run(cfg, list(range(args.seeds)))
    frames = sorted(result["independent"])
    mean = {m: {t: statistics.mean(v) for t, v in result[m].items()} for m in MODES}
    std = {m: {t: statistics.stdev(v) if len(v) > 1 else 0.0 for t, v in result[m].items()} for m in MODES}
    print("\n| sampling | frames decoded per sample | " + " | ".join(f"top-1 {t}f (%)" for t in frames) + " |")
    print("|---|---|" + "---|" * len(frames))
    decoded = {"independent": f"up to {sum(frames)}", "nested": str(max(frames))}
    for m in MODES:
        print(f"| {m} | {decoded[m]} | " + " | ".join(f"{mean[m][t]:.1f} ± {std[m][t]:.1f}" for t in frames) + " |")
    diff = {t: [b - a for a, b in zip(result["independent"][t], result["nested"][t])] for t in frames}
    print("| nested - independent (points) | | " + " | ".join(
        f"{statistics.mean(d):+.1f} ± {statistics.stdev(d) if len(d) > 1 else 0.0:.1f}" for d in diff.values())
        + " |")
    print(f"\nmean ± std over {args.seeds} seed(s); paired by seed. {time.perf_counter() - start:.0f} s")
    return {"top1": mean, "std": std, "per_seed": result}


if __name__ == "__main__":
    main()
