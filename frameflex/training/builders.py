"""What a run is made of: its datasets and its model (zoo or ``module:function``), optionally initialised."""
from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..checkpoints import load_state_dict, read_checkpoint
from ..errors import FrameflexError
from ..hub import import_function
from ..data import SyntheticMotion
from ..datasets import VideoFiles, eval_transform, train_transform, video_dataset
from ..models._recipe import Recipe
from ..models._registry import create_model, get_spec
from ..surgery import convert
from ..temporal import default_time_dim
from .config import TrainConfig, UsageError

__all__ = ["SeededItems", "build_datasets", "build_model", "InitReport", "init_from", "one_line"]


def one_line(error: BaseException) -> str:
    """An error as one line (a DataLoader worker's re-raised error: its last line)."""
    text = str(error).strip()
    if "Original Traceback" in text:
        text = re.sub(r"^\w+(Error|Exception): ", "", text.splitlines()[-1])
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


class SeededItems(Dataset):
    """Draw each training item's sampling and augmentation from (seed, epoch, index) alone.

    So a run resumed mid-epoch, or run with another number of DataLoader workers,
    sees exactly the same clips, and the data never touches the main process's RNG
    (dropout, drop-path), which the checkpoint restores.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index) % 2**63)
            return self.dataset[index]


def build_datasets(cfg: TrainConfig, train_frames: tuple[int, ...], eval_frames: tuple[int, ...], input_size: int,
                   mean: Sequence[float], std: Sequence[float]) -> tuple[Dataset, Dataset | None, int]:
    """Training set, validation set (or None) and the number of classes; one item of each is loaded now."""
    try:
        train, val, classes = _datasets(cfg, train_frames, eval_frames, input_size, mean, std)
    except (FileNotFoundError, ValueError) as e:  # VideoList names the list file and line
        raise UsageError(one_line(e)) from None
    for ds, name in ((train, "training set"), (val, "validation set")):
        if ds is None:
            continue
        try:  # a wrong --root or --image-tmpl fails in a second, not after the model is built
            with torch.random.fork_rng(devices=[]):
                ds[0]
        except (FileNotFoundError, OSError, ValueError) as e:
            raise UsageError(f"{name}: {one_line(e)}") from None
    return train, val, classes


def _datasets(cfg: TrainConfig, train_frames: tuple[int, ...], eval_frames: tuple[int, ...], input_size: int,
              mean: Sequence[float], std: Sequence[float]) -> tuple[Dataset, Dataset | None, int]:
    if cfg.synthetic:
        classes = cfg.num_classes or 8
        common = dict(num_classes=classes, size=input_size)
        train = SyntheticMotion(cfg.synthetic_videos, **common, frame_sets=train_frames, train=True, seed=cfg.seed,
                                transform=train_transform(input_size, mean, std, flip=False))
        val = SyntheticMotion(cfg.synthetic_val_videos, **common, frame_sets=eval_frames, train=False,
                              seed=cfg.seed + 1, transform=eval_transform(input_size, mean=mean, std=std))
        return train, val, classes
    # Videos that fail to decode mid-run are skipped and counted (skip_bad), never fatal.
    lists = dict(image_tmpl=cfg.image_tmpl, index_base=cfg.index_base, backend=cfg.decoder, skip_bad=True)
    train = video_dataset(cfg.list, root=cfg.root, frame_sets=train_frames, train=True, nested=cfg.nested,
                          transform=train_transform(input_size, mean, std, flip=cfg.flip), **lists)
    val = None
    if cfg.val_list is not None:
        classes = getattr(train, "classes", None)  # Kinetics: the training set's class ids
        val = video_dataset(cfg.val_list, root=cfg.val_root or cfg.root, frame_sets=eval_frames, train=False,
                            transform=eval_transform(input_size, mean=mean, std=std), classes=classes, **lists)
    for ds in (train, val):
        _preflight(ds, cfg.bad_videos)
    classes = cfg.num_classes or max(train.num_classes, val.num_classes if val is not None else 0)
    for ds in (train, val):
        if ds is not None and ds.num_classes > classes:
            record = next(r for r in ds.records if r.label >= classes)
            raise UsageError(f"{ds.list_file}, line {record.line}: label {record.label} does not fit "
                             f"--num-classes {classes}")
    return train, val, classes


def _preflight(ds: Dataset | None, bad_videos: str) -> None:
    """Listed video files that are missing or empty: an error, or left out with a line saying so."""
    missing = ds.missing() if isinstance(ds, VideoFiles) else []
    if not missing:
        return
    what = (f"{len(missing)} of the {len(ds)} videos of {ds.list_file} are missing or empty, e.g. "
            f"{missing[0].path} (line {missing[0].line})")
    if bad_videos == "error":
        raise UsageError(f"{what}; fix the list or --root, or pass --bad-videos skip")
    ds.drop(missing)
    if not len(ds):
        raise UsageError(f"{what}: none left")
    tqdm.write(f"--bad-videos skip: {what}; training without them")


def _import_builder(spec: str) -> Callable[..., nn.Module]:
    """``package.module:function`` or ``path/to/file.py:function``, as the Hub folder records it."""
    try:
        return import_function(spec)
    except FrameflexError as e:
        raise UsageError(f"--model: {e}") from None


def _adapters(values: Sequence[str] | None) -> str | list[str] | None:
    if values is None or list(values) == ["none"]:
        return None
    if list(values) == ["auto"]:
        return "auto"
    return list(values)


def build_model(cfg: TrainConfig, recipe: Recipe, own_recipe: bool, num_classes: int,
                frame_sets: tuple[int, ...] | None) -> tuple[nn.Module, str | None, dict[str, Any]]:
    """The model (converted when ``frame_sets``), its zoo arch (None for a user's function) and the
    builder's arguments.

    A recipe's dropout and drop-path are builder arguments of its own family
    (``own_recipe``); ``--dropout`` / ``--drop-path`` apply to any model.
    """
    kwargs = dict(cfg.model_kwargs)
    zoo = ":" not in cfg.model
    for value, key, from_recipe in ((cfg.dropout, "dropout", recipe.dropout),
                                    (cfg.drop_path, "drop_path_rate", recipe.drop_path)):
        if value is None and zoo and own_recipe:
            value = from_recipe
        if value is not None:
            kwargs.setdefault(key, value)
    if cfg.pretrained:
        if not zoo or "pretrained" not in inspect.signature(get_spec(cfg.model).builder).parameters:
            raise UsageError(f"--pretrained: {cfg.model} has no published pretrained weights in the zoo; "
                             "use --init PATH")
        kwargs["pretrained"] = True
    adapters = _adapters(cfg.adapters)
    if zoo:
        try:
            model = create_model(cfg.model, num_classes=num_classes, frame_sets=frame_sets,
                                 adapters="preset" if cfg.adapters is None else adapters, **kwargs)
        except (TypeError, ValueError) as e:  # an argument the builder does not take, no adapter match
            raise UsageError(f"cannot build --model {cfg.model} with {kwargs}: {one_line(e)}") from None
        # The Hub folder must rebuild the model offline: its weights are in the folder.
        model.frameflex_config["model_kwargs"].pop("pretrained", None)
        return model, cfg.model, kwargs
    builder = _import_builder(cfg.model)
    if "num_classes" in inspect.signature(builder).parameters:
        kwargs.setdefault("num_classes", num_classes)
    model = builder(**kwargs)  # errors inside the user's code keep their traceback
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model {cfg.model} returned a {type(model).__name__}, not an nn.Module")
    if frame_sets is not None:
        try:
            # (B, C, T, H, W) unless a known family takes another layout (transformers: pixel_values).
            model = convert(model, frame_sets, adapters=adapters, time_dim=default_time_dim(model) or 2)
        except (TypeError, ValueError) as e:
            raise UsageError(f"--model {cfg.model}: {one_line(e)}") from None
    return model, None, kwargs


class InitReport(NamedTuple):
    """What :func:`init_from` did, key by key."""

    layout: str  # "frameflex" (the model's keys, plain or converted) or "official" (read by ff.import_checkpoint)
    loaded: list[str]
    missing: list[str]  # model keys the file lacks: they keep their initialisation
    unexpected: list[str]  # file keys with no place in the model
    skipped: list[str]  # "key (file shape) vs (model shape)": e.g. another dataset's classifier

    def summary(self, path: str) -> str:
        def keys(name: str) -> str:
            items = getattr(self, name)
            listed = f" ({', '.join(items[:6])}{' ...' if len(items) > 6 else ''})" if items else ""
            return f"{name} {len(items)}{listed}"

        return (f"init: {len(self.loaded)} tensors of {path} ({self.layout} layout) copied into every "
                f"frame count's branch; {keys('missing')}; {keys('unexpected')}; {keys('skipped')}")


def init_from(model: nn.Module, path: str | os.PathLike, arch: str | None = None) -> InitReport:
    """Initialise every frame count's branch from a checkpoint of the plain (unconverted) model.

    FFN starts from single-frame-count weights, so each branch gets a copy
    (:func:`frameflex.load_state_dict`, non-strict). Files whose keys are mostly
    foreign to a zoo model go through :func:`frameflex.import_checkpoint` (official
    TSM / TEA / SlowFast / UniFormer layouts). Tensors whose shape does not fit
    (a classifier for another dataset) are skipped and reported.

    Example:
        >>> report = init_from(ffn_model, "tsm_tiny_16f.safetensors")  # doctest: +SKIP
        >>> report.missing, report.unexpected  # doctest: +SKIP
        ([], [])
    """
    try:  # the one key path: safe load, containers, prefixes, layout; all or nothing
        sd, layout = read_checkpoint(model, path, arch=arch)
        result = load_state_dict(model, sd, strict=False, ignore_mismatched_sizes=True)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(f"--init {path}: {one_line(e)}") from None
    skipped = [k for k, _, _ in result.mismatched_keys]
    loaded = [k for k in sd if k not in {*result.unexpected_keys, *skipped}]
    if not loaded:  # nothing was written
        raise UsageError(f"--init {path}: none of its {len(sd)} tensors fit the model "
                         f"(first keys: {', '.join(list(sd)[:4])})")
    return InitReport(layout, loaded, [*result.missing_keys, *skipped], list(result.unexpected_keys),
                      [f"{k} {a} vs {b}" for k, a, b in result.mismatched_keys])
