"""The official recipes (each family file states its own) and what they mean: the lr schedule, param groups."""
from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..models._recipe import Recipe
from ..models._registry import get_spec, list_models
from ..surgery import norm_types

__all__ = ["Recipe", "recipes", "default_recipe", "lr_factor", "param_groups"]


def recipes() -> dict[str, Recipe]:
    """The zoo's recipes by name (``tsm``, ``tea``, ``slowfast``, ``uniformer``).

    Example:
        >>> sorted(recipes())
        ['slowfast', 'tea', 'tsm', 'uniformer']
    """
    found = (get_spec(name).recipe for name in list_models())
    return {r.name: r for r in sorted((r for r in found if r is not None), key=lambda r: r.name)}


def default_recipe(model: str) -> str | None:
    """The recipe of a zoo model (``tsm_r50`` -> ``"tsm"``); None for a builder ``module:function``.

    Example:
        >>> default_recipe("uniformer_s"), default_recipe("my_models.py:build")
        ('uniformer', None)
    """
    if ":" in model:
        return None
    recipe = get_spec(model).recipe
    return recipe.name if recipe is not None else None


def lr_factor(recipe: Recipe, epoch: float) -> float:
    """The learning rate at (fractional) ``epoch`` as a fraction of the peak, for any recipe.

    Example:
        >>> tsm = recipes()["tsm"]
        >>> lr_factor(tsm, 20.0), lr_factor(tsm, 45.5)
        (0.1, 0.010000000000000002)
    """

    def after_warmup(e: float) -> float:
        if recipe.schedule == "step":
            return 0.1 ** sum(e >= s for s in recipe.lr_steps)
        floor = recipe.min_lr / recipe.lr
        span = max(recipe.epochs - recipe.warmup_epochs, 1e-9)
        progress = min(max((e - recipe.warmup_epochs) / span, 0.0), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    if epoch < recipe.warmup_epochs:
        start = recipe.warmup_lr / recipe.lr
        return start + (after_warmup(recipe.warmup_epochs) - start) * epoch / recipe.warmup_epochs
    return after_warmup(epoch)


def _head_name(model: nn.Module) -> str | None:
    """The classifier: the last nn.Linear registered (fc, head, head.projection in the zoo)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def param_groups(model: nn.Module, recipe: Recipe, lr: float) -> list[dict[str, Any]]:
    """Optimizer groups by role (weights, biases, norms, classifier) with the recipe's lr and decay rules.

    TSM's policies: biases learn 2x faster without decay, norms (every frame
    count's private copy) without decay, the new classifier 5x (bias 10x).

    Example:
        >>> import frameflex as ff
        >>> [g["name"] for g in param_groups(ff.create_model("tsm_tiny", 4), recipes()["tsm"], 0.01)]
        ['weight', 'norm', 'head_weight', 'head_bias']
    """
    head = _head_name(model)
    norms = norm_types()
    found: dict[str, list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if head is not None and (module_name == head or module_name.startswith(head + ".")):
                role = "head_bias" if name == "bias" else "head_weight"
            elif isinstance(module, norms):
                role = "norm"
            else:
                role = "bias" if name == "bias" else "weight"
            found.setdefault(role, []).append(p)
    rules = {"weight": (1.0, True), "bias": (recipe.bias_lr_mult, recipe.bias_decay),
             "norm": (1.0, recipe.norm_decay), "head_weight": (recipe.head_lr_mult, True),
             "head_bias": (recipe.head_bias_lr_mult, recipe.bias_decay)}
    return [{"name": role, "params": found[role], "lr": lr * mult,
             "weight_decay": recipe.weight_decay if decay else 0.0}
            for role, (mult, decay) in rules.items() if found.get(role)]
