"""Hugging Face Hub folders: config.json + model.safetensors + README.md model card.

A folder (local, or a Hub repo through huggingface_hub's cache) holds everything
needed to rebuild a zoo model: the architecture and its arguments in config.json,
every branch's weights and running statistics in model.safetensors.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from huggingface_hub import HfApi, hf_hub_download
from safetensors.torch import save_model
from torch import nn

from .errors import StateDictError

__all__ = ["save_pretrained", "from_pretrained", "push_to_hub", "model_card", "CONFIG_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
_CARD_FIELDS = ("class_names", "dataset", "license", "source", "results")
_PLACEHOLDER = "path/to/folder"


def _config(model: nn.Module, extra: Mapping[str, Any]) -> dict:
    from ._version import __version__
    from .models._registry import get_spec
    from .selection import frame_sets, is_converted

    base = getattr(model, "frameflex_config", None)
    if base is None:
        raise ValueError(f"{type(model).__name__} was not built by ff.create_model, so its architecture is "
                         "unknown: save its state_dict with safetensors instead, or build it with ff.create_model")
    spec = get_spec(base["architecture"])
    config = {
        **base,
        "frame_sets": list(frame_sets(model)) if is_converted(model) else None,  # calibrated counts included
        "time_dim": 2,
        "input_size": spec.input_size, "mean": list(spec.mean), "std": list(spec.std),
        "frameflex_version": __version__,
    }
    config.update({k: v for k, v in extra.items() if v is not None})
    unknown = set(extra) - set(_CARD_FIELDS)
    if unknown:
        raise TypeError(f"unknown config fields {sorted(unknown)}; known: {', '.join(_CARD_FIELDS)}")
    try:
        json.dumps(config)
    except TypeError as e:
        raise TypeError(f"config of {config['architecture']} is not JSON-serialisable: {e}") from None
    return config


def model_card(config: Mapping[str, Any], repo_id: str | None = None) -> str:
    """A README.md with Hub metadata (library, tags, dataset, licence) and the results table."""
    arch, sets = config["architecture"], config.get("frame_sets")
    meta = ["---", "library_name: frameflex", "pipeline_tag: video-classification", "tags:",
            "- video-classification", "- frameflex", f"- {arch}"] + (["- frame-flexible-network"] if sets else [])
    if config.get("dataset"):
        meta += ["datasets:", f"- {config['dataset']}"]
    if config.get("license"):
        meta += [f"license: {config['license']}"]
    meta.append("---")
    title = repo_id or arch
    kind = f"frame-flexible (FFN) model trained at {sets} frames" if sets else "plain (single frame count) model"
    lines = [*meta, "", f"# {title}", "", f"A {arch} {kind} for video classification with "
             f"{config['num_classes']} classes" + (f" ({config['dataset']})" if config.get("dataset") else "") + "."]
    if config.get("source"):
        lines += ["", f"Weights: {config['source']}"]
    results = (config.get("results") or {}).get("top1")
    if results:
        frames = sorted(results, key=int)
        lines += ["", "## Results", "", "| frames | " + " | ".join(frames) + " |",
                  "|---|" + "---|" * len(frames), "| top-1 (%) | " + " | ".join(f"{results[t]:.2f}" for t in frames)
                  + " |"]
        if config.get("results", {}).get("note"):
            lines += ["", config["results"]["note"]]
    lines += ["", "## Use", "", "```python", "import frameflex as ff", "",
              f'model = ff.from_pretrained("{repo_id or _PLACEHOLDER}")',
              f"logits = model(clip)  # clip: (B, 3, T, {config['input_size']}, {config['input_size']}), "
              f"mean {config['mean']}, std {config['std']}", "```", ""]
    return "\n".join(lines)


def save_pretrained(model: nn.Module, save_directory: str | os.PathLike, **card: Any) -> Path:
    """Write config.json, model.safetensors and a model card for a zoo model.

    ``card`` may carry ``class_names``, ``dataset``, ``license``, ``source`` and
    ``results`` (``{"top1": {"4": 42.85, ...}}``); they go into config.json and the card.

    >>> ff.save_pretrained(model, "out/tsm_r50-ffn")
    >>> ff.from_pretrained("out/tsm_r50-ffn")
    """
    config = _config(model, card)
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "library": "frameflex"})
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    (folder / CARD_NAME).write_text(model_card(config))
    return folder


def _fetch(repo_or_path: str, filename: str, revision, cache_dir, token, local_files_only) -> str:
    if os.path.isdir(repo_or_path):
        path = os.path.join(repo_or_path, filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{filename} not found in the folder {repo_or_path}")
        return path
    try:
        return hf_hub_download(repo_or_path, filename, revision=revision, cache_dir=cache_dir, token=token,
                               local_files_only=local_files_only, library_name="frameflex")
    except Exception as e:  # offline and not cached, unknown repo, missing file ...
        raise FileNotFoundError(
            f"{repo_or_path!r} is not a local folder, and {filename} could not be fetched from it as a Hub repo"
            f"{f' at revision {revision}' if revision else ''}: {type(e).__name__}: {e}") from e


def from_pretrained(repo_id_or_path: str | os.PathLike, *, filename: str | None = None, arch: str | None = None,
                    revision: str | None = None, cache_dir: str | os.PathLike | None = None,
                    device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                    strict: bool = True, token: str | None = None, local_files_only: bool = False) -> nn.Module:
    """Load a model from a local folder or a Hub repo (works offline from the Hub cache).

    With ``filename``, the repo holds an original checkpoint instead of a frameflex
    folder; it is converted on load by :func:`frameflex.import_checkpoint` (``arch``
    is guessed from the keys when not given), e.g. the official UniFormer files::

        ff.from_pretrained("Sense-X/uniformer_video", filename="uniformer_small_sthv1_16_prek600.pth")

    Returns the model in eval mode, on ``device`` and in ``dtype`` if given.
    """
    from .checkpoints import import_checkpoint, load_file, load_state_dict
    from .models._registry import create_model

    where = os.fspath(repo_id_or_path)
    fetch = lambda name: _fetch(where, name, revision, cache_dir, token, local_files_only)  # noqa: E731
    if filename is not None:
        sd = import_checkpoint(fetch(filename), arch=arch, strict=strict)
        model = sd.create_model()
        model.frameflex_config["source"] = f"{where}/{filename}"
    else:
        config = json.loads(Path(fetch(CONFIG_NAME)).read_text())
        if "architecture" not in config:
            raise ValueError(f"{CONFIG_NAME} of {where} names no architecture")
        model = create_model(config["architecture"], num_classes=config["num_classes"],
                             frame_sets=config.get("frame_sets"), adapters=config.get("adapters", "preset"),
                             **config.get("model_kwargs", {}))
        try:
            load_state_dict(model, load_file(fetch(WEIGHTS_NAME)), strict=strict)
        except StateDictError as e:
            raise StateDictError(f"weights of {where} do not fit {config['architecture']}: {e}") from None
        model.frameflex_config.update({k: config[k] for k in _CARD_FIELDS if k in config})
    model.to(device=device, dtype=dtype)
    return model.eval()


def push_to_hub(model: nn.Module, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str = "Upload frameflex model", revision: str | None = None, **card: Any) -> str:
    """Save ``model`` as a Hub folder and upload it to ``repo_id`` (created if needed).

    >>> ff.push_to_hub(model, "my-org/tsm_r50-ffn-sthv1", dataset="something-something-v1")
    """
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, **card)
        return upload_folder(api, tmp, repo_id, private=private, commit_message=commit_message, revision=revision)


def upload_folder(api: HfApi, folder: str | os.PathLike, repo_id: str, *, private: bool | None = None,
                  commit_message: str = "Upload frameflex model", revision: str | None = None) -> str:
    """Upload an existing Hub folder (e.g. from ``frameflex import``) after checking it is complete."""
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (Path(folder) / name).is_file():
            raise FileNotFoundError(f"{name} not found in {folder}: not a frameflex Hub folder")
    card = Path(folder) / CARD_NAME
    if not card.is_file() or _PLACEHOLDER in card.read_text():  # our card: name the repo in its snippet
        card.write_text(model_card(json.loads((Path(folder) / CONFIG_NAME).read_text()), repo_id))
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message,
                             revision=revision)
    return str(getattr(info, "commit_url", info))
