"""Nested vs independent multi-frame sampling: what one decode per sample does to FFN's accuracy.

FFN's official code samples the 4-, 8- and 16-frame clips of a video
independently (three segment draws: 28 frame indices, fewer distinct frames
when draws coincide). Nested sampling (``MultiFrameClips(nested=True)``) draws
the 16 frames only and gives the 8- and 4-frame clips every 2nd and 4th of
them: 16 decoded frames, but the clips of a video are no longer independent
views of it. The demo's FFN (tiny TSM converted with FFN, the demo's task,
budget and loader) is trained both ways with the same seeds, initial weights,
videos and steps, and evaluated on the same held-out videos with the demo's
centre sampling; the independent arm is exactly ``frameflex demo``'s FFN model.

    python benchmarks/nested.py --out benchmarks/results/nested.json   # 3 seeds
    python benchmarks/nested.py --seeds 1 --steps 40 --test-videos 64   # a quick look
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time

# Sleeping (not spinning) OpenMP workers: the cores are shared with other jobs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.dirname(HERE))  # run from a checkout without installing (last: never shadow tests' conftest)

import frameflex as ff  # noqa: E402
from frameflex.data import MultiFrameClips  # noqa: E402
from frameflex.demo import DemoConfig, _device, fit, loader  # noqa: E402
from frameflex.evaluate import evaluate  # noqa: E402
from frameflex.models.tsm import TSM_ADAPTERS, tsm_tiny  # noqa: E402
from frameflex.synthetic import SyntheticActions  # noqa: E402
from reproduce import write_json  # noqa: E402

MODES = ("independent", "nested")


def decoded_frames(frame_sets: tuple[int, ...], num_frames: int, nested: bool, draws: int = 2000) -> float:
    """Mean number of distinct frames a training sample decodes from a ``num_frames``-frame video."""
    clips = MultiFrameClips(frame_sets, train=True, nested=nested, generator=torch.Generator().manual_seed(0))
    return statistics.mean(torch.unique(torch.cat(list(clips.indices(num_frames).values()))).numel()
                           for _ in range(draws))


def train_ffn(cfg: DemoConfig, seed: int, nested: bool) -> tuple[torch.nn.Module, float]:
    """The demo's FFN model trained with seed ``seed`` and the given sampling; returns it and the seconds."""
    frames = tuple(cfg.train_frames)
    device = _device(cfg.device)
    torch.manual_seed(seed)  # same initial weights for both modes (and as the demo's FFN)
    model = ff.convert(tsm_tiny(cfg.num_classes, width=cfg.width), frame_sets=frames,
                       adapters=[TSM_ADAPTERS], time_dim=2).to(device)
    train = SyntheticActions(cfg.steps * cfg.batch_size, frame_sets=frames, train=True, seed=seed, **cfg.data_kw())
    train.clips.nested = nested
    cfg = dataclasses.replace(cfg, seed=seed)  # the loader's shuffling and worker seeds
    seconds = fit(model, loader(train, cfg, train=True), cfg, device,
                  desc=f"seed {seed} {'nested' if nested else 'independent'}")
    return model, seconds


def run(cfg: DemoConfig, seeds: list[int], log=print) -> dict[str, dict[int, list[float]]]:
    """``{mode: {T: [top-1 % per seed]}}`` of the demo's FFN trained with each sampling mode."""
    out: dict[str, dict[int, list[float]]] = {m: {} for m in MODES}
    for seed in seeds:
        test = SyntheticActions(cfg.test_videos, frame_sets=cfg.eval_frames, train=False, seed=seed + 1_000_000,
                                **cfg.data_kw())
        test_batches = list(loader(test, dataclasses.replace(cfg, seed=seed), train=False))
        for mode in MODES:
            model, seconds = train_ffn(cfg, seed, nested=mode == "nested")
            top1 = evaluate(model, test_batches, cfg.eval_frames, progress=False)["top1"]
            for t, acc in top1.items():
                out[mode].setdefault(t, []).append(acc)
            log(f"seed {seed} {mode:>11}: " + ", ".join(f"{t}f {a:.1f}" for t, a in top1.items())
                + f" ({seconds:.0f} s)")
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default: the demo's)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the demo's")
    parser.add_argument("--test-videos", type=int, default=None, help="held-out videos (default: the demo's)")
    parser.add_argument("--width", type=int, default=None, help="tsm_tiny width (default: the demo's)")
    parser.add_argument("--workers", type=int, default=None, help="data workers (default: the demo's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the demo's data worker takes the other core)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    kw = {k: getattr(args, k) for k in ("steps", "batch_size", "test_videos", "width", "workers")
          if getattr(args, k) is not None}
    cfg = DemoConfig(progress=False, **kw)
    frames = tuple(cfg.train_frames)
    machine = f"{platform.machine()} ({os.cpu_count()} CPUs)"
    print(f"# frameflex {ff.__version__}, torch {torch.__version__}, {machine}, {torch.get_num_threads()} "
          f"thread(s), {cfg.workers} data worker(s); tsm_tiny width {cfg.width}, {cfg.steps} steps of batch "
          f"{cfg.batch_size}, {cfg.test_videos} held-out videos, seeds 0..{args.seeds - 1}")
    start = time.perf_counter()
    result = run(cfg, list(range(args.seeds)))
    wall = time.perf_counter() - start
    counts = sorted(result["independent"])
    stats = {m: {t: _mean_std(result[m][t]) for t in counts} for m in MODES}
    gap = {t: [b - a for a, b in zip(result["independent"][t], result["nested"][t])] for t in counts}
    gap_stats = {t: _mean_std(d) for t, d in gap.items()}
    decoded = {m: {"indices": sum(frames) if m == "independent" else max(frames),
                   f"distinct_{cfg.video_frames}f_video": decoded_frames(frames, cfg.video_frames, m == "nested"),
                   "distinct_300f_video": decoded_frames(frames, 300, m == "nested")} for m in MODES}
    trained = set(frames)
    print(f"\n| sampling | frames decoded per sample | " + " | ".join(
        f"top-1 {t}f{'' if t in trained else '*'} (%)" for t in counts) + " |")
    print("|---|---|" + "---|" * len(counts))
    for m in MODES:
        d = decoded[m]
        print(f"| {m} | {d['indices']} ({d[f'distinct_{cfg.video_frames}f_video']:.1f} distinct of "
              f"{cfg.video_frames}, {d['distinct_300f_video']:.1f} of 300) | "
              + " | ".join(f"{stats[m][t][0]:.1f} ± {stats[m][t][1]:.1f}" for t in counts) + " |")
    print("| nested - independent (points, paired) | | "
          + " | ".join(f"{gap_stats[t][0]:+.1f} ± {gap_stats[t][1]:.1f}" for t in counts) + " |")
    print(f"\nmean ± std over {args.seeds} seed(s); the gap is per seed, then averaged. * not a trained count.")
    for t in counts:
        print(f"{t:>3}f nested - independent per seed: " + ", ".join(f"{d:+.1f}" for d in gap[t]))
    print(f"{wall:.0f} s wall")
    out = {"config": {"seeds": args.seeds, "threads": args.threads, **{k: v for k, v in vars(cfg).items()
                                                                         if k not in ("seed", "progress")}},
           "task": SyntheticActions(1, **cfg.data_kw()).params(), "machine": machine,
           "torch": torch.__version__, "frameflex": ff.__version__, "wall_s": round(wall),
           "decoded_frames": decoded, "per_seed": result,
           "mean": {m: {t: round(s[0], 2) for t, s in stats[m].items()} for m in MODES},
           "std": {m: {t: round(s[1], 2) for t, s in stats[m].items()} for m in MODES},
           "gap_per_seed": gap, "gap_mean": {t: round(s[0], 2) for t, s in gap_stats.items()}}
    if args.out:
        write_json(args.out, out)
    return out


if __name__ == "__main__":
    main()
