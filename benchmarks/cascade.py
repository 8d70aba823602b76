"""Adaptive inference with ``ff.cascade``: top-1 vs average GMACs per clip, against fixed L/M/H.

One FFN ``tsm_tiny`` per seed is trained exactly as in ``reproduce.py`` (same config,
same training function). Each held-out clip then starts at L frames and moves up to M
and H only while the max softmax probability is below the threshold. A clip's cost is
the GMACs of EVERY count it ran (L, L+M or L+M+H), so escalated clips cost more than a
fixed-H pass; GMACs per count come from ``ff.profile`` on the FFN model at the dataset's
frame size (multiply-adds, batch 1). The goal checked: H's top-1 at <= 60% of H's GMACs.

Run (2-core CPU, ~5 min default, ~1 min ``--quick``):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/cascade.py --out benchmarks/results/cascade.json
    .venv/bin/python benchmarks/cascade.py --quick

Takes every ``reproduce.py`` config flag (``--steps``, ``--width``, ``--seeds`` ...) plus
``--thresholds`` and ``--cascade-frames`` (e.g. ``8 16``: skip L). Mean and std (ddof=1)
over seeds; the goal is judged on the means.
``--out`` JSON: ``{"frame_sets", "cascade_frames", "gmacs": {T: g}, "fixed": {T: {"top1", "gmacs"}},
"cascade": [{"threshold", "top1", "gmacs", "pct_of_H", "stopped": {T: %}}], "goal", "config", "wall_s"}``
with ``top1`` / ``gmacs`` as ``{"mean", "std"}``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # sleeping OpenMP workers on shared cores

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

import frameflex as ff  # noqa: E402
from _timing import markdown_table  # noqa: E402
from reproduce import (  # noqa: E402
    TEST_SEED, ReproConfig, add_config_args, compact_json, config_from_args, machine, mean_std, test_loader,
    train_model,
)

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
QUICK = dict(seeds=1, steps=100, test_videos=256)
BUDGET = 0.6  # the goal: H's accuracy at <= 60% of H's GMACs


def gmacs_per_count(model: torch.nn.Module, cfg: ReproConfig) -> dict[int, float]:
    """Multiply-adds (billions) of one clip at each trained count, batch 1, at the dataset's frame size."""
    return {r.frames: r.gmacs for r in ff.profile(model, frame_sets=cfg.train_frames, input_size=cfg.size,
                                                   latency=False)}


@torch.no_grad()
def sweep(cfg: ReproConfig, model: torch.nn.Module, gmacs: dict[int, float], thresholds, steps: list[int]) -> dict:
    """Fixed-T top-1 and, per threshold, cascade top-1 (over ``steps``), mean GMACs per clip and where
    clips stopped."""
    frames = list(cfg.train_frames)
    cost_upto = {t: sum(gmacs[s] for s in steps if s <= t) for t in steps}  # every count it tried
    fixed = dict.fromkeys(frames, 0)
    hits = dict.fromkeys(thresholds, 0)
    cost = dict.fromkeys(thresholds, 0.0)
    stopped = {th: dict.fromkeys(steps, 0) for th in thresholds}
    total = 0
    model.eval()
    for clips, y in test_loader(cfg, frames):
        total += len(y)
        for t in frames:
            fixed[t] += (model(clips[t]).argmax(1) == y).sum().item()
        for th in thresholds:
            logits, ran = ff.cascade(model, clips, threshold=th, frame_sets=steps)
            hits[th] += (logits.argmax(1) == y).sum().item()
            for t in steps:
                n = (ran == t).sum().item()
                stopped[th][t] += n
                cost[th] += n * cost_upto[t]
    return {
        "fixed": {t: 100.0 * fixed[t] / total for t in frames},
        "cascade": {th: {"top1": 100.0 * hits[th] / total, "gmacs": cost[th] / total,
                         "stopped": {t: 100.0 * stopped[th][t] / total for t in steps}} for th in thresholds},
    }


def goal(fixed_h: float, g_h: float, rows: list[dict]) -> dict:
    """Best cascade top-1 within the budget, and the cheapest threshold that matches H (means)."""
    within = [r for r in rows if r["gmacs"]["mean"] <= BUDGET * g_h]
    best = max(within, key=lambda r: r["top1"]["mean"], default=None)
    matching = [r for r in rows if r["top1"]["mean"] >= fixed_h]
    cheapest = min(matching, key=lambda r: r["gmacs"]["mean"], default=None)
    return {
        "target": f"top-1 >= fixed H ({fixed_h:.2f}) at <= {100 * BUDGET:.0f}% of H's GMACs ({BUDGET * g_h:.5f})",
        "pass": best is not None and best["top1"]["mean"] >= fixed_h,
        "best_within_budget": None if best is None else {
            "threshold": best["threshold"], "top1": best["top1"]["mean"], "pct_of_H": best["pct_of_H"]},
        "cheapest_matching_H": None if cheapest is None else {
            "threshold": cheapest["threshold"], "top1": cheapest["top1"]["mean"], "pct_of_H": cheapest["pct_of_H"]},
    }


def run(cfg: ReproConfig, thresholds=THRESHOLDS, out: str | None = None, log=print,
        cascade_frames: list[int] | None = None) -> dict:
    cfg.check()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, thresholds, out, log, cascade_frames)
    finally:
        torch.set_num_threads(threads)  # callers in the same process (tests) keep theirs


def _run(cfg: ReproConfig, thresholds, out: str | None, log, cascade_frames) -> dict:
    start = time.perf_counter()
    frames = list(cfg.train_frames)
    high = frames[-1]
    steps = sorted(cascade_frames or frames)
    if not set(steps) <= set(frames):
        raise ValueError(f"cascade_frames {steps} must be trained counts {frames}")
    seeds = list(range(cfg.first_seed, cfg.first_seed + cfg.seeds))
    thresholds = sorted(thresholds)
    log(f"# cascade: {machine()}")
    log(f"# config: {json.dumps(dataclasses.asdict(cfg))}")
    runs, train_s, gmacs = [], [], None
    for seed in seeds:
        model, secs = train_model(cfg, seed, tuple(frames), ffn=True)
        gmacs = gmacs or gmacs_per_count(model, cfg)  # the same architecture for every seed
        runs.append(sweep(cfg, model, gmacs, thresholds, steps))
        train_s.append(round(secs, 1))
        log(f"  seed {seed}: FFN trained in {secs:.0f} s; fixed top-1 "
            + ", ".join(f"{t}f {a:.1f}" for t, a in runs[-1]["fixed"].items()))

    g_h = gmacs[high]
    fixed = {t: {"top1": mean_std([r["fixed"][t] for r in runs]), "gmacs": round(gmacs[t], 6)} for t in frames}
    rows = []
    for th in thresholds:
        per = [r["cascade"][th] for r in runs]
        g = {"mean": round(statistics.fmean(p["gmacs"] for p in per), 6),
             "std": round(statistics.stdev(p["gmacs"] for p in per), 6) if len(per) > 1 else 0.0}
        rows.append({"threshold": th, "top1": mean_std([p["top1"] for p in per]), "gmacs": g,
                     "pct_of_H": round(100 * g["mean"] / g_h, 1),
                     "stopped": {str(t): round(statistics.fmean(p["stopped"][t] for p in per), 1) for t in steps}})
    result = {
        "frame_sets": frames,
        "cascade_frames": steps,
        "seeds": cfg.seeds,
        "gmacs": {str(t): round(gmacs[t], 6) for t in frames},
        "fixed": {str(t): v for t, v in fixed.items()},
        "cascade": rows,
        "goal": goal(fixed[high]["top1"]["mean"], g_h, rows),
        "per_seed": {"fixed": {str(t): [round(r["fixed"][t], 2) for r in runs] for t in frames},
                     "cascade_top1": {str(th): [round(r["cascade"][th]["top1"], 2) for r in runs] for th in thresholds}},
        "config": {**dataclasses.asdict(cfg), "seed_list": seeds, "test_seed": TEST_SEED, "thresholds": thresholds,
                   "machine": machine(), "model": "tsm_tiny (ff.convert, TSM_ADAPTERS)",
                   "gmacs_source": f"ff.profile(model, frame_sets, input_size={cfg.size}), batch 1"},
        "train_s": train_s,
    }
    result["wall_s"] = round(time.perf_counter() - start, 1)

    def ms(v: dict) -> str:
        return f"{v['mean']:.1f} ± {v['std']:.1f}"

    table = [[f"fixed {t}f", ms(fixed[t]["top1"]), f"{1e3 * gmacs[t]:.2f}", f"{100 * gmacs[t] / g_h:.0f}", "-"]
             for t in frames]
    table += [[f"cascade {r['threshold']:g}", ms(r["top1"]), f"{1e3 * r['gmacs']['mean']:.2f}", f"{r['pct_of_H']:.0f}",
               " / ".join(f"{r['stopped'][str(t)]:.0f}" for t in steps)] for r in rows]
    log("")
    log(f"top-1 (%) on {cfg.test_videos} held-out SyntheticMotion videos, mean ± std over seeds {seeds}; "
        f"MMACs per clip at {cfg.size} px; cascade over {' -> '.join(map(str, steps))} frames "
        "(a clip pays for every count it ran)")
    log(markdown_table(["inference", "top-1 (%)", "MMACs / clip", "% of H", f"stopped at {'/'.join(map(str, steps))} (%)"],
                       table))
    gl = result["goal"]
    best, cheap = gl["best_within_budget"], gl["cheapest_matching_H"]
    log("")
    log(f"{'PASS' if gl['pass'] else 'FAIL'}: {gl['target']}: best within budget "
        + ("none" if best is None else f"threshold {best['threshold']:g}: {best['top1']:.1f} at {best['pct_of_H']:.0f}%")
        + "; cheapest cascade matching H: "
        + ("none" if cheap is None else f"threshold {cheap['threshold']:g}: {cheap['top1']:.1f} at {cheap['pct_of_H']:.0f}%"))
    # A fixed lower count may already be as good as H: then the cascade is not what meets the goal.
    for t in frames[:-1]:
        if fixed[t]["top1"]["mean"] >= fixed[high]["top1"]["mean"]:
            log(f"note: fixed {t}f alone reaches {fixed[t]['top1']['mean']:.1f} >= fixed {high}f at "
                f"{100 * gmacs[t] / g_h:.0f}% of its GMACs")
    log(f"wall time {result['wall_s']:.0f} s")
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(compact_json(result) + "\n")
        log(f"results: {out}")
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help=f"smaller budget (~1 min): {QUICK}")
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    p.add_argument("--cascade-frames", type=int, nargs="+", default=None,
                   help="the counts the cascade tries, in order (default: every trained count, L M H)")
    add_config_args(p)
    args = p.parse_args(argv)
    return run(config_from_args(args, QUICK), args.thresholds, args.out, cascade_frames=args.cascade_frames)


if __name__ == "__main__":
    main()
