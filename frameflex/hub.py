"""Hugging Face Hub folders: config.json + model.safetensors + README.md model card.

Any model can be saved, converted or not, from the zoo or your own. config.json
records how to build it again:

- ``base``: how to build the plain model. ``{"type": "zoo", "name": ...}`` (a zoo
  arch), ``{"type": "builder", "builder": "module:function", "kwargs": {...}}``
  (called only with ``trust_remote_code=True``), ``{"type": "transformers", "class": ...,
  "config": {...}}`` (a transformers model: its class and config), or ``{"type": "none", "class": ...}``:
  pass the model yourself, ``from_pretrained(folder, model=MyNet())``. Each type is
  one entry of :data:`BASES`;
- the conversion: ``frame_sets`` (calibrated counts included), ``adapters`` (the
  resolved module names, never patterns: nothing from a file is compiled as a regex)
  and ``time_dim``; null for a plain model.

The three files are written to temporary files and renamed into place last, so a
failed or killed save leaves the previous folder as it was.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from huggingface_hub import HfApi, hf_hub_download
from torch import nn

from . import _transformers
from ._files import read_json, read_text, write_atomically
from .errors import (
    ArgumentError, ArgumentTypeError, CheckpointError, ConversionError, NotFoundError, OverwriteError,
    StateDictError, UntrustedCodeError,
)

__all__ = ["save_pretrained", "from_pretrained", "push_to_hub", "model_card", "CONFIG_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
_CARD_FIELDS = ("class_names", "dataset", "license", "source", "results", "base_model",
                "input_size", "mean", "std")  # the last three: the preprocessing the model was trained with
_PLACEHOLDER = "path/to/folder"
PAPER = "https://arxiv.org/abs/2303.14817"


# --------------------------------------------------------------------------- the base model


def _zoo_record(model: nn.Module) -> dict | None:
    from .models._registry import list_models

    cfg = getattr(model, "frameflex_config", None) or {}
    if cfg.get("architecture") in list_models():
        return {"type": "zoo", "name": cfg["architecture"], "kwargs": dict(cfg.get("model_kwargs") or {})}
    return None


def _build_zoo(base: Mapping, num_classes: int | None, trust_remote_code: bool) -> nn.Module:
    from .models._registry import create_model

    return create_model(base["name"], num_classes=num_classes, **base.get("kwargs", {}))


def import_function(spec: str) -> Callable[..., nn.Module]:
    """``package.module:function`` or ``path/to/file.py:function``."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ArgumentError(f"builder {spec!r} is not 'module:function' or 'file.py:function'")
    try:
        if where.endswith(".py"):
            if not os.path.isfile(where):
                raise NotFoundError(f"builder {spec}: file not found: {where}")
            loader = importlib.util.spec_from_file_location(Path(where).stem, where)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # torchrun puts the script's folder first, not the working one
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(where)
    except ImportError as e:
        raise ArgumentError(f"builder {spec}: cannot import {where}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ArgumentError(f"builder {spec}: {where} has no function {name!r}")
    return fn


def _build_with_function(base: Mapping, num_classes: int | None, trust_remote_code: bool) -> nn.Module:
    spec = base["builder"]
    if not trust_remote_code:
        raise UntrustedCodeError(
            f"config.json names the builder {spec!r}: running code named by a downloaded file needs your say-so. "
            f"Pass trust_remote_code=True if you trust it, or build the model yourself and pass model=...")
    fn = import_function(spec)
    kwargs = dict(base.get("kwargs", {}))
    if num_classes is not None:
        if "num_classes" not in inspect.signature(fn).parameters:
            raise ArgumentTypeError(f"num_classes={num_classes}: the builder {spec} takes no num_classes argument; "
                            "build the model yourself and pass model=..., ignore_mismatched_sizes=True")
        kwargs["num_classes"] = num_classes
    model = fn(**kwargs)
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"builder {spec} returned a {type(model).__name__}, not an nn.Module")
    return model


def _build_none(base: Mapping, num_classes: int | None, trust_remote_code: bool) -> nn.Module:
    raise ArgumentError(f"config.json records no way to build its model (a {base.get('class', 'custom model')}): "
                     "build it as it was built before conversion and pass it, ff.from_pretrained(folder, model=...)")


# base type -> build(record, num_classes or None, trust_remote_code) -> the plain (unconverted) model
BASES: dict[str, Callable[[Mapping, int | None, bool], nn.Module]] = {
    "zoo": _build_zoo, "builder": _build_with_function, "transformers": _transformers.build, "none": _build_none}


def _base_record(model: nn.Module, builder: str | None, builder_kwargs: Mapping | None) -> dict:
    if builder is not None:
        if not isinstance(builder, str) or ":" not in builder:
            raise ArgumentTypeError(f"builder must be 'module:function' or 'file.py:function', got {builder!r}")
        return {"type": "builder", "builder": builder, "kwargs": dict(builder_kwargs or {})}
    if builder_kwargs is not None:
        raise ArgumentTypeError("builder_kwargs needs builder='module:function'")
    if _transformers.is_transformers_model(model):
        return _transformers.base_record(model)
    recorded = (getattr(model, "frameflex_config", None) or {}).get("base")
    if recorded is not None:
        return dict(recorded)
    zoo = _zoo_record(model)
    if zoo is not None:
        return zoo
    cls = type(model)
    return {"type": "none", "class": f"{cls.__module__}.{cls.__qualname__}"}


# --------------------------------------------------------------------------- config.json


def _conversion(model: nn.Module) -> dict:
    from .checkpoints import key_origins
    from .selection import _states, frame_sets, is_converted

    if not is_converted(model):
        return {"frame_sets": None, "adapters": None, "time_dim": None}
    adapters = sorted({o.plain for o in key_origins(model).values() if o.adapter})
    return {"frame_sets": list(frame_sets(model)), "adapters": adapters, "time_dim": _states(model)[0].time_dim}


def _config(model: nn.Module, builder: str | None, builder_kwargs: Mapping | None, card: Mapping) -> dict:
    from ._version import __version__
    from .models._registry import get_spec

    unknown = set(card) - set(_CARD_FIELDS)
    if unknown:
        raise ArgumentTypeError(f"unknown config fields {sorted(unknown)}; known: {', '.join(_CARD_FIELDS)}")
    base = _base_record(model, builder, builder_kwargs)
    own = getattr(model, "frameflex_config", None) or {}
    num_classes = own.get("num_classes", base.get("kwargs", {}).get("num_classes", base.get("num_classes")))
    config = {"architecture": base["name"] if base["type"] == "zoo" else own.get("architecture", type(model).__name__),
              "num_classes": num_classes, "base": base, **_conversion(model)}
    if base["type"] == "zoo":
        spec = get_spec(base["name"])
        config.update(input_size=spec.input_size, mean=list(spec.mean), std=list(spec.std))
    elif base["type"] == "transformers":
        config.update({k: v for k, v in _transformers.card(model).items() if k == "input_size"})
    config.update({k: own[k] for k in _CARD_FIELDS if own.get(k) is not None})
    config.update({k: v for k, v in card.items() if v is not None})
    config["frameflex_version"] = __version__
    if config.get("class_names") is not None and num_classes is not None and len(config["class_names"]) != num_classes:
        raise ArgumentError(f"class_names has {len(config['class_names'])} names, the model has {num_classes} classes")
    try:
        json.dumps(config)
    except TypeError as e:
        raise ArgumentTypeError(f"config of {config['architecture']} is not JSON-serialisable: {e}") from None
    return config


def _check_config(config: Any, where: str) -> dict:
    """A config.json read from anywhere: every field the loader uses has the right type."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{CONFIG_NAME} of {where} is invalid: {what}")

    if not isinstance(config, dict):
        raise bad(f"expected a JSON object, got {type(config).__name__}")
    if "base" not in config:  # folders written before the base record: zoo models only
        if not isinstance(config.get("architecture"), str):
            raise bad("it has neither 'base' nor 'architecture': not a frameflex folder")
        config = {**config, "base": {"type": "zoo", "name": config["architecture"],
                                     "kwargs": config.get("model_kwargs", {})}}
        if isinstance(config.get("adapters"), str):  # "preset": the zoo's own patterns, not the file's
            config["adapters"] = _preset_names(config)
    base = config["base"]
    if not isinstance(base, dict) or base.get("type") not in BASES:
        raise bad(f"'base' must be an object whose 'type' is one of {sorted(BASES)}, got {base!r}")
    if base["type"] == "zoo" and not isinstance(base.get("name"), str):
        raise bad(f"'base' names no zoo model: {base!r}")
    if base["type"] == "builder" and not isinstance(base.get("builder"), str):
        raise bad(f"'base' names no builder: {base!r}")
    if base["type"] == "transformers" and not (isinstance(base.get("class"), str) and isinstance(
            base.get("config"), dict) and isinstance(base["config"].get("model_type"), str)):
        raise bad(f"'base' needs a transformers 'class' and a 'config' with its 'model_type': {base!r}")
    if not isinstance(base.get("kwargs", {}), dict):
        raise bad(f"'base.kwargs' must be an object, got {base['kwargs']!r}")
    n = config.get("num_classes")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        raise bad(f"'num_classes' must be a positive int or null, got {n!r}")
    sets = config.get("frame_sets")
    if sets is not None and (not isinstance(sets, list) or not sets
                             or not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in sets)):
        raise bad(f"'frame_sets' must be a list of positive ints or null, got {sets!r}")
    adapters = config.get("adapters")
    if adapters is not None and (not isinstance(adapters, list) or not all(isinstance(a, str) for a in adapters)):
        raise bad(f"'adapters' must be a list of module names or null, got {adapters!r}")
    time_dim = config.get("time_dim")
    if time_dim is not None and (isinstance(time_dim, bool) or not isinstance(time_dim, int)):
        raise bad(f"'time_dim' must be an int or null, got {time_dim!r}")
    return config


def _preset_names(config: Mapping) -> list[str] | None:
    """The module names a zoo preset resolves to (old folders stored the word "preset")."""
    from .models._registry import create_model

    if config.get("frame_sets") is None:
        return None
    with torch.device("meta"):
        model = create_model(config["architecture"], num_classes=config.get("num_classes") or 1,
                             frame_sets=config["frame_sets"], **config.get("model_kwargs", {}))
    return _conversion(model)["adapters"]


# --------------------------------------------------------------------------- the model card


def _eval_results(config: Mapping, model_name: str) -> list:
    from huggingface_hub import EvalResult

    top1 = (config.get("results") or {}).get("top1") or {}
    if not top1 or not config.get("dataset"):
        return []
    reported = (config.get("results") or {}).get("reported", False)
    return [EvalResult(task_type="video-classification", dataset_type=config["dataset"],
                       dataset_name=config["dataset"], metric_type="accuracy", metric_value=float(top1[t]),
                       metric_name=f"top-1 at {t} frames", metric_config=f"{t} frames",
                       source_name="Frame Flexible Network (CVPR 2023), reported" if reported else None,
                       source_url=PAPER if reported else None)
            for t in sorted(top1, key=int)]


def model_card(config: Mapping[str, Any], repo_id: str | None = None):
    """The model card (a ``huggingface_hub.ModelCard``): Hub metadata, a model-index of the results, usage.

    >>> card = model_card(json.load(open("out/config.json")))  # doctest: +SKIP
    >>> card.data.eval_results[0].metric_value  # doctest: +SKIP
    """
    from huggingface_hub import ModelCard, ModelCardData

    arch, sets = config["architecture"], config.get("frame_sets")
    title = repo_id or arch
    zoo = config["base"]["type"] in ("zoo", "transformers")  # rebuilt from config.json alone
    data = ModelCardData(
        library_name="frameflex", pipeline_tag="video-classification", license=config.get("license") or "unknown",
        base_model=config.get("base_model"), datasets=[config["dataset"]] if config.get("dataset") else None,
        tags=["video-classification", "frameflex", arch] + (["frame-flexible-network"] if sets else []),
        model_name=title, eval_results=_eval_results(config, title) or None)
    kind = f"frame-flexible (FFN) model with branches for {sets} frames" if sets else "plain (single frame count) model"
    classes = f" with {config['num_classes']} classes" if config.get("num_classes") else ""
    lines = ["", f"# {title}", "", f"A {arch} {kind} for video classification{classes}"
             + (f" ({config['dataset']})" if config.get("dataset") else "") + "."]
    if config.get("source"):
        lines += ["", f"Weights: {config['source']}"]
    results = config.get("results") or {}
    if results.get("top1"):
        frames = sorted(results["top1"], key=int)
        lines += ["", "## Results", "", "| frames | " + " | ".join(frames) + " |", "|---|" + "---|" * len(frames),
                  "| top-1 (%) | " + " | ".join(f"{results['top1'][t]:.2f}" for t in frames) + " |"]
        if results.get("note"):
            lines += ["", results["note"]]
    where = repo_id or _PLACEHOLDER
    size = config.get("input_size")
    if config["base"]["type"] == "transformers":
        shape = "pixel_values (B, T, 3, H, W), as the model's transformers image processor prepares them"
    else:
        shape = f"(B, 3, T, {size}, {size}), mean {config['mean']}, std {config['std']}" if size else "(B, 3, T, H, W)"
    load = (f'model = ff.from_pretrained("{where}")' if zoo else
            f'model = ff.from_pretrained("{where}", trust_remote_code=True)  # runs {config["base"]["builder"]}'
            if config["base"]["type"] == "builder" else
            f'model = ff.from_pretrained("{where}", model=my_model)  # my_model: a {arch}, built as before')
    lines += ["", "## Use", "", "```python", "import frameflex as ff", "", load,
              f"logits = model(clip)  # clip: {shape}", "```", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n" + "\n".join(lines))


# --------------------------------------------------------------------------- save


def _is_ours(path: Path) -> bool:
    """Whether an existing file was written by frameflex (so saving may replace it)."""
    try:
        if path.name == CONFIG_NAME:
            config = read_json(path)
            return isinstance(config, dict) and "frameflex_version" in config
        if path.name == WEIGHTS_NAME:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                return (f.metadata() or {}).get("library") == "frameflex"
        text = read_text(path)
        return text.startswith("---") and "library_name: frameflex" in text.split("\n---", 1)[0]
    except Exception:  # unreadable, not JSON, not safetensors: not ours
        return False


def _write_folder(folder: Path, model: nn.Module | None, config: Mapping, card_text: str, overwrite: bool) -> None:
    from safetensors.torch import save_model

    names = [CONFIG_NAME, CARD_NAME] + ([WEIGHTS_NAME] if model is not None else [])
    if folder.exists() and not folder.is_dir():
        raise ArgumentError(f"cannot save into {folder}: it is a file, not a folder")
    foreign = [n for n in names if (folder / n).exists() and not _is_ours(folder / n)]
    if foreign and not overwrite:
        raise OverwriteError(f"{folder} already holds {', '.join(foreign)} that frameflex did not write; "
                              "pass overwrite=True to replace them, or save to another folder")
    folder.mkdir(parents=True, exist_ok=True)
    writers = {}
    if model is not None:
        writers[folder / WEIGHTS_NAME] = lambda p: save_model(
            model, str(p), metadata={"format": "pt", "library": "frameflex"})
    writers[folder / CONFIG_NAME] = lambda p: p.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    writers[folder / CARD_NAME] = lambda p: p.write_text(card_text, encoding="utf-8")
    write_atomically(writers)  # weights, then config, then card: each whole or not at all


def save_pretrained(model: nn.Module, save_directory: str | os.PathLike, *, overwrite: bool = False,
                    builder: str | None = None, builder_kwargs: Mapping | None = None, **card: Any) -> Path:
    """Write config.json, model.safetensors and a model card for any model, converted or not.

    Zoo models rebuild from their name. For your own model, either name the function
    that builds it (``builder="mymodels:build"``, ``builder_kwargs={...}``; loading
    calls it only with ``trust_remote_code=True``), or pass the model when loading:
    ``ff.from_pretrained(folder, model=MyNet())``. ``card`` may carry ``class_names``,
    ``dataset``, ``license``, ``base_model``, ``source`` and ``results``
    (``{"top1": {"4": 42.85, ...}}``). A file in the folder that frameflex did not
    write (your own README.md) is replaced only with ``overwrite=True``.

    >>> model = ff.calibrate(ff.convert(r3d_18(num_classes=10), [4, 8, 16], adapters="auto", time_dim=2),  # doctest: +SKIP
    ...                      loader, frames=12)
    >>> ff.save_pretrained(model, "out/r3d18-ffn")  # doctest: +SKIP
    >>> ff.from_pretrained("out/r3d18-ffn", model=r3d_18(num_classes=10))  # doctest: +SKIP
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"save_pretrained expects an nn.Module, got {type(model).__name__}")
    config = _config(model, builder, builder_kwargs, card)
    folder = Path(save_directory)
    _write_folder(folder, model, config, str(model_card(config)), overwrite)
    return folder


# --------------------------------------------------------------------------- load


def _fetch(repo_or_path: str, filename: str, revision, cache_dir, token, local_files_only) -> str:
    if os.path.isdir(repo_or_path):
        path = os.path.join(repo_or_path, filename)
        if os.path.isdir(path):
            raise NotFoundError(f"{filename} in the folder {repo_or_path} is a directory, not a file")
        if not os.path.isfile(path):
            raise NotFoundError(f"{filename} not found in the folder {repo_or_path}")
        return path
    try:
        return hf_hub_download(repo_or_path, filename, revision=revision, cache_dir=cache_dir, token=token,
                               local_files_only=local_files_only, library_name="frameflex")
    except Exception as e:  # offline and not cached, unknown repo, missing file ...
        raise NotFoundError(
            f"{repo_or_path!r} is not a local folder, and {filename} could not be fetched from it as a Hub repo"
            f"{f' at revision {revision}' if revision else ''}: {type(e).__name__}: {e}") from e


def from_pretrained(repo_id_or_path: str | os.PathLike, *, model: nn.Module | None = None,
                    num_classes: int | None = None, ignore_mismatched_sizes: bool | None = None,
                    trust_remote_code: bool = False, filename: str | None = None, arch: str | None = None,
                    revision: str | None = None, cache_dir: str | os.PathLike | None = None,
                    device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                    strict: bool = True, token: str | None = None, local_files_only: bool = False,
                    frame_sets: Sequence[int] | None = None, adapters: None | str | Sequence[str] = None
                    ) -> nn.Module:
    """Load a model from a local folder or a Hub repo (works offline from the Hub cache).

    The model is rebuilt as config.json records (:data:`BASES`), converted with its
    frame sets and adapters, and loaded. For a model saved without a way to build
    it, pass ``model``: your model built as before conversion; it is converted and
    loaded in place (all or nothing: if the weights do not fit, it is left as it was).
    A builder function named by config.json runs only with ``trust_remote_code=True``.

    ``num_classes`` gives a new classifier: tensors whose shape differs (the head) are
    re-initialised and named in a warning, every other tensor is loaded
    (``ignore_mismatched_sizes`` does that without a new class count; by default it
    is on only when ``num_classes`` differs from the saved one).

    With ``filename``, the repo holds an original checkpoint instead of a frameflex
    folder; it is converted on load by :func:`frameflex.import_checkpoint` (``arch``
    is guessed from the keys when not given), e.g. the official UniFormer files::

        ff.from_pretrained("Sense-X/uniformer_video", filename="uniformer_small_sthv1_16_prek600.pth")

    A plain transformers video checkpoint (config.json with a ``model_type``, as
    ``model.save_pretrained`` writes it) is loaded by transformers (safetensors or
    ``weights_only``; remote code never runs) and, with ``frame_sets``, converted
    (``adapters`` as in :func:`frameflex.convert`)::

        ff.from_pretrained("MCG-NJU/videomae-base-finetuned-ssv2", frame_sets=[4, 8, 16])

    Returns the model in eval mode, on ``device`` and in ``dtype`` if given.

    >>> model = ff.from_pretrained("out/tsm_tiny-ffn", num_classes=10)   # fine-tune to 10 classes  # doctest: +SKIP
    >>> model = ff.from_pretrained("out/r3d18-ffn", model=torchvision.models.video.r3d_18(num_classes=10))  # doctest: +SKIP
    """
    from .checkpoints import import_checkpoint, load_file, load_state_dict, warn_reinitialised
    from .selection import is_converted
    from .surgery import _convert_exact

    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes <= 0):
        raise ArgumentError(f"num_classes must be a positive int, got {num_classes!r}")
    if model is not None:
        if not isinstance(model, nn.Module):
            raise ArgumentTypeError(f"model must be an nn.Module (your model, unconverted), got {type(model).__name__}")
        if num_classes is not None:
            raise ArgumentTypeError("pass either model or num_classes: build your model with the classes you want and "
                            "pass ignore_mismatched_sizes=True")
        if is_converted(model):
            raise ConversionError("model is already frame-flexible: pass it unconverted, from_pretrained converts it "
                             "as config.json records")
    where = os.fspath(repo_id_or_path)
    fetch = lambda name: _fetch(where, name, revision, cache_dir, token, local_files_only)  # noqa: E731
    if filename is not None:
        if model is not None:
            raise ArgumentTypeError("model and filename cannot be combined: filename imports an original zoo "
                                    "checkpoint")
        sd = import_checkpoint(fetch(filename), arch=arch, strict=strict)
        loaded = sd.create_model(num_classes=num_classes)
        loaded.frameflex_config["source"] = f"{where}/{filename}"
        return loaded.to(device=device, dtype=dtype).eval()

    raw = read_json(fetch(CONFIG_NAME), f"{CONFIG_NAME} of {where}")
    if _transformers.is_plain_checkpoint(raw):
        if model is not None:
            raise ArgumentTypeError(f"{where} is a plain transformers checkpoint, rebuilt from its own config: "
                                    "drop model=")
        loaded = _transformers.load_plain(where, num_classes, revision=revision, cache_dir=cache_dir, token=token,
                                          local_files_only=local_files_only)
        if frame_sets is not None:
            from .surgery import convert

            loaded = convert(loaded, frame_sets, adapters=adapters)
        elif adapters is not None:
            raise ArgumentTypeError("adapters= needs frame_sets=[...]: they are placed when the model is converted")
        loaded.frameflex_config = {**_transformers.card(loaded), **({} if os.path.isdir(where) else {"base_model": where})}
        return loaded.to(device=device, dtype=dtype).eval()
    if frame_sets is not None or adapters is not None:
        raise ArgumentTypeError(f"frame_sets= and adapters= convert a plain transformers checkpoint; {where} is a "
                                "frameflex folder, converted as its config.json records")
    config = _check_config(raw, where)
    saved_classes = config.get("num_classes")
    new_head = num_classes is not None and num_classes != saved_classes
    if ignore_mismatched_sizes is None:
        ignore_mismatched_sizes = new_head
    base = config["base"]
    if model is None:
        model = BASES[base["type"]](base, num_classes if num_classes is not None else saved_classes,
                                    trust_remote_code)
    sd = load_file(fetch(WEIGHTS_NAME))
    undo = lambda: None  # noqa: E731
    if config.get("frame_sets") is not None:
        model, undo = _convert_exact(model, config["frame_sets"], config.get("adapters") or [], config.get("time_dim"))
    try:
        result = load_state_dict(model, sd, strict=strict, ignore_mismatched_sizes=ignore_mismatched_sizes)
    except BaseException as e:
        undo()  # all or nothing: a model you passed is left unconverted
        if isinstance(e, StateDictError):
            raise StateDictError(f"weights of {where} do not fit the model: {e}") from None
        raise
    warn_reinitialised(result, where)
    own = {k: config[k] for k in _CARD_FIELDS if k in config}
    if new_head:  # a new task: the old classes, dataset and results no longer describe it
        own = {k: v for k, v in own.items() if k in ("license", "source", "input_size", "mean", "std")}
        if not os.path.isdir(where):
            own["base_model"] = where
    model.frameflex_config = {
        **(getattr(model, "frameflex_config", None) or {}), **own,
        "architecture": config["architecture"], "num_classes": num_classes or saved_classes, "base": base,
        "frame_sets": config.get("frame_sets"), "adapters": config.get("adapters")}
    model.frameflex_config.setdefault("model_kwargs", base.get("kwargs", {}))
    return model.to(device=device, dtype=dtype).eval()


# --------------------------------------------------------------------------- push


def push_to_hub(model: nn.Module, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str = "Upload frameflex model", revision: str | None = None,
                builder: str | None = None, builder_kwargs: Mapping | None = None, **card: Any) -> str:
    """Save ``model`` as a Hub folder and upload it to ``repo_id`` (created if needed).

    >>> ff.push_to_hub(model, "my-org/tsm_r50-ffn-sthv1", dataset="something-something-v1")  # doctest: +SKIP
    """
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, builder=builder, builder_kwargs=builder_kwargs, **card)
        return upload_folder(api, tmp, repo_id, private=private, commit_message=commit_message, revision=revision)


def upload_folder(api: HfApi, folder: str | os.PathLike, repo_id: str, *, private: bool | None = None,
                  commit_message: str = "Upload frameflex model", revision: str | None = None) -> str:
    """Upload an existing Hub folder (e.g. from ``frameflex import``) after checking it is complete."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError(f"folder not found: {folder}")
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise NotFoundError(f"{name} not found in {folder}: not a frameflex Hub folder")
    config = _check_config(read_json(folder / CONFIG_NAME, CONFIG_NAME), str(folder))
    card = folder / CARD_NAME
    if not card.is_file() or (_is_ours(card) and _PLACEHOLDER in read_text(card)):  # name the repo in the snippet
        _write_folder(folder, None, config, str(model_card(config, repo_id)), overwrite=False)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message,
                             revision=revision)
    return str(getattr(info, "commit_url", info))
