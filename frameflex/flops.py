"""profile(): GMACs, parameters and latency per frame count.

Video papers report multiply-adds per view (batch 1) and call them "GFLOPs";
torch's FlopCounterMode counts 2 flops per multiply-add, so we halve it.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .surgery import frame_sets as model_frame_sets
from .surgery import frames as use_frames
from .surgery import is_converted

__all__ = ["profile", "ProfileRow", "count_gmacs"]


@dataclass
class ProfileRow:
    frames: int
    input_size: int
    gmacs: float  # multiply-adds per view (batch 1), in billions
    params_m: float  # all parameters, every branch included, in millions
    latency_ms: float | None  # median eager latency on `device`, batch 1

    def as_dict(self) -> dict:
        return asdict(self)


def count_gmacs(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds of one forward of ``model`` on ``x``, in billions."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() / 2e9


def profile(model: nn.Module, frame_sets: Sequence[int] | None = None, input_size: int = 224,
            channels: int = 3, latency: bool = True, repeats: int = 5, device: str | torch.device | None = None
            ) -> list[ProfileRow]:
    """Compute and (optionally) time ``model`` at each frame count on one (1, C, T, S, S) clip.

    ``frame_sets`` defaults to the model's own (a converted model) and is required
    for a plain one. Eval mode is used and restored. A model built on the meta
    device (``with torch.device("meta"): ...``) is counted without computing.

    >>> for row in ff.profile(ff.create_model("tsm_r50", 174, frame_sets=[4, 8, 16]), latency=False):
    ...     print(row.frames, round(row.gmacs, 2))
    4 16.46
    ...
    """
    if frame_sets is None:
        if not is_converted(model):
            raise ValueError("profile: pass frame_sets=[...] for a model that is not frame-flexible")
        frame_sets = model_frame_sets(model)
    param = next(model.parameters(), None)
    device = torch.device(device) if device is not None else (param.device if param is not None else "cpu")
    latency = latency and device.type != "meta"  # a meta model has shapes only: count, don't time
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    was_training = model.training
    model.eval()
    rows = []
    try:
        for t in frame_sets:
            x = torch.randn(1, channels, t, input_size, input_size, device=device, dtype=dtype)
            ctx = use_frames(model, t) if is_converted(model) else contextlib.nullcontext()
            with ctx:
                gmacs = count_gmacs(model, x)
                ms = _median_ms(model, x, repeats) if latency else None
            rows.append(ProfileRow(t, input_size, gmacs, params_m, ms))
    finally:
        model.train(was_training)
    return rows


def _median_ms(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    with torch.no_grad():
        model(x)  # warm-up
        for _ in range(max(1, repeats)):
            sync()
            start = time.perf_counter()
            model(x)
            sync()
            times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]
