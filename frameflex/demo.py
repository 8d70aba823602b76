"""``frameflex demo``: the frame-count problem and FFN's fix, on a CPU in a few minutes.

Two tiny TSM models are trained on :class:`~frameflex.synthetic.SyntheticActions`
with the same seed, initial weights, videos and number of optimizer steps:

- **single-H**: the usual recipe, trained at 16 frames only;
- **FFN**: converted with :func:`frameflex.convert` (private norms per frame
  count, adapters after each temporal shift) and trained on 4-, 8- and
  16-frame clips of every video at once with :class:`frameflex.FFNLoss`.

The 14 classes need temporal order and detail (direction, speed, speeding up,
there and back, shaking fast or slowly, two objects
approaching or separating), so the model must judge how far things move
between two of its frames, and that distance grows as the frame count
shrinks. Both models are
evaluated at 4, 8 and 16 frames and at 6 and 12 frames, which neither was
trained on. The single-H model loses accuracy away from 16 frames (the
paper's "temporal frequency deviation"); the FFN model holds up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from . import _checks
from .data import collate_clips
from .evaluate import evaluate
from .loss import FFNLoss
from .models.tsm import TSM_ADAPTERS, tsm_tiny
from .surgery import convert
from .synthetic import SyntheticActions
from .training.loop import MultiClipModel, train_one_epoch

__all__ = ["DemoConfig", "run_demo", "format_table", "loader", "fit"]


@dataclass
class DemoConfig:
    """Everything the demo's numbers depend on; :meth:`quick` is the test-sized version."""

    seed: int = 0
    steps: int = 400
    batch_size: int = 16
    lr: float = 3e-3
    # The task (shared with benchmarks/reproduce.py and cascade.py) is SyntheticActions with its defaults.
    width: int = 16
    size: int = 32
    video_frames: int = 32
    train_frames: tuple[int, ...] = (4, 8, 16)
    eval_frames: tuple[int, ...] = (4, 6, 8, 12, 16)
    test_videos: int = 512
    workers: int = 1  # one process renders videos while the main one trains
    device: str = "auto"
    progress: bool = True

    @property
    def num_classes(self) -> int:
        return SyntheticActions.num_classes

    def data_kw(self) -> dict:
        """:class:`~frameflex.synthetic.SyntheticActions` arguments of the task (the rest are its defaults)."""
        return dict(video_frames=self.video_frames, size=self.size)

    @classmethod
    def quick(cls, **kw) -> "DemoConfig":
        """A budget small enough for tests (seconds); its numbers mean nothing."""
        base = dict(steps=12, batch_size=4, test_videos=32, width=8, workers=0)
        base.update(kw)
        return cls(**base)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def loader(dataset: torch.utils.data.Dataset, cfg: DemoConfig, train: bool) -> torch.utils.data.DataLoader:
    """The demo's batches of ``dataset``: shuffled training batches, or test batches of 128 in order."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size if train else 128,
        shuffle=train,
        drop_last=train,
        collate_fn=collate_clips,
        num_workers=cfg.workers,
        generator=torch.Generator().manual_seed(cfg.seed),  # also seeds the workers: same draws every run
    )


def fit(model: nn.Module, batches: torch.utils.data.DataLoader, cfg: DemoConfig, device: torch.device,
        desc: str = "train") -> float:
    """Train ``model`` on one pass of ``batches`` (AdamW, one-cycle over ``cfg.steps``); returns the seconds.

    Every step goes through :func:`frameflex.training.train_one_epoch` with
    :class:`frameflex.FFNLoss`: all frame counts of a converted model, plain
    cross-entropy for a plain one.

    Example:
        >>> cfg = DemoConfig.quick()
        >>> train_set = SyntheticActions(8, frame_sets=(16,), train=True, **cfg.data_kw())
        >>> seconds = fit(tsm_tiny(cfg.num_classes, width=8), loader(train_set, cfg, train=True), cfg, torch.device("cpu"))  # doctest: +SKIP
    """
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
    start = time.perf_counter()
    train_one_epoch(MultiClipModel(model), FFNLoss(), opt, sched, batches, device, progress=cfg.progress,
                    desc=desc)
    return time.perf_counter() - start


def run_demo(cfg: DemoConfig | None = None, log: Callable[[str], None] = print) -> dict[str, dict[int, float]]:
    """Train single-H and FFN tiny TSMs on synthetic motion; log the table and return the accuracies.

    Returns ``{"single-H": {T: acc}, "FFN": {T: acc}}``, accuracies in [0, 1].

    Example (minutes of training; tests/test_demo.py runs it):
        >>> results = run_demo(DemoConfig.quick(progress=False), log=lambda s: None)  # doctest: +SKIP
        >>> sorted(results), sorted(results["FFN"])  # doctest: +SKIP
        (['FFN', 'single-H'], [4, 6, 8, 12, 16])
    """
    cfg = cfg or DemoConfig()
    for name in ("steps", "batch_size", "test_videos"):
        value = getattr(cfg, name)
        _checks.positive_int(value, f"DemoConfig.{name}")
    device = _device(cfg.device)
    high = max(cfg.train_frames)
    data_kw = cfg.data_kw()

    # Held-out split: other videos (another seed), centre sampling, every evaluated frame count.
    test = SyntheticActions(cfg.test_videos, frame_sets=cfg.eval_frames, train=False,
                           seed=cfg.seed + 1_000_000, **data_kw)
    test_batches = list(loader(test, cfg, train=False))

    results: dict[str, dict[int, float]] = {}
    seconds: dict[str, float] = {}
    for name, frame_sets in (("single-H", (high,)), ("FFN", tuple(cfg.train_frames))):
        torch.manual_seed(cfg.seed)  # same initial weights for both
        model = tsm_tiny(cfg.num_classes, width=cfg.width)
        if name == "FFN":
            model = convert(model, frame_sets=frame_sets, adapters=[TSM_ADAPTERS], time_dim=2)
        model.to(device)
        train = SyntheticActions(cfg.steps * cfg.batch_size, frame_sets=frame_sets, train=True, seed=cfg.seed,
                                **data_kw)
        seconds[name] = fit(model, loader(train, cfg, train=True), cfg, device, desc=f"train {name}")
        top1 = evaluate(model, test_batches, cfg.eval_frames, progress=False)["top1"]
        results[name] = {t: acc / 100 for t, acc in top1.items()}

    log(format_table(results, cfg, seconds))
    return results


def format_table(results: dict[str, dict[int, float]], cfg: DemoConfig,
                 seconds: dict[str, float] | None = None) -> str:
    """The demo's table: top-1 (%) per frame count and model, frame counts FFN never trained marked ``*``."""
    names = list(results)
    trained = set(cfg.train_frames)
    high, low = max(cfg.train_frames), min(cfg.train_frames)
    lines = [
        f"top-1 (%) on {cfg.test_videos} held-out SyntheticActions videos ({cfg.num_classes} classes), "
        f"{cfg.steps} steps of batch {cfg.batch_size} per model, seed {cfg.seed}",
        "",
        f"{'frames':>8} | " + " | ".join(f"{n:>9}" for n in names),
        f"{'-' * 8}-|-" + "-|-".join("-" * 9 for _ in names),
    ]
    for t in sorted(results[names[0]]):
        mark = " " if t in trained else "*"
        lines.append(f"{t:>7}{mark} | " + " | ".join(f"{100 * results[n][t]:9.1f}" for n in names))
    lines += [
        "",
        f"single-H: trained at {high} frames only. FFN: one model trained at "
        f"{'/'.join(map(str, cfg.train_frames))} frames (ff.convert + ff.FFNLoss), same steps.",
        "* not a trained frame count: FFN runs it with the nearest trained branch.",
    ]
    if all(high in r and low in r for r in results.values()):
        lines.append(f"{high} -> {low} frames: " + ", ".join(
            f"{n} {100 * (results[n][low] - results[n][high]):+.1f} points" for n in names))
    if seconds:
        lines.append("training time: " + ", ".join(f"{n} {s:.0f} s" for n, s in seconds.items()))
    return "\n".join(lines)
