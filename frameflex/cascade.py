"""Adaptive inference: spend more frames only on the clips that need them.

One FFN model is good at every frame count, so a clip can start at the lowest
count and move up only while the prediction is unsure (max softmax probability
below ``threshold``). Easy clips stop early; the average cost drops. A model's
softmax is often mis-calibrated per frame count (FFN's is under-confident), which
``temperature`` fixes: divide each count's logits by a temperature fitted on held-out clips.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import torch
from torch import nn

from . import _checks, selection
from ._modes import train_mode
from ._outputs import logits_of
from .data import segment_indices
from .errors import ArgumentError, UnknownKeyError

__all__ = ["cascade", "CascadeResult"]


class CascadeResult(NamedTuple):
    logits: torch.Tensor  # (B, classes): the logits of the frame count each clip stopped at
    frames: torch.Tensor  # (B,): that frame count


def _clips_from_video(video: torch.Tensor, frame_sets: Sequence[int], time_dim: int) -> dict[int, torch.Tensor]:
    """Centre TSN segments of a (B, C, N, H, W) video for every frame count."""
    n = video.shape[time_dim]
    return {t: video.index_select(time_dim, segment_indices(n, t, train=False).to(video.device))
            for t in frame_sets}


@torch.no_grad()
def cascade(model: nn.Module, clips: Mapping[int, torch.Tensor] | torch.Tensor, threshold: float,
            frame_sets: Sequence[int] | None = None, time_dim: int = 2,
            temperature: float | Mapping[int, float] | None = None) -> CascadeResult:
    """Classify each clip with the fewest frames that make the model confident.

    ``clips`` is ``{T: (B, C, T, H, W)}`` or one video tensor (B, C, N, H, W) from
    which centre segments are taken. Frame counts are tried in increasing order; a
    clip stops at the first whose max softmax probability is >= ``threshold``, or at
    the last. Only the clips still unsure are run at the next count. ``temperature``
    (one number, or ``{T: t}`` for every count tried) divides the logits before the
    softmax that is compared with ``threshold``; the returned logits are the model's own.

    >>> model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8, 16]).eval()
    >>> out = ff.cascade(model, torch.randn(6, 3, 32, 32, 32), threshold=0.8)  # 6 videos of 32 frames
    >>> out.logits.shape, set(out.frames.tolist()) <= {4, 8, 16}  # frames: what each clip spent
    (torch.Size([6, 5]), True)
    >>> out = ff.cascade(model, torch.randn(6, 3, 32, 32, 32), 0.8, temperature={4: 0.6, 8: 0.35, 16: 0.25})
    """
    _checks.probability(threshold, "threshold")
    if frame_sets is None:
        if isinstance(clips, Mapping):
            frame_sets = sorted(clips)
        elif selection.is_converted(model):
            frame_sets = selection.frame_sets(model)
        else:
            raise ArgumentError("cascade: pass frame_sets=[...] (the model is not frame-flexible)")
    frame_sets = sorted(_checks.frame_sets(frame_sets))
    if not isinstance(clips, Mapping):
        clips = _clips_from_video(clips, frame_sets, time_dim)
    missing = [t for t in frame_sets if t not in clips]
    if missing:
        raise UnknownKeyError(f"cascade: no clip for frame counts {missing}; clips has {sorted(clips)}")
    temps = _temperatures(temperature, frame_sets)

    batch = clips[frame_sets[0]].shape[0]
    device = clips[frame_sets[0]].device
    todo = torch.arange(batch, device=device)
    logits = frames = None
    with train_mode(model, False):
        for i, t in enumerate(frame_sets):
            x = clips[t].index_select(0, todo)
            with selection.frames(model, t) if selection.is_converted(model) else torch.no_grad():
                out = logits_of(model(x))
            if logits is None:
                logits = out.new_zeros(batch, out.shape[-1])
                frames = torch.zeros(batch, dtype=torch.long, device=device)
            logits[todo], frames[todo] = out, t
            if i + 1 < len(frame_sets):
                todo = todo[(out / temps[t]).softmax(-1).amax(-1) < threshold]
                if todo.numel() == 0:
                    break
    return CascadeResult(logits, frames)


def _temperatures(temperature, frame_sets: Sequence[int]) -> dict[int, float]:
    """``{T: t > 0}`` for every count in ``frame_sets``."""
    if temperature is None:
        return dict.fromkeys(frame_sets, 1.0)
    if not isinstance(temperature, Mapping):
        temperature = dict.fromkeys(frame_sets, temperature)
    missing = [t for t in frame_sets if t not in temperature]
    if missing:
        raise UnknownKeyError(f"cascade: no temperature for frame counts {missing}; temperature has "
                              f"{sorted(temperature)}")
    for t in frame_sets:
        if not _checks.nonnegative(temperature[t], f"temperature of {t} frames") > 0:
            raise ArgumentError(f"cascade: temperature of {t} frames must be > 0, got {temperature[t]!r}")
    return {t: float(temperature[t]) for t in frame_sets}
