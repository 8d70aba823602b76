"""Top-1 / top-5 accuracy of a (frame-flexible) video model at several frame counts: THE evaluation loop.

:func:`evaluate` takes any model and any loader of ``({T: clip}, labels)``; ``frameflex eval``
(:mod:`frameflex.training.eval_cli`), training's validation, the demo and the benchmarks all call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import _checks, selection
from ._modes import train_mode
from ._outputs import logits_of
from .data import collate_clips

__all__ = ["evaluate", "format_table"]


def _model_place(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next((t for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()), None)
    return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)


def evaluate(
    model: nn.Module,
    loader_or_dataset: Iterable | torch.utils.data.Dataset,
    frame_sets: Iterable[int] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    batch_size: int = 8,
    num_workers: int = 0,
) -> dict[str, Any]:
    """Top-1 and top-5 accuracy (%) of ``model`` at every frame count in ``frame_sets``.

    Every batch's clip of T frames goes through the model on its own: with
    ``ff.frames(model, T)`` when the model is frame-flexible (counts it was not
    trained at use the nearest branch), plainly otherwise. Runs under
    ``torch.no_grad`` in eval mode; each module's train/eval mode is restored.

    Args:
        model: any model returning (B, classes) logits (or a ``ModelOutput`` with ``.logits``);
            a model that takes another layout (its ``time_dim``, e.g. transformers'
            (B, T, C, H, W) ``pixel_values``) gets each clip with T moved there.
        loader_or_dataset: an iterable of ``({T: clip (B, C, T, H, W)}, labels (B,))``
            batches (e.g. a DataLoader with ``collate_fn=ff.collate_clips``), or a
            dataset of ``({T: clip}, label)`` items such as :class:`frameflex.datasets.VideoList`
            (then batched here with ``batch_size`` and ``num_workers``).
        frame_sets: the frame counts to score; each batch must hold a clip for
            each. None: every count of the first batch.
        device: where to run; the model is moved there. None: the model's device.
        progress: show a tqdm bar with the running top-1.

    Clips of shape (B, V, C, T, H, W) hold V test views per video (``num_clips``
    and a 3-crop transform, e.g. ``video_dataset(..., num_clips=2,
    transform=transforms_for(arch, crops=3))``): the model sees every view and
    the video's score is the mean of their softmax (the multi-view protocol).

    Returns:
        ``{"top1": {T: pct}, "top5": {T: pct}, "count": videos, "views": V, "skipped": [paths]}``.
        With fewer than 5 classes "top5" counts all of them (100%). ``skipped``: the
        unreadable videos a ``skip_bad`` dataset left out (not counted).

    Example:
        >>> val = VideoList("val.txt", root="frames", frame_sets=(4, 8, 16), transform=transforms_for("tsm_r50"))  # doctest: +SKIP
        >>> evaluate(model, val, (4, 8, 16))["top1"]  # doctest: +SKIP
        {4: 42.85, 8: 48.2, 16: 50.79}
    """
    wanted = _checks.frame_sets(frame_sets) if frame_sets is not None else None
    if isinstance(loader_or_dataset, torch.utils.data.Dataset) and not isinstance(
            loader_or_dataset, torch.utils.data.IterableDataset):
        loader = torch.utils.data.DataLoader(loader_or_dataset, batch_size=batch_size, shuffle=False,
                                             num_workers=num_workers, collate_fn=collate_clips)
    else:
        loader = loader_or_dataset
    if device is not None:
        model.to(device)
    place, dtype = _model_place(model)
    converted = selection.is_converted(model)
    time_dim = selection.input_time_dim(model)
    correct1: dict[int, int] = {}
    correct5: dict[int, int] = {}
    count = 0
    views: int | None = None
    skipped: list = []
    total = len(loader) if hasattr(loader, "__len__") else None
    batches = iter(loader)
    bar = tqdm(batches, total=total, desc="eval", unit="batch", disable=not progress, dynamic_ncols=True)
    try:
        with train_mode(model, False), torch.no_grad():
            for b, batch in enumerate(bar):
                if not isinstance(batch, (tuple, list)) or len(batch) != 2 or not isinstance(batch[0], Mapping):
                    raise ValueError(f"batch {b}: expected ({{T: clip}}, labels), got {type(batch).__name__}; "
                                     "use a DataLoader with collate_fn=ff.collate_clips")
                clips, labels = batch
                if wanted is None:
                    wanted = tuple(sorted(clips))
                missing = [t for t in wanted if t not in clips]
                if missing:
                    raise KeyError(f"batch {b} has clips for frame counts {sorted(clips)}, not for {missing}")
                labels = torch.as_tensor(labels)
                if labels.dim() != 1 or labels.is_floating_point():
                    raise ValueError(f"batch {b}: labels must be class indices of shape (B,), got "
                                     f"{labels.dtype} {tuple(labels.shape)}")
                labels = labels.to(place)
                if not labels.numel():  # every video of the batch was skipped as unreadable
                    continue
                for t in wanted:
                    x = clips[t]
                    if not isinstance(x, Tensor) or x.dim() < 3 or x.shape[0] != labels.shape[0]:
                        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                        raise ValueError(f"batch {b}: clip for T={t} must be a (B, C, T, H, W) tensor with "
                                         f"B={labels.shape[0]} labels, got {shape}")
                    # (B, V, C, T, H, W): V test views per video (clips x crops), their softmax averaged.
                    v = x.shape[1] if x.dim() == 6 else 1
                    if views is None:
                        views = v
                    elif v != views:
                        raise ValueError(f"batch {b}: clip for T={t} has {v} views, earlier ones {views}")
                    x = x.to(place, dtype=dtype if x.is_floating_point() else None, non_blocking=True)
                    if v > 1:
                        x = x.flatten(0, 1)
                    x = selection.to_model_layout(x, time_dim, t)
                    if converted:
                        with selection.frames(model, t):
                            logits = logits_of(model(x))
                    else:
                        logits = logits_of(model(x))
                    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
                        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                        raise ValueError(f"model output at T={t} must be (B, classes) logits with "
                                         f"B={x.shape[0]}, got {shape}")
                    if int(labels.max()) >= logits.shape[1] or int(labels.min()) < 0:
                        raise ValueError(f"batch {b}: labels {sorted(set(labels.tolist()))} do not fit the "
                                         f"model's {logits.shape[1]} classes")
                    if v > 1:
                        logits = logits.float().softmax(-1).view(labels.shape[0], v, -1).mean(1)
                    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
                    hit = top == labels[:, None]
                    correct1[t] = correct1.get(t, 0) + int(hit[:, 0].sum())
                    correct5[t] = correct5.get(t, 0) + int(hit.any(dim=1).sum())
                count += labels.shape[0]
                skipped += list(getattr(batch, "skipped", ()))
                if progress:
                    bar.set_postfix_str("top-1 " + " ".join(f"{t}f {100 * correct1[t] / count:.1f}%" for t in wanted))
    finally:
        bar.close()
        # Stop DataLoader workers now: after an error the iterator sits in a reference cycle with the
        # exception's traceback, and the garbage collector would shut it down much later.
        shutdown = getattr(batches, "_shutdown_workers", None)
        if callable(shutdown):
            shutdown()
    if count == 0:
        raise ValueError("evaluate: the loader yielded no videos")
    return {
        "top1": {t: 100.0 * correct1[t] / count for t in wanted},
        "top5": {t: 100.0 * correct5[t] / count for t in wanted},
        "count": count,
        "views": views or 1,
        "skipped": [str(s.path) for s in skipped],
    }


def format_table(result: Mapping[str, Any]) -> str:
    """A markdown table of :func:`evaluate`'s result, one column per frame count.

    With ``result["gmacs"]`` (``{T: GMACs per view}``) two more rows give the
    compute per view and per video (x ``result["views"]``).

    Example:
        >>> print(format_table({"top1": {4: 42.85, 8: 48.2}, "top5": {4: 71.0, 8: 76.5}, "count": 11522}))
        | frames | 4 | 8 |
        |---|---|---|
        | top-1 (%) | 42.85 | 48.20 |
        | top-5 (%) | 71.00 | 76.50 |
    """
    frames = sorted(result["top1"], key=int)
    lines = ["| frames | " + " | ".join(str(t) for t in frames) + " |", "|---|" + "---|" * len(frames)]
    for key, name in (("top1", "top-1 (%)"), ("top5", "top-5 (%)")):
        lines.append(f"| {name} | " + " | ".join(f"{result[key][t]:.2f}" for t in frames) + " |")
    if result.get("gmacs"):
        views = result.get("views", 1)
        lines.append("| GMACs per view | " + " | ".join(f"{result['gmacs'][t]:.2f}" for t in frames) + " |")
        lines.append(f"| GMACs x {views} views | " + " | ".join(f"{result['gmacs'][t] * views:.2f}"
                                                             for t in frames) + " |")
    return "\n".join(lines)
