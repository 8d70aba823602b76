"""Training: one :class:`TrainConfig`, the official recipes, and ONE loop (:func:`train_one_epoch`).

``frameflex train`` (:mod:`.cli` -> :func:`.train.run`), ``frameflex demo``, the
examples and the benchmarks all train through :func:`train_one_epoch` and
evaluate through :func:`frameflex.evaluate.evaluate`.

Example:
    >>> from frameflex.training import MultiClipModel, train_one_epoch
    >>> sums = train_one_epoch(MultiClipModel(model), ff.FFNLoss(), opt, None, loader, "cpu")  # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import Any

from .config import TrainConfig, UsageError

# Everything else on first use: the CLI builds its parser from .cli without importing torch.
_LAZY = {
    "MultiClipModel": "loop", "train_one_epoch": "loop", "run": "train", "validate": "loop",
    "main": "cli", "add_arguments": "cli", "config_from_args": "cli",
    "Recipe": "recipe", "recipes": "recipe", "default_recipe": "recipe", "lr_factor": "recipe",
    "param_groups": "recipe", "init_from": "builders", "InitReport": "builders",
}

__all__ = ["TrainConfig", "UsageError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
