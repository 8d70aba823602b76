"""The training loop: one epoch of ``{T: clip}`` batches, every frame count each step.

``frameflex train``, ``frameflex demo``, the examples and the benchmarks all run
:func:`train_one_epoch`; evaluation is :func:`frameflex.evaluate.evaluate`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from .._outputs import logits_of
from ..data import collate_clips
from ..evaluate import evaluate
from ..selection import forward_multi, input_time_dim, is_converted, to_model_layout
from .distributed import Procs

__all__ = ["MultiClipModel", "train_one_epoch", "validate"]


class MultiClipModel(nn.Module):
    """``{T: clip}`` in, ``{T: logits}`` out: each frame count through its own branch.

    A converted model runs :func:`frameflex.forward_multi`; a plain one is called
    on each clip. One module, so that DDP sees a single forward and backward per step.
    Clips are a loader's (B, C, T, H, W); a model that takes another layout (its
    ``time_dim``, e.g. transformers' (B, T, C, H, W)) gets T moved there.

    Example:
        >>> net = MultiClipModel(ff.convert(model, [4, 8], time_dim=2))  # doctest: +SKIP
        >>> sorted(net({4: x4, 8: x8}))  # doctest: +SKIP
        [4, 8]
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: Mapping[int, Tensor]) -> dict[int, Tensor]:
        time_dim = input_time_dim(self.model)
        clips = {t: to_model_layout(x, time_dim, t) for t, x in clips.items()}
        if is_converted(self.model):
            return forward_multi(self.model, clips)
        return {t: logits_of(self.model(x)) for t, x in clips.items()}


def train_one_epoch(
    model: nn.Module,
    criterion: Callable[[dict[int, Tensor], Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    data_loader: Iterable,
    device: torch.device | str,
    epoch: int = 0,
    *,
    accum_steps: int = 1,
    scaler: torch.amp.GradScaler | None = None,
    autocast_dtype: torch.dtype | None = None,
    clip_grad: float | None = None,
    sums: dict[str, float] | None = None,
    first_step: int = 0,
    on_step: Callable[[int], None] | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> dict[str, float]:
    """Train ``model`` on every batch of ``data_loader`` once; returns the sums of the losses.

    Args:
        model: maps ``{T: clip}`` to ``{T: logits}``: a :class:`MultiClipModel`
            (or a DistributedDataParallel around one).
        criterion: e.g. :class:`frameflex.FFNLoss` (cross-entropy alone for one frame
            count); its ``parts`` are summed beside the loss.
        lr_scheduler: stepped after every optimizer step (None: no schedule).
        data_loader: ``({T: clip (B, C, T, H, W)}, labels)`` micro-batches
            (``collate_fn=ff.collate_clips``); ``accum_steps`` of them make one step.
        scaler: a GradScaler for fp16; ``autocast_dtype`` runs the forward under autocast.
        clip_grad: max L2 norm of all gradients together (None: no clipping).
        sums: running ``{"loss", "ce", "kl_T"..., "n"}`` to add to (an epoch resumed
            mid-way); updated in place and returned. ``n`` counts micro-batches,
            ``skipped`` the unreadable videos batches left out (``ClipBatch.skipped``).
        first_step: optimizer steps of this epoch already done (the progress bar's start).
        on_step: called with the number of this epoch's steps done after each step
            (``frameflex train`` writes its mid-epoch checkpoints there).

    Example:
        >>> net = MultiClipModel(model)  # doctest: +SKIP
        >>> sums = train_one_epoch(net, ff.FFNLoss(), opt, None, loader, "cpu")  # doctest: +SKIP
        >>> sums["loss"] / sums["n"]  # doctest: +SKIP
        2.07
    """
    device = torch.device(device)
    sums = {} if sums is None else sums
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)
    params = [p for p in model.parameters() if p.requires_grad]
    total = len(data_loader) // accum_steps if hasattr(data_loader, "__len__") else None
    bar = tqdm(total=None if total is None else first_step + total, initial=first_step, unit="step", leave=False,
               desc=desc or f"epoch {epoch + 1}", dynamic_ncols=True, disable=not progress)
    autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
                else contextlib.nullcontext())
    steps = first_step
    model.train()
    try:
        for i, batch in enumerate(data_loader):
            clips, labels = batch
            for bad in getattr(batch, "skipped", ()):  # unreadable videos (a skip_bad dataset): said, counted
                tqdm.write(f"skipped unreadable video: {bad.error}")
                sums["skipped"] = sums.get("skipped", 0.0) + 1
            if not labels.numel():  # every video of the micro-batch was unreadable (its step, if final, too)
                continue
            clips = {t: x.to(device, non_blocking=True) for t, x in clips.items()}
            labels = labels.to(device, non_blocking=True)
            final = (i + 1) % accum_steps == 0
            no_sync = model.no_sync() if hasattr(model, "no_sync") and not final else contextlib.nullcontext()
            with no_sync:
                with autocast:
                    outs = model(clips)
                loss = criterion({t: z.float() for t, z in outs.items()}, labels)
                if not torch.isfinite(loss):
                    parts = {k: round(v.item(), 4) for k, v in getattr(criterion, "parts", {}).items()}
                    raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {steps + 1} "
                                             f"({parts}): lower the learning rate, or use bf16 instead of fp16")
                scaler.scale(loss / accum_steps).backward()
            sums["loss"] = sums.get("loss", 0.0) + loss.item()
            for k, v in getattr(criterion, "parts", {}).items():
                sums[k] = sums.get(k, 0.0) + v.item()
            sums["n"] = sums.get("n", 0.0) + 1
            if not final:
                continue
            if clip_grad is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, clip_grad)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if lr_scheduler is not None:
                lr_scheduler.step()
            steps += 1
            bar.update(1)
            bar.set_postfix_str(f"loss {sums['loss'] / sums['n']:.4f} lr {optimizer.param_groups[0]['lr']:.3g}")
            if on_step is not None:
                on_step(steps)
    finally:
        bar.close()
    return sums


def validate(model: nn.Module, dataset: Dataset, frames: tuple[int, ...], procs: Procs, batch_size: int,
             workers: int, progress: bool) -> dict[str, Any]:
    """:func:`frameflex.evaluate.evaluate` on this rank's share of ``dataset``, counts summed over ranks."""
    share = Subset(dataset, range(procs.rank, len(dataset), procs.world))
    hits = [0.0] * (2 * len(frames) + 1)
    if len(share):
        loader = DataLoader(share, batch_size=batch_size, num_workers=workers, collate_fn=collate_clips,
                            pin_memory=procs.device.type == "cuda", generator=torch.Generator())
        r = evaluate(model, loader, frames, progress=progress)
        n = r["count"]
        hits = ([round(r["top1"][t] * n / 100) for t in frames] + [round(r["top5"][t] * n / 100) for t in frames]
                + [n])
    hits = procs.sum(hits)
    n, k = int(hits[-1]), len(frames)
    return {"top1": {t: 100 * hits[i] / n for i, t in enumerate(frames)},
            "top5": {t: 100 * hits[k + i] / n for i, t in enumerate(frames)}, "count": n}
