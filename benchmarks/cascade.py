"""Adaptive inference with ``ff.cascade``: top-1 vs average GMACs per clip, against fixed L/M/H.

One FFN ``tsm_tiny`` (or ``--model``'s family) per seed, trained exactly as in ``reproduce.py``
(or loaded from its ``--save-models`` folder with ``--models``). Each clip starts at the
cascade's first count and moves up only while its exit signal is below the threshold. A clip's cost is the
GMACs of EVERY count it ran (``ff.profile``, multiply-adds, batch 1, at the frame size).
Exit rules (every signal in [0, 1]; all but ``softmax`` use per-branch temperatures fitted
by NLL on validation videos, which are neither training nor test videos):

- ``softmax``: the max softmax probability (``ff.cascade``'s default);
- ``temperature``: the max softmax of ``logits / T`` (``ff.cascade(..., temperature=...)``);
- ``margin``: the gap between the two largest calibrated probabilities;
- ``entropy``: one minus the calibrated entropy over its maximum, log(classes);
- ``agree``: ``temperature``, and a clip also stops when its prediction equals the previous count's;
- ``learned``: a logistic regression per count, fitted on the validation clips, that predicts
  "this count is right" from the three calibrated signals of every count run so far and their
  agreements (a combination of the others, not an ``ff.cascade`` rule).

Thresholds are chosen on the validation videos, per seed: the cheapest one whose top-1 ties
fixed H there ("match"), and the most accurate one within the budget ("budget"); the test
numbers at those thresholds are the result. The full test sweep is printed too, and two
bounds: an oracle exit (each clip stops at the first count that is right) and the accuracy
of averaging the counts already paid for. The goal: top-1 that ties fixed H on the test
videos (``reproduce.paired``, the reproduce rule) at <= 60% of H's GMACs.

Run (2-core CPU):

    python benchmarks/cascade.py --out benchmarks/results/cascade.json --plot benchmarks/results/cascade.png
    python benchmarks/cascade.py --models models/ --reproduce benchmarks/results/reproduce.json
    python benchmarks/cascade.py --quick
    python benchmarks/cascade.py --replot benchmarks/results/cascade.json --plot c.png  # no training

Takes every ``reproduce.py`` config flag (``--steps``, ``--first-seed`` ...; when it trains,
one seed unless ``--seeds``; with ``--models``, reproduce's seeds) plus ``--thresholds`` (the
printed sweep), ``--val-videos`` and ``--cascade-frames`` (repeatable; any counts ending at H,
e.g. ``--cascade-frames 2 8 16``: a count the model was not trained on runs its nearest branch).
``--out`` JSON: ``{"frame_sets", "cascade_frames", "gmacs": {T: g}, "temperature": {T: [per
seed]}, "fixed": {T: {"top1", "gmacs", "vs_H"}}, "cascade": [sweep rows], "chosen": [rows at
validation thresholds], "oracle", "ensemble", "auroc", "curves", "goal", "verdict", "task",
"config", "wall_s", "cpu_s"}``; a row is ``{"rule", "frames", "threshold", "top1", "gmacs",
"pct_of_H", "stopped": {T: %}, "vs_H"}`` with ``top1`` and ``gmacs`` as ``{"mean", "std"}`` over seeds.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
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
from frameflex._outputs import logits_of  # noqa: E402
from frameflex.selection import input_time_dim, to_model_layout  # noqa: E402
from reproduce import (  # noqa: E402
    TEST_SEED, ReproConfig, add_config_args, build_ffn, config_from_args, cpu_seconds, ffn_path, machine, mean_std,
    paired, test_loader, train_model, write_json,
)

THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)  # the printed sweep
FINE = tuple(sorted({i / 100 for i in range(101)} | {0.995, 0.998, 0.999, 0.9995, 0.9999}))  # validation's choice
RULES = ("softmax", "temperature", "margin", "entropy", "agree", "learned")
QUICK = dict(seeds=1, steps=100, test_videos=256)
BUDGET = 0.6  # the goal: H's accuracy at <= 60% of H's GMACs
VAL_SEED = 2_000_000  # videos for temperatures and thresholds: neither training nor test videos


def gmacs_per_count(model: torch.nn.Module, cfg: ReproConfig, counts) -> dict[int, float]:
    """Multiply-adds (billions) of one clip at each count, batch 1, at the dataset's frame size."""
    return {r.frames: r.gmacs for r in ff.profile(model, frame_sets=sorted(counts), input_size=cfg.size,
                                                   latency=False)}


@torch.no_grad()
def branch_logits(model: torch.nn.Module, batches, frames) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """``{T: logits (N, classes)}`` of every clip at T frames (the nearest branch), and the labels."""
    model.eval()
    out: dict[int, list[torch.Tensor]] = {t: [] for t in frames}
    labels = []
    time_dim = input_time_dim(model)
    for clips, y in batches:
        labels.append(y)
        for t in frames:
            with ff.frames(model, t):
                out[t].append(logits_of(model(to_model_layout(clips[t], time_dim, t))))
    return {t: torch.cat(v) for t, v in out.items()}, torch.cat(labels)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimising the NLL of ``logits / T`` (a grid, then a finer grid)."""
    def nll(t: float) -> float:
        return torch.nn.functional.cross_entropy(logits / t, labels).item()

    grid = [0.05 * 1.1**i for i in range(60)]
    best = min(grid, key=nll)
    return min((best * (0.95 + 0.005 * i) for i in range(21)), key=nll)


def exit_signal(logits: torch.Tensor, rule: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(signal in [0, 1], prediction)`` per clip: how sure the rule is (``agree`` adds its check in simulate)."""
    p = (logits if rule == "softmax" else logits / temperature).softmax(-1)
    top = p.topk(min(2, p.shape[-1]), -1).values
    if rule == "margin":
        conf = top[:, 0] - (top[:, 1] if top.shape[1] > 1 else 0)
    elif rule == "entropy":
        conf = 1 + (p * p.clamp_min(1e-12).log()).sum(-1) / math.log(max(p.shape[-1], 2))
    else:
        conf = top[:, 0]
    return conf, p.argmax(-1)


def exit_features(logits: dict[int, torch.Tensor], counts, temps: dict[int, float]) -> torch.Tensor:
    """(N, features) of the counts run so far: each one's calibrated max, margin and entropy signals,
    and whether each count agrees with the one before."""
    cols, prev = [], None
    for t in counts:
        cols += [exit_signal(logits[t], rule, temps[t])[0] for rule in ("temperature", "margin", "entropy")]
        arg = logits[t].argmax(-1)
        if prev is not None:
            cols.append((arg == prev).float())
        prev = arg
    return torch.stack(cols, 1)


def fit_exits(logits, labels, order, temps) -> list[torch.Tensor]:
    """Per count but the last, logistic-regression weights predicting "this count is right" from
    ``exit_features`` (the ``learned`` rule; fitted on validation clips)."""
    weights = []
    for i, t in enumerate(order[:-1]):
        x = torch.nn.functional.pad(exit_features(logits, order[:i + 1], temps), (0, 1), value=1.0)
        y = (logits[t].argmax(1) == labels).float()
        w = torch.zeros(x.shape[1], requires_grad=True)
        opt = torch.optim.LBFGS([w], max_iter=200)

        def loss():
            opt.zero_grad()
            v = torch.nn.functional.binary_cross_entropy_with_logits(x @ w, y) + 1e-3 * w[:-1].square().sum()
            v.backward()
            return v

        opt.step(loss)
        weights.append(w.detach())
    return weights


def stage_signals(logits, order, rule, temps, exits=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(signal, prediction)`` at each count of the cascade (``learned``: ``exits`` from ``fit_exits``)."""
    out = []
    for i, t in enumerate(order):
        if rule == "learned" and i + 1 < len(order):
            x = torch.nn.functional.pad(exit_features(logits, order[:i + 1], temps), (0, 1), value=1.0)
            out.append(((x @ exits[i]).sigmoid(), logits[t].argmax(-1)))
        else:
            out.append(exit_signal(logits[t], rule, temps.get(t, 1.0)))
    return out


def simulate(signals, labels: torch.Tensor, order: tuple[int, ...], threshold: float, gmacs: dict[int, float],
             agree: bool = False) -> dict:
    """Top-1, mean GMACs and stop shares of one cascade, from ``stage_signals``; ``agree``: a clip
    also stops when its prediction equals the previous count's."""
    n = len(labels)
    todo = torch.ones(n, dtype=torch.bool)
    pred = torch.zeros(n, dtype=torch.long)
    stop = torch.zeros(n, dtype=torch.long)
    cost = torch.zeros(n)
    prev = None
    for i, (t, (conf, arg)) in enumerate(zip(order, signals)):
        cost[todo] += gmacs[t]
        pred[todo], stop[todo] = arg[todo], t
        sure = conf >= threshold
        if agree and prev is not None:
            sure |= arg == prev
        if i + 1 < len(order):
            todo &= ~sure
        prev = arg
    return {"top1": 100.0 * (pred == labels).float().mean().item(), "gmacs": cost.mean().item(),
            "stopped": {t: 100.0 * (stop == t).float().mean().item() for t in order}, "pred": pred, "frames": stop}


def oracle(logits: dict[int, torch.Tensor], labels: torch.Tensor, order: tuple[int, ...], gmacs: dict[int, float],
           target: float) -> dict:
    """The cheapest cascade any exit rule could be, given the counts' predictions: a clip goes on
    only to the first count that gets it right, cheapest corrections first, until top-1 reaches
    ``target``; every other clip stops at the first count."""
    cum = torch.tensor([sum(gmacs[t] for t in order[:i + 1]) for i in range(len(order))])
    right = torch.stack([logits[t].argmax(1) == labels for t in order])  # (counts, N)
    first = torch.where(right.any(0), right.float().argmax(0), torch.zeros_like(labels))
    extra = (cum[first] - cum[0])[right.any(0) & ~right[0]].sort().values
    n = len(labels)
    need = max(0, math.ceil(target * n / 100 - 1e-9) - int(right[0].sum()))
    if need > len(extra):
        return {"frames": list(order), "reachable": False, "top1": 100.0 * right.any(0).float().mean().item(),
                "gmacs": cum[0].item() + extra.sum().item() / n}
    return {"frames": list(order), "reachable": True, "top1": 100.0 * (int(right[0].sum()) + need) / n,
            "gmacs": cum[0].item() + extra[:need].sum().item() / n}


def auroc(score: torch.Tensor, positive: torch.Tensor) -> float | None:
    """How often a right clip's signal exceeds a wrong clip's (ties half): 0.5 is no help, 1 a perfect exit."""
    pos, neg = score[positive], score[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return None
    ranks = torch.cat([pos, neg]).argsort().argsort().double() + 1  # ties are rare in float signals
    return round(((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))).item(), 3)


def ensemble_top1(logits, labels, counts, temps) -> float:
    """Top-1 of the mean calibrated log-probabilities of ``counts`` (what a cascade has paid for)."""
    z = sum((logits[t] / temps[t]).log_softmax(-1) for t in counts)
    return 100.0 * (z.argmax(1) == labels).float().mean().item()


def check_against_ff_cascade(model, cfg: ReproConfig, logits, labels, order, threshold, temps, gmacs) -> None:
    """The simulated ``softmax`` and ``temperature`` rules must be exactly what ``ff.cascade`` decides."""
    for rule, temperature in (("softmax", None), ("temperature", {t: temps[t] for t in order})):
        preds, frames = [], []
        for clips, _ in test_loader(cfg, order):
            clips = {t: to_model_layout(c, input_time_dim(model), t) for t, c in clips.items()}
            out = ff.cascade(model, clips, threshold=threshold, frame_sets=order, temperature=temperature)
            preds.append(out.logits.argmax(1))
            frames.append(out.frames)
        sim = simulate(stage_signals(logits, order, rule, temps), labels, order, threshold, gmacs)
        if not (torch.equal(torch.cat(preds), sim["pred"]) and torch.equal(torch.cat(frames), sim["frames"])):
            raise AssertionError(f"simulated {rule} cascade {order} @ {threshold} differs from ff.cascade")


def orders_of(frames: list[int], cascade_frames=None) -> list[tuple[int, ...]]:
    """The cascades: the given ones, else L>M>H, M>H and a cheaper first stage (L/2)>M>H."""
    if not cascade_frames:
        low, mid, high = frames
        return [tuple(frames), (mid, high)] + ([(low // 2, mid, high)] if low // 2 >= 1 else [])
    orders = [tuple(sorted(o)) for o in cascade_frames]
    for o in orders:
        if len(set(o)) != len(o) or len(o) < 2 or min(o) < 1 or o[-1] != frames[-1]:
            raise ValueError(f"cascade_frames {list(o)} must be two or more distinct counts ending at H={frames[-1]}")
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
        cascade_frames: list[list[int]] | None = None, models_dir: str | None = None, val_videos: int = 512,
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


def choose(sims: dict[float, dict], h_top1: float, g_h: float, videos: int) -> dict[str, float | None]:
    """Validation's thresholds: the cheapest that ties H (within one clip), the most accurate within budget."""
    match = [th for th, s in sims.items() if s["top1"] >= h_top1 - 100.0 / videos]
    within = [th for th, s in sims.items() if s["gmacs"] <= BUDGET * g_h]
    return {"match": min(match, key=lambda th: (sims[th]["gmacs"], -th), default=None),
            "budget": max(within, key=lambda th: (sims[th]["top1"], -sims[th]["gmacs"]), default=None)}


def _run(cfg: ReproConfig, thresholds, log, orders, models_dir, val_videos) -> dict:
    start, cpu = time.perf_counter(), cpu_seconds()
    frames = list(cfg.train_frames)
    high = frames[-1]
    counts = sorted(set(frames) | {t for o in orders for t in o})
    seeds = list(range(cfg.first_seed, cfg.first_seed + cfg.seeds))
    log(f"# cascade: {machine()}")
    log(f"# config: {json.dumps(dataclasses.asdict(cfg))}")
    runs, train_s, temps, gmacs = [], [], [], None
    keys = [(rule, o) for rule in RULES for o in orders]
    for seed in seeds:
        model, secs = ffn_model(cfg, seed, models_dir)
        gmacs = gmacs or gmacs_per_count(model, cfg, counts)  # the same architecture for every seed
        logits, labels = branch_logits(model, test_loader(cfg, counts), counts)
        vlogits, vlabels = branch_logits(model, test_loader(cfg, counts, seed=VAL_SEED, videos=val_videos), counts)
        temp = {t: fit_temperature(vlogits[t], vlabels) for t in counts}
        if seed == seeds[0]:
            check_against_ff_cascade(model, cfg, logits, labels, orders[0], 0.9, temp, gmacs)
        fixed = {t: 100.0 * (logits[t].argmax(1) == labels).float().mean().item() for t in counts}
        val_h = 100.0 * (vlogits[high].argmax(1) == vlabels).float().mean().item()
        chosen, sweep, learned_auroc = {}, {}, {}
        sweep_th = sorted(set(thresholds) | set(FINE))  # the plot's curves; the table prints ``thresholds``
        for rule, o in keys:
            exits = fit_exits(vlogits, vlabels, o, temp) if rule == "learned" else None
            vsig, sig = (stage_signals(z, o, rule, temp, exits) for z in (vlogits, logits))
            vsims = {th: simulate(vsig, vlabels, o, th, gmacs, rule == "agree") for th in FINE}
            for kind, th in choose(vsims, val_h, gmacs[high], val_videos).items():
                chosen[rule, o, kind] = None if th is None else {
                    **simulate(sig, labels, o, th, gmacs, rule == "agree"), "threshold": th,
                    "val_top1": vsims[th]["top1"], "val_pct_of_H": 100 * vsims[th]["gmacs"] / gmacs[high]}
            for th in sweep_th:
                sweep[rule, o, th] = simulate(sig, labels, o, th, gmacs, rule == "agree")
            if rule == "learned":
                learned_auroc[f"learned {'>'.join(map(str, o))}"] = {
                    t: auroc(c, logits[t].argmax(1) == labels) for t, (c, _) in zip(o[:-1], sig)}
        runs.append({
            "fixed": fixed, "chosen": chosen, "cascade": sweep,
            "oracle": {o: oracle(logits, labels, o, gmacs, fixed[high]) for o in orders},
            "ensemble": {o: ensemble_top1(logits, labels, o, temp) for o in orders},
            "auroc": {rule: {t: auroc(exit_signal(logits[t], rule, temp[t])[0], logits[t].argmax(1) == labels)
                             for t in counts} for rule in RULES if rule not in ("agree", "learned")} | learned_auroc,
        })
        temps.append(temp)
        train_s.append(round(secs, 1))
        log(f"  seed {seed}: FFN {'loaded' if models_dir else f'trained in {secs:.0f} s'}; fixed top-1 "
            + ", ".join(f"{t}f {a:.1f}" for t, a in fixed.items())
            + "; temperatures " + ", ".join(f"{t}f {v:.2f}" for t, v in temp.items()))

    g_h = gmacs[high]
    fixed_h = [r["fixed"][high] for r in runs]

    def row(rule, o, per, threshold):
        g = [p["gmacs"] for p in per]
        top1 = [p["top1"] for p in per]
        gm = {"mean": round(statistics.fmean(g), 6), "std": round(statistics.stdev(g), 6) if len(g) > 1 else 0.0}
        return {"rule": rule, "frames": list(o), "threshold": threshold, "top1": mean_std(top1), "gmacs": gm,
                "pct_of_H": round(100 * gm["mean"] / g_h, 1),
                "stopped": {str(t): round(statistics.fmean(p["stopped"][t] for p in per), 1) for t in o},
                "vs_H": paired(top1, fixed_h, cfg.test_videos)}

    fixed = {t: {"top1": mean_std([r["fixed"][t] for r in runs]), "gmacs": round(gmacs[t], 6),
                 "vs_H": paired([r["fixed"][t] for r in runs], fixed_h, cfg.test_videos)} for t in counts}
    sweep = [row(rule, o, [r["cascade"][rule, o, th] for r in runs], th)
             for rule, o in keys for th in sorted(set(thresholds) | set(FINE))]
    chosen = []
    for rule, o in keys:
        for kind in ("match", "budget"):
            per = [r["chosen"][rule, o, kind] for r in runs]
            if any(p is None for p in per):
                continue
            chosen.append(row(rule, o, per, [p["threshold"] for p in per]) | {
                "choice": kind, "val_top1": round(statistics.fmean(p["val_top1"] for p in per), 2),
                "val_pct_of_H": round(statistics.fmean(p["val_pct_of_H"] for p in per), 1)})
    oracles = [{"frames": list(o), "reachable": all(r["oracle"][o]["reachable"] for r in runs),
                "top1": round(statistics.fmean(r["oracle"][o]["top1"] for r in runs), 2),
                "pct_of_H": round(100 * statistics.fmean(r["oracle"][o]["gmacs"] for r in runs) / g_h, 1)}
               for o in orders]
    result = {
        "frame_sets": frames,
        "cascade_frames": [list(o) for o in orders],
        "seeds": cfg.seeds,
        "task": cfg.dataset(1, frames, train=False, seed=0).params(),
        "gmacs": {str(t): round(gmacs[t], 6) for t in counts},
        "temperature": {str(t): [round(tp[t], 3) for tp in temps] for t in counts},
        "fixed": {str(t): v for t, v in fixed.items()},
        "cascade": [r for r in sweep if r["threshold"] in thresholds],
        "chosen": chosen,
        "oracle": oracles,
        "ensemble": [{"frames": list(o), "top1": mean_std([r["ensemble"][o] for r in runs])} for o in orders],
        "auroc": {rule: {str(t): _mean_or_none([r["auroc"][rule].get(t) for r in runs]) for t in counts}
                  for rule in runs[0]["auroc"]},
        "curves": {f"{rule} {'>'.join(map(str, o))}": [[round(r["pct_of_H"], 1), r["top1"]["mean"]]
                                                       for r in sweep if r["rule"] == rule and tuple(r["frames"]) == o]
                   for rule, o in keys},
        "per_seed": {"fixed": {str(t): [round(r["fixed"][t], 2) for r in runs] for t in counts}},
        "config": {**dataclasses.asdict(cfg), "seed_list": seeds, "test_seed": TEST_SEED, "val_seed": VAL_SEED,
                   "val_videos": val_videos, "thresholds": thresholds, "rules": list(RULES), "machine": machine(),
                   "gmacs_source": f"ff.profile(model, frame_sets, input_size={cfg.size}), batch 1"},
        "train_s": train_s,
    }
    result["goal"] = goal(result)
    result["verdict"] = verdict(result)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["cpu_s"] = round(cpu_seconds() - cpu, 1)
    report(result, log)
    return result


def _mean_or_none(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.fmean(xs), 3) if xs else None


def goal(result: dict) -> dict:
    """Met when a cascade at validation's "match" threshold ties fixed H on test at <= BUDGET of H's GMACs."""
    high = str(result["frame_sets"][-1])
    ok = [r for r in result["chosen"] if r["choice"] == "match" and r["vs_H"]["verdict"] != "<"
          and r["pct_of_H"] <= 100 * BUDGET]
    sweep_ok = [r for r in result["cascade"] if r["vs_H"]["verdict"] != "<" and r["pct_of_H"] <= 100 * BUDGET]
    h = result["fixed"][high]["top1"]
    return {"target": f"top-1 tying fixed H ({h['mean']:.2f} ± {h['std']:.2f}) at <= {100 * BUDGET:.0f}% of H's GMACs",
            "pass": bool(ok), "met_by": [_brief(r) for r in sorted(ok, key=lambda r: r["pct_of_H"])],
            "test_sweep_pass": bool(sweep_ok)}  # thresholds picked on test: optimistic, not the verdict


def _brief(r: dict) -> str:
    th = r["threshold"] if isinstance(r["threshold"], list) else [r["threshold"]]
    return (f"{r['rule']} {'>'.join(map(str, r['frames']))} @ {'/'.join(f'{t:g}' for t in th)}: "
            f"{r['top1']['mean']:.1f} ({r['vs_H']['gap']:+.1f}, {r['vs_H']['verdict']}) at {r['pct_of_H']:.0f}%")


def verdict(result: dict) -> str:
    """One line: "met" with the cascade that meets it, else "not met, because ..." from the numbers."""
    frames = result["frame_sets"]
    high = frames[-1]
    g = result["gmacs"]
    matching_fixed = [int(t) for t, v in result["fixed"].items()
                      if int(t) < high and v["vs_H"]["verdict"] != "<"]
    if result["goal"]["pass"]:
        met = result["goal"]["met_by"]
        line = f"goal met by {met[0]}" + (f" and {len(met) - 1} more cascades" if len(met) > 1 else "")
    else:
        why = []
        best_oracle = min(result["oracle"], key=lambda o: o["pct_of_H"])
        matches = [r for r in result["chosen"] if r["choice"] == "match"]
        cheapest = min(matches, key=lambda r: r["pct_of_H"], default=None)
        if best_oracle["pct_of_H"] > 100 * BUDGET:
            why.append(f"even a perfect exit signal needs {best_oracle['pct_of_H']:.0f}% of H's MACs "
                       f"({'>'.join(map(str, best_oracle['frames']))}): the lower counts are too often wrong")
        else:
            aur = [v for rule in result["auroc"].values() for t, v in rule.items()
                   if int(t) < high and v is not None]
            why.append(f"a perfect exit signal would need {best_oracle['pct_of_H']:.0f}% of H's MACs "
                       f"({'>'.join(map(str, best_oracle['frames']))}), but the signals tell a right lower-count "
                       f"prediction from a wrong one only with AUROC {min(aur):.2f}-{max(aur):.2f}")
        if cheapest is not None:
            why.append(f"the cheapest cascade that ties H at its validation threshold is {_brief(cheapest)} of H")
        best_budget = max((r for r in result["chosen"] if r["choice"] == "budget"),
                          key=lambda r: r["top1"]["mean"], default=None)
        if best_budget is not None:
            why.append(f"within the budget the best is {_brief(best_budget)}")
        below = [f"{t}f {v['vs_H']['gap']:+.1f}" for t, v in result["fixed"].items() if int(t) < high]
        why.append(f"fixed counts vs H: {', '.join(below)} points")
        line = "goal not met, because " + "; ".join(why)
    for t in matching_fixed:
        line += (f"; note: fixed {t}f alone ties fixed {high}f at {100 * g[str(t)] / g[str(high)]:.0f}% of its MACs")
    return line


def report(result: dict, log=print) -> None:
    frames = result["frame_sets"]
    high = frames[-1]
    g = {int(t): v for t, v in result["gmacs"].items()}

    def ms(v: dict) -> str:
        return f"{v['mean']:.1f} ± {v['std']:.1f}"

    def vs(v: dict) -> str:
        p = "" if v["p"] is None else f", p={v['p']}"
        return f"{v['gap']:+.1f} ({v['verdict']}{p})"

    def name(r):
        th = r["threshold"] if isinstance(r["threshold"], list) else [r["threshold"]]
        return f"{r['rule']} {'>'.join(map(str, r['frames']))} @ {'/'.join(f'{t:g}' for t in th)}"

    def stops(r):
        return " / ".join(f"{t}f {p:.0f}" for t, p in r["stopped"].items())

    fixed = {int(t): v for t, v in result["fixed"].items()}
    cfg = result["config"]
    log("")
    log(f"top-1 (%) on {cfg['test_videos']} held-out SyntheticActions videos, mean ± std over seeds "
        f"{cfg['seed_list']}; MMACs per clip at {cfg['size']} px; A>B>C @ threshold: starts at A frames, "
        "escalates while unsure (a clip pays for every count it ran); vs H: gap to fixed H (verdict: "
        "'=' a tie by the reproduce rule)")
    table = [[f"fixed {t}f", ms(fixed[t]["top1"]), f"{1e3 * g[t]:.2f}", f"{100 * g[t] / g[high]:.0f}", "-",
              vs(fixed[t]["vs_H"])] for t in sorted(fixed)]
    table += [[name(r), ms(r["top1"]), f"{1e3 * r['gmacs']['mean']:.2f}", f"{r['pct_of_H']:.0f}", stops(r),
               vs(r["vs_H"])] for r in result["cascade"]]
    log("test sweep (thresholds picked by eye on test are optimistic; the verdict uses the next table):")
    log(markdown_table(["inference", "top-1 (%)", "MMACs / clip", "% of H", "stopped at (% of clips)", "vs H"], table))
    log("")
    log(f"thresholds chosen on {cfg['val_videos']} validation videos (per seed), scored on the test videos: "
        "'match' = the cheapest that ties H on validation, 'budget' = the most accurate within "
        f"{100 * BUDGET:.0f}% of H's MACs")
    log(markdown_table(["cascade @ validation threshold", "choice", "val top-1", "val % of H", "test top-1 (%)",
                        "test % of H", "stopped at (%)", "vs H"],
                       [[name(r), r["choice"], f"{r['val_top1']:.1f}", f"{r['val_pct_of_H']:.0f}", ms(r["top1"]),
                         f"{r['pct_of_H']:.0f}", stops(r), vs(r["vs_H"])] for r in result["chosen"]]))
    log("")
    log("bounds: 'oracle' = the cheapest any exit rule could tie H with these predictions (a clip moves on only "
        "to a count that gets it right); 'ensemble' = top-1 of the mean calibrated log-probabilities of all "
        "counts of the cascade")
    log(markdown_table(["cascade", "oracle % of H (top-1)", "ensemble top-1 (%)"],
                       [[">".join(map(str, o["frames"])),
                         f"{o['pct_of_H']:.0f} ({o['top1']:.1f})" + ("" if o["reachable"] else " H not reachable"),
                         ms(e["top1"])] for o, e in zip(result["oracle"], result["ensemble"])]))
    log("AUROC of each exit signal for 'this count's prediction is right' (test clips; 0.5 = no information):")
    counts = sorted(g)
    log(markdown_table(["signal"] + [f"{t}f" for t in counts],
                       [[rule] + ["-" if v[str(t)] is None else f"{v[str(t)]:.3f}" for t in counts]
                        for rule, v in result["auroc"].items()]))
    log("temperatures (fitted on validation): " + ", ".join(
        f"{t}f {statistics.fmean(v):.2f}" for t, v in result["temperature"].items()))
    log("")
    log(f"{'PASS' if result['goal']['pass'] else 'FAIL'}: {result['goal']['target']}")
    log(f"verdict: {result['verdict']}")
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
    high = frames[-1]
    g = {int(t): 1e3 * v for t, v in result["gmacs"].items()}
    gh = g[high]
    fig, ax = plt.subplots(figsize=(7.2, 5.0))
    if reproduce_json and os.path.exists(reproduce_json):
        with open(reproduce_json) as f:
            rep = json.load(f)
        for block, label, style in (("single_H", "single-H (one model)", "s:"), ("separate", "ST (3 models)", "^:")):
            ys = [rep["top1"][block][str(t)] for t in frames]
            ax.plot([g[t] for t in frames], ys, style, markersize=6,
                    label=f"{label}, reproduce.py mean of {rep['seeds']} seeds")
    counts = sorted(g)
    ys = [result["fixed"][str(t)]["top1"]["mean"] for t in counts]
    ax.plot([g[t] for t in counts], ys, "o-", label="FFN, fixed frame count", markersize=6, color="C2")
    for t, y in zip(counts, ys):
        ax.annotate(f"{t}f", (g[t], y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    styles = {"softmax": "C3", "temperature": "C4", "margin": "C5", "entropy": "C6", "agree": "C7", "learned": "C8"}
    for key, pts in result["curves"].items():
        rule, order = key.split(" ")
        if order != ">".join(map(str, frames)) and rule != "temperature":
            continue  # every rule on L>M>H; the other orders with the temperature rule
        pts = sorted(pts)
        ax.plot([p[0] * gh / 100 for p in pts], [p[1] for p in pts], "-" if order == ">".join(map(str, frames))
                else "--", lw=0.9, color=styles[rule], alpha=0.8, label=f"cascade {order} ({rule}), test sweep")
    for r in result["chosen"]:
        if r["choice"] == "match":
            ax.plot(1e3 * r["gmacs"]["mean"], r["top1"]["mean"], "D", color=styles[r["rule"]], markersize=5,
                    markeredgecolor="k", markeredgewidth=0.5)
    ax.plot([], [], "D", color="grey", markeredgecolor="k", label="threshold chosen on validation ('match')")
    for o in result["oracle"]:
        ax.plot(o["pct_of_H"] * gh / 100, result["fixed"][str(high)]["top1"]["mean"], "*", color="k", markersize=9)
    ax.plot([], [], "*", color="k", label="oracle exit (bound)")
    ax.axvline(BUDGET * gh, color="grey", lw=0.6, ls=":", label=f"{100 * BUDGET:.0f}% of H's MACs")
    ax.axhline(result["fixed"][str(high)]["top1"]["mean"], color="grey", lw=0.6, ls="--")
    ax.set_xlim(0, 2.0 * gh)
    ax.set_xlabel("MMACs per clip (mean over test clips)")
    ax.set_ylabel("top-1 (%)")
    cfg = result["config"]
    ax.set_title(f"SyntheticActions, FFN {result['config'].get('model', 'tsm_tiny')}, "
                 f"mean over {result['seeds']} seed(s)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="lower right")
    fig.text(0.01, 0.01, f"training: {cfg['steps']} steps of batch {cfg['batch_size']}; {cfg['size']} px clips; "
             "a cascade pays for every count it ran", fontsize=7)
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
    p.add_argument("--val-videos", type=int, default=512,
                   help="validation videos for the temperatures and the thresholds")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS), help="the printed sweep")
    p.add_argument("--cascade-frames", type=int, nargs="+", action="append", default=None,
                   help="the counts one cascade tries, in order, ending at H; repeat for several cascades "
                        "(default: L>M>H, M>H and L/2>M>H)")
    p.add_argument("--replot", default=None, metavar="RESULTS_JSON",
                   help="print the tables of a saved --out file and draw --plot from it (no training)")
    add_config_args(p)
    args = p.parse_args(argv)
    if args.replot:
        with open(args.replot) as f:
            result = json.load(f)
        report(result)
        if args.plot:
            plot(result, args.plot, args.reproduce)
        return result
    if args.val_videos <= 0:
        p.error(f"--val-videos must be positive, got {args.val_videos}")
    cfg = config_from_args(args, QUICK)
    if args.seeds is None and not args.quick and not args.models:
        cfg = dataclasses.replace(cfg, seeds=1)  # one training run fits the 10-minute budget
    return run(cfg, args.thresholds, args.out, cascade_frames=args.cascade_frames,
               models_dir=args.models, val_videos=args.val_videos, plot_path=args.plot, reproduce_json=args.reproduce)


if __name__ == "__main__":
    main()
