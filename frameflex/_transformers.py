"""transformers models in Hub folders: how to rebuild one, and loading a plain transformers checkpoint.

transformers is optional (a test dependency of frameflex): it is imported here only, and
only when a transformers model is saved or loaded. Nothing here runs code a file names:
the class is looked up in the transformers package itself, and remote code is never trusted.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from torch import nn

from .errors import CheckpointError, NotFoundError

__all__ = ["is_transformers_model", "base_record", "card", "build", "is_plain_checkpoint", "load_plain"]


def is_transformers_model(model: nn.Module) -> bool:
    """A ``transformers.PreTrainedModel`` (checked without importing transformers)."""
    return (type(model).__module__.split(".")[0] == "transformers"
            and callable(getattr(getattr(model, "config", None), "to_dict", None)))


def base_record(model: nn.Module) -> dict:
    """How to rebuild ``model``'s architecture: its class name and transformers config."""
    return {"type": "transformers", "class": type(model).__name__, "config": model.config.to_dict(),
            "num_classes": getattr(model.config, "num_labels", None)}


def card(model: nn.Module) -> dict:
    """What ``frameflex eval`` needs to know of a transformers model: its name, classes and
    input size (``config.image_size``; the crop its position table is built for)."""
    size = getattr(model.config, "image_size", None)
    if isinstance(size, (tuple, list)) and len(set(size)) == 1:
        size = size[0]
    return {"architecture": type(model).__name__, "num_classes": getattr(model.config, "num_labels", None),
            **({"input_size": size} if isinstance(size, int) else {})}


def _model_class(name: Any) -> type:
    import transformers

    cls = getattr(transformers, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise CheckpointError(f"config.json names the transformers class {name!r}, which transformers "
                              f"{transformers.__version__} does not have")
    return cls


def _with_classes(config, num_classes: int | None):
    if num_classes is not None and num_classes != config.num_labels:
        config.num_labels = num_classes  # also resets id2label / label2id
    return config


def build(base: Mapping, num_classes: int | None, trust_remote_code: bool = False) -> nn.Module:
    """The plain model a ``{"type": "transformers"}`` base record describes, freshly initialised."""
    from transformers import AutoConfig

    cls = _model_class(base.get("class"))
    fields = dict(base.get("config") or {})
    try:
        config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"the transformers config in config.json cannot be read: {e}") from None
    return cls(_with_classes(config, num_classes))


def is_plain_checkpoint(config: Mapping) -> bool:
    """config.json as transformers' ``save_pretrained`` writes it (a ``model_type``, no frameflex fields)."""
    return isinstance(config, Mapping) and "model_type" in config and "base" not in config \
        and "frameflex_version" not in config


def load_plain(src: str | os.PathLike, num_classes: int | None = None, **hub: Any) -> nn.Module:
    """A plain transformers video classifier from a folder or Hub repo (safetensors, or
    ``torch.load(weights_only=True)``; remote code never runs). ``hub``: revision,
    cache_dir, token, local_files_only."""
    from transformers import AutoConfig, AutoModelForVideoClassification

    hub = {k: v for k, v in hub.items() if v is not None}
    try:
        config = AutoConfig.from_pretrained(src, trust_remote_code=False, **hub)
    except (OSError, ValueError) as e:
        raise NotFoundError(f"{os.fspath(src)!r}: no transformers config could be read: {e}") from None
    new_head = num_classes is not None and num_classes != config.num_labels
    try:
        return AutoModelForVideoClassification.from_pretrained(
            src, config=_with_classes(config, num_classes), ignore_mismatched_sizes=new_head,
            trust_remote_code=False, **hub)
    except ValueError as e:  # not a video classifier
        raise CheckpointError(f"{os.fspath(src)!r} is a {config.model_type} checkpoint, which transformers "
                              f"cannot load as a video classifier: {e}") from None
    except OSError as e:
        raise NotFoundError(f"{os.fspath(src)!r}: the weights could not be read: {e}") from None
