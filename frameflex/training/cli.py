"""``frameflex train``'s command line: the flags, and the :class:`TrainConfig` they make (argparse stops here).

Imports nothing heavy, so that ``--help`` answers without torch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .config import TrainConfig, UsageError

__all__ = ["add_arguments", "config_from_args", "build_parser", "main"]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``frameflex train``'s arguments to ``p`` (shared by the CLI and examples/train.py)."""
    m = p.add_argument_group("model")
    m.add_argument("--model", required=True,
                   help="zoo name (tsm_r50, tea_r50, slowfast_r50, uniformer_s, ...) or your builder as "
                        "package.module:function or path/file.py:function, returning an nn.Module that maps "
                        "(B, C, T, H, W) to logits (called with num_classes= if it takes it)")
    frames = m.add_mutually_exclusive_group()
    frames.add_argument("--frame-sets", type=int, nargs="+", metavar="T",
                        help="FFN: train these frame counts together, e.g. 4 8 16 (default for zoo models: the "
                             "paper's L/M/H)")
    frames.add_argument("--frames", type=int, metavar="T", help="train a plain model at this one frame count (CE)")
    m.add_argument("--adapters", nargs="+", metavar="A", default=None,
                   help="FFN adapters: none, auto, or module names/regexes (default: the zoo preset; none for "
                        "custom models)")
    m.add_argument("--num-classes", type=int, default=None, help="default: max label + 1 of the lists (synthetic: 8)")
    m.add_argument("--model-kwargs", nargs="+", default=[], metavar="KEY=VALUE",
                   help="extra builder arguments, VALUE as JSON (e.g. width=32)")
    m.add_argument("--pretrained", action="store_true",
                   help="start from the zoo's published weights (tsm_r50: ImageNet via timm; needs the network or "
                        "timm's cache)")
    m.add_argument("--init", default=None, metavar="PATH",
                   help="initialise every branch from a checkpoint of the plain model (.safetensors/.pth/.pt, "
                        "or an official TSM/TEA/SlowFast/UniFormer file for zoo models)")
    m.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes (CUDA only)")

    d = p.add_argument_group("data")
    d.add_argument("--list", default=None, metavar="FILE",
                   help="training list: 'video.mp4 label' lines, 'frames_dir num_frames label' lines (JPEG "
                        "frames), a Kinetics CSV or a Something-Something V2 JSON (recognised from the file)")
    d.add_argument("--root", default=None, metavar="DIR",
                   help="folder the list's paths are relative to (default: the list's folder)")
    d.add_argument("--val-list", default=None, metavar="FILE", help="validation list (evaluated every epoch)")
    d.add_argument("--val-root", default=None, metavar="DIR", help="frame folders of --val-list (default: --root)")
    d.add_argument("--image-tmpl", default="{:05d}.jpg",
                   help="frame file names (default {:05d}.jpg, Something-Something; Kinetics: img_{:05d}.jpg)")
    d.add_argument("--index-base", type=int, default=1, help="number of the first frame file (default 1)")
    d.add_argument("--decoder", choices=("auto", "torchcodec", "pyav"), default="auto",
                   help="video file decoder (default: torchcodec if it loads, else PyAV)")
    d.add_argument("--nested", action="store_true",
                   help="nested sampling: the smaller frame counts take every 2nd/4th segment of the largest "
                        "(one decode per video; default: FFN's independent draws)")
    d.add_argument("--bad-videos", choices=("error", "skip"), default="error",
                   help="listed videos that are missing or empty: stop before training (error, default) or "
                        "leave them out (skip); videos that fail to decode mid-run are always skipped and counted")
    d.add_argument("--flip", action="store_true",
                   help="random horizontal flips (Kinetics; never for Something-Something: left/right are classes)")
    d.add_argument("--synthetic", action="store_true", help="train on frameflex.SyntheticMotion (smoke tests)")
    d.add_argument("--synthetic-videos", type=int, default=64, help="synthetic training videos (default 64)")
    d.add_argument("--synthetic-val-videos", type=int, default=32, help="synthetic validation videos (default 32)")
    d.add_argument("--input-size", type=int, default=None, help="crop size (default: the arch's; custom 224)")
    d.add_argument("--eval-frames", type=int, nargs="+", metavar="T", default=None,
                   help="frame counts to evaluate (default: the trained ones); others use the nearest branch")
    d.add_argument("--batch-size", type=int, default=8, help="videos per process per micro-step (default 8)")
    d.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader workers per process")

    r = p.add_argument_group("recipe (defaults from --recipe; flags override)")
    r.add_argument("--recipe", default=None, metavar="NAME",
                   help="official recipe: tsm, tea, slowfast or uniformer (default: the model's; custom models: tsm)")
    r.add_argument("--epochs", type=int, default=None)
    r.add_argument("--lr", type=float, default=None,
                   help="peak learning rate as is (default: the recipe's, scaled linearly with the total batch)")
    r.add_argument("--lr-steps", type=int, nargs="+", default=None, metavar="EPOCH", help="step schedule: x0.1 at each")
    r.add_argument("--warmup-epochs", type=float, default=None)
    r.add_argument("--weight-decay", type=float, default=None)
    r.add_argument("--dropout", type=float, default=None, help="builder argument dropout (before the classifier)")
    r.add_argument("--drop-path", type=float, default=None, help="builder argument drop_path_rate")
    r.add_argument("--label-smoothing", type=float, default=None)
    r.add_argument("--clip-grad", type=float, default=None, help="max gradient norm; 0 turns clipping off")
    r.add_argument("--kl-weight", type=float, default=1.0, help="FFN's lambda on the KL terms (default 1)")

    x = p.add_argument_group("run")
    x.add_argument("--out", default=None, metavar="DIR",
                   help="checkpoints (last.pt, best.pt), log.jsonl, args.json, Hub folder model/ (default runs/MODEL); "
                        "one run at a time (train.lock)")
    x.add_argument("--resume", default=None, metavar="PATH|auto",
                   help="continue a run from its checkpoint (auto: OUT/last.pt if it exists, else start afresh); "
                        "the settings must be the run's, --epochs may change")
    x.add_argument("--save-every", type=int, default=0, metavar="N", help="also write last.pt every N steps")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--amp", choices=("bf16", "fp16", "none"), default=None,
                   help="mixed precision (default: bf16 on CUDA, none on CPU; fp16 uses a GradScaler)")
    x.add_argument("--accum-steps", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    x.add_argument("--device", default="auto", help="cpu, cuda (torchrun: cuda:LOCAL_RANK); default: cuda if available")
    x.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    x.add_argument("--find-unused-parameters", action="store_true",
                   help="DDP: for custom models whose forward leaves some parameters unused")
    x.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def _model_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--model-kwargs entries are KEY=VALUE with a Python name as KEY, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string
    return out


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed flags (raises :class:`UsageError` for bad values)."""
    values = {k: v for k, v in vars(args).items() if k not in ("func", "command", "no_progress")}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    values["model_kwargs"] = _model_kwargs(args.model_kwargs)
    return TrainConfig(**values, progress=not args.no_progress)


def build_parser(prog: str = "frameflex train") -> argparse.ArgumentParser:
    """The standalone parser of :func:`main`."""
    return add_arguments(argparse.ArgumentParser(
        prog=prog, description="Train a frame-flexible (FFN) video model, or a plain one at one frame count, "
        "with the official recipes; runs as is on one CPU/GPU or on many through torchrun."))


def run_args(args: argparse.Namespace) -> int:
    """``frameflex train`` for parsed flags; returns the exit status (2: bad input, as one line)."""
    try:
        cfg = config_from_args(args)
    except UsageError as e:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"frameflex train: error: {e}", file=sys.stderr, flush=True)
        return 2
    from .train import run

    return run(cfg)


def main(argv: Sequence[str] | None = None, prog: str = "frameflex train") -> int:
    """``frameflex train`` / ``examples/train.py``; returns the exit status.

    Example:
        >>> main(["--model", "tsm_tiny", "--synthetic", "--epochs", "1", "--out", "runs/smoke"])  # doctest: +SKIP
        0
    """
    return run_args(build_parser(prog).parse_args(argv))
