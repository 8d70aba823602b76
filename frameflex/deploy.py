"""specialize(): a converted model as a plain nn.Module for one frame count, for deployment."""
from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils import parametrize

from . import _checks, selection, temporal
from .layers import ChannelScale, FrameNorm, FrameScale, InputScale, nearest_frames
from .selection import _PickFramesFromInput

__all__ = ["specialize"]


def specialize(model: nn.Module, frames: int) -> nn.Module:
    """A plain copy of ``model`` for one frame count, for deployment.

    Every FrameNorm becomes its branch for ``frames`` (the nearest trained count, as
    :func:`set_frames` picks) and every conv/linear adapter is folded into the
    layer's weight, exactly. Adapters on other modules stay as a fixed
    :class:`ChannelScale`. ``model`` itself is not changed.

    >>> model = ff.create_model("tsm_tiny", num_classes=5, frame_sets=[4, 8, 16]).eval()
    >>> plain = ff.specialize(model, 8)
    >>> x8 = torch.randn(1, 3, 8, 32, 32)
    >>> torch.allclose(plain(x8), model(x8), atol=1e-5)
    True
    >>> exported = torch.export.export(plain, (x8,))  # doctest: +SKIP
    """
    _checks.frame_count(frames)
    key = str(nearest_frames(frames, selection.frame_sets(model)))
    model = copy.deepcopy(model)
    modules = list(model.modules())
    new: dict[int, nn.Module] = {}
    with selection.frames(model, int(key)):
        temporal.fix_frames(model, frames)
        for m in modules:
            if isinstance(m, FrameNorm):
                new[id(m)] = m.branches[key]
            elif isinstance(m, InputScale) and isinstance(m.scale, FrameScale):
                m.scale = ChannelScale(1 + m.scale.scales[key].detach(), m.scale.dim)
            elif parametrize.is_parametrized(m):
                for name, plist in list(m.parametrizations.items()):
                    scales = [p for p in plist if isinstance(p, FrameScale)]
                    if scales:
                        for p in scales:
                            p.detach(m)
                        _own_class(m)
                        parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    for m in modules:
        for hook_id, hook in list(m._forward_pre_hooks.items()):
            if isinstance(hook, _PickFramesFromInput):
                del m._forward_pre_hooks[hook_id]
                m._forward_pre_hooks_with_kwargs.pop(hook_id, None)
    for parent in modules:
        for name, child in parent._modules.items():
            if child is not None and id(child) in new:
                parent._modules[name] = new[id(child)]
    return new.get(id(model), model)


def _own_class(module: nn.Module) -> None:
    # A deep copy shares torch's per-module ``Parametrized*`` class with the original, and
    # remove_parametrizations edits that class: give the copy its own first.
    cls = type(module)
    namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    module.__class__ = type(cls.__name__, cls.__bases__, namespace)
