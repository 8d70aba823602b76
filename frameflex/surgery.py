"""convert(): walk any nn.Module, swap its norms for FrameNorm, wrap adapter targets.

Frame selection (set_frames, frames, time_dim) is in selection.py; how conversion
renames state-dict keys is in checkpoints.py (key_origins).
"""
from __future__ import annotations

import contextlib
import copy
import re
import sys
from typing import Callable, Sequence

import torch
from torch import nn

from torch.nn.utils import parametrize

from . import _checks, temporal
from ._pattern import compile_pattern
from .errors import ArgumentError, ArgumentTypeError, ConversionError
from .layers import FrameNorm, FrameScale, FrameState, InputScale, _reference_tensor, adapter_spec
from .selection import _PickFramesFromInput, _states

__all__ = ["convert", "register_norm", "norm_types", "AUTO_BLOCK_PATTERN"]

# _BatchNorm covers BatchNorm1d/2d/3d, SyncBatchNorm, timm's BatchNormAct2d;
# InstanceNorm and FrozenBatchNorm are not subclasses of these, so they stay shared.
_NORM_TYPES: list[type] = [nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
                           *([nn.RMSNorm] if hasattr(nn, "RMSNorm") else [])]
# timm norms that do not derive from torch's (its LayerNorm/GroupNorm variants do), by name in
# timm.layers: looked up only once timm is imported (a model holding one has imported it),
# so that `import frameflex` does not import timm.
_TIMM_NORMS = ("RmsNorm", "RmsNorm2d", "RmsNormFp32", "RmsNorm2dFp32", "SimpleNorm", "SimpleNorm2d",
               "SimpleNormFp32", "SimpleNorm2dFp32", "FilterResponseNormAct2d", "FilterResponseNormTlu2d",
               "EvoNorm2dB0", "EvoNorm2dB1", "EvoNorm2dB2", "EvoNorm2dS0", "EvoNorm2dS0a", "EvoNorm2dS1",
               "EvoNorm2dS1a", "EvoNorm2dS2", "EvoNorm2dS2a")


def register_norm(cls: type) -> type:
    """Make :func:`convert` treat ``cls`` (and its subclasses) as a norm to privatise.

    Usable as a decorator::

        @ff.register_norm
        class MyNorm(nn.Module): ...
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ArgumentTypeError(f"register_norm expects an nn.Module subclass, got {cls!r}")
    if cls not in _NORM_TYPES:
        _NORM_TYPES.append(cls)
    return cls


def norm_types() -> tuple[type, ...]:
    """The norm classes :func:`convert` swaps by default (subclasses included).

    >>> nn.BatchNorm3d in norm_types() or issubclass(nn.BatchNorm3d, norm_types())
    True
    """
    timm_layers = sys.modules.get("timm.layers")
    timm_norms = [getattr(timm_layers, n) for n in _TIMM_NORMS if hasattr(timm_layers, n)] if timm_layers else []
    return tuple(dict.fromkeys([*_NORM_TYPES, *timm_norms]))


# "auto" adapters: the first conv/linear inside every block whose class name says it
# is a residual unit (torchvision/timm ResNets, ConvNeXt, ViT, Swin, EfficientNet, MViT;
# transformers names its blocks *Layer). Separate q/k/v projections all read the
# block's normed input, so all three get one, as a fused qkv layer would.
AUTO_BLOCK_PATTERN = re.compile(r".*(Block|Bottleneck|Residual|Layer)$")
_QKV = ({"query", "key", "value"}, {"q_proj", "k_proj", "v_proj"}, {"q", "k", "v"})
_LAYER_TYPES = (nn.modules.conv._ConvNd, nn.Linear)


def convert(
    model: nn.Module,
    frame_sets: Sequence[int],
    adapters: None | str | Sequence[str] = None,
    time_dim: int | None = None,
    inplace: bool = True,
) -> nn.Module:
    """Make ``model`` frame-flexible: a private copy of every norm per frame count.

    Norms are the registered types (:func:`norm_types`, :func:`register_norm`):
    BatchNorm1d/2d/3d, SyncBatchNorm, LayerNorm, GroupNorm, RMSNorm and timm's
    variants. InstanceNorm and frozen BatchNorm stay shared. Each norm becomes one
    :class:`FrameNorm` (placed at every parent if the norm is shared); the original
    module object becomes the largest frame count's branch, so its parameters,
    device, dtype and mode survive. Video transformers (:func:`register_temporal`)
    also get a temporal position table per frame count.

    Args:
        frame_sets: the trained frame counts, e.g. ``[4, 8, 16]``.
        adapters: ``None``; a list of module names or ``re.fullmatch`` patterns whose
            INPUT gets a zero-initialised per-frame-count scale ``x * (1 + w_T)``
            (patterns run in linear time; backreferences and lookarounds are refused);
            or ``"auto"``: the first conv/linear layer inside every module whose class
            name ends in Block, Bottleneck, Residual or Layer (with its k and v
            siblings when q, k, v are separate layers).
        time_dim: if given, every call picks its branch from ``x.shape[time_dim]``
            (e.g. 2 for (B, C, T, H, W)); otherwise use :func:`set_frames`. Found
            when the root is a registered video transformer family or a transformers
            class wrapping one: 1 for ``pixel_values`` (B, T, C, H, W).
        inplace: convert ``model`` itself (default) or a deep copy.

    Returns the converted model (a new object only when the root itself is replaced,
    e.g. a bare norm or an adapter target named ``""``). All or nothing: if anything
    fails, ``model`` is left as it was. A model with no norm and no adapter target,
    or a TorchScript one, is an error.

    Example::

        model = ff.convert(torchvision.models.video.r3d_18(), [4, 8, 16], time_dim=2)
        model(torch.randn(2, 3, 8, 112, 112))      # runs the 8-frame branch
    """
    sets = tuple(sorted(_checks.frame_sets(frame_sets)))
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"convert expects an nn.Module, got {type(model).__name__}")
    if time_dim is not None and (isinstance(time_dim, bool) or not isinstance(time_dim, int)):
        raise ArgumentTypeError(f"time_dim must be an int or None, got {time_dim!r}")
    existing = _states(model)
    if existing:
        if adapters is None and all(s.frame_sets == sets for s in existing):
            return model  # idempotent: converting twice with the same frame_sets is a no-op
        raise ConversionError(
            f"model is already frame-flexible with frame_sets={existing[0].frame_sets}; convert it once "
            f"(asked for frame_sets={sets}, adapters={adapters!r}). Use ff.calibrate to add a frame count.")
    if not inplace:
        model = copy.deepcopy(model)
    return _convert(model, sets, adapters, time_dim, exact=False)[0]


def _convert_exact(model: nn.Module, frame_sets: Sequence[int], names: Sequence[str],
                   time_dim: int | None) -> tuple[nn.Module, Callable[[], None]]:
    """Convert in place with adapters on exactly the modules ``names`` (resolved names, as a saved
    config records them: never matched as patterns). Returns the root and a function undoing it."""
    if _states(model):
        raise ConversionError(f"{type(model).__name__} is already frame-flexible: pass it unconverted")
    return _convert(model, tuple(sorted(_checks.frame_sets(frame_sets))), list(names), time_dim, exact=True)


def _convert(model: nn.Module, sets: tuple[int, ...], adapters, time_dim: int | None,
             exact: bool) -> tuple[nn.Module, Callable[[], None]]:
    named = list(model.named_modules(remove_duplicate=False))
    scripted = next((n for n, m in named if isinstance(m, torch.jit.ScriptModule)), None)
    if scripted is not None:
        what = f"its submodule {scripted!r} is one" if scripted else f"{type(model).__name__} is one"
        raise ConversionError(f"convert cannot change TorchScript modules ({what}): convert the Python model, "
                              "then script or trace it")
    if time_dim is None:
        time_dim = temporal.default_time_dim(model)
    plan = temporal.prepare(model, sets)  # temporal tables and frame-count attributes (video transformers)

    state = FrameState(sets, time_dim)
    norm_cls = norm_types()
    norm_names = [n for n, m in named if isinstance(m, norm_cls)]
    prefixes = tuple(f"{n}." for n in norm_names if n)

    def outside_norms(name: str) -> bool:  # modules inside a norm (its act, drop) go with it
        return not name.startswith(prefixes) and not ("" in norm_names and name)

    targets = _adapter_targets(model, named, adapters, outside_norms, exact)
    if not norm_names and not targets and not plan:
        raise ConversionError(
            f"convert found nothing to make frame-flexible in {type(model).__name__}: no norm layer of a "
            "registered type (BatchNorm, LayerNorm, GroupNorm, RMSNorm, timm's norms: ff.norm_types()) and no "
            'adapters. Register your norm class with ff.register_norm, or pass adapters="auto" or module names')

    # Build and validate every replacement first, then place them; if placing fails
    # half-way, undo what was placed: the model is converted whole or not at all.
    new: dict[int, nn.Module] = {}
    for name, m in named:
        if id(m) not in new and isinstance(m, norm_cls) and outside_norms(name):
            new[id(m)] = FrameNorm(m, state)
    reweight = []
    for _, m in targets:
        kind, channels, dim, groups = adapter_spec(m)
        scale = FrameScale(channels, state, dim, groups, like=_reference_tensor(m))
        if kind == "weight":
            reweight.append((m, scale))
        else:
            new[id(m)] = InputScale(new.get(id(m), m), scale)

    with contextlib.ExitStack() as undo:  # on an error, the steps so far are undone, last first
        for m, scale in reweight:
            undo.callback(_detacher(m, scale))
            scale.attach(m)
        # Walk parents without dedup so a shared module is replaced under every parent.
        for parent in [m for _, m in named]:
            for key, child in list(parent._modules.items()):
                if child is not None and id(child) in new and new[id(child)] is not parent:
                    parent._modules[key] = new[id(child)]
                    undo.callback(parent._modules.__setitem__, key, child)
        undo.callback(temporal.install(plan, state))  # prepare() has checked everything it can fail on
        root = new.get(id(model), model)
        if time_dim is not None:
            undo.callback(root.register_forward_pre_hook(_PickFramesFromInput(state), with_kwargs=True).remove)
        return root, undo.pop_all().close


def _detacher(m: nn.Module, scale: FrameScale) -> Callable[[], None]:
    """The step undoing ``scale.attach(m)`` (about to run), however far it got."""
    order = list(m._parameters)
    had = parametrize.is_parametrized(m, "weight")

    def undo() -> None:
        scale.detach(m)
        if not parametrize.is_parametrized(m, "weight"):
            return
        plist = m.parametrizations["weight"]
        if not any(p is scale for p in plist):
            return
        if had:  # the user's own parametrizations stay
            del plist[-1]
            return
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)  # the original Parameter back
        params = dict(m._parameters)
        m._parameters.clear()
        m._parameters.update({k: params[k] for k in order if k in params})

    return undo


def _with_qkv_siblings(model: nn.Module, name: str, layer: nn.Module) -> list[tuple[str, nn.Module]]:
    head, _, leaf = name.rpartition(".")
    trio = next((t for t in _QKV if leaf in t), None)
    parent = model.get_submodule(head)
    if trio is None or not all(isinstance(getattr(parent, n, None), _LAYER_TYPES) for n in trio):
        return [(name, layer)]
    return [(f"{head}.{n}" if head else n, getattr(parent, n)) for n in sorted(trio, key=list(parent._modules).index)]


def _adapter_targets(model, named, adapters, allowed, exact: bool = False) -> list[tuple[str, nn.Module]]:
    if adapters is None:
        return []
    candidates = [(n, m) for n, m in named if allowed(n)]
    if exact:
        by_name = dict(candidates)
        absent = [n for n in adapters if n not in by_name]
        if absent:
            raise ConversionError(f"adapter targets {absent} are not modules of {type(model).__name__} (outside its "
                                  "norms): the model is not the one these adapters were placed on")
        return _check_targets({id(by_name[n]): (n, by_name[n]) for n in adapters})
    if isinstance(adapters, str) and adapters == "auto":
        found: dict[int, tuple[str, nn.Module]] = {}
        for name, m in candidates:
            if AUTO_BLOCK_PATTERN.fullmatch(type(m).__name__):
                first = next(((f"{name}.{n}" if name else n, c) for n, c in m.named_modules()
                              if isinstance(c, _LAYER_TYPES)), None)
                if first is not None:
                    for hit in _with_qkv_siblings(model, *first):
                        found.setdefault(id(hit[1]), hit)
        if not found:
            raise ArgumentError(
                f'adapters="auto" found no residual block in {type(model).__name__} (no module class named '
                "*Block, *Bottleneck, *Residual or *Layer holding a conv/linear layer); pass module names or regexes")
        return list(found.values())
    if isinstance(adapters, str):
        adapters = [adapters]
    if not isinstance(adapters, Sequence) or not all(isinstance(p, str) for p in adapters):
        raise ArgumentTypeError(f'adapters must be None, "auto" or a list of module names / regexes, got {adapters!r}')
    found = {}
    for pattern in adapters:
        try:
            fullmatch = compile_pattern(pattern)  # linear time: no pattern can hang convert
        except ValueError as e:
            raise ArgumentError(f"adapter {e}") from None
        hits = [(n, m) for n, m in candidates
                if n == pattern or n.endswith("." + pattern) or fullmatch(n)]
        if not hits:
            raise ArgumentError(f"adapter pattern {pattern!r} matched no module of {type(model).__name__}")
        for n, m in hits:
            found.setdefault(id(m), (n, m))
    return _check_targets(found)


def _check_targets(found: dict[int, tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    for n, m in found.values():
        try:
            adapter_spec(m)
        except ValueError as e:
            raise ArgumentError(f"adapter target {n!r}: {e}") from None
    return list(found.values())
