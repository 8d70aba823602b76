"""Checkpoint keys, in one place: loading files, unwrapping, layouts, and the fan-out to branches.

- :func:`key_origins`: how conversion renames a model's keys (``bn.weight`` -> ``bn.branches.<T>.weight``);
- :func:`load_state_dict`: a plain (or converted) state dict into a converted model, all or nothing;
- :func:`read_checkpoint`: a file or dict in any layout frameflex reads (its own keys, or an
  official one through :func:`import_checkpoint`) as a state dict for a model;
- :func:`import_checkpoint`: official FFN / TSM / TEA / SlowFast / UniFormer files -> frameflex keys.

For import_checkpoint the steps are the same for every arch; what differs (renames, where the adapter
sits, how to recognise a file) is data in each family file, as a
:class:`CheckpointRules` passed to ``@register_model``.

1. load safely (``torch.load(weights_only=True)`` or safetensors) and unwrap
   ``state_dict`` / ``model_state`` / ``model`` containers and ``module.`` prefixes;
2. split FFN's private-layer suffix: ``layer1.0.bn1_4.weight`` -> (``layer1.0.bn1.weight``, 4);
3. rename official plain keys to ours with the arch's regexes;
4. place each (plain key, frame count) in the model frameflex builds for that arch
   (:func:`key_origins`), checking shapes; every key of the file
   is either mapped or reported.
"""
from __future__ import annotations

import functools
import os
import re
import warnings
from typing import Callable, Collection, Mapping, NamedTuple

import torch
from torch import nn
from torch.nn.utils import parametrize

from .errors import ArgumentTypeError, CheckpointError, NotFoundError, StateDictError
from .layers import FrameNorm, FrameScale, InputScale
from .temporal import TemporalTable
from .models._registry import CheckpointRules, create_model, get_spec, list_models

__all__ = [
    "CheckpointRules", "ImportedCheckpoint", "import_checkpoint", "load_file", "unwrap", "key_origins", "KeyOrigin",
    "load_state_dict", "read_checkpoint", "LoadResult",
]

_FRAME_SUFFIX = re.compile(r"_(\d+)(?=\.)")  # hits bn1_4. / bns_8.0. / adaconv_16. but not layer4. / res4.
_CONTAINERS = ("state_dict", "model_state", "model", "module", "state_dict_ema")
_PREFIXES = ("module.", "_orig_mod.")


class ImportedCheckpoint(dict):
    """A state dict for a frameflex model, plus what the file implied about it."""

    arch: str
    frame_sets: tuple[int, ...] | None  # None: a plain (single frame count) checkpoint
    num_classes: int
    missing_keys: list
    unexpected_keys: list

    def create_model(self, num_classes: int | None = None, **kwargs) -> torch.nn.Module:
        """The model these weights belong to, weights loaded (eval mode).

        With another ``num_classes`` the classifier is new (freshly initialised, named
        in a warning) and every other tensor is loaded: fine-tuning to a new dataset.

        >>> model = ff.import_checkpoint("TSM_kinetics.pth", arch="tsm_r50").create_model(num_classes=174)  # doctest: +SKIP
        """
        n = self.num_classes if num_classes is None else num_classes
        model = create_model(self.arch, num_classes=n, frame_sets=self.frame_sets, **kwargs)
        result = load_state_dict(model, self, strict=not self.missing_keys,
                                 ignore_mismatched_sizes=n != self.num_classes)
        warn_reinitialised(result, f"the {self.arch} checkpoint ({self.num_classes} classes)")
        return model.eval()


def load_file(path: str | os.PathLike) -> dict:
    """Load a checkpoint file without running code from it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "path is a directory, not a file" if os.path.isdir(path) else "file not found"
        raise NotFoundError(f"checkpoint {what}: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file as load_safetensors
        try:
            return load_safetensors(path)
        except Exception as e:  # truncated, or not a safetensors file
            raise CheckpointError(f"{path} could not be read as safetensors (truncated or not a safetensors "
                                  f"file): {e}") from e
    try:
        import numpy as np
        # numpy scalars (accuracies) are common in research checkpoints: plain data, safe to allow.
        core = getattr(np, "_core", None) or np.core
        safe = [np.dtype, core.multiarray.scalar] + [type(np.dtype(t)) for t in ("float64", "float32", "int64")]
    except (ImportError, AttributeError):  # pragma: no cover
        safe = []
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} could not be loaded as a checkpoint with torch.load(weights_only=True) "
                         f"(truncated, not a torch file, or it pickles code): {e}") from e


def unwrap(obj, model_keys: Collection[str] = ()) -> dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint: containers (``state_dict``, ``model`` ...) opened,
    DDP / DataParallel / torch.compile prefixes (``module.``, ``_orig_mod.``) removed unless the
    model's own keys (``model_keys``) carry them.

    >>> unwrap({"state_dict": {"module.fc.weight": torch.zeros(2)}})
    {'fc.weight': tensor([0., 0.])}
    """
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _CONTAINERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"no state dict found in the checkpoint (got {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"the checkpoint's state dict has non-tensor entries: {bad[:5]}")
    sd = dict(obj)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in sd) and not any(k.startswith(prefix) for k in model_keys):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _candidate_archs(sd: Mapping[str, torch.Tensor]) -> list[str]:
    hits = [name for name in list_models()
            if (rules := get_spec(name).checkpoint_rules) is not None and rules.signature
            and any(re.search(rules.signature, k) for k in sd)]
    if not hits:
        raise CheckpointError("the checkpoint is not a layout frameflex knows; pass arch=... "
                         f"(first keys: {', '.join(list(sd)[:5])})")
    return hits


def import_checkpoint(src: str | os.PathLike | Mapping, arch: str | None = None,
                      strict: bool = True) -> ImportedCheckpoint:
    """Translate an official checkpoint (file or loaded dict) into frameflex keys.

    Recognises the published FFN checkpoints of every zoo arch and the official
    base checkpoints (TSM, PySlowFast, pytorchvideo, UniFormer). The result is a
    state dict for ``ff.create_model(arch, num_classes, frame_sets=result.frame_sets)``
    (plain checkpoints: ``frame_sets`` is None, load into the plain model or fan out
    with :func:`frameflex.load_state_dict`). With ``strict``, any key of the file
    that has no place in the model, or any model key the file lacks, is an error
    naming them.

    >>> sd = ff.import_checkpoint("ckpt.best.pth.tar", arch="tsm_r50")  # doctest: +SKIP
    >>> model = sd.create_model()  # doctest: +SKIP
    """
    raw = load_file(src) if isinstance(src, (str, os.PathLike)) else src
    sd = unwrap(raw)
    if arch is not None:
        return _map(sd, arch, strict)
    candidates = _candidate_archs(sd)  # e.g. uniformer_s and uniformer_b share key names
    for name in candidates[:-1]:
        try:
            return _map(sd, name, strict=True)
        except CheckpointError:
            continue
    return _map(sd, candidates[-1], strict)


def _map(sd: Mapping[str, torch.Tensor], arch: str, strict: bool) -> ImportedCheckpoint:
    spec = get_spec(arch)
    rules = spec.checkpoint_rules or CheckpointRules()

    entries = []  # (official key, plain key, frames, is_adapter)
    for key in sd:
        m = _FRAME_SUFFIX.search(key)
        frames = int(m.group(1)) * rules.frame_scale if m else None
        plain = key[:m.start()] + key[m.end():] if m else key
        if frames is not None and rules.adapter and re.fullmatch(rules.adapter[0], plain):
            entries.append((key, re.sub(rules.adapter[0], rules.adapter[1], plain), frames, True))
            continue
        for pattern, repl in rules.renames:
            plain = re.sub(pattern, repl, plain)
        entries.append((key, plain, frames, False))
    frame_sets = tuple(sorted({f for _, _, f, _ in entries if f is not None})) or None

    head = next((sd[k] for k, p, f, a in entries if p == rules.head and not a), None)
    if head is None:
        raise CheckpointError(f"no classifier found in the checkpoint for {arch} (expected a key that maps to "
                         f"{rules.head!r}); first keys: {', '.join(list(sd)[:5])}")
    with torch.device("meta"):  # shapes and names only: no memory, no init
        model = create_model(arch, num_classes=head.shape[0], frame_sets=frame_sets)
    own = model.state_dict()
    where = {(o.plain, o.frames, o.adapter): k for k, o in key_origins(model).items()}

    out, unexpected = ImportedCheckpoint(), []
    for key, plain, frames, adapter in entries:
        target = where.get((plain, frames, adapter))
        if target is None:
            unexpected.append(key)
            continue
        value = sd[key].reshape(-1) if adapter else sd[key]
        if value.shape != own[target].shape:
            raise CheckpointError(f"{key}: shape {tuple(sd[key].shape)} does not fit {target} "
                             f"{tuple(own[target].shape)} of {arch}")
        out[target] = value
    missing = [k for k in own if k not in out and not k.endswith("num_batches_tracked")]
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"the checkpoint does not match {arch}"
            + (f" (frame_sets {frame_sets})" if frame_sets else "")
            + (f"\n  {len(unexpected)} keys of the file have no place in the model: {', '.join(unexpected[:8])}"
               if unexpected else "")
            + (f"\n  {len(missing)} model keys are missing from the file: {', '.join(missing[:8])}"
               if missing else ""))
    out.arch, out.frame_sets, out.num_classes = arch, frame_sets, int(head.shape[0])
    out.missing_keys, out.unexpected_keys = missing, unexpected
    return out


# --------------------------------------------------------------------------- keys of a converted model


class KeyOrigin(NamedTuple):
    """Where a converted model's state-dict key comes from in the unconverted model."""

    plain: str  # the plain key (for an adapter: the name of the module it scales)
    frames: int | None  # the branch it belongs to, None if shared
    adapter: bool  # an adapter scale (no counterpart in a plain checkpoint)
    derive: Callable[[torch.Tensor], torch.Tensor] | None = None  # plain tensor -> this key's (a resampled table)


def key_origins(model: nn.Module) -> dict[str, KeyOrigin]:
    """Map every state-dict key of a converted model to its :class:`KeyOrigin`.

    The one place that knows how conversion renames keys: ``bn.weight`` becomes
    ``bn.branches.<T>.weight``, a conv's adapted ``weight`` becomes
    ``parametrizations.weight.original``, a wrapped module's keys gain ``base_layer``.

    >>> net = ff.convert(nn.Sequential(nn.Conv1d(2, 2, 1), nn.BatchNorm1d(2)), [4, 8])
    >>> origin = key_origins(net)["1.branches.4.weight"]
    >>> origin.plain, origin.frames, origin.adapter
    ('1.weight', 4, False)
    """
    out: dict[str, KeyOrigin] = {}
    join = (lambda a, b: f"{a}.{b}" if a else b)

    def walk(m: nn.Module, conv: str, plain: str, frames: int | None) -> None:
        if isinstance(m, FrameNorm):
            for t, branch in m.branches.items():
                walk(branch, join(conv, f"branches.{t}"), plain, int(t))
            return
        if isinstance(m, InputScale):
            walk(m.base_layer, join(conv, "base_layer"), plain, frames)
            if isinstance(m.scale, FrameScale):
                for t in m.scale.scales:
                    out[join(conv, f"scale.scales.{t}")] = KeyOrigin(plain, int(t), True)
                return
            walk(m.scale, join(conv, "scale"), join(plain, "scale"), frames)
            return
        for name, t in [*m._parameters.items(), *m._buffers.items()]:
            if t is not None and name not in m._non_persistent_buffers_set:
                out[join(conv, name)] = KeyOrigin(join(plain, name), frames, False)
        for key, child in m._modules.items():
            if child is None:
                continue
            if key == "parametrizations" and parametrize.is_parametrized(m):
                for tensor_name, plist in child.items():
                    base = join(conv, f"parametrizations.{tensor_name}")
                    if "original" not in plist._non_persistent_buffers_set:
                        out[f"{base}.original"] = KeyOrigin(join(plain, tensor_name), frames, False)
                    for i, p in enumerate(plist):
                        if isinstance(p, FrameScale):
                            for t in p.scales:
                                out[f"{base}.{i}.scales.{t}"] = KeyOrigin(plain, int(t), True)
                        elif isinstance(p, TemporalTable):  # a frame count's table: resampled from the plain one
                            for t in p.tables:
                                out[f"{base}.{i}.tables.{t}"] = KeyOrigin(
                                    join(plain, tensor_name), int(t), False, functools.partial(p.derive, int(t)))
                continue
            walk(child, join(conv, key), join(plain, key), frames)

    walk(model, "", "", None)
    return out


class LoadResult(NamedTuple):
    """What :func:`load_state_dict` did not load (names as the checkpoint has them)."""

    missing_keys: list[str]  # model tensors the checkpoint lacks: they keep their values
    unexpected_keys: list[str]  # checkpoint tensors with no place in the model
    mismatched_keys: list[tuple[str, tuple, tuple]] = []  # (key, checkpoint shape, model shape): skipped


def _kind(dtype: torch.dtype) -> str:
    return ("bool" if dtype == torch.bool else "complex" if dtype.is_complex
            else "float" if dtype.is_floating_point else "int")


def _listing(title: str, items: list[str], limit: int = 20) -> str:
    return (f"\n  {title} ({len(items)}): {', '.join(items[:limit])}{' ...' if len(items) > limit else ''}"
            if items else "")


def load_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True,
                    ignore_mismatched_sizes: bool = False) -> LoadResult:
    """Load a checkpoint of the UNconverted model into every frame-count branch, all or nothing.

    Keys already in converted form load as they are; ``module.`` / ``_orig_mod.``
    prefixes and ``state_dict`` containers are removed. Adapter scales are not
    expected in a plain checkpoint; BatchNorm's ``num_batches_tracked`` may be
    absent (old files). Every key, shape and dtype is checked before the first
    tensor is written: a load that fails leaves the model as it was. With
    ``strict``, missing or unexpected keys are an error naming them. With
    ``ignore_mismatched_sizes``, tensors whose shape differs (e.g. a classifier for
    another class count) keep the model's values and are listed in
    ``mismatched_keys``; otherwise they are an error.

    >>> import torchvision
    >>> plain = torchvision.models.video.r3d_18()
    >>> model = ff.convert(torchvision.models.video.r3d_18(), [4, 8])
    >>> ff.load_state_dict(model, plain.state_dict())
    LoadResult(missing_keys=[], unexpected_keys=[], mismatched_keys=[])
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"load_state_dict expects an nn.Module, got {type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise ArgumentTypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    own = model.state_dict(keep_vars=True)
    origins = key_origins(model)
    sd = unwrap(state_dict, own) if state_dict else {}
    converted_file = any(k in origins and origins[k].plain != k for k in sd)
    tensor_keys: dict[int, list[str]] = {}  # one tensor under several names (a shared module)
    for key, value in own.items():
        tensor_keys.setdefault(id(value), []).append(key)

    new, used, lacking, mismatched, wrong_dtype = {}, set(), [], {}, []
    for key, origin in origins.items():
        src = key if key in sd else (origin.plain if not origin.adapter and origin.plain in sd else None)
        if src is None:
            if not origin.adapter and not key.endswith("num_batches_tracked"):
                lacking.append(key)  # an adapter keeps its init: a plain checkpoint has none
            continue
        used.add(src)
        value, target = sd[src], own.get(key)
        if src != key and origin.derive is not None:
            value = origin.derive(value)
        if target is None:
            new[key] = value
        elif value.shape != target.shape:
            mismatched.setdefault(src, (src, tuple(value.shape), tuple(target.shape)))
        elif _kind(value.dtype) != _kind(target.dtype):
            wrong_dtype.append(f"{src}: {value.dtype} for {key} ({target.dtype})")
        else:
            new[key] = value
    loaded = {k for key in new for k in tensor_keys.get(id(own.get(key)), [key])}
    missing = list(dict.fromkeys(k if converted_file else origins[k].plain for k in lacking if k not in loaded))
    unexpected = [k for k in sd if k not in used]
    sizes = [f"{k}: checkpoint {a} vs model {b}" for k, a, b in mismatched.values()]
    problems = (_listing("wrong dtype", wrong_dtype)
                + ("" if ignore_mismatched_sizes else _listing("size mismatch", sizes))
                + (_listing("missing keys", missing) + _listing("unexpected keys", unexpected) if strict else ""))
    if problems:
        hint = ("\n  (ignore_mismatched_sizes=True keeps the model's own tensors where the sizes differ, "
                "e.g. a new classifier)" if sizes and not ignore_mismatched_sizes else "")
        raise StateDictError(f"Error loading a checkpoint into {type(model).__name__}; nothing was loaded:"
                             + problems + hint)
    model.load_state_dict(new, strict=False)
    return LoadResult(missing, unexpected, list(mismatched.values()))


def warn_reinitialised(result: LoadResult, where: str) -> None:
    """Name the tensors a load skipped for their size (a new classifier): they keep their fresh init."""
    if result.mismatched_keys:
        warnings.warn(f"{where}: {len(result.mismatched_keys)} tensors do not fit the model and keep their fresh "
                      "initialisation (a new classifier): "
                      + ", ".join(f"{k} {a} -> {b}" for k, a, b in result.mismatched_keys), stacklevel=3)


def _layout(model: nn.Module, sd: Mapping[str, torch.Tensor], arch: str | None) -> str:
    """"frameflex" if most keys are the model's own (plain or converted), else "official"."""
    origins = key_origins(model)
    known = set(origins) | {o.plain for o in origins.values()}
    if sum(k in known for k in sd) >= len(sd) / 2:
        return "frameflex"
    rules = get_spec(arch).checkpoint_rules if arch is not None else None
    if arch is not None and rules is None:
        raise CheckpointError(f"most keys of the checkpoint are not {arch}'s, and frameflex reads no official "
                              f"{arch} layout (first keys: {', '.join(list(sd)[:4])})")
    return "official"


def read_checkpoint(model: nn.Module, src: str | os.PathLike | Mapping,
                    arch: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """A checkpoint file or dict in any layout frameflex reads, as a state dict for ``model``, and its layout:
    ``"frameflex"`` (the model's keys, plain or converted) or ``"official"`` (renamed by
    :func:`import_checkpoint`; ``arch`` is guessed from the keys when not given). Load it with
    :func:`load_state_dict`.

    >>> sd, layout = read_checkpoint(model, "TSM_something_resnet50.pth", arch="tsm_r50")  # doctest: +SKIP
    """
    sd = unwrap(load_file(src) if isinstance(src, (str, os.PathLike)) else src, model.state_dict())
    layout = _layout(model, sd, arch)
    if layout == "official":
        sd = dict(import_checkpoint(sd, arch=arch, strict=False))
    return sd, layout
