"""The model zoo's registry: create_model, list_models, and each arch's FFN preset.

Each family file ends with ``@register_model(...)`` builders; the decorator's
arguments are the per-arch data (default frame counts, adapter placement,
input size, published compute) that the rest of the library reads.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Sequence

from torch import nn

from ._recipe import Recipe

__all__ = ["CheckpointRules", "ModelSpec", "register_model", "list_models", "create_model", "get_spec"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CheckpointRules:
    """How one arch's official keys become frameflex keys.

    renames: ``(regex, replacement)`` pairs applied in order with ``re.sub`` to
        every official key (frame suffix removed), giving the plain frameflex key.
    adapter: ``(regex, replacement)`` turning an official adapter weight key
        (suffix removed, e.g. ``layer1.0.adaconv.weight``) into the name of the
        module the adapter scales in our model.
    head: our plain key of the classifier weight (its rows give num_classes).
    signature: a regex that some key of this arch's files matches (for ``arch=None``).
    frame_scale: a file's frame suffix times this is our frame count (SlowFast-FFN names
        branches by slow-pathway frames: ``a_bn_4`` belongs to the 16-frame fast clip).
    """

    renames: tuple[tuple[str, str], ...] = ()
    adapter: tuple[str, str] | None = None
    head: str = "fc.weight"
    signature: str | None = None
    frame_scale: int = 1


@dataclass(frozen=True)
class ModelSpec:
    """What frameflex knows about one zoo architecture."""

    name: str
    builder: Callable[..., nn.Module]  # builder(num_classes=..., **kwargs) -> plain model
    frame_sets: tuple[int, ...]  # the paper's L/M/H
    adapters: str | tuple[str, ...] | None  # ff.convert's `adapters` for the FFN variant
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    published_gmacs: dict = field(default_factory=dict)  # {(frames, input_size): GMACs} from the papers
    checkpoint_rules: CheckpointRules | None = None  # how import_checkpoint reads this arch's files
    recipe: Recipe | None = None  # the official training recipe (frameflex train --recipe)
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, frame_sets: Sequence[int], adapters=None, **spec) -> Callable:
    """Decorator registering ``builder(num_classes, **kwargs)`` under ``name``."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        adapters_ = tuple(adapters) if isinstance(adapters, (list, tuple)) else adapters
        _REGISTRY[name] = ModelSpec(name, builder, tuple(frame_sets), adapters_,
                                    description=(builder.__doc__ or "").strip().split("\n")[0], **spec)
        return builder

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Names of the zoo's models, sorted; ``pattern`` is a shell-style filter.

    >>> ff.list_models("tsm*")
    ['tsm_r50', 'tsm_tiny']
    """
    _load_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; a clear error lists the known names."""
    _load_families()
    if name not in _REGISTRY:
        close = fnmatch.filter(_REGISTRY, f"*{name.split('_')[0]}*") if isinstance(name, str) else []
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}"
                         + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return _REGISTRY[name]


def create_model(name: str, num_classes: int, frame_sets: Sequence[int] | str | None = None,
                 adapters: object = "preset", **kwargs) -> nn.Module:
    """Build a zoo model; with ``frame_sets`` its FFN variant.

    The FFN variant is the plain model passed through :func:`frameflex.convert`
    with ``time_dim=2`` and the paper's adapter placement for that arch
    (``adapters="preset"``; pass ``None`` or your own patterns to change it).
    ``frame_sets="default"`` uses the paper's L/M/H for the arch.

    >>> model = ff.create_model("tsm_tiny", num_classes=174, frame_sets=[4, 8, 16])
    >>> model(torch.randn(2, 3, 8, 64, 64)).shape
    torch.Size([2, 174])
    """
    from ..surgery import convert

    spec = get_spec(name)
    model = spec.builder(num_classes=num_classes, **kwargs)
    if isinstance(frame_sets, str):
        if frame_sets != "default":
            raise ValueError(f'frame_sets must be a list of ints, "default" or None, got {frame_sets!r}')
        frame_sets = spec.frame_sets
    if frame_sets is not None:
        model = convert(model, frame_sets, adapters=spec.adapters if adapters == "preset" else adapters,
                        time_dim=2)
    # What save_pretrained needs to build this model again.
    model.frameflex_config = {
        "architecture": name, "num_classes": num_classes,
        "frame_sets": sorted(frame_sets) if frame_sets is not None else None,
        "adapters": list(adapters) if isinstance(adapters, (list, tuple)) else adapters,
        "model_kwargs": kwargs,
    }
    return model


def _load_families() -> None:
    # Importing a family file runs its @register_model decorators.
    from . import slowfast, tea, tsm, uniformer  # noqa: F401
