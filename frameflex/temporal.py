"""Temporal position embeddings per frame count: what makes video transformers frame-flexible.

Video transformers size some tensors and integers by the frame count they were
built for: a temporal position table, or a ``num_frames`` that a forward reads.
:func:`register_temporal` records, per family, where those live (data only);
:func:`frameflex.convert` then gives every frame count a private copy of each
table and makes the integers follow the clip.

Resampling: a table is resampled along time only, by linear interpolation with
``align_corners=False`` on its (t, rest) grid. Slot ``j`` of ``T'`` then takes
the value at the centre of its 1/T' share of the clip, which is where segment
sampling draws that slot's frames from: the clip keeps its time span. Slicing
the first rows would keep the first T' slots (a shorter clip at the same fps),
and nearest would repeat or drop slots. For VideoMAE's fixed sinusoid table over
flattened (t, h, w) tokens this means the (t, h, w) grid is resampled along t,
never the flat token index.
"""
from __future__ import annotations

import contextlib
import dataclasses
import operator
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .errors import ArgumentError, ArgumentTypeError, ConversionError
from .layers import FrameState

__all__ = ["register_temporal", "temporal_families", "TemporalSpec", "TemporalTable", "resample_time"]


@dataclasses.dataclass(frozen=True)
class TemporalSpec:
    """Where one family keeps its frame count; paths are relative to the owner module.

    ``layout``: the owner's clip layout, ``"BTCHW"`` (transformers' ``pixel_values``)
    or ``"BCTHW"`` (torchvision). ``tables``: ``{path: leading rows}`` of temporal
    position tables (rows on dim -2, ``leading`` rows such as CLS are not per-time,
    the rest are slots x tokens-per-slot, time-major); a path that holds ``None``
    is skipped. ``follow``: integer attributes set for each clip, ``{path: "frames"
    | "slots"}``; the first one also tells the frame count the model was built for.
    ``tubelet``: frames per temporal slot, an int or a path (a sequence counts by
    its first entry). ``channels``: path of the channel count, to catch a clip in
    the wrong layout.
    """

    layout: str
    follow: Mapping[str, str]
    tables: Mapping[str, int] = dataclasses.field(default_factory=dict)
    tubelet: int | str = 1
    channels: str | None = None

    def __post_init__(self):
        if sorted(self.layout) != sorted("BCTHW"):
            raise ArgumentError(f"layout must be 'BTCHW' or 'BCTHW'-like, got {self.layout!r}")
        if not self.follow or any(u not in ("frames", "slots") for u in self.follow.values()):
            raise ArgumentError(f'follow must map attribute paths to "frames" or "slots", got {self.follow!r}')


_FAMILIES: dict[Any, TemporalSpec] = {}


def register_temporal(owner: type | str, *, layout: str, follow: Mapping[str, str],
                      tables: Mapping[str, int] | None = None, tubelet: int | str = 1,
                      channels: str | None = None) -> type | str:
    """Tell :func:`frameflex.convert` where a video model family keeps its frame count.

    ``owner`` is the module class whose forward receives the clip (a class, or
    ``"package.ClassName"`` to match without importing the package). The other
    arguments are the fields of :class:`TemporalSpec`.

    >>> ff.register_temporal(MyVideoViT, layout="BCTHW", tables={"pos_t": 0},  # doctest: +SKIP
    ...                      follow={"num_frames": "frames"}, tubelet="patch.kernel_size")
    """
    if not isinstance(owner, (type, str)):
        raise ArgumentTypeError(f"register_temporal expects a class or 'package.ClassName', got {owner!r}")
    _FAMILIES[owner] = TemporalSpec(layout, dict(follow), dict(tables or {}), tubelet, channels)
    return owner


def temporal_families() -> dict[Any, TemporalSpec]:
    """The registered families: ``{owner: TemporalSpec}``."""
    return dict(_FAMILIES)


# The families frameflex knows. transformers' Model classes own the clip; their
# *ForVideoClassification wrappers pass pixel_values through unchanged.
_HF = {"layout": "BTCHW", "follow": {"config.num_frames": "frames"}, "channels": "config.num_channels"}
register_temporal("transformers.VideoMAEModel", tables={"embeddings.position_embeddings": 0},
                  tubelet="config.tubelet_size", **_HF)
register_temporal("transformers.VivitModel", tables={"embeddings.position_embeddings": 1},
                  tubelet="config.tubelet_size", **_HF)
register_temporal("transformers.TimesformerModel", tables={"embeddings.time_embeddings": 0}, **_HF)
# torchvision MViT v1 and v2: temporal_size fixes the (t, h, w) shape through the blocks;
# v1 also has a learned table per temporal slot (v2 has relative tables it resizes itself).
register_temporal("torchvision.MViT", layout="BCTHW", tables={"pos_encoding.temporal_pos": 0},
                  follow={"pos_encoding.temporal_size": "slots"}, tubelet="conv_proj.stride",
                  channels="conv_proj.in_channels")


def _spec_for(module: nn.Module) -> TemporalSpec | None:
    cls = parametrize.type_before_parametrizations(module)
    for owner, spec in _FAMILIES.items():
        if isinstance(owner, type):
            if issubclass(cls, owner):
                return spec
            continue
        package, _, name = owner.rpartition(".")
        if any(c.__name__ == name and c.__module__.split(".")[0] == package for c in cls.__mro__):
            return spec
    return None


def _get(obj: Any, path: str) -> Any:
    return operator.attrgetter(path)(obj) if path else obj


def _set(obj: Any, path: str, value: Any) -> None:
    head, _, leaf = path.rpartition(".")
    setattr(_get(obj, head), leaf, value)


def resample_time(table: torch.Tensor, leading: int, slots: int, new_slots: int) -> torch.Tensor:
    """``table`` (..., leading + slots * S, D) resampled to ``new_slots`` along time.

    Linear, ``align_corners=False``: slot centres keep their place in the clip.

    >>> resample_time(torch.randn(1, 1 + 8 * 16, 64), leading=1, slots=8, new_slots=4).shape
    torch.Size([1, 65, 64])
    """
    if new_slots == slots:
        return table
    head, grid = table[..., :leading, :], table[..., leading:, :]
    rows, dim = grid.shape[-2:]
    if rows % slots:
        raise ConversionError(f"a temporal table with {rows} rows after {leading} leading ones cannot hold {slots} slots")
    lead = grid.shape[:-2]
    g = grid.reshape(-1, slots, rows // slots * dim).transpose(1, 2)
    g = F.interpolate(g.float(), size=new_slots, mode="linear", align_corners=False).to(table.dtype)
    g = g.transpose(1, 2).reshape(*lead, new_slots * (rows // slots), dim)
    return torch.cat([head, g], dim=-2)


class TemporalTable(nn.Module):
    """Parametrization of a temporal table: the active frame count's private copy.

    The tensor the model was built with stays its own frame count's table
    (``original``); every other frame count gets a copy resampled from it,
    learnable if the original is a parameter, a non-persistent buffer if it is a
    fixed table. A clip of an untrained count uses the nearest branch's table
    resampled to the clip's slots.
    """

    def __init__(self, original: torch.Tensor, state: FrameState, built_frames: int, tubelet: int, leading: int):
        super().__init__()
        self._state, self.built, self.tubelet, self.leading = state, built_frames, tubelet, leading
        self.learned = isinstance(original, nn.Parameter)
        self.tables = nn.ParameterDict()
        self.slots: int | None = None  # the running clip's slots, set by the owner's hook
        for t in state.frame_sets:
            self.add_frames(t, original)

    def _table(self, frames: int, original: torch.Tensor) -> torch.Tensor:
        return original if frames == self.built else (
            self.tables[str(frames)] if self.learned else getattr(self, f"table_{frames}"))

    def add_frames(self, frames: int, original: torch.Tensor, source: int | None = None) -> None:
        """A branch for ``frames``, resampled from ``source``'s table (default, and always for a
        fixed table, which is rebuilt the same way on load: the built one)."""
        if frames == self.built:
            return
        src = source if source is not None and self.learned else self.built
        with torch.no_grad():
            t = resample_time(self._table(src, original).detach(), self.leading, src // self.tubelet,
                              frames // self.tubelet).clone()
        if self.learned:
            self.tables[str(frames)] = nn.Parameter(t, requires_grad=original.requires_grad)
        else:
            self.register_buffer(f"table_{frames}", t, persistent=False)

    def derive(self, frames: int, original: torch.Tensor) -> torch.Tensor:
        """This branch's table from a plain checkpoint's tensor (built for ``self.built``)."""
        return resample_time(original, self.leading, self.built // self.tubelet, frames // self.tubelet)

    def remove_frames(self, frames: int) -> None:
        if frames != self.built:
            if self.learned:
                del self.tables[str(frames)]
            else:
                delattr(self, f"table_{frames}")

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        branch = int(self._state.active_key())
        table = self._table(branch, original)
        slots = branch // self.tubelet
        return resample_time(table, self.leading, slots, self.slots) if self.slots else table

    def extra_repr(self) -> str:
        return f"built={self.built}, tubelet={self.tubelet}, leading={self.leading}, learned={self.learned}"


class _TemporalOwner:
    """Forward pre-hook on an owner: check the clip, point tables and integers at its T."""

    def __init__(self, owner: nn.Module, spec: TemporalSpec, tubelet: int, built: int,
                 tables: list[TemporalTable]):
        self.spec, self.tubelet, self.built, self.tables = spec, tubelet, built, tables
        self.name = parametrize.type_before_parametrizations(owner).__name__
        self.channels = _get(owner, spec.channels) if spec.channels else None

    def _values(self, frames: int) -> dict[str, int]:
        return {p: frames if u == "frames" else frames // self.tubelet for p, u in self.spec.follow.items()}

    def frames_of(self, x: Any) -> int:
        """The clip's frame count, after checking its layout and the tubelet."""
        layout = self.spec.layout
        t_dim, c_dim = layout.index("T"), layout.index("C")
        if not isinstance(x, torch.Tensor) or x.dim() != len(layout):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ArgumentError(f"{self.name} takes a clip of layout ({', '.join(layout)}), got {shape}")
        if self.channels is not None and x.shape[c_dim] != self.channels:
            other = "".join(sorted(layout[1:3], key=lambda c: c != layout[2]))
            raise ArgumentError(
                f"{self.name} takes clips as ({', '.join(layout)}) with C={self.channels} at dim {c_dim}, got shape "
                f"{tuple(x.shape)}; a ({', '.join(layout[0] + other + layout[3:])}) clip needs .transpose(1, 2)")
        return self.check(x.shape[t_dim])

    def check(self, frames: int) -> int:
        if frames % self.tubelet:
            raise ArgumentError(f"{self.name} groups frames in tubelets of {self.tubelet}: a clip of {frames} frames "
                             f"does not divide; use a multiple of {self.tubelet}")
        return frames

    def set_frames(self, module: nn.Module, frames: int | None) -> None:
        for p, v in self._values(self.built if frames is None else frames).items():
            _set(module, p, v)
        for t in self.tables:
            t.slots = None if frames is None else frames // self.tubelet

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict):
        self.set_frames(module, self.frames_of(clip_argument(args, kwargs)))

    def after(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        self.set_frames(module, None)  # the built values again, also when the forward raised


def clip_argument(args: tuple, kwargs: Mapping[str, Any]) -> Any:
    """The clip a forward was called with: the first positional argument, else
    ``pixel_values*`` or the first tensor keyword."""
    if args:
        return args[0]
    named = [v for k, v in kwargs.items() if k.startswith("pixel_values")]
    tensors = [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
    return (named or tensors or [None])[0]


def _tubelet(owner: nn.Module, spec: TemporalSpec) -> int:
    t = spec.tubelet if isinstance(spec.tubelet, int) else _get(owner, spec.tubelet)
    return int(t[0] if isinstance(t, (tuple, list)) else t)


def find_owners(model: nn.Module) -> list[tuple[str, nn.Module, TemporalSpec]]:
    """Every module of ``model`` that a registered family owns, outermost first."""
    found, inside = [], ()
    for name, m in model.named_modules():
        if inside and name.startswith(inside):
            continue
        spec = _spec_for(m)
        if spec is not None:
            found.append((name, m, spec))
            inside = inside + (f"{name}." if name else "",)
    return found


def default_time_dim(model: nn.Module) -> int | None:
    """The clip's time axis for a model a family owns at the root, or wraps from the
    same package (transformers' *ForVideoClassification): 1 for ``pixel_values``."""
    owners = find_owners(model)
    if len(owners) != 1:
        return None
    _, owner, spec = owners[0]
    root_pkg = type(model).__module__.split(".")[0]
    if owner is model or root_pkg == parametrize.type_before_parametrizations(owner).__module__.split(".")[0]:
        return spec.layout.index("T")
    return None


def prepare(model: nn.Module, frame_sets: tuple[int, ...]) -> list:
    """Check every owner against ``frame_sets`` and plan its tables; nothing is changed yet.

    Returns the plan :func:`install` carries out. Raises if a frame count does not
    divide by a family's tubelet, naming it.
    """
    plan = []
    for name, owner, spec in find_owners(model):
        tubelet = _tubelet(owner, spec)
        path, unit = next(iter(spec.follow.items()))
        built = int(_get(owner, path)) * (tubelet if unit == "slots" else 1)
        bad = [t for t in frame_sets if t % tubelet]
        if bad:
            raise ArgumentError(f"frame_sets {list(frame_sets)}: {bad} not divisible by the tubelet size {tubelet} of "
                             f"{type(owner).__name__} ({name or 'the model'}); every frame count must be a multiple "
                             f"of {tubelet}")
        tables = []
        for p, leading in spec.tables.items():
            head, _, leaf = p.rpartition(".")
            holder = _get(owner, head)
            if getattr(holder, leaf, None) is None:
                continue
            t = getattr(holder, leaf)
            if not isinstance(t, torch.Tensor):
                raise ConversionError(f"{type(owner).__name__}.{p} should be a tensor, got {type(t).__name__}")
            rows = t.shape[-2] - leading
            if rows % (built // tubelet):
                raise ConversionError(f"{type(owner).__name__}.{p} has {rows} rows, not a multiple of the "
                                 f"{built // tubelet} temporal slots of a {built}-frame model")
            tables.append((holder, leaf, leading))
        plan.append((owner, spec, tubelet, built, tables))
    return plan


def install(plan: list, state: FrameState) -> Callable[[], None]:
    """Carry out :func:`prepare`'s plan: tables parametrized, owners hooked. Returns a
    function that undoes it (all or nothing: a failed conversion leaves the model as it was)."""
    with contextlib.ExitStack() as undo:  # on an error, the steps so far are undone, last first
        for owner, spec, tubelet, built, tables in plan:
            made = []
            for holder, leaf, leading in tables:
                t = getattr(holder, leaf)
                fixed = not isinstance(t, nn.Parameter) and leaf not in holder._buffers
                undo.callback(_restorer(holder, leaf, t, fixed))
                if fixed:  # a plain tensor attribute (VideoMAE's sinusoid table): a buffer, so .to() moves it
                    delattr(holder, leaf)
                    holder.register_buffer(leaf, t, persistent=False)
                table = TemporalTable(getattr(holder, leaf), state, built, tubelet, leading)
                parametrize.register_parametrization(holder, leaf, table, unsafe=True)
                if leaf in holder._non_persistent_buffers_set or fixed:
                    holder.parametrizations[leaf]._non_persistent_buffers_set.add("original")
                made.append(table)
            hook = _TemporalOwner(owner, spec, tubelet, built, made)
            undo.callback(owner.register_forward_pre_hook(hook, with_kwargs=True).remove)
            undo.callback(owner.register_forward_hook(hook.after, with_kwargs=True, always_call=True).remove)
        return undo.pop_all().close


def _restorer(holder: nn.Module, leaf: str, tensor: torch.Tensor, fixed: bool) -> Callable[[], None]:
    """The step putting ``holder.leaf`` back as it was before :func:`install`."""
    order = list(holder._parameters)

    def restore() -> None:
        if parametrize.is_parametrized(holder, leaf):
            parametrize.remove_parametrizations(holder, leaf, leave_parametrized=False)
        if fixed:
            holder._buffers.pop(leaf, None)
            holder._non_persistent_buffers_set.discard(leaf)
            setattr(holder, leaf, tensor)
        params = dict(holder._parameters)
        holder._parameters.clear()
        holder._parameters.update({k: params[k] for k in order if k in params})
        holder._parameters.update({k: v for k, v in params.items() if k not in order})

    return restore


def owner_hooks(model: nn.Module) -> list[tuple[nn.Module, _TemporalOwner]]:
    return [(m, h) for m in model.modules() for h in m._forward_pre_hooks.values() if isinstance(h, _TemporalOwner)]


def fix_frames(model: nn.Module, frames: int) -> None:
    """For specialize(): bake every owner's integers and tables at ``frames``, drop the hooks."""
    from .deploy import _own_class

    for owner, hook in owner_hooks(model):
        hook.set_frames(owner, hook.check(frames))
        for hid, h in list(owner._forward_pre_hooks.items()):
            if h is hook:
                del owner._forward_pre_hooks[hid]
                owner._forward_pre_hooks_with_kwargs.pop(hid, None)
        for hid, h in list(owner._forward_hooks.items()):
            if getattr(h, "__self__", None) is hook:
                del owner._forward_hooks[hid]
                owner._forward_hooks_with_kwargs.pop(hid, None)
                owner._forward_hooks_always_called.pop(hid, None)
    for m in list(model.modules()):
        if parametrize.is_parametrized(m):
            for leaf, plist in list(m.parametrizations.items()):
                if any(isinstance(p, TemporalTable) for p in plist):
                    fixed = "original" in plist._non_persistent_buffers_set
                    _own_class(m)
                    parametrize.remove_parametrizations(m, leaf, leave_parametrized=True)
                    if fixed:
                        m._non_persistent_buffers_set.add(leaf)


def _tables(model: nn.Module) -> list[tuple[TemporalTable, torch.Tensor]]:
    found = {}
    for m in model.modules():
        if parametrize.is_parametrized(m):
            for plist in m.parametrizations.values():
                found.update({id(p): (p, plist.original) for p in plist if isinstance(p, TemporalTable)})
    return list(found.values())


def add_frames(model: nn.Module, frames: int, source: int) -> None:
    """For calibrate(): a table for ``frames`` in every TemporalTable, resampled from ``source``'s."""
    for _, hook in owner_hooks(model):
        hook.check(frames)
    for table, original in _tables(model):
        table.add_frames(frames, original, source)


def remove_frames(model: nn.Module, frames: int) -> None:
    for table, _ in _tables(model):
        table.remove_frames(frames)


def example_clip(model: nn.Module, frames: int, size: int, channels: int = 3, **tensor_kw: Any) -> torch.Tensor:
    """A random clip of batch 1 in ``model``'s layout: (1, C, T, S, S), or (1, T, C, S, S)
    for a model that takes ``pixel_values`` (see :func:`default_time_dim`).

    >>> example_clip(videomae, 8, 224).shape  # doctest: +SKIP
    torch.Size([1, 8, 3, 224, 224])
    """
    shape = (1, frames, channels, size, size) if default_time_dim(model) == 1 else (1, channels, frames, size, size)
    return torch.randn(shape, **tensor_kw)
