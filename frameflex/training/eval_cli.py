"""``frameflex eval``: top-1/top-5 per frame count of a model on video files or JPEG frame lists.

The command line behind ``frameflex eval`` and ``python benchmarks/accuracy.py``: a zoo
model from the Hub, a local folder (``ff.save_pretrained`` / ``frameflex train``'s
``OUT/model``) or an original checkpoint file, scored by :func:`frameflex.evaluate.evaluate`.
The default protocol is FFN's: one clip per video, centre segment sampling, shorter side
resized to 256 and a centre crop of 224 (the model's sizes and normalisation);
``--clips N --crops 3`` is the multi-view one, with the GMACs of all views beside the
accuracy. Imports torch only to run, so ``--help`` answers at once.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run", "build_parser", "main"]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``frameflex eval``'s arguments to ``p`` (shared by the CLI and benchmarks/accuracy.py)."""
    p.add_argument("model", help="Hub repo id or local folder (ff.from_pretrained), or an original checkpoint file "
                   "(ff.import_checkpoint; give --arch unless it can be guessed)")
    p.add_argument("--arch", default=None, help="zoo arch of a checkpoint file or --filename, e.g. tsm_r50")
    p.add_argument("--filename", default=None, help="an original checkpoint inside the Hub repo MODEL "
                   "(e.g. uniformer_small_sthv1_16_prek600.pth), converted on load")
    p.add_argument("--list", required=True, dest="list_file", metavar="FILE",
                   help="video list: 'frames_dir num_frames label' lines (JPEG frames), 'video.mp4 label' lines, "
                   "a Kinetics CSV or a Something-Something V2 JSON (recognised from the file)")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="folder the list's paths are relative to (default: the list file's folder)")
    p.add_argument("--clips", type=int, default=1, metavar="N",
                   help="temporal test views per video (default 1); the views' softmax is averaged")
    p.add_argument("--crops", type=int, choices=(1, 3), default=1,
                   help="spatial views: 1 centre crop (default) or 3 crops along the long side "
                   "(short side resized to the crop size)")
    p.add_argument("--decoder", choices=("auto", "torchcodec", "pyav"), default="auto",
                   help="video file decoder (default: torchcodec if it loads, else PyAV)")
    p.add_argument("--frames", type=int, nargs="+", default=None, metavar="T",
                   help="frame counts to evaluate (default: the model's frame sets; plain models: the arch's L/M/H)")
    p.add_argument("--image-tmpl", default="{:05d}.jpg",
                   help="frame file names (default {:05d}.jpg as in Something-Something; Kinetics: img_{:05d}.jpg)")
    p.add_argument("--index-base", type=int, default=1, help="number of the first frame file (default 1)")
    p.add_argument("--sampler", choices=("segment", "uniform"), default="segment",
                   help="frame sampling: TSN segment centres (default) or evenly spaced")
    p.add_argument("--input-size", type=int, default=None, help="crop size (default: the arch's, 224)")
    p.add_argument("--resize", type=int, default=None, help="shorter side before the crop (default input*256/224)")
    p.add_argument("--batch-size", type=int, default=8, help="videos per batch (default 8)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="DataLoader worker processes (default min(4, CPUs))")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, mps ... (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate only the first N videos")
    p.add_argument("--json", default=None, metavar="OUT", help="write the results and the run's settings to OUT")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="a folder of your own model (frameflex train --model module:function): run the builder "
                        "function its config.json names")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_CHECKPOINT_EXTS = (".pth", ".pt", ".tar", ".pyth", ".pkl", ".ckpt", ".bin", ".safetensors")


def _load_model(args: argparse.Namespace) -> tuple[Any, str]:
    from ..checkpoints import import_checkpoint
    from ..hub import from_pretrained

    src = args.model
    if args.filename is not None:
        return from_pretrained(src, filename=args.filename, arch=args.arch), f"{src}/{args.filename}"
    if os.path.isdir(src):
        return from_pretrained(src, trust_remote_code=args.trust_remote_code), src
    if os.path.isfile(src):
        return import_checkpoint(src, arch=args.arch).create_model(), src
    if not _HUB_ID.fullmatch(src) or src.endswith(_CHECKPOINT_EXTS):
        raise FileNotFoundError(f"model not found: {src} is neither a folder, a checkpoint file nor a Hub repo id")
    return from_pretrained(src), src


def _fail(message: object) -> int:
    text = str(message).strip()
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: its last line is the error
        text = re.sub(r"^\w+(Error|Exception): ", "", text.splitlines()[-1])
    print(f"frameflex eval: error: {text}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Execute ``frameflex eval`` for parsed ``args``; returns the exit status."""
    import torch

    from .. import _checks, selection
    from .._version import __version__
    from ..data import collate_clips
    from ..datasets import VideoFiles, eval_transform, video_dataset
    from ..errors import DataError, UntrustedCodeError
    from ..evaluate import evaluate, format_table
    from ..flops import profile
    from ..layers import nearest_frames
    from ..models._registry import IMAGENET_MEAN, IMAGENET_STD, get_spec, list_models

    try:  # the package's one set of argument checks
        for name in ("batch_size", "threads", "limit", "input_size", "resize", "clips"):
            if getattr(args, name) is not None:
                _checks.positive_int(getattr(args, name), f"--{name.replace('_', '-')}")
        _checks.nonnegative(args.workers, "--workers")
        if args.frames is not None:
            _checks.frame_sets(args.frames, "--frames")
    except ValueError as e:
        return _fail(e)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    list_args = dict(root=args.root, image_tmpl=args.image_tmpl, index_base=args.index_base, backend=args.decoder)

    try:  # the list first: a bad line or a missing video fails in milliseconds, before any weights are loaded
        listed = video_dataset(args.list_file, frame_sets=(1,), **list_args)
        missing = listed.missing() if isinstance(listed, VideoFiles) else []
    except (FileNotFoundError, ValueError) as e:
        return _fail(e)
    if missing:
        return _fail(f"{len(missing)} of the {len(listed)} videos of {args.list_file} are missing or empty, "
                     f"e.g. {missing[0].path} (line {missing[0].line})")
    try:
        model, source = _load_model(args)
    except UntrustedCodeError as e:
        return _fail(f"{e} (on the command line: --trust-remote-code)")
    except (FileNotFoundError, ValueError, RuntimeError) as e:  # may span lines: the keys that do not fit
        return _fail(e)
    config = model.frameflex_config
    arch = config["architecture"]
    spec = get_spec(arch) if arch in list_models() else None  # None: your own model
    if args.arch is not None and args.arch != arch:
        return _fail(f"--arch {args.arch} was given, but {source} is a {arch} model")
    if not args.frames and not selection.is_converted(model) and spec is None:
        return _fail(f"{source} is a plain {arch} model: give the frame counts to evaluate, --frames T ...")
    frames = tuple(args.frames) if args.frames else (
        selection.frame_sets(model) if selection.is_converted(model) else spec.frame_sets)
    try:
        frames = _checks.frame_sets(frames, "--frames")
    except ValueError as e:
        return _fail(e)
    # The preprocessing the model was trained with (its folder's config.json), else the arch's.
    size = args.input_size or config.get("input_size") or (spec.input_size if spec else 224)
    mean = config.get("mean") or (spec.mean if spec else IMAGENET_MEAN)
    std = config.get("std") or (spec.std if spec else IMAGENET_STD)
    try:
        transform = eval_transform(size, resize=args.resize, mean=mean, std=std, crops=args.crops)
    except ValueError as e:  # e.g. --resize smaller than the crop
        return _fail(e)
    dataset = video_dataset(args.list_file, frame_sets=frames, train=False, transform=transform,
                            sampler=args.sampler, num_clips=args.clips, **list_args)
    n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    labels = dataset.labels[:n]
    num_classes = model.frameflex_config.get("num_classes")
    if num_classes is not None and max(labels) >= num_classes:
        line = dataset.records[labels.index(max(labels))].line
        return _fail(f"{args.list_file}, line {line}: label {max(labels)} does not fit the model's "
                     f"{num_classes} classes")
    subset = dataset if n == len(dataset) else torch.utils.data.Subset(dataset, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=args.batch_size, shuffle=False,
                                         num_workers=args.workers, collate_fn=collate_clips,
                                         pin_memory=str(device).startswith("cuda"))
    start = time.perf_counter()
    try:
        result = evaluate(model, loader, frames, device=device, progress=not args.no_progress)
    except (FileNotFoundError, OSError, DataError) as e:  # a frame or video file named in the list is broken
        return _fail(e)
    seconds = time.perf_counter() - start

    sets = selection.frame_sets(model) if selection.is_converted(model) else None
    branches = {t: nearest_frames(t, sets) for t in frames} if sets else None
    result["gmacs"] = {r.frames: r.gmacs for r in profile(model, frames, input_size=size, latency=False)}
    views = result["views"]
    crop = "centre crop" if args.crops == 1 else "3 crops"
    print(f"{source} ({arch}, {'frame sets ' + str(list(sets)) if sets else 'plain'})"
          f" on {n} videos of {args.list_file}, {args.clips} clip{'s' if args.clips > 1 else ''} x {crop} "
          f"{size} = {views} view{'s' if views > 1 else ''} per video, {seconds:.1f} s")
    if branches and any(t != b for t, b in branches.items()):
        print("branch used: " + ", ".join(f"{t} frames -> {b}" for t, b in branches.items()))
    print(format_table(result))
    if args.json:
        info = {
            "top1": {str(t): v for t, v in result["top1"].items()},
            "top5": {str(t): v for t, v in result["top5"].items()},
            "count": result["count"],
            "views": views,
            "gmacs_per_view": {str(t): round(g, 3) for t, g in result["gmacs"].items()},
            "gmacs_per_video": {str(t): round(g * views, 3) for t, g in result["gmacs"].items()},
            "model": {"source": source, "architecture": arch, "num_classes": num_classes,
                      "frame_sets": list(selection.frame_sets(model)) if selection.is_converted(model) else None,
                      "branch": {str(t): b for t, b in branches.items()} if branches else None},
            "dataset": {"list": str(args.list_file), "root": str(dataset.root), "videos": len(dataset),
                        "limit": args.limit, "image_tmpl": args.image_tmpl, "index_base": args.index_base},
            "protocol": {"clips": args.clips, "crops": args.crops, "views": views, "sampler": args.sampler,
                         "input_size": size, "resize": args.resize or (size * 256 // 224 if args.crops == 1 else size),
                         "mean": list(mean), "std": list(std)},
            "device": str(device), "seconds": round(seconds, 2), "frameflex_version": __version__,
        }
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(info, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


def build_parser(prog: str = "frameflex eval") -> argparse.ArgumentParser:
    """The standalone parser of :func:`main`."""
    return add_arguments(argparse.ArgumentParser(
        prog=prog, description="Top-1/top-5 accuracy of a video model at several frame counts "
        "(default 1 clip x 1 centre crop; --clips N --crops 3 for multi-view) on video files or JPEG frames."))


def main(argv: Sequence[str] | None = None, prog: str = "frameflex eval") -> int:
    """``frameflex eval`` / ``python benchmarks/accuracy.py``: evaluate and print a table; returns the exit status.

    Example:
        >>> main(["org/tsm_r50-ffn-sthv1", "--list", "val_videofolder.txt", "--root", "frames",
        ...       "--frames", "4", "8", "16", "--json", "sthv1.json"])  # doctest: +SKIP
        0
    """
    return run(build_parser(prog).parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
