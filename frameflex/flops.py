"""profile(): GMACs, parameters and latency per frame count.

Video papers report multiply-adds per view (batch 1) and call them "GFLOPs";
torch's FlopCounterMode counts 2 flops per multiply-add, so we halve it.
"""
from __future__ import annotations

import contextlib
import math
import re
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from . import _checks, selection, temporal
from ._modes import train_mode
from .errors import ArgumentError

__all__ = ["profile", "ProfileRow", "count_gmacs", "zoo_table", "markdown_table"]


@dataclass
class ProfileRow:
    frames: int
    input_size: int
    gmacs: float  # multiply-adds per view (batch 1), in billions
    params_m: float  # all parameters, every branch included, in millions
    latency_ms: float | None  # median eager latency on `device`, batch 1

    def as_dict(self) -> dict:
        return asdict(self)


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """q @ k^T and weights @ v, 2 flops per multiply-add: what the math kernel's bmm calls count."""
    *batch, s_q, d = query_shape
    return 2 * math.prod(batch) * s_q * key_shape[-2] * (d + value_shape[-1])


# Attention kernels torch's counter has no formula for (torch 2.14: the CPU one, so
# attention counted nothing on real CPU tensors while meta and CUDA counted it).
_ATTENTION_KERNELS = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable",
                      "_scaled_dot_product_attention_math_for_mps")
_EXTRA_FORMULAS = {getattr(torch.ops.aten, n): _attention_flops for n in _ATTENTION_KERNELS if hasattr(torch.ops.aten, n)}
# Ops that do a model's multiply-adds; one seen without a formula would silently count as 0.
_COSTLY = re.compile(r"conv|mm|\bmv\b|addmv|matmul|attention|linear|einsum|dot")


class _SeenOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: set = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket)
        return func(*args, **(kwargs or {}))


def count_gmacs(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds of one forward of ``model`` on ``x``, in billions, the same on every
    device (meta included); warns naming any matmul-like op it has no formula for.

    >>> ff.flops.count_gmacs(nn.Linear(1000, 1000), torch.randn(1, 1000))
    0.001
    """
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS)
    seen = _SeenOps()
    with torch.no_grad(), counter, seen:
        model(x)
    missed = sorted(str(op) for op in seen.ops if op not in counter.flop_registry and _COSTLY.search(str(op)))
    if missed:
        warnings.warn(f"count_gmacs: no FLOP formula for {', '.join(missed)} on {x.device.type}: "
                      "their multiply-adds are not counted", stacklevel=2)
    return counter.get_total_flops() / 2e9


def profile(model: nn.Module, frame_sets: Sequence[int] | None = None, input_size: int = 224,
            channels: int = 3, latency: bool = True, repeats: int = 5, device: str | torch.device | None = None
            ) -> list[ProfileRow]:
    """Compute and (optionally) time ``model`` at each frame count on one (1, C, T, S, S) clip
    ((1, T, C, S, S) for transformers video models).

    ``frame_sets`` defaults to the model's own (a converted model) and is required
    for a plain one. Eval mode is used and restored. A model built on the meta
    device (``with torch.device("meta"): ...``) is counted without computing.

    >>> with torch.device("meta"):  # shapes only: counted in a blink, no memory
    ...     model = ff.create_model("tsm_r50", 174, frame_sets=[4, 8, 16])
    >>> [(row.frames, int(row.gmacs)) for row in ff.profile(model)]
    [(4, 16), (8, 32), (16, 65)]
    """
    if frame_sets is None:
        if not selection.is_converted(model):
            raise ArgumentError("profile: pass frame_sets=[...] for a model that is not frame-flexible")
        frame_sets = selection.frame_sets(model)
    frame_sets = _checks.frame_sets(frame_sets)
    _checks.positive_int(input_size, "input_size")
    param = next(model.parameters(), None)
    device = torch.device(device) if device is not None else (param.device if param is not None else "cpu")
    latency = latency and device.type != "meta"  # a meta model has shapes only: count, don't time
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    rows = []
    with train_mode(model, False):
        for t in frame_sets:
            x = temporal.example_clip(model, t, input_size, channels, device=device, dtype=dtype)
            ctx = selection.frames(model, t) if selection.is_converted(model) else contextlib.nullcontext()
            with ctx:
                gmacs = count_gmacs(model, x)
                ms = _median_ms(model, x, repeats) if latency else None
            rows.append(ProfileRow(t, input_size, gmacs, params_m, ms))
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


def zoo_table(name: str, latency: bool = False, device: str = "cpu", repeats: int = 3) -> list[dict]:
    """Rows for one zoo model: every frame count and input size it has published numbers for."""
    from .models._registry import create_model, get_spec

    spec = get_spec(name)
    sizes = sorted({s for _, s in spec.published_gmacs} | {spec.input_size})
    meta = torch.device("meta")
    with meta:  # parameters and counts need shapes only
        plain_params = sum(p.numel() for p in create_model(name, num_classes=174).parameters()) / 1e6
    rows = []
    for size in sizes:
        frames = sorted(set(spec.frame_sets) | {t for t, s in spec.published_gmacs if s == size})
        with contextlib.nullcontext() if latency else meta:
            model = create_model(name, num_classes=174, frame_sets=spec.frame_sets)
        model = model.to(device) if latency else model
        for r in profile(model, frame_sets=frames, input_size=size, latency=latency, repeats=repeats):
            published = spec.published_gmacs.get((r.frames, size))
            rows.append({
                "model": name, "frames": r.frames, "input": size, "gmacs": round(r.gmacs, 2),
                "published_gmacs": published,
                "diff_pct": None if published is None else round(100 * (r.gmacs - published) / published, 2),
                "params_plain_m": round(plain_params, 2), "params_ffn_m": round(r.params_m, 2),
                "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 1),
            })
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts as a markdown table (empty cells for None)."""
    keys = list(rows[0])
    cell = lambda v: "" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                     + ["| " + " | ".join(cell(r[k]) for k in keys) + " |" for r in rows])
