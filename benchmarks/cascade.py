"""Adaptive inference with ``ff.cascade``: top-1 vs average GMACs per clip, against fixed L/M/H.

One FFN ``tsm_tiny`` per seed, trained exactly as in ``reproduce.py`` (or loaded from its
``--save-models`` folder with ``--models``). Each held-out clip starts at the cascade's
first count and moves up only while its exit signal says "unsure". A clip's cost is the
GMACs of EVERY count it ran (``ff.profile``, multiply-adds, batch 1, at the frame size).
Exit signals swept over thresholds:

- ``softmax``: the max softmax probability (what ``ff.cascade`` does);
- ``temperature``: the same after dividing each branch's logits by a temperature fitted
  (NLL) on held-out clips of other videos than the test ones (``--val-videos``);
- ``agree``: stop at a later count also when its prediction equals the previous count's.

The cascades are computed from each branch's logits on every test clip, once; the
``softmax`` rule is checked against ``ff.cascade`` itself. The goal checked: top-1 that
matches fixed H (no significant drop over seeds: ``reproduce.paired``, the reproduce rule)
at <= 60% of H's GMACs; a note says when a fixed lower count already matches H.

Run (2-core CPU):

    python benchmarks/cascade.py --models models/ --out benchmarks/results/cascade.json \\
        --plot benchmarks/results/cascade.png --reproduce benchmarks/results/reproduce.json
    python benchmarks/cascade.py --quick

Takes every ``reproduce.py`` config flag (``--steps``, ``--seeds`` ...) plus ``--thresholds``
and ``--cascade-frames`` (repeatable, e.g. ``--cascade-frames 8 16``). ``--out`` JSON:
``{"frame_sets", "cascade_frames", "gmacs": {T: g}, "temperature": {T: [per seed]},
"fixed": {T: {"top1", "gmacs"}}, "cascade": [{"rule", "frames", "threshold", "top1", "gmacs",
"pct_of_H", "stopped": {T: %}, "vs_H"}], "goal", "config", "wall_s", "cpu_s"}`` with ``top1`` /
``gmacs`` as ``{"mean", "std"}``.
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
sys.path.append(os.path.dirname(HERE))  # run from a checkout without installing (last: never shadow tests' conftest)

import frameflex as ff  # noqa: E402
from _timing import markdown_table  # noqa: E402
from reproduce import (  # noqa: E402
    TEST_SEED, ReproConfig, add_config_args, build_ffn, config_from_args, cpu_seconds, ffn_path, machine, mean_std,
    paired, test_loader, train_model, write_json,
)

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
RULES = ("softmax", "temperature", "agree")
QUICK = dict(seeds=2, steps=100, test_videos=256)
BUDGET = 0.6  # the goal: H's accuracy at <= 60% of H's GMACs
VAL_SEED = 2_000_000  # videos for fitting temperatures: neither training nor test videos


def gmacs_per_count(model: torch.nn.Module, cfg: ReproConfig) -> dict[int, float]:
    """Multiply-adds (billions) of one clip at each trained count, batch 1, at the dataset's frame size."""
    return {r.frames: r.gmacs for r in ff.profile(model, frame_sets=cfg.train_frames, input_size=cfg.size,
                                                   latency=False)}


@torch.no_grad()
def branch_logits(model: torch.nn.Module, batches, frames) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """``{T: logits (N, classes)}`` of every clip through the branch of T, and the labels."""
    model.eval()
    out: dict[int, list[torch.Tensor]] = {t: [] for t in frames}
    labels = []
    for clips, y in batches:
        labels.append(y)
        for t in frames:
            with ff.frames(model, t):
                out[t].append(model(clips[t]))
    return {t: torch.cat(v) for t, v in out.items()}, torch.cat(labels)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimising the NLL of ``logits / T`` (a grid, then a finer grid)."""
    def nll(t: float) -> float:
        return torch.nn.functional.cross_entropy(logits / t, labels).item()

    grid = [0.05 * 1.1**i for i in range(60)]
    best = min(grid, key=nll)
    return min((best * (0.95 + 0.005 * i) for i in range(21)), key=nll)


def simulate(logits: dict[int, torch.Tensor], labels: torch.Tensor, order: tuple[int, ...], threshold: float,
             rule: str, temps: dict[int, float], gmacs: dict[int, float]) -> dict:
    """Top-1, mean GMACs and stop shares of one cascade, from the branches' logits."""
    n = len(labels)
    todo = torch.ones(n, dtype=torch.bool)
    pred = torch.zeros(n, dtype=torch.long)
    stop = torch.zeros(n, dtype=torch.long)
    cost = torch.zeros(n)
    prev = None
    for i, t in enumerate(order):
        z = logits[t] / (temps[t] if rule == "temperature" else 1.0)
        p = z.softmax(-1)
        conf, arg = p.amax(-1), p.argmax(-1)
        cost[todo] += gmacs[t]
        pred[todo], stop[todo] = arg[todo], t
        sure = conf >= threshold
        if rule == "agree" and prev is not None:
            sure |= arg == prev
        if i + 1 < len(order):
            todo &= ~sure
        prev = arg
    return {"top1": 100.0 * (pred == labels).float().mean().item(), "gmacs": cost.mean().item(),
            "stopped": {t: 100.0 * (stop == t).float().mean().item() for t in order}, "pred": pred, "frames": stop}


def check_against_ff_cascade(model, cfg: ReproConfig, logits, labels, order, threshold, gmacs) -> None:
    """The simulated ``softmax`` rule must be exactly what ``ff.cascade`` decides."""
    preds, frames = [], []
    for clips, _ in test_loader(cfg, order):
        out = ff.cascade(model, clips, threshold=threshold, frame_sets=order)
        preds.append(out.logits.argmax(1))
        frames.append(out.frames)
    sim = simulate(logits, labels, order, threshold, "softmax", {}, gmacs)
    if not (torch.equal(torch.cat(preds), sim["pred"]) and torch.equal(torch.cat(frames), sim["frames"])):
        raise AssertionError(f"simulated cascade {order} @ {threshold} differs from ff.cascade")


def orders_of(frames: list[int], cascade_frames=None) -> list[tuple[int, ...]]:
    """The cascades to sweep: the given orders, else every start (L, M, ...) escalating up to H."""
    if not cascade_frames:
        return [tuple(frames[i:]) for i in range(len(frames) - 1)]
    orders = [tuple(sorted(o)) for o in cascade_frames]
    for o in orders:
        if not set(o) <= set(frames) or len(set(o)) != len(o):
            raise ValueError(f"cascade_frames {list(o)} must be distinct trained counts {frames}")
    return orders


def ffn_model(cfg: ReproConfig, seed: int, models_dir: str | None) -> tuple[torch.nn.Module, float]:
    """The FFN model of ``seed``: loaded from ``reproduce.py --save-models`` output, else trained."""
    if not models_dir:
        return train_model(cfg, seed, tuple(cfg.train_frames), ffn=True)
    from safetensors.torch import load_file

    path = ffn_path(models_dir, seed)
    if not os.path.exists(path):
        raise SystemExit(f"--models: no {path}; run reproduce.py --save-models {models_dir} with the same seeds")
    model = build_ffn(cfg)
    model.load_state_dict(load_file(path))  # strict: another width or task does not load
    return model, 0.0


def run(cfg: ReproConfig, thresholds=THRESHOLDS, out: str | None = None, log=print,
        cascade_frames: list[list[int]] | None = None, models_dir: str | None = None, val_videos: int = 256,
        plot_path: str | None = None, reproduce_json: str | None = None) -> dict:
    cfg.check()
    orders = orders_of(list(cfg.train_frames), cascade_frames)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        result = _run(cfg, sorted(thresholds), log, orders, models_dir, val_videos)
    finally:
        torch.set_num_threads(threads)  # callers in the same process (tests) keep theirs
    if out:
        write_json(out, result, log)
    if plot_path:
        plot(result, plot_path, reproduce_json, log)
    return result


def _run(cfg: ReproConfig, thresholds, log, orders, models_dir, val_videos) -> dict:
    start, cpu = time.perf_counter(), cpu_seconds()
    frames = list(cfg.train_frames)
    high = frames[-1]
    seeds = list(range(cfg.first_seed, cfg.first_seed + cfg.seeds))
    log(f"# cascade: {machine()}")
    log(f"# config: {json.dumps(dataclasses.asdict(cfg))}")
    runs, train_s, temps, gmacs = [], [], [], None
    for seed in seeds:
        model, secs = ffn_model(cfg, seed, models_dir)
        gmacs = gmacs or gmacs_per_count(model, cfg)  # the same architecture for every seed
        logits, labels = branch_logits(model, test_loader(cfg, frames), frames)
        vlogits, vlabels = branch_logits(model, test_loader(cfg, frames, seed=VAL_SEED, videos=val_videos), frames)
        temp = {t: fit_temperature(vlogits[t], vlabels) for t in frames}
        if seed == seeds[0]:
            check_against_ff_cascade(model, cfg, logits, labels, orders[0], 0.9, gmacs)
        fixed = {t: 100.0 * (logits[t].argmax(1) == labels).float().mean().item() for t in frames}
        sims = {(rule, o, th): simulate(logits, labels, o, th, rule, temp, gmacs)
                for rule in RULES for o in orders for th in thresholds}
        runs.append({"fixed": fixed, "cascade": sims})
        temps.append(temp)
        train_s.append(round(secs, 1))
        log(f"  seed {seed}: FFN {'loaded' if models_dir else f'trained in {secs:.0f} s'}; fixed top-1 "
            + ", ".join(f"{t}f {a:.1f}" for t, a in fixed.items())
            + "; temperatures " + ", ".join(f"{t}f {v:.2f}" for t, v in temp.items()))

    g_h = gmacs[high]
    fixed_h = [r["fixed"][high] for r in runs]
    fixed = {t: {"top1": mean_std([r["fixed"][t] for r in runs]), "gmacs": round(gmacs[t], 6),
                 "vs_H": paired([r["fixed"][t] for r in runs], fixed_h, cfg.test_videos)} for t in frames}
    rows = []
    for rule in RULES:
        for o in orders:
            for th in thresholds:
                per = [r["cascade"][rule, o, th] for r in runs]
                g = {"mean": round(statistics.fmean(p["gmacs"] for p in per), 6),
                     "std": round(statistics.stdev(p["gmacs"] for p in per), 6) if len(per) > 1 else 0.0}
                top1 = [p["top1"] for p in per]
                rows.append({"rule": rule, "frames": list(o), "threshold": th, "top1": mean_std(top1), "gmacs": g,
                             "pct_of_H": round(100 * g["mean"] / g_h, 1),
                             "stopped": {str(t): round(statistics.fmean(p["stopped"][t] for p in per), 1) for t in o},
                             "vs_H": paired(top1, fixed_h, cfg.test_videos)})
    result = {
        "frame_sets": frames,
        "cascade_frames": [list(o) for o in orders],
        "seeds": cfg.seeds,
        "task": cfg.dataset(1, frames, train=False, seed=0).params(),
        "gmacs": {str(t): round(gmacs[t], 6) for t in frames},
        "temperature": {str(t): [round(tp[t], 3) for tp in temps] for t in frames},
        "fixed": {str(t): v for t, v in fixed.items()},
        "cascade": rows,
        "goal": goal(fixed[high]["top1"], g_h, rows),
        "per_seed": {"fixed": {str(t): [round(r["fixed"][t], 2) for r in runs] for t in frames}},
        "config": {**dataclasses.asdict(cfg), "seed_list": seeds, "test_seed": TEST_SEED, "val_seed": VAL_SEED,
                   "val_videos": val_videos, "thresholds": thresholds, "rules": list(RULES), "machine": machine(),
                   "model": "tsm_tiny (ff.convert, TSM_ADAPTERS)",
                   "gmacs_source": f"ff.profile(model, frame_sets, input_size={cfg.size}), batch 1"},
        "train_s": train_s,
    }
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["cpu_s"] = round(cpu_seconds() - cpu, 1)
    report(result, log)
    return result


def goal(fixed_h: dict, g_h: float, rows: list[dict]) -> dict:
    """Per exit rule: the best cascade top-1 within the budget and the cheapest cascade that matches H.

    "Matches": not significantly below H over seeds (``reproduce.paired``: paired t-test at 5%,
    and more than one test clip), the rule the reproduce claims use.
    """
    def brief(r):
        return None if r is None else {k: r[k] for k in ("rule", "frames", "threshold", "pct_of_H")} | {
            "top1": r["top1"]["mean"], "gap_to_H": r["vs_H"]["gap"], "p": r["vs_H"]["p"]}

    per_rule = {}
    for rule in dict.fromkeys(r["rule"] for r in rows):
        mine = [r for r in rows if r["rule"] == rule]
        within = [r for r in mine if r["gmacs"]["mean"] <= BUDGET * g_h]
        matching = [r for r in mine if r["vs_H"]["verdict"] != "<"]
        best = max(within, key=lambda r: r["top1"]["mean"], default=None)
        cheapest = min(matching, key=lambda r: r["gmacs"]["mean"], default=None)
        per_rule[rule] = {"pass": cheapest is not None and cheapest["gmacs"]["mean"] <= BUDGET * g_h,
                          "best_within_budget": brief(best), "cheapest_matching_H": brief(cheapest)}
    return {"target": f"top-1 matching fixed H ({fixed_h['mean']:.2f} ± {fixed_h['std']:.2f}) "
                      f"at <= {100 * BUDGET:.0f}% of H's GMACs",
            "pass": any(v["pass"] for v in per_rule.values()), "rules": per_rule}


def report(result: dict, log=print) -> None:
    frames = result["frame_sets"]
    high = frames[-1]
    g = {int(t): v for t, v in result["gmacs"].items()}

    def ms(v: dict) -> str:
        return f"{v['mean']:.1f} ± {v['std']:.1f}"

    def vs(v: dict) -> str:
        return f"{v['gap']:+.1f} (p={v['p']})"

    fixed = {int(t): v for t, v in result["fixed"].items()}
    table = [[f"fixed {t}f", ms(fixed[t]["top1"]), f"{1e3 * g[t]:.2f}", f"{100 * g[t] / g[high]:.0f}", "-",
              vs(fixed[t]["vs_H"])] for t in frames]
    table += [[f"{r['rule']} {'>'.join(map(str, r['frames']))} @ {r['threshold']:g}", ms(r["top1"]),
               f"{1e3 * r['gmacs']['mean']:.2f}", f"{r['pct_of_H']:.0f}",
               " / ".join(f"{t}f {p:.0f}" for t, p in r["stopped"].items()), vs(r["vs_H"])] for r in result["cascade"]]
    cfg = result["config"]
    log("")
    log(f"top-1 (%) on {cfg['test_videos']} held-out SyntheticActions videos, mean ± std over seeds "
        f"{cfg['seed_list']}; MMACs per clip at {cfg['size']} px; cascade A>B>C @ threshold: starts at A frames, "
        "escalates while unsure (a clip pays for every count it ran); vs H: paired gap to fixed H over seeds")
    log(markdown_table(["inference", "top-1 (%)", "MMACs / clip", "% of H", "stopped at (% of clips)", "vs H"], table))
    gl = result["goal"]
    log("")

    def say(r):
        return "none" if r is None else (f"{'>'.join(map(str, r['frames']))} @ {r['threshold']:g}: "
                                         f"{r['top1']:.1f} ({r['gap_to_H']:+.1f}, p={r['p']}) at {r['pct_of_H']:.0f}%")

    for rule, v in gl["rules"].items():
        log(f"{'PASS' if v['pass'] else 'FAIL'}: [{rule}] {gl['target']}: best within budget "
            f"{say(v['best_within_budget'])}; cheapest cascade matching H {say(v['cheapest_matching_H'])}")
    for t in frames[:-1]:  # a fixed lower count may already match H: then no cascade is needed
        if fixed[t]["vs_H"]["verdict"] != "<":
            log(f"note: fixed {t}f alone matches fixed {high}f ({vs(fixed[t]['vs_H'])}) at "
                f"{100 * g[t] / g[high]:.0f}% of its GMACs")
    if "wall_s" in result:
        log(f"wall time {result['wall_s']:.0f} s, CPU time {result['cpu_s']:.0f} s")


def plot(result: dict, path: str, reproduce_json: str | None = None, log=print) -> None:
    """Top-1 vs MMACs per clip: fixed counts (FFN; single-H and ST from a reproduce.py file), cascades."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log(f"matplotlib is not installed: skipping the plot {path}")
        return
    frames = result["frame_sets"]
    g = {int(t): 1e3 * v for t, v in result["gmacs"].items()}
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    if reproduce_json and os.path.exists(reproduce_json):
        with open(reproduce_json) as f:
            rep = json.load(f)
        for block, label, style in (("single_H", "single-H (one model)", "s:"), ("separate", "ST (3 models)", "^:")):
            ys = [rep["top1"][block][str(t)] for t in frames]
            ax.plot([g[t] for t in frames], ys, style, label=label, markersize=6)
    ys = [result["fixed"][str(t)]["top1"]["mean"] for t in frames]
    ax.plot([g[t] for t in frames], ys, "o-", label="FFN, fixed frame count", markersize=6, color="C2")
    for t, y in zip(frames, ys):
        ax.annotate(f"{t}f", (g[t], y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    for i, (rule, o) in enumerate(dict.fromkeys((r["rule"], tuple(r["frames"])) for r in result["cascade"])):
        rows = sorted((r for r in result["cascade"] if r["rule"] == rule and tuple(r["frames"]) == o),
                      key=lambda r: r["gmacs"]["mean"])
        ax.plot([1e3 * r["gmacs"]["mean"] for r in rows], [r["top1"]["mean"] for r in rows], ".--", lw=0.9,
                label=f"FFN cascade {'>'.join(map(str, o))} ({rule})", color=f"C{3 + i}")
    ax.axvline(BUDGET * g[frames[-1]], color="grey", lw=0.6, ls=":", label=f"{100 * BUDGET:.0f}% of H's MACs")
    ax.set_xlabel("MMACs per clip (mean over test clips)")
    ax.set_ylabel("top-1 (%)")
    cfg = result["config"]
    ax.set_title(f"SyntheticActions, tsm_tiny, mean over {result['seeds']} seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.text(0.01, 0.01, f"training: {cfg['steps']} steps of batch {cfg['batch_size']} per model; "
             f"{cfg['size']} px clips; a cascade pays for every count it ran", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log(f"plot: {path}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help=f"smaller budget: {QUICK}")
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument("--plot", default=None, help="write a PNG of top-1 vs MMACs here (needs matplotlib)")
    p.add_argument("--reproduce", default=None, metavar="RESULTS_JSON",
                   help="a reproduce.py --out file: its single-H and ST points go into the plot")
    p.add_argument("--models", default=None, metavar="DIR", help="load the FFN models of reproduce.py --save-models")
    p.add_argument("--val-videos", type=int, default=256, help="held-out videos for fitting the temperatures")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    p.add_argument("--cascade-frames", type=int, nargs="+", action="append", default=None,
                   help="the counts one cascade tries, in order; repeat for several cascades "
                        "(default: L>M>H and M>H)")
    add_config_args(p)
    args = p.parse_args(argv)
    return run(config_from_args(args, QUICK), args.thresholds, args.out, cascade_frames=args.cascade_frames,
               models_dir=args.models, val_videos=args.val_videos, plot_path=args.plot, reproduce_json=args.reproduce)


if __name__ == "__main__":
    main()
