"""Frame-indexed layers: one private copy of a norm per frame count, and the adapter.

Which branch runs is decided by a :class:`FrameState` shared by every frame-indexed
module of one converted model, so choosing a frame count is one attribute write.
"""
from __future__ import annotations

import copy
from typing import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["FrameState", "FrameNorm", "FrameScale", "InputScale", "ChannelScale", "nearest_frames", "adapter_spec"]


def nearest_frames(frames: int, frame_sets: Iterable[int]) -> int:
    """The trained frame count used for ``frames``: the nearest, ties to the larger.

    >>> nearest_frames(6, (4, 8, 16)), nearest_frames(12, (4, 8, 16))
    (8, 16)
    """
    return min(frame_sets, key=lambda s: (abs(s - frames), -s))


class FrameState:
    """Which branch is active; shared (not copied per module) within one model."""

    def __init__(self, frame_sets: tuple[int, ...], time_dim: int | None = None):
        self.frame_sets = tuple(frame_sets)
        self.time_dim = time_dim
        self.key: str | None = None  # str(branch), the ModuleDict key; None = not chosen

    @property
    def branch(self) -> int | None:
        return None if self.key is None else int(self.key)

    def select(self, frames: int) -> int:
        branch = nearest_frames(frames, self.frame_sets)
        self.key = str(branch)
        return branch

    def active_key(self) -> str:
        if self.key is None:
            raise RuntimeError(
                f"no frame count chosen for this frame-flexible model (frame_sets={self.frame_sets}): "
                "call ff.set_frames(model, T), use `with ff.frames(model, T):`, "
                "or convert with time_dim=... so the input picks it")
        return self.key

    def __repr__(self) -> str:
        return f"FrameState(frame_sets={self.frame_sets}, branch={self.branch}, time_dim={self.time_dim})"


class FrameNorm(nn.Module):
    """A norm layer with a private copy (weights and running statistics) per frame count.

    ``branches[str(T)]`` are full copies of the original layer, so subclass
    behaviour (timm's BatchNormAct2d activation, LayerNorm2d's permute, eps) is kept.
    The original module object becomes the branch of the largest frame count.
    """

    def __init__(self, norm: nn.Module, state: FrameState):
        super().__init__()
        largest = max(state.frame_sets)
        self.branches = nn.ModuleDict(
            {str(t): norm if t == largest else copy.deepcopy(norm) for t in state.frame_sets})
        self.training = norm.training
        self._state = state

    def forward(self, *args, **kwargs):
        # _modules directly: `self.branches` would go through __getattr__ below on every call.
        return self._modules["branches"][self._state.active_key()](*args, **kwargs)

    def __getattr__(self, name: str):
        # Attributes some models read off their norm (eps, normalized_shape, weight...).
        try:
            return super().__getattr__(name)
        except AttributeError:
            state = self.__dict__.get("_state")
            if state is None or name.startswith("__"):
                raise
            key = state.key or str(max(state.frame_sets))
            return getattr(self._modules["branches"][key], name)

    def extra_repr(self) -> str:
        return f"frame_sets={tuple(sorted(int(k) for k in self.branches))}"


def adapter_spec(module: nn.Module) -> tuple[str, int, int, int]:
    """How an adapter attaches to ``module``: (kind, channels, dim, groups).

    ``"weight"``: conv/linear layers get their weight's input channels scaled (a
    parametrization), exact and seen even by code that reads ``.weight`` directly;
    ``"input"``: any other module with ``in_channels``/``in_features`` gets its input scaled.
    """
    weight = getattr(module, "weight", None)
    if isinstance(module, nn.modules.conv._ConvNd) and isinstance(weight, nn.Parameter):
        if module.transposed:  # weight is (in, out/groups, k...)
            return "weight", weight.shape[0], 0, 1
        return "weight", module.in_channels, 1, module.groups  # weight is (out, in/groups, k...)
    if isinstance(module, nn.Linear) and isinstance(weight, nn.Parameter):
        return "weight", module.in_features, 1, 1
    if hasattr(module, "in_channels"):
        return "input", int(module.in_channels), 1, 1
    if hasattr(module, "in_features"):
        return "input", int(module.in_features), -1, 1
    raise ValueError(
        f"cannot place an adapter on {type(module).__name__}: its input channels are unknown "
        "(supported: ConvNd, Linear, or any module with an `in_channels` or `in_features` attribute)")


def _reference_tensor(module: nn.Module) -> torch.Tensor | None:
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return t
    return None


def _channel_factor(s: torch.Tensor, like: torch.Tensor, dim: int, groups: int) -> torch.Tensor:
    """``s`` (one value per input channel) shaped to multiply ``like`` along ``dim``."""
    if groups > 1:  # grouped conv weight (out, in/groups, k...): row o sees its group's channels
        out, per_group = like.shape[:2]
        s = s.view(groups, per_group).repeat_interleave(out // groups, dim=0)
        return s.view(out, per_group, *[1] * (like.dim() - 2))
    if dim < 0 or dim == like.dim() - 1:
        return s
    return s.view(*[1] * dim, -1, *[1] * (like.dim() - dim - 1))


# Plain layers whose forward is a linear map of the input through ``weight``: for these,
# scaling the input equals scaling the weight's input channels.
_LINEAR_FORWARDS = {nn.Linear.forward: -1, nn.Conv1d.forward: -2, nn.Conv2d.forward: -3, nn.Conv3d.forward: -4,
                    nn.ConvTranspose1d.forward: -2, nn.ConvTranspose2d.forward: -3, nn.ConvTranspose3d.forward: -4}


class _Cache(dict):
    """Scaled weights kept between calls; never copied, pickled or saved."""

    def __deepcopy__(self, memo):
        return _Cache()

    def __reduce__(self):
        return _Cache, ()


class FrameScale(nn.Module):
    """The paper's weight-alteration adapter: a per-channel ``1 + w_T`` per frame count.

    On conv/linear layers it is a parametrization of ``weight`` (its input channels
    scaled), which equals scaling the layer's input ``x * (1 + w_T)``; on other modules
    it scales the input itself (:class:`InputScale`). ``w_T`` starts at zero, so the
    converted model computes exactly what the original did.

    Cost: without autograd (inference) the scaled weight of each branch is computed
    once and reused until a parameter changes (their version counters say when), so
    an adapter costs nothing per call. With autograd on a plain Conv/Linear, the
    smaller of input and weight is scaled: the same product, rounded differently.
    """

    def __init__(self, channels: int, state: FrameState, dim: int = 1, groups: int = 1,
                 like: torch.Tensor | None = None):
        super().__init__()
        kw = {"device": like.device, "dtype": like.dtype} if like is not None else {}
        self.scales = nn.ParameterDict(
            {str(t): nn.Parameter(torch.zeros(channels, **kw)) for t in state.frame_sets})
        self.dim, self.groups = dim, groups
        self._state = state
        self._cache = _Cache()
        self._input_scaled = False  # set while the layer's input carries the scale

    def attach(self, layer: nn.Module) -> None:
        """Make this adapter a parametrization of ``layer.weight`` (and let it scale
        the input instead when that is cheaper)."""
        parametrize.register_parametrization(layer, "weight", self, unsafe=True)  # unsafe: no frame count yet
        if _LINEAR_FORWARDS.get(type(layer).forward) is not None:
            layer.register_forward_pre_hook(self._scale_input)
            layer.register_forward_hook(self._done, always_call=True)

    def detach(self, layer: nn.Module) -> None:
        """Remove what :meth:`attach` added besides the parametrization."""
        for hooks in (layer._forward_pre_hooks, layer._forward_hooks):
            for k in [k for k, h in hooks.items() if getattr(h, "__self__", None) is self]:
                del hooks[k]
                layer._forward_hooks_always_called.pop(k, None)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        key = self._state.active_key()
        w = self.scales[key]
        if self._input_scaled:
            return t
        if (torch.is_grad_enabled() and (t.requires_grad or w.requires_grad)) or torch.compiler.is_compiling():
            return t * _channel_factor(1 + w, t, self.dim, self.groups)
        # An inference-mode result is kept only for inference mode: autograd cannot save it.
        stamp = (t._version, t.data_ptr(), t.dtype, t.device, w._version, w.data_ptr(),
                 torch.is_inference_mode_enabled())
        hit = self._cache.get(key)
        if hit is not None and hit[0] == stamp and (hit[2] is None or hit[1]._version == hit[2]):
            return hit[1]
        out = t * _channel_factor(1 + w, t, self.dim, self.groups)
        self._cache[key] = (stamp, out, None if out.is_inference() else out._version)
        return out

    def train(self, mode: bool = True):
        if mode:
            self._cache.clear()  # training computes through autograd: free the memory
        return super().train(mode)

    def _scale_input(self, layer: nn.Module, args: tuple):
        # Scaling the input is the cheaper product when autograd has to go through it
        # and the input is smaller than the weight (late layers, small clips).
        if not (torch.is_grad_enabled() and args and isinstance(args[0], torch.Tensor)):
            return None
        x, w = args[0], self.scales[self._state.active_key()]
        weights = layer.parametrizations.weight
        if (len(weights) != 1 or parametrize._cache_enabled or x.numel() >= weights.original.numel()
                or not (w.requires_grad or weights.original.requires_grad)):
            return None
        self._input_scaled = True
        return (x * _channel_factor(1 + w, x, x.dim() + _LINEAR_FORWARDS[type(layer).forward], 1), *args[1:])

    def _done(self, layer: nn.Module, args: tuple, out):
        self._input_scaled = False

    def extra_repr(self) -> str:
        return f"frame_sets={tuple(sorted(int(k) for k in self.scales))}, dim={self.dim}, groups={self.groups}"


class InputScale(nn.Module):
    """Scales the input of ``base_layer`` with ``scale`` (a FrameScale, or a fixed
    :class:`ChannelScale` after :func:`frameflex.specialize`)."""

    def __init__(self, base_layer: nn.Module, scale: nn.Module):
        super().__init__()
        self.base_layer = base_layer
        self.scale = scale
        self.training = base_layer.training

    def forward(self, x: torch.Tensor, *args, **kwargs):
        return self.base_layer(self.scale(x), *args, **kwargs)


class ChannelScale(nn.Module):
    """A fixed per-channel factor: a specialised adapter that could not be folded."""

    def __init__(self, factor: torch.Tensor, dim: int):
        super().__init__()
        self.factor = nn.Parameter(factor.detach().clone())
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t * _channel_factor(self.factor, t, self.dim, 1)
