"""calibrate(): a branch for a frame count the model was not trained at, BatchNorm statistics from data."""
from __future__ import annotations

import copy
from typing import Iterable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from . import _checks, selection, temporal
from ._modes import train_mode
from .errors import DataError, UnknownKeyError
from .layers import FrameNorm, FrameScale, nearest_frames
from .selection import _require_states

__all__ = ["calibrate"]


def _add_frames(model: nn.Module, frames: int) -> None:
    """A new branch per frame-indexed layer, copied from the nearest existing one."""
    states = _require_states(model)
    src = str(nearest_frames(frames, states[0].frame_sets))
    for m in {id(m): m for m in model.modules() if isinstance(m, (FrameNorm, FrameScale))}.values():
        if isinstance(m, FrameNorm):
            m.branches[str(frames)] = copy.deepcopy(m.branches[src])
        else:  # FrameScale
            m.scales[str(frames)] = nn.Parameter(m.scales[src].detach().clone(),
                                                 requires_grad=m.scales[src].requires_grad)
    temporal.add_frames(model, frames, int(src))
    for s in states:
        s.frame_sets = tuple(sorted({*s.frame_sets, frames}))


def _remove_frames(model: nn.Module, frames: int) -> None:
    for m in {id(m): m for m in model.modules() if isinstance(m, (FrameNorm, FrameScale))}.values():
        del (m.branches if isinstance(m, FrameNorm) else m.scales)[str(frames)]
    temporal.remove_frames(model, frames)
    for s in _require_states(model):
        s.frame_sets = tuple(t for t in s.frame_sets if t != frames)


def calibrate(
    model: nn.Module,
    loader: Iterable,
    frames: int,
    num_batches: int | None = None,
    progress: bool = True,
) -> nn.Module:
    """Add a branch for an untrained frame count and estimate its BatchNorm statistics.

    The branch is copied from the nearest trained count; then only its BatchNorm
    running statistics are reset and recomputed as a cumulative average over the
    loader (US-Nets' post-statistics). Other branches are untouched, bit for bit;
    train/eval modes are restored. ``loader`` yields clips of ``frames`` frames,
    ``(clips, labels)`` batches, or ``{T: clip}`` dicts. Calibrating an existing
    count recomputes its statistics.

    >>> model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8, 16])
    >>> val_loader = [torch.randn(2, 3, 12, 32, 32) for _ in range(3)]  # clips of 12 frames
    >>> _ = ff.calibrate(model, val_loader, frames=12, num_batches=20, progress=False)
    >>> ff.frame_sets(model)
    (4, 8, 12, 16)
    """
    _checks.frame_count(frames)
    if num_batches is not None:
        _checks.positive_int(num_batches, "num_batches")
    states = _require_states(model)
    added = frames not in states[0].frame_sets
    if added:
        _add_frames(model, frames)
    key = str(frames)
    bns = [m.branches[key] for m in {id(m): m for m in model.modules() if isinstance(m, FrameNorm)}.values()]
    bns = [m for bn in bns for m in bn.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    time_dim = states[0].time_dim
    param = next(model.parameters(), None)
    momenta = [(bn, bn.momentum) for bn in bns]
    saved = [copy.deepcopy(bn.state_dict()) for bn in bns]
    seen = 0
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average
        total = num_batches if num_batches is not None else (len(loader) if hasattr(loader, "__len__") else None)
        with torch.no_grad(), train_mode(model, False), selection.frames(model, frames):
            for bn in bns:
                bn.train()
            for batch in tqdm(loader, total=total, desc=f"calibrate {frames} frames", disable=not progress):
                if num_batches is not None and seen >= num_batches:
                    break
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                if isinstance(x, Mapping):
                    if frames not in x:
                        raise UnknownKeyError(f"calibrate(frames={frames}): the loader's clip dict has only "
                                              f"{sorted(x)}")
                    x = x[frames]
                if isinstance(x, torch.Tensor):
                    if time_dim is not None and x.shape[time_dim] != frames:
                        raise DataError(f"calibrate(frames={frames}) got a clip of shape {tuple(x.shape)} with "
                                        f"{x.shape[time_dim]} frames along time_dim={time_dim}")
                    if param is not None:
                        x = x.to(param.device)
                model(x)
                seen += 1
        if seen == 0:
            raise DataError("calibrate: the loader yielded no batches")
    except BaseException:
        # Leave the model as it was: no half-calibrated branch.
        if added:
            _remove_frames(model, frames)
        else:
            for bn, sd in zip(bns, saved):
                bn.load_state_dict(sd)
        raise
    finally:
        for bn, momentum in momenta:
            bn.momentum = momentum
    return model
