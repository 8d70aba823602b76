"""frameflex: make any PyTorch video model frame-flexible (Frame Flexible Network, CVPR 2023).

>>> import frameflex as ff
>>> model = ff.convert(model, frame_sets=[4, 8, 16], adapters="auto", time_dim=2)  # doctest: +SKIP
>>> loss = ff.FFNLoss()(ff.forward_multi(model, {4: x4, 8: x8, 16: x16}), labels)  # doctest: +SKIP
>>> plain = ff.specialize(model, 8)  # doctest: +SKIP

Every name is imported on first use, so ``import frameflex`` (and ``frameflex --help``)
does not import torch, timm or huggingface_hub.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

from ._version import __version__

# public name -> the submodule that defines it
_EXPORTS = {
    "convert": "surgery", "register_norm": "surgery", "norm_types": "surgery", "register_temporal": "temporal",
    "is_converted": "selection", "frame_sets": "selection", "set_frames": "selection", "frames": "selection",
    "forward_multi": "selection",
    "load_state_dict": "checkpoints", "import_checkpoint": "checkpoints",
    "FFNLoss": "loss", "specialize": "deploy", "calibrate": "calibration", "cascade": "cascade", "profile": "flops",
    "FrameNorm": "layers", "FrameScale": "layers", "InputScale": "layers", "ChannelScale": "layers",
    "nearest_frames": "layers",
    "create_model": "models._registry", "list_models": "models._registry", "get_spec": "models._registry",
    "save_pretrained": "hub", "from_pretrained": "hub", "push_to_hub": "hub",
    "segment_indices": "data", "uniform_indices": "data", "MultiFrameClips": "data", "collate_clips": "data",
    "SyntheticMotion": "data", "SyntheticActions": "synthetic",
    **{name: "errors" for name in ("FrameflexError", "ArgumentError", "ArgumentTypeError", "ConversionError",
                                   "CheckpointError", "StateDictError", "NotFoundError", "UnknownKeyError",
                                   "DataError", "UsageError", "OverwriteError", "UntrustedCodeError")},
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on first use
    from .calibration import calibrate
    from .cascade import cascade
    from .checkpoints import import_checkpoint, load_state_dict
    from .data import MultiFrameClips, SyntheticMotion, collate_clips, segment_indices, uniform_indices
    from .deploy import specialize
    from .errors import (
        ArgumentError, ArgumentTypeError, CheckpointError, ConversionError, DataError, FrameflexError,
        NotFoundError, OverwriteError, StateDictError, UnknownKeyError, UntrustedCodeError, UsageError,
    )
    from .flops import profile
    from .hub import from_pretrained, push_to_hub, save_pretrained
    from .layers import ChannelScale, FrameNorm, FrameScale, InputScale, nearest_frames
    from .loss import FFNLoss
    from .models._registry import create_model, get_spec, list_models
    from .selection import forward_multi, frame_sets, frames, is_converted, set_frames
    from .synthetic import SyntheticActions
    from .surgery import convert, norm_types, register_norm
    from .temporal import register_temporal


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif not name.startswith("__"):  # a submodule: ff.flops, ff.models, ...
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # Importing frameflex.cascade binds the submodule as an attribute; the public name is the function.
        if not (name in _EXPORTS and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
