"""frameflex: make any PyTorch video model frame-flexible (Frame Flexible Network, CVPR 2023).

>>> import frameflex as ff
>>> model = ff.convert(model, frame_sets=[4, 8, 16], adapters="auto", time_dim=2)
>>> loss = ff.FFNLoss()(ff.forward_multi(model, {4: x4, 8: x8, 16: x16}), labels)
>>> plain = ff.specialize(model, 8)
"""
from .cascade import cascade
from .checkpoints import import_checkpoint, load_state_dict
from .errors import (
    ArgumentError, ArgumentTypeError, CheckpointError, ConversionError, DataError, FrameflexError, NotFoundError,
    OverwriteError, StateDictError, UnknownKeyError, UntrustedCodeError, UsageError,
)
from .data import MultiFrameClips, SyntheticMotion, collate_clips, segment_indices, uniform_indices
from .calibration import calibrate
from .deploy import specialize
from .flops import profile
from .hub import from_pretrained, push_to_hub, save_pretrained
from .layers import ChannelScale, FrameNorm, FrameScale, InputScale, nearest_frames
from .loss import FFNLoss
from .models._registry import create_model, get_spec, list_models
from .selection import forward_multi, frame_sets, frames, is_converted, set_frames
from .surgery import convert, norm_types, register_norm
from .temporal import register_temporal

from ._version import __version__

__all__ = [
    "convert", "register_norm", "register_temporal", "norm_types", "is_converted", "frame_sets", "set_frames",
    "frames",
    "forward_multi", "load_state_dict", "FFNLoss", "specialize", "calibrate",
    "FrameNorm", "FrameScale", "InputScale", "ChannelScale", "nearest_frames",
    "create_model", "list_models", "get_spec", "import_checkpoint", "profile", "cascade",
    "save_pretrained", "from_pretrained", "push_to_hub",
    "segment_indices", "uniform_indices", "MultiFrameClips", "collate_clips", "SyntheticMotion",
    "FrameflexError", "ArgumentError", "ArgumentTypeError", "ConversionError", "CheckpointError", "StateDictError",
    "NotFoundError", "UnknownKeyError", "DataError", "UsageError", "OverwriteError", "UntrustedCodeError",
]
