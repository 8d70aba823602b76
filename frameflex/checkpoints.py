"""import_checkpoint(): official FFN / TSM / TEA / SlowFast / UniFormer files -> frameflex keys.

The steps are the same for every arch; what differs (renames, where the adapter
sits, how to recognise a file) is data in each family file, as a
:class:`CheckpointRules` passed to ``@register_model``.

1. load safely (``torch.load(weights_only=True)`` or safetensors) and unwrap
   ``state_dict`` / ``model_state`` / ``model`` containers and ``module.`` prefixes;
2. split FFN's private-layer suffix: ``layer1.0.bn1_4.weight`` -> (``layer1.0.bn1.weight``, 4);
3. rename official plain keys to ours with the arch's regexes;
4. place each (plain key, frame count) in the model frameflex builds for that arch
   (:func:`frameflex.surgery.key_origins`), checking shapes; every key of the file
   is either mapped or reported.
"""
from __future__ import annotations

import os
import re
from typing import Mapping

import torch

from .models._registry import CheckpointRules, create_model, get_spec, list_models
from .surgery import key_origins

__all__ = ["CheckpointRules", "ImportedCheckpoint", "import_checkpoint", "load_file"]

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

    def create_model(self, **kwargs) -> torch.nn.Module:
        """The model these weights belong to, weights loaded (eval mode)."""
        model = create_model(self.arch, num_classes=self.num_classes, frame_sets=self.frame_sets, **kwargs)
        model.load_state_dict(self, strict=not self.missing_keys)
        return model.eval()


def load_file(path: str | os.PathLike) -> dict:
    """Load a checkpoint file without running code from it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file as load_safetensors
        return load_safetensors(path)
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
        raise ValueError(f"{path} could not be loaded as a checkpoint with torch.load(weights_only=True) "
                         f"(truncated, not a torch file, or it pickles code): {e}") from e


def _unwrap(obj) -> dict[str, torch.Tensor]:
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _CONTAINERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"no state dict found in the checkpoint (got {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"the checkpoint's state dict has non-tensor entries: {bad[:5]}")
    sd = dict(obj)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _candidate_archs(sd: Mapping[str, torch.Tensor]) -> list[str]:
    hits = [name for name in list_models()
            if (rules := get_spec(name).checkpoint_rules) is not None and rules.signature
            and any(re.search(rules.signature, k) for k in sd)]
    if not hits:
        raise ValueError("the checkpoint is not a layout frameflex knows; pass arch=... "
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

    >>> sd = ff.import_checkpoint("ckpt.best.pth.tar", arch="tsm_r50")
    >>> model = sd.create_model()
    """
    raw = load_file(src) if isinstance(src, (str, os.PathLike)) else src
    sd = _unwrap(raw)
    if arch is not None:
        return _map(sd, arch, strict)
    candidates = _candidate_archs(sd)  # e.g. uniformer_s and uniformer_b share key names
    for name in candidates[:-1]:
        try:
            return _map(sd, name, strict=True)
        except ValueError:
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
        raise ValueError(f"no classifier found in the checkpoint for {arch} (expected a key that maps to "
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
            raise ValueError(f"{key}: shape {tuple(sd[key].shape)} does not fit {target} "
                             f"{tuple(own[target].shape)} of {arch}")
        out[target] = value
    missing = [k for k in own if k not in out and not k.endswith("num_batches_tracked")]
    if strict and (missing or unexpected):
        raise ValueError(
            f"the checkpoint does not match {arch}"
            + (f" (frame_sets {frame_sets})" if frame_sets else "")
            + (f"\n  {len(unexpected)} keys of the file have no place in the model: {', '.join(unexpected[:8])}"
               if unexpected else "")
            + (f"\n  {len(missing)} model keys are missing from the file: {', '.join(missing[:8])}"
               if missing else ""))
    out.arch, out.frame_sets, out.num_classes = arch, frame_sets, int(head.shape[0])
    out.missing_keys, out.unexpected_keys = missing, unexpected
    return out
