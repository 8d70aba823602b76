"""Frame selection: which branch a frame-flexible model runs, and running several at once.

A converted model holds one :class:`~frameflex.layers.FrameState` per conversion;
:func:`set_frames` and :func:`frames` choose its branch, ``time_dim`` lets each
call choose from its input, :func:`forward_multi` runs every frame count's clip
through its own branch.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import torch
from torch import nn

from . import _checks, temporal
from ._outputs import logits_of
from .errors import ArgumentError, ArgumentTypeError, ConversionError
from .layers import FrameNorm, FrameScale, FrameState

__all__ = ["is_converted", "frame_sets", "set_frames", "frames", "forward_multi", "input_time_dim", "to_model_layout"]


def _states(model: nn.Module) -> list[FrameState]:
    seen: dict[int, FrameState] = {}
    for m in model.modules():
        if isinstance(m, (FrameNorm, FrameScale, temporal.TemporalTable)):
            seen.setdefault(id(m._state), m._state)
    return list(seen.values())


def is_converted(model: nn.Module) -> bool:
    """True if ``model`` holds frame-indexed layers."""
    return bool(_states(model))


def _require_states(model: nn.Module) -> list[FrameState]:
    states = _states(model)
    if not states:
        raise ConversionError(f"{type(model).__name__} is not frame-flexible: "
                              "call ff.convert(model, frame_sets=[...]) first")
    return states


class _PickFramesFromInput:
    """Forward pre-hook: choose the branch from the input's size along ``time_dim``."""

    def __init__(self, state: FrameState):
        self.state = state

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict):
        x = temporal.clip_argument(args, kwargs)
        dim = self.state.time_dim
        if not isinstance(x, torch.Tensor):
            raise ArgumentTypeError(f"time_dim={dim} needs a tensor as the first input, got {type(x).__name__}")
        if not -x.dim() <= dim < x.dim():
            raise ArgumentError(
                f"time_dim={dim} is out of range for an input of shape {tuple(x.shape)} "
                f"({x.dim()} dims); expected e.g. (B, C, T, H, W) with time_dim=2")
        if x.shape[dim] == 0:
            raise ArgumentError(f"the input has 0 frames along time_dim={dim} (shape {tuple(x.shape)}): "
                                "a clip needs at least one frame")
        self.state.select(x.shape[dim])
        return None


def input_time_dim(model: nn.Module) -> int | None:
    """The time axis of the clips ``model`` takes: the ``time_dim`` it was converted with,
    else the one :func:`frameflex.convert` finds for a known family (1 for transformers'
    ``pixel_values``); None if neither says.

    >>> input_time_dim(ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8]))
    2
    """
    states = _states(model)
    time_dim = states[0].time_dim if states else None
    return temporal.default_time_dim(model) if time_dim is None else time_dim


def to_model_layout(clip: torch.Tensor, time_dim: int | None, frames: int) -> torch.Tensor:
    """A loader's (B, C, T, H, W) clip of ``frames`` frames with its time axis moved to
    ``time_dim`` (see :func:`input_time_dim`); the other axes keep their order.

    Loaders always give (B, C, T, H, W), as frameflex's datasets and ``collate_clips``
    do; this is where evaluation and training hand such a clip to a model that takes
    another layout, e.g. (B, T, C, H, W) for time_dim=1. A clip that is not
    (B, C, T, H, W) with T=``frames`` at dim 2 is an error naming its layout: the
    layout is never guessed from the shape.

    >>> to_model_layout(torch.zeros(2, 3, 8, 32, 32), time_dim=1, frames=8).shape
    torch.Size([2, 8, 3, 32, 32])
    """
    if time_dim is None or not isinstance(clip, torch.Tensor) or clip.dim() != 5:
        return clip
    if not -5 <= time_dim < 5:
        raise ArgumentError(f"time_dim={time_dim} is out of range for a (B, C, T, H, W) clip of shape "
                            f"{tuple(clip.shape)}")
    dim = time_dim % 5
    if dim == 2:
        return clip
    if clip.shape[2] != frames:
        shape = tuple(clip.shape)
        hint = (f"; it looks like the model's layout already (T at dim {dim}): give the loader's clips as they "
                "are, T is moved to the model's time_dim here" if shape[dim] == frames else "")
        raise ArgumentError(f"the clip for T={frames} has shape {shape}: clips from a loader are (B, C, T, H, W) "
                            f"with T={frames} at dim 2 (as frameflex's datasets give them){hint}")
    return clip.movedim(2, dim)


def frame_sets(model: nn.Module) -> tuple[int, ...]:
    """The frame counts ``model`` has branches for, e.g. ``(4, 8, 16)``."""
    sets = {s.frame_sets for s in _require_states(model)}
    if len(sets) > 1:
        raise ConversionError(f"model mixes parts converted with different frame_sets: {sorted(sets)}")
    return sets.pop()


def set_frames(model: nn.Module, frames: int) -> int:
    """Run ``model`` at ``frames``; returns the branch used (nearest trained, ties to the larger).

    >>> model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8, 16])
    >>> ff.set_frames(model, 12)   # 8 and 16 are as near: ties go to the larger
    16
    """
    _checks.frame_count(frames)
    return [s.select(frames) for s in _require_states(model)][0]


@contextlib.contextmanager
def frames(model: nn.Module, count: int) -> Iterator[int]:
    """Temporarily run ``model`` at ``count`` frames; yields the branch used.

    >>> model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8, 16]).eval()
    >>> with ff.frames(model, 8):
    ...     logits = model(torch.randn(1, 3, 8, 32, 32))
    >>> logits.shape
    torch.Size([1, 5])
    """
    _checks.frame_count(count)
    states = _require_states(model)
    previous = [s.key for s in states]
    try:
        yield [s.select(count) for s in states][0]
    finally:
        for s, key in zip(states, previous):
            s.key = key


def forward_multi(model: nn.Module, clips: Mapping[int, torch.Tensor], **kwargs) -> dict[int, torch.Tensor]:
    """Run each frame count's clip through its own branch: ``{T: model(clip_T)}``.

    Clips are never concatenated, so no norm sees two frame counts at once; with
    ``time_dim`` the clip's size along it must equal its key.

    >>> model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8, 16])
    >>> outs = ff.forward_multi(model, {t: torch.randn(2, 3, t, 32, 32) for t in (4, 8, 16)})
    >>> {t: tuple(logits.shape) for t, logits in outs.items()}
    {4: (2, 5), 8: (2, 5), 16: (2, 5)}
    """
    if not isinstance(clips, Mapping) or not clips:
        raise ArgumentError("forward_multi expects a non-empty dict {frame_count: clip}")
    states = _require_states(model)
    time_dim = states[0].time_dim
    outs = {}
    for t in sorted(clips):
        x = clips[t]
        _checks.frame_count(t, "clips key")
        if (time_dim is not None and isinstance(x, torch.Tensor) and -x.dim() <= time_dim < x.dim()
                and x.shape[time_dim] != t):
            raise ArgumentError(f"clips[{t}] has {x.shape[time_dim]} frames along time_dim={time_dim} "
                                f"(shape {tuple(x.shape)}), not {t}")
        with frames(model, t):
            outs[t] = logits_of(model(x, **kwargs))
    return outs
