"""Adaptive inference: spend more frames only on the clips that need them.

One FFN model is good at every frame count, so a clip can start at the lowest
count and move up only while the prediction is unsure (max softmax probability
below ``threshold``). Easy clips stop early; the average cost drops.
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
            frame_sets: Sequence[int] | None = None, time_dim: int = 2) -> CascadeResult:
    """Classify each clip with the fewest frames that make the model confident.

    ``clips`` is ``{T: (B, C, T, H, W)}`` or one video tensor (B, C, N, H, W) from
    which centre segments are taken. Frame counts are tried in increasing order; a
    clip stops at the first whose max softmax probability is >= ``threshold``, or at
    the last. Only the clips still unsure are run at the next count.

    >>> model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8, 16]).eval()
    >>> out = ff.cascade(model, torch.randn(6, 3, 32, 32, 32), threshold=0.8)  # 6 videos of 32 frames
    >>> out.logits.shape, set(out.frames.tolist()) <= {4, 8, 16}  # frames: what each clip spent
    (torch.Size([6, 5]), True)
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
                todo = todo[out.softmax(-1).amax(-1) < threshold]
                if todo.numel() == 0:
                    break
    return CascadeResult(logits, frames)
