"""The FFN paper's main table in miniature: single-H vs separate training (ST) vs FFN, on CPU.

Same model (``tsm_tiny``; ``--model`` takes another family of ``benchmarks/transformer.py``,
e.g. its tiny TimeSformer), same :class:`frameflex.synthetic.SyntheticActions` videos
(the demo's task: 14 classes that need temporal order and detail), same initial weights
and the same number of optimizer steps (the demo's training loop) for every model:

- ``single_H``: trained at H frames only (the usual recipe);
- ``separate`` (ST): one model per frame count, trained at L, M and H (three models;
  as in the paper, ST's H model IS the single-H model);
- ``ffn``: ONE model, ``ff.convert`` with the family's adapters (TSM: ``TSM_ADAPTERS``), trained on the
  L/M/H clips of every video at once with ``ff.forward_multi`` + ``ff.FFNLoss``.

Every model is evaluated at L, M, H; FFN also at frame counts it never trained on, with
the paper's nearest-branch rule ("nearest") and with a branch calibrated by
``ff.calibrate`` on clips of that count cut from training videos ("calibrated", no labels
used); ST at those counts uses its nearest model ("separate_nearest"), ties to the larger
count (the paper's rule). Mean and std (ddof=1) over seeds, in top-1 percent. FFN - ST is
tested per count with a paired t-test over seeds (same seeds, same videos, same clips).

Run (2-core CPU; see the README for the measured times):

    python benchmarks/reproduce.py --out benchmarks/results/reproduce.json \\
        --plot benchmarks/results/reproduce.png --save-models models/
    python benchmarks/reproduce.py --quick --out quick.json
    # seeds in parallel processes, then one table from their files:
    python benchmarks/reproduce.py --first-seed 3 --seeds 2 --out part3.json
    python benchmarks/reproduce.py --merge part0.json part3.json --out all.json --plot acc.png

Without matplotlib the PNG is skipped with a message. ``--out`` JSON layout::

    {"frame_sets": [4, 8, 16], "eval_frames": [...], "seeds": 5, "task": {...},
     "top1": {"single_H" | "separate" | "ffn": {"T": %}},        # T in L/M/H, mean over seeds
     "any_frame": {"nearest" | "calibrated" | "separate_nearest" | "single_H": {"T": %}},  # unseen T
     "std": {"top1": {same keys: std}, "any_frame": {...}},     # sample std over seeds
     "per_seed": {same keys as top1 and any_frame: {"T": [% per seed]}},
     "paired": {"ffn" | "nearest" | "calibrated": {"T": {"gap", "t", "p", "verdict"}}},  # minus ST
     "params": {...}, "claims": [{"claim", "pass", "detail"}], "config": {...},
     "train_s": {...}, "wall_s": s, "cpu_s": s}
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass

# Sleeping (not spinning) OpenMP workers: the cores are shared with other jobs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.dirname(HERE))  # run from a checkout without installing (last: never shadow tests' conftest)

import frameflex as ff  # noqa: E402
from _timing import markdown_table  # noqa: E402
from frameflex.data import collate_clips  # noqa: E402
from frameflex.demo import DemoConfig, fit, loader  # noqa: E402
from frameflex.evaluate import evaluate  # noqa: E402
from frameflex.layers import nearest_frames  # noqa: E402
from frameflex.selection import input_time_dim, to_model_layout  # noqa: E402
from frameflex.synthetic import SyntheticActions  # noqa: E402

#: The held-out videos: one fixed set for every seed (the demo's seed-0 test set), so the
#: std over seeds is the spread of training, and every model is scored on the same clips.
TEST_SEED = 1_000_000
_DEMO = DemoConfig()


@dataclass
class ReproConfig:
    """Everything the numbers depend on (printed and saved with the results)."""

    seeds: int = 5
    first_seed: int = 0
    # A model family of benchmarks/transformer.py (FAMILIES): tsm_tiny (the demo's) or a tiny video
    # transformer (timesformer_tiny: its own lr, transformer.LR, unless --lr is given).
    model: str = "tsm_tiny"
    # The model and the budget per model: the demo's (frameflex/demo.py), one definition.
    # The task is the demo's too: SyntheticActions with its defaults.
    steps: int = _DEMO.steps
    batch_size: int = _DEMO.batch_size
    lr: float = _DEMO.lr
    width: int = _DEMO.width
    size: int = _DEMO.size
    video_frames: int = _DEMO.video_frames
    train_frames: tuple[int, ...] = (4, 8, 16)
    eval_frames: tuple[int, ...] = (2, 4, 6, 8, 12, 16, 24)
    test_videos: int = 512
    calib_videos: int = 256  # training videos whose clips re-estimate a calibrated branch's BN stats
    # How those clips are sampled. "test": centre segments, like the clips the branch will see.
    # "train": random TSN segments; for T > video_frames / 2 that degenerates to the FIRST T
    # consecutive frames (as in the official TSM sampler), so 18- and 20-frame statistics come
    # from slower-looking clips than the test ones (measured: 84% / 90% instead of ~99%).
    calib_sampling: str = "test"
    workers: int = 1  # one process renders videos while the main one trains
    threads: int = 1
    progress: bool = False

    QUICK = dict(seeds=2, steps=60, test_videos=256, calib_videos=128)

    def demo(self, seed: int, train_frames: tuple[int, ...]) -> DemoConfig:
        """The demo's config for one model, so its loader/train/eval helpers run unchanged."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(DemoConfig) if hasattr(self, f.name)}
        return DemoConfig(**{**shared, "seed": seed, "train_frames": tuple(train_frames), "device": "cpu"})

    def dataset(self, num_videos: int, frames, train: bool, seed: int) -> SyntheticActions:
        """Videos of the task (the demo's), rendered from ``(seed, index)``."""
        return SyntheticActions(num_videos, frame_sets=tuple(frames), train=train, seed=seed,
                                transform=families()[self.model][3], **self.demo(seed, self.train_frames).data_kw())

    def check(self) -> None:
        if self.model not in families():
            raise ValueError(f"model must be one of {sorted(families())}, got {self.model!r}")
        for name in ("seeds", "steps", "batch_size", "test_videos", "calib_videos", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.calib_sampling not in ("test", "train"):
            raise ValueError(f"calib_sampling must be 'test' or 'train', got {self.calib_sampling!r}")
        if len(self.train_frames) != 3 or sorted(self.train_frames) != list(self.train_frames):
            raise ValueError(f"train_frames must be three increasing counts L M H, got {self.train_frames}")
        missing = set(self.train_frames) - set(self.eval_frames)
        if missing:
            raise ValueError(f"eval_frames must include the trained counts; missing {sorted(missing)}")

    @property
    def unseen(self) -> list[int]:
        return [t for t in self.eval_frames if t not in self.train_frames]


def families() -> dict:
    """The model families (one definition, benchmarks/transformer.py's)."""
    from transformer import FAMILIES

    return FAMILIES


def build(cfg: ReproConfig, frames: tuple[int, ...], ffn: bool) -> torch.nn.Module:
    """An untrained model of ``cfg.model``: FFN-converted at ``frames``, or plain.

    A transformer's plain model is converted with one branch (its own count) so that its
    temporal position table follows the clip at other counts; for TSM that changes nothing,
    and its plain model stays the zoo's.
    """
    make, adapters, time_dim, _ = families()[cfg.model]
    model = make(SyntheticActions.num_classes, cfg)
    if ffn:
        return ff.convert(model, frame_sets=frames, adapters=adapters, time_dim=time_dim)
    return model if cfg.model == "tsm_tiny" else ff.convert(model, frame_sets=(max(frames),), time_dim=time_dim)


def model_layout(model: torch.nn.Module, batches, frames: int):
    """A loader's (B, C, T, H, W) batches in the layout ``model`` takes (``ff.calibrate`` feeds clips as they are)."""
    time_dim = input_time_dim(model)
    for clips, y in batches:
        yield {frames: to_model_layout(clips[frames], time_dim, frames)}, y


# --------------------------------------------------------------------------- training and evaluation


def train_model(cfg: ReproConfig, seed: int, frames: tuple[int, ...], ffn: bool) -> tuple[torch.nn.Module, float]:
    """One tiny TSM trained for ``cfg.steps`` steps at ``frames`` (FFN: converted, all of them at once)."""
    dcfg = cfg.demo(seed, frames)
    torch.manual_seed(seed)  # same initial weights for every model of a seed
    model = build(cfg, frames, ffn)
    # The same videos for every model of a seed (rendered from (seed, index)); only the
    # clips cut from them differ with the frame counts.
    data = cfg.dataset(cfg.steps * cfg.batch_size, frames, train=True, seed=seed)
    name = "FFN" if ffn else f"{frames[0]}f"
    seconds = fit(model, loader(data, dcfg, train=True), dcfg, torch.device("cpu"), desc=f"seed {seed} train {name}")
    return model, seconds


def test_loader(cfg: ReproConfig, frames, seed: int = TEST_SEED, videos: int | None = None):
    """Held-out clips (centre sampling) at ``frames``; rendered on the fly, so nothing big stays in memory."""
    data = cfg.dataset(videos or cfg.test_videos, frames, train=False, seed=seed)
    return loader(data, cfg.demo(seed, cfg.train_frames), train=False)


def accuracy(cfg: ReproConfig, model: torch.nn.Module, frames) -> dict[int, float]:
    """Top-1 in percent at each of ``frames`` (a converted model takes its nearest branch)."""
    frames = sorted(frames)
    return evaluate(model, test_loader(cfg, frames), frames, progress=False)["top1"]


def calibrated_accuracy(cfg: ReproConfig, model: torch.nn.Module, seed: int, frames: int) -> float:
    """Top-1 at ``frames`` after ``ff.calibrate`` adds a branch with BN statistics of that count.

    On a copy, so that calibrating one count never changes the branch another count picks.
    The statistics come from clips of the first ``calib_videos`` training videos (no labels, no
    test videos), sampled as ``cfg.calib_sampling`` says.
    """
    model = copy.deepcopy(model)
    data = cfg.dataset(cfg.calib_videos, (frames,), train=cfg.calib_sampling == "train", seed=seed)
    loader = torch.utils.data.DataLoader(data, batch_size=64, collate_fn=collate_clips,
                                         generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)  # the segment offsets of the calibration clips
    ff.calibrate(model, model_layout(model, loader, frames), frames=frames, progress=False)
    return accuracy(cfg, model, [frames])[frames]


def run_seed(cfg: ReproConfig, seed: int, log=print,
             models_dir: str | None = None) -> tuple[dict[str, dict[int, float]], dict[str, float]]:
    """Every model and evaluation for one seed: ``{block: {T: top-1 %}}`` and training seconds.

    ``models_dir``: the FFN model's weights go to ``ffn_seed<seed>.safetensors`` there
    (``benchmarks/cascade.py --models`` reads them instead of training again).
    """
    low, mid, high = cfg.train_frames
    acc: dict[str, dict[int, float]] = {}
    secs: dict[str, float] = {}

    # ST: one plain model per trained count. Its H model is the single-H model (as in the paper).
    st = {}
    for t in (high, mid, low):
        model, secs[f"st_{t}"] = train_model(cfg, seed, (t,), ffn=False)
        # Each ST model is scored where the nearest-model rule would use it (and at its own T).
        uses = sorted({t} | {n for n in cfg.eval_frames if nearest_frames(n, cfg.train_frames) == t})
        if t == high:
            uses = list(cfg.eval_frames)  # the single-H line: every count
        st[t] = accuracy(cfg, model, uses)
        log(f"  seed {seed}: ST {t:>2}f trained in {secs[f'st_{t}']:.0f} s; top-1 "
            + ", ".join(f"{n}f {a:.1f}" for n, a in st[t].items()))
        del model
    acc["single_H"] = st[high]
    acc["separate"] = {t: st[t][t] for t in cfg.train_frames}
    acc["separate_nearest"] = {n: st[nearest_frames(n, cfg.train_frames)][n] for n in cfg.unseen}

    model, secs["ffn"] = train_model(cfg, seed, tuple(cfg.train_frames), ffn=True)
    if models_dir:
        save_ffn(model, models_dir, seed)
    every = accuracy(cfg, model, cfg.eval_frames)
    acc["ffn"] = {t: every[t] for t in cfg.train_frames}
    acc["nearest"] = {n: every[n] for n in cfg.unseen}
    acc["calibrated"] = {n: calibrated_accuracy(cfg, model, seed, n) for n in cfg.unseen}
    log(f"  seed {seed}: FFN trained in {secs['ffn']:.0f} s; top-1 "
        + ", ".join(f"{n}f {a:.1f}" for n, a in every.items())
        + "; calibrated " + ", ".join(f"{n}f {a:.1f}" for n, a in acc["calibrated"].items()))
    return acc, secs


def ffn_path(models_dir: str, seed: int) -> str:
    return os.path.join(models_dir, f"ffn_seed{seed}.safetensors")


def save_ffn(model: torch.nn.Module, models_dir: str, seed: int) -> None:
    from safetensors.torch import save_file

    os.makedirs(models_dir, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, ffn_path(models_dir, seed))


def build_ffn(cfg: ReproConfig) -> torch.nn.Module:
    """An untrained FFN model of this config (the shape ``save_ffn`` files load into)."""
    return build(cfg, tuple(cfg.train_frames), ffn=True)


def gmacs_per_clip(cfg: ReproConfig) -> dict[str, dict[str, float]]:
    """GMACs of one clip at each evaluated count: the plain model (single-H, ST) and the FFN model."""
    from frameflex.flops import count_gmacs

    plain = build(cfg, tuple(cfg.train_frames), ffn=False).eval()
    ffn = build_ffn(cfg).eval()
    out: dict[str, dict[str, float]] = {"plain": {}, "ffn": {}}
    for t in cfg.eval_frames:
        x = torch.zeros(1, 3, t, cfg.size, cfg.size)
        out["plain"][str(t)] = round(count_gmacs(plain, to_model_layout(x, input_time_dim(plain), t)), 6)
        out["ffn"][str(t)] = round(count_gmacs(ffn, to_model_layout(x, input_time_dim(ffn), t)), 6)
    return out


def param_counts(cfg: ReproConfig) -> dict[str, int]:
    """Parameters to store: single-H one plain model, ST three, FFN one converted model."""
    plain = sum(p.numel() for p in build(cfg, tuple(cfg.train_frames), ffn=False).parameters())
    ffn = sum(p.numel() for p in build_ffn(cfg).parameters())
    return {"single_H": plain, "separate": len(cfg.train_frames) * plain, "ffn": ffn}


# --------------------------------------------------------------------------- summary


def mean_std(xs: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(xs), 2), "std": round(statistics.stdev(xs), 2) if len(xs) > 1 else 0.0}


def _t_cdf(t: float, df: int) -> float:
    """Student's t CDF (Simpson's rule on the density; plenty for a p-value)."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    n, x = 2000, abs(t)
    h = x / n
    f = [c * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(n + 1)]
    half = h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))
    return 0.5 + math.copysign(half, t)


def paired(a: list[float], b: list[float], test_videos: int) -> dict:
    """Mean of ``a - b`` over seeds, paired t statistic, two-sided p and the verdict.

    ``">"`` / ``"<"``: significant at 5% and more than one test clip (``100 / test_videos``
    points) apart; otherwise ``"="``, a tie. One seed: more than one clip apart decides.
    """
    d = [x - y for x, y in zip(a, b, strict=True)]
    gap = statistics.fmean(d)
    if len(d) < 2:  # no spread to test against: only the one-clip rule
        verdict = "=" if abs(gap) <= 100.0 / test_videos else (">" if gap > 0 else "<")
        return {"gap": round(gap, 2), "t": None, "p": None, "verdict": verdict}
    sd = statistics.stdev(d)
    t = gap / (sd / math.sqrt(len(d))) if sd > 0 else (math.inf if gap > 0 else -math.inf if gap < 0 else 0.0)
    p = 2 * (1 - _t_cdf(abs(t), len(d) - 1))
    verdict = "=" if p >= 0.05 or abs(gap) <= 100.0 / test_videos else (">" if gap > 0 else "<")
    return {"gap": round(gap, 2), "t": None if math.isinf(t) else round(t, 2), "p": round(p, 4), "verdict": verdict}


#: What the verdicts mean, for the printout.
VERDICT = {">": "FFN better", "<": "ST better", "=": "tie"}


def paired_blocks(cfg: ReproConfig, per_seed: dict) -> dict[str, dict[int, dict]]:
    """FFN minus ST per count: own branch at L/M/H, nearest and calibrated branch at unseen counts."""
    out = {"ffn": {t: paired(per_seed["ffn"][t], per_seed["separate"][t], cfg.test_videos) for t in cfg.train_frames}}
    for block in ("nearest", "calibrated"):
        out[block] = {t: paired(per_seed[block][t], per_seed["separate_nearest"][t], cfg.test_videos)
                      for t in cfg.unseen}
    return out


def claims(cfg: ReproConfig, summary: dict[str, dict[int, dict]], tests: dict) -> list[dict]:
    """The task's two conditions, then the paper's claims ("FFN >= ST": no count significantly worse)."""
    low, mid, high = cfg.train_frames
    m = {b: {t: v["mean"] for t, v in row.items()} for b, row in summary.items()}
    drop = m["single_H"][high] - m["single_H"][low]
    out = [{"claim": f"task: single_H at H={high} is between 80 and 95% (not saturated)",
            "pass": 80 <= m["single_H"][high] <= 95, "detail": f"{m['single_H'][high]:.1f}"},
           {"claim": f"task: single_H loses >= 25 points at L={low} vs H={high}", "pass": drop >= 25,
            "detail": f"{m['single_H'][high]:.1f} at {high}f -> {m['single_H'][low]:.1f} at {low}f ({-drop:+.1f})"}]

    def versus(block: str) -> tuple[bool, str]:
        row = tests[block]
        return (all(r["verdict"] != "<" for r in row.values()),
                ", ".join(f"{t}f {r['gap']:+.1f} (p={r['p']}, {VERDICT[r['verdict']]})" for t, r in row.items()))

    ok, detail = versus("ffn")
    out.append({"claim": f"FFN >= ST at L, M, H ({low}/{mid}/{high})", "pass": ok, "detail": detail})
    for block, name in (("nearest", "FFN nearest branch"), ("calibrated", "FFN calibrated")):
        ok, detail = versus(block)
        out.append({"claim": f"{name} >= nearest ST model at unseen counts "
                             f"({'/'.join(map(str, cfg.unseen))})"
                             + ("" if block == "nearest" else " [extra, not in the paper]"),
                    "pass": ok, "detail": detail})
    return out


def table(cfg: ReproConfig, summary: dict[str, dict[int, dict]], tests: dict | None = None) -> str:
    """Rows: frame counts (``*`` = unseen by FFN and ST); cells: mean ± std top-1 (%); FFN - ST with its test."""
    def cell(block: str, t: int) -> str:
        v = summary.get(block, {}).get(t)
        return "-" if v is None else f"{v['mean']:.1f} ± {v['std']:.1f}"

    def gap(block: str, t: int) -> str:
        r = (tests or {}).get(block, {}).get(t)
        return "-" if r is None else f"{r['gap']:+.1f} ({VERDICT[r['verdict']]}, p={r['p']})"

    rows = []
    for t in cfg.eval_frames:
        seen = t in cfg.train_frames
        rows.append([f"{t}" + ("" if seen else "*"), cell("single_H", t),
                     cell("separate" if seen else "separate_nearest", t),
                     cell("ffn" if seen else "nearest", t), cell("ffn" if seen else "calibrated", t)]
                    + ([gap("ffn" if seen else "nearest", t), gap("ffn" if seen else "calibrated", t)] if tests else []))
    head = ["frames", "single_H", "separate (ST)", "FFN nearest", "FFN calibrated"]
    if tests:
        head += ["FFN nearest - ST", "FFN calibrated - ST"]
    return markdown_table(head, rows)


def budget(cfg: ReproConfig) -> str:
    model = f"tsm_tiny width {cfg.width}" if cfg.model == "tsm_tiny" else cfg.model
    return (f"{cfg.steps} steps of batch {cfg.batch_size} per model (AdamW, one-cycle, lr {cfg.lr:g}), "
            f"{model}, {cfg.size} px, {cfg.seeds} seeds")


def plot(cfg: ReproConfig, summary: dict[str, dict[int, dict]], path: str, log=print,
         gmacs: dict | None = None) -> None:
    """Top-1 vs frames at ``path``; with ``gmacs``, top-1 vs GMACs per clip at ``<path stem>_gmacs.png``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log(f"matplotlib is not installed: skipping the plot {path}")
        return

    def line(*blocks: str):
        ts = [t for t in cfg.eval_frames if any(t in summary[b] for b in blocks)]
        vals = [next(summary[b][t] for b in blocks if t in summary[b]) for t in ts]
        return ts, [v["mean"] for v in vals], [v["std"] for v in vals]

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for (blocks, label, style) in (
        (("single_H",), f"single-H (trained at {cfg.train_frames[-1]} only)", "s-"),
        (("separate", "separate_nearest"), "ST (nearest of 3 models)", "^-"),
        (("ffn", "nearest"), "FFN, nearest branch", "o-"),
        (("ffn", "calibrated"), "FFN, calibrated branch", "d--"),
    ):
        ts, mean, std = line(*blocks)
        ax.errorbar(ts, mean, yerr=std, fmt=style, capsize=3, label=label, markersize=5)
    ax.axhline(100 / SyntheticActions.num_classes, color="black", lw=0.8, ls="--", label="chance")
    for t in cfg.train_frames:
        ax.axvline(t, color="grey", lw=0.6, ls=":")
    ax.set_xticks(list(cfg.eval_frames))
    ax.set_xlabel("frames at test (dotted: trained counts L/M/H)")
    _finish(fig, ax, cfg, path, plt,
            f"SyntheticActions ({SyntheticActions.num_classes} classes), {cfg.model}, mean ± std over seeds")
    log(f"plot: {path}")
    if gmacs:
        macs_path = os.path.splitext(path)[0] + "_gmacs.png"
        plot_gmacs(cfg, summary, gmacs, macs_path, plt)
        log(f"plot: {macs_path}")


def plot_gmacs(cfg: ReproConfig, summary: dict[str, dict[int, dict]], gmacs: dict, path: str, plt) -> None:
    """Top-1 vs GMACs per clip (the paper's figure 1 in miniature): fixed counts of each method."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for blocks, label, style, kind in (
        (("single_H",), f"single-H (trained at {cfg.train_frames[-1]} only)", "s-", "plain"),
        (("separate",), "ST (one model per count)", "^-", "plain"),
        (("ffn", "nearest"), "FFN (one model), nearest branch", "o-", "ffn"),
    ):
        ts = [t for t in cfg.eval_frames if any(t in summary.get(b, {}) for b in blocks)]
        ys = [next(summary[b][t]["mean"] for b in blocks if t in summary.get(b, {})) for t in ts]
        xs = [gmacs[kind][str(t)] for t in ts]
        ax.plot(xs, ys, style, label=label, markersize=5)
        if kind == "ffn":
            for t, x, y in zip(ts, xs, ys):
                ax.annotate(f"{t}f", (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.axhline(100 / SyntheticActions.num_classes, color="black", lw=0.8, ls="--", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("GMACs per clip (log scale)")
    _finish(fig, ax, cfg, path, plt, f"SyntheticActions, {cfg.model}, mean over {cfg.seeds} seeds")


def _finish(fig, ax, cfg: ReproConfig, path: str, plt, title: str) -> None:
    """What both plots share: the top-1 axis, title, legend, the budget caption; then save."""
    ax.set_ylabel("top-1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.text(0.01, 0.01, "training: " + budget(cfg), fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compact_json(obj) -> str:
    """Indented JSON with each innermost object / list of scalars on one line (small, diffable)."""
    text = json.dumps(obj, indent=1)
    return re.sub(r"[\[{][^\[\]{}]*[\]}]", lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)), text)


def write_json(path: str, obj, log=print) -> None:
    """``compact_json(obj)`` to ``path``, folders created."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(compact_json(obj) + "\n")
    log(f"results: {path}")


def machine() -> str:
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the video-rendering workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(cfg: ReproConfig, out: str | None = None, plot_path: str | None = None, log=print,
        models_dir: str | None = None) -> dict:
    cfg.check()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, out, plot_path, log, models_dir)
    finally:
        torch.set_num_threads(threads)  # callers in the same process (tests) keep theirs


def _run(cfg: ReproConfig, out: str | None, plot_path: str | None, log, models_dir: str | None) -> dict:
    start, cpu = time.perf_counter(), cpu_seconds()
    log(f"# reproduce: {machine()}")
    log(f"# config: {json.dumps(dataclasses.asdict(cfg))}")
    seeds = list(range(cfg.first_seed, cfg.first_seed + cfg.seeds))
    per_seed: dict[str, dict[int, list[float]]] = {}
    train_s: dict[str, list[float]] = {}
    for seed in seeds:
        acc, secs = run_seed(cfg, seed, log, models_dir)
        for block, row in acc.items():
            for t, a in row.items():
                per_seed.setdefault(block, {}).setdefault(t, []).append(round(a, 2))
        for k, sec in secs.items():
            train_s.setdefault(k, []).append(round(sec, 1))
    results = summarize(cfg, seeds, per_seed, train_s)
    results["wall_s"] = round(time.perf_counter() - start, 1)
    results["cpu_s"] = round(cpu_seconds() - cpu, 1)
    report(results, out, plot_path, log)
    return results


def summarize(cfg: ReproConfig, seeds: list[int], per_seed: dict[str, dict[int, list[float]]],
              train_s: dict[str, list[float]]) -> dict:
    """The results file's content (without times) from the per-seed numbers."""
    summary = {block: {t: mean_std(xs) for t, xs in row.items()} for block, row in per_seed.items()}
    # The layout: top1 / any_frame hold seed means; "std" the same keys with the spread.
    cells = {
        "top1": {b: {str(t): summary[b][t] for t in cfg.train_frames} for b in ("single_H", "separate", "ffn")},
        "any_frame": {b: {str(t): v for t, v in summary.get(b, {}).items() if t in cfg.unseen}
                      for b in ("nearest", "calibrated", "separate_nearest", "single_H")},
    }
    blocks = {g: {b: {t: v["mean"] for t, v in row.items()} for b, row in rows.items()} for g, rows in cells.items()}
    tests = paired_blocks(cfg, per_seed)
    return {
        "frame_sets": list(cfg.train_frames),
        "eval_frames": list(cfg.eval_frames),
        "seeds": len(seeds),
        "task": cfg.dataset(1, cfg.train_frames, train=False, seed=0).params(),
        **blocks,
        "std": {g: {b: {t: v["std"] for t, v in row.items()} for b, row in rows.items()} for g, rows in cells.items()},
        "per_seed": {b: {str(t): xs for t, xs in row.items()} for b, row in per_seed.items()},
        "paired": {b: {str(t): r for t, r in row.items()} for b, row in tests.items()},
        "params": param_counts(cfg),
        "gmacs": gmacs_per_clip(cfg),
        "claims": claims(cfg, summary, tests),
        "config": {**dataclasses.asdict(cfg), "seeds": len(seeds), "seed_list": seeds, "test_seed": TEST_SEED,
                   "machine": machine(),
                   "optimizer": "AdamW wd 0.01, one-cycle (frameflex.demo.fit)"},
        "train_s": train_s,
    }


def report(results: dict, out: str | None, plot_path: str | None, log=print) -> None:
    """Print the tables and verdicts of a results dict; write its JSON and PNG."""
    cfg, summary = from_results(results)
    tests = {b: {int(t): r for t, r in row.items()} for b, row in results["paired"].items()}
    p = results["params"]
    log("")
    log(f"top-1 (%) on {cfg.test_videos} held-out SyntheticActions videos ({SyntheticActions.num_classes} classes, "
        f"chance {100 / SyntheticActions.num_classes:.1f}%), mean ± std over seeds {results['config']['seed_list']}; "
        + budget(cfg))
    log(table(cfg, summary, tests))
    log("* not trained by FFN or ST: 'separate (ST)' is the nearest ST model, 'FFN nearest' the nearest "
        "branch, 'FFN calibrated' a new branch from ff.calibrate; at trained counts both FFN columns are FFN's own "
        "branch. FFN - ST: mean over seeds of the per-seed gap, paired t-test (two-sided); a tie unless p < 0.05 "
        "and more than one test clip apart.")
    log(f"parameters: single-H {p['single_H']:,}; ST {p['separate']:,} (three models); FFN {p['ffn']:,} (one model)")
    log("")
    for c in results["claims"]:
        log(f"{'PASS' if c['pass'] else 'FAIL'}: {c['claim']}: {c['detail']}")
    if "wall_s" in results:
        log(f"wall time {results['wall_s']:.0f} s, CPU time {results['cpu_s']:.0f} s")
    if out:
        write_json(out, results, log)
    if plot_path:
        plot(cfg, summary, plot_path, log, results.get("gmacs"))


def merge(paths: list[str]) -> dict:
    """One results dict from the files of runs over different seeds of the same config."""
    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f))
    skip = {"seeds", "first_seed", "seed_list", "machine", "progress", "workers", "threads"}
    base = {k: v for k, v in parts[0]["config"].items() if k not in skip}
    for path, part in zip(paths, parts):
        other = {k: v for k, v in part["config"].items() if k not in skip}
        if other != base:
            diff = sorted(k for k in base.keys() | other.keys() if base.get(k) != other.get(k))
            raise SystemExit(f"--merge: {path} has another config than {paths[0]}: {diff}")
    seeds = [s for part in parts for s in part["config"]["seed_list"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--merge: a seed appears twice: {sorted(seeds)}")
    per_seed: dict[str, dict[int, list[float]]] = {}
    train_s: dict[str, list[float]] = {}
    for part in parts:
        for block, row in part["per_seed"].items():
            for t, xs in row.items():
                per_seed.setdefault(block, {}).setdefault(int(t), []).extend(xs)
        for k, xs in part["train_s"].items():
            train_s.setdefault(k, []).extend(xs)
    cfg, _ = from_results(parts[0])
    cfg = dataclasses.replace(cfg, seeds=len(seeds), first_seed=min(seeds))
    results = summarize(cfg, seeds, per_seed, train_s)
    results["config"]["seed_list"] = seeds
    # Parallel processes: the wall time is the longest part, the CPU time their sum.
    results["wall_s"] = max(part["wall_s"] for part in parts)
    results["cpu_s"] = round(sum(part["cpu_s"] for part in parts), 1)
    results["merged_from"] = len(parts)
    return results


def add_config_args(p: argparse.ArgumentParser) -> None:
    """One ``--flag`` per :class:`ReproConfig` field (also used by cascade.py)."""
    defaults = ReproConfig()
    for f in dataclasses.fields(ReproConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"default {value}")
        elif isinstance(value, tuple):
            p.add_argument(flag, type=type(value[0]), nargs="+", default=None,
                           help=f"default {' '.join(map(str, value))}")
        else:
            p.add_argument(flag, type=type(value), default=None, help=f"default {value}")


def config_from_args(args: argparse.Namespace, quick: dict) -> ReproConfig:
    """The defaults (a model family's own learning rate), then ``quick`` if ``--quick``, then every flag given."""
    from transformer import LR

    kw = dict(quick) if args.quick else {}
    for f in dataclasses.fields(ReproConfig):
        v = getattr(args, f.name)
        if v is not None:
            kw[f.name] = tuple(v) if isinstance(v, list) else v
    if "lr" not in kw and kw.get("model") in LR:
        kw["lr"] = LR[kw["model"]]
    return ReproConfig(**kw)


def parse_config(argv=None) -> tuple[ReproConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help=f"smaller budget: {ReproConfig.QUICK}")
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument("--plot", default=None, help="write a PNG of top-1 vs frame count here (needs matplotlib)")
    p.add_argument("--save-models", default=None, metavar="DIR",
                   help="save each seed's FFN weights here (benchmarks/cascade.py --models reads them)")
    p.add_argument("--replot", default=None, metavar="RESULTS_JSON",
                   help="print the table and draw --plot from a saved --out file instead of training")
    p.add_argument("--merge", nargs="+", default=None, metavar="RESULTS_JSON",
                   help="one table from --out files of the same config over different seeds (no training)")
    add_config_args(p)
    args = p.parse_args(argv)
    return config_from_args(args, ReproConfig.QUICK), args


def from_results(results: dict) -> tuple[ReproConfig, dict[str, dict[int, dict]]]:
    """The config and ``{block: {T: {"mean", "std"}}}`` summary of a saved ``--out`` file."""
    names = {f.name for f in dataclasses.fields(ReproConfig)}
    cfg = ReproConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in results["config"].items() if k in names})
    summary: dict[str, dict[int, dict]] = {}
    for group in ("top1", "any_frame"):
        for block, row in results[group].items():
            std = results["std"][group][block]
            summary.setdefault(block, {}).update({int(t): {"mean": m, "std": std[t]} for t, m in row.items()})
    return cfg, summary


def main(argv=None) -> dict:
    cfg, args = parse_config(argv)
    if args.replot or args.merge:  # tables and the PNG from saved runs: no training
        if args.merge:
            results = merge(args.merge)
        else:
            with open(args.replot) as f:
                results = json.load(f)
        report(results, args.out, args.plot)
        return results
    return run(cfg, out=args.out, plot_path=args.plot, models_dir=args.save_models)


if __name__ == "__main__":
    main()
