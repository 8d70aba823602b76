"""Train a video model the FFN way, on one CPU or GPU or on many through ``torchrun``.

``frameflex train`` / ``examples/train.py``. In FFN mode (``--frame-sets 4 8 16``)
every step runs every frame count of every video through its own branch
(:func:`frameflex.forward_multi`) and optimises :class:`frameflex.FFNLoss`; each
video gives one clip per frame count, sampled independently, all sharing ONE
spatial augmentation (:class:`frameflex.datasets.VideoList` /
:class:`frameflex.SyntheticMotion`). ``--frames 8`` trains a plain model at one
frame count with cross-entropy instead (the paper's baselines).

The official recipes are data (:data:`RECIPES`); flags override single numbers.
With ``torchrun`` the script runs DDP (gloo on CPU, nccl on CUDA); every rank
runs every frame count each step, so no parameter is ever unused. Checkpoints
(``last.pt``, ``best.pt``) hold everything a bit-identical continuation needs and
load with ``torch.load(weights_only=True)``.

Example:
    >>> main(["--model", "tsm_tiny", "--synthetic", "--epochs", "2", "--out", "runs/demo"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm.auto import tqdm

from ._outputs import logits_of
from .checkpoints import load_state_dict, read_checkpoint
from .data import SyntheticMotion, collate_clips
from .datasets import VideoList, eval_transform, train_transform
from .evaluate import evaluate, format_table
from .hub import save_pretrained
from .loss import FFNLoss
from .models._registry import IMAGENET_MEAN, IMAGENET_STD, create_model, get_spec
from .selection import forward_multi, is_converted
from .surgery import convert, norm_types

__all__ = ["Recipe", "RECIPES", "default_recipe", "lr_factor", "param_groups", "InitReport", "init_from",
           "UsageError", "add_arguments", "run", "main"]


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe:
    """One official training recipe as numbers (ffn-method.md, "Training recipes"; ``source`` says where from).

    ``lr`` is the peak learning rate for ``batch_size`` videos per optimizer step
    over all processes; the trainer scales it linearly with the real total batch
    unless ``--lr`` is given. ``warmup_lr`` and ``min_lr`` scale with it.
    """

    optimizer: str  # "sgd" or "adamw"
    lr: float
    batch_size: int
    epochs: int
    schedule: str  # "step": x0.1 at each epoch in lr_steps; "cosine": down to min_lr after the warm-up
    lr_steps: tuple[int, ...] = ()
    warmup_epochs: float = 0.0  # linear from warmup_lr to the schedule's value at its end
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    bias_lr_mult: float = 1.0
    bias_decay: bool = True  # weight decay on biases
    norm_decay: bool = True  # weight decay on norm weights and biases
    head_lr_mult: float = 1.0  # the classifier (the model's last nn.Linear): a new layer learns faster
    head_bias_lr_mult: float = 1.0
    clip_grad: float | None = None  # max L2 norm of all gradients together
    label_smoothing: float = 0.0
    dropout: float | None = None  # zoo builder argument `dropout` (before the classifier)
    drop_path: float | None = None  # zoo builder argument `drop_path_rate`
    source: str = ""


_TSM = Recipe(
    "sgd", lr=0.01, batch_size=32, epochs=50, schedule="step", lr_steps=(20, 40), weight_decay=5e-4,
    bias_lr_mult=2.0, bias_decay=False, norm_decay=False, head_lr_mult=5.0, head_bias_lr_mult=10.0,
    clip_grad=20.0, dropout=0.5,
    source="FFN-pytorch 2D_Network/exp/tsm_sthv1_FFN/run.sh (--gd 20) and TSM's get_optim_policies "
           "(bias lr x2 no decay, norms no decay, fc weight lr x5, fc bias lr x10); K400 used wd 1e-4",
)

#: The official recipes by name. Mixup/cutmix and RandAugment (UniFormer) are not part of this trainer.
RECIPES: dict[str, Recipe] = {
    "tsm": _TSM,
    "tea": dataclasses.replace(_TSM, lr=0.02, lr_steps=(30, 40, 45),
                               source="FFN-pytorch 2D_Network/exp/tea_sthv1_FFN/run.sh; otherwise as tsm"),
    "slowfast": Recipe(
        "sgd", lr=0.03, batch_size=16, epochs=22, schedule="step", lr_steps=(14, 18), warmup_epochs=0.19,
        warmup_lr=1e-4, weight_decay=1e-6, nesterov=True, norm_decay=False, dropout=0.5,
        source="FFN-pytorch 3D_Network/configs/sth/SLOWFAST_16x8_R50_FFN.yaml (STEPS [0,14,18], LRS 1/0.1/0.01) "
               "with PySlowFast defaults (nesterov, BN weight decay 0)"),
    "uniformer": Recipe(
        "adamw", lr=2e-4, batch_size=32, epochs=60, schedule="cosine", warmup_epochs=5.0, warmup_lr=1e-6,
        min_lr=1e-6, weight_decay=0.05, bias_decay=False, norm_decay=False, label_smoothing=0.1, drop_path=0.2,
        source="FFN-pytorch Transformer_Network/exp/uniformer_s16_sthv1_prek600_FFN run.sh over config.yaml "
               "(ZERO_WD_1D_PARAM, cosine after warm-up); mixup/cutmix and RandAugment left out"),
}


def default_recipe(model: str) -> str | None:
    """The recipe of a zoo model's family (``tsm_r50`` -> ``"tsm"``), None for other models."""
    family = model.split("_")[0]
    return family if family in RECIPES and ":" not in model else None


def lr_factor(recipe: Recipe, epoch: float) -> float:
    """The learning rate at (fractional) ``epoch`` as a fraction of the peak, for any recipe.

    Example:
        >>> lr_factor(RECIPES["tsm"], 20.0), lr_factor(RECIPES["tsm"], 45.5)
        (0.1, 0.010000000000000002)
    """

    def after_warmup(e: float) -> float:
        if recipe.schedule == "step":
            return 0.1 ** sum(e >= s for s in recipe.lr_steps)
        floor = recipe.min_lr / recipe.lr
        span = max(recipe.epochs - recipe.warmup_epochs, 1e-9)
        progress = min(max((e - recipe.warmup_epochs) / span, 0.0), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    if epoch < recipe.warmup_epochs:
        start = recipe.warmup_lr / recipe.lr
        return start + (after_warmup(recipe.warmup_epochs) - start) * epoch / recipe.warmup_epochs
    return after_warmup(epoch)


def _head_name(model: nn.Module) -> str | None:
    """The classifier: the last nn.Linear registered (fc, head, head.projection in the zoo)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def param_groups(model: nn.Module, recipe: Recipe, lr: float) -> list[dict[str, Any]]:
    """Optimizer groups by role (weights, biases, norms, classifier) with the recipe's lr and decay rules.

    TSM's policies: biases learn 2x faster without decay, norms (every frame
    count's private copy) without decay, the new classifier 5x (bias 10x).

    Example:
        >>> [g["name"] for g in param_groups(ff.create_model("tsm_tiny", 4), RECIPES["tsm"], 0.01)]
        ['weight', 'norm', 'head_weight', 'head_bias']
    """
    head = _head_name(model)
    norms = norm_types()
    found: dict[str, list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if head is not None and (module_name == head or module_name.startswith(head + ".")):
                role = "head_bias" if name == "bias" else "head_weight"
            elif isinstance(module, norms):
                role = "norm"
            else:
                role = "bias" if name == "bias" else "weight"
            found.setdefault(role, []).append(p)
    rules = {"weight": (1.0, True), "bias": (recipe.bias_lr_mult, recipe.bias_decay),
             "norm": (1.0, recipe.norm_decay), "head_weight": (recipe.head_lr_mult, True),
             "head_bias": (recipe.head_bias_lr_mult, recipe.bias_decay)}
    return [{"name": role, "params": found[role], "lr": lr * mult,
             "weight_decay": recipe.weight_decay if decay else 0.0}
            for role, (mult, decay) in rules.items() if found.get(role)]


# --------------------------------------------------------------------------- errors, processes, RNG


class UsageError(Exception):
    """A bad flag, path, list line or checkpoint: reported as one line, exit status 2."""


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: its last line is the error
        text = re.sub(r"^\w+(Error|Exception): ", "", text.splitlines()[-1])
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class _Procs:
    """This process's place in the run (torchrun's environment, or a single process)."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over all processes."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj: Any) -> list[Any]:
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def _start_processes(device: str) -> _Procs:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    kind = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    dev = torch.device(kind)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: CUDA is not available on this machine")
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True  # three fixed input shapes (one per frame count): tuned once each
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return _Procs(rank, world, dev)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG this process draws from, as tensors and numbers (``weights_only`` loads it)."""
    version, words, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": torch.tensor(words, dtype=torch.int64), "python_version": version, "python_gauss": gauss,
             "numpy": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
             "numpy_gauss": [int(has_gauss), float(cached)], "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    random.setstate((state["python_version"], tuple(state["python"].tolist()), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         *state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _atomic_save(obj: Any, path: Path) -> None:
    """Write ``path`` whole or not at all: a temp file in the same folder, then os.replace."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# --------------------------------------------------------------------------- data


class _SeededItems(Dataset):
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


def _build_data(args: argparse.Namespace, train_frames: tuple[int, ...], eval_frames: tuple[int, ...],
                input_size: int, mean: Sequence[float], std: Sequence[float]) -> tuple[Dataset, Dataset | None, int]:
    """Training set, validation set (or None) and the number of classes."""
    try:
        return _datasets(args, train_frames, eval_frames, input_size, mean, std)
    except (FileNotFoundError, ValueError) as e:  # VideoList names the list file and line
        raise UsageError(_one_line(e)) from None


def _datasets(args: argparse.Namespace, train_frames: tuple[int, ...], eval_frames: tuple[int, ...],
              input_size: int, mean: Sequence[float], std: Sequence[float]) -> tuple[Dataset, Dataset | None, int]:
    if args.synthetic:
        if args.flip:
            raise UsageError("--flip with --synthetic: a flip turns 'left' into 'right', the labels would lie")
        classes = args.num_classes or 8
        common = dict(num_classes=classes, size=input_size)
        train = SyntheticMotion(args.synthetic_videos, **common, frame_sets=train_frames, train=True, seed=args.seed,
                                transform=train_transform(input_size, mean, std, flip=False))
        val = SyntheticMotion(args.synthetic_val_videos, **common, frame_sets=eval_frames, train=False,
                              seed=args.seed + 1, transform=eval_transform(input_size, mean=mean, std=std))
        return train, val, classes
    if args.list is None:
        raise UsageError("no training data: give --list FILE (TSM list format) or --synthetic")
    lists = dict(image_tmpl=args.image_tmpl, index_base=args.index_base)
    train = VideoList(args.list, root=args.root, frame_sets=train_frames, train=True,
                      transform=train_transform(input_size, mean, std, flip=args.flip), **lists)
    val = None
    if args.val_list is not None:
        val = VideoList(args.val_list, root=args.val_root or args.root, frame_sets=eval_frames, train=False,
                        transform=eval_transform(input_size, mean=mean, std=std), **lists)
    classes = args.num_classes or max(train.num_classes, val.num_classes if val is not None else 0)
    for ds in (train, val):
        if ds is not None and ds.num_classes > classes:
            record = next(r for r in ds.records if r.label >= classes)
            raise UsageError(f"{ds.list_file}, line {record.line}: label {record.label} does not fit "
                             f"--num-classes {classes}")
    return train, val, classes


# --------------------------------------------------------------------------- model


def _model_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--model-kwargs entries are KEY=VALUE with a Python name as KEY, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string
    return out


def _import_builder(spec: str) -> Callable[..., nn.Module]:
    """``package.module:function`` or ``path/to/file.py:function``."""
    where, _, name = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            if not os.path.isfile(where):
                raise UsageError(f"--model {spec}: file not found: {where}")
            loader_spec = importlib.util.spec_from_file_location(Path(where).stem, where)
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # torchrun puts the script's folder first, not the working one
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(where)
    except ImportError as e:
        raise UsageError(f"--model {spec}: cannot import {where}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise UsageError(f"--model {spec}: {where} has no function {name!r}")
    return fn


def _build_model(args: argparse.Namespace, recipe_name: str, recipe: Recipe, num_classes: int,
                 frame_sets: tuple[int, ...] | None) -> tuple[nn.Module, str | None]:
    """The model (converted when ``frame_sets``) and its zoo arch (None for a user's function)."""
    kwargs = _model_kwargs(args.model_kwargs)
    zoo = ":" not in args.model
    own_recipe = recipe_name == default_recipe(args.model)  # a recipe's dropout belongs to its own family
    for flag, key, from_recipe in (("dropout", "dropout", recipe.dropout),
                                   ("drop_path", "drop_path_rate", recipe.drop_path)):
        value = getattr(args, flag)
        if value is None and zoo and own_recipe:
            value = from_recipe
        if value is not None:
            kwargs.setdefault(key, value)
    if args.pretrained:
        if not zoo or "pretrained" not in inspect.signature(get_spec(args.model).builder).parameters:
            raise UsageError(f"--pretrained: {args.model} has no published pretrained weights in the zoo; "
                             "use --init PATH")
        kwargs["pretrained"] = True
    adapters = _adapters(args.adapters)
    if zoo:
        try:
            model = create_model(args.model, num_classes=num_classes, frame_sets=frame_sets,
                                 adapters="preset" if args.adapters is None else adapters, **kwargs)
        except (TypeError, ValueError) as e:  # an argument the builder does not take, no adapter match
            raise UsageError(f"cannot build --model {args.model} with {kwargs}: {_one_line(e)}") from None
        # The Hub folder must rebuild the model offline: its weights are in the folder.
        model.frameflex_config["model_kwargs"].pop("pretrained", None)
        return model, args.model
    builder = _import_builder(args.model)
    if "num_classes" in inspect.signature(builder).parameters:
        kwargs.setdefault("num_classes", num_classes)
    model = builder(**kwargs)  # errors inside the user's code keep their traceback
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model {args.model} returned a {type(model).__name__}, not an nn.Module")
    if frame_sets is not None:
        try:
            model = convert(model, frame_sets, adapters=adapters, time_dim=2)
        except (TypeError, ValueError) as e:
            raise UsageError(f"--model {args.model}: {_one_line(e)}") from None
    return model, None


def _adapters(values: Sequence[str] | None) -> str | list[str] | None:
    if values is None or values == ["none"]:
        return None
    if values == ["auto"]:
        return "auto"
    return list(values)


class InitReport(NamedTuple):
    """What :func:`init_from` did, key by key."""

    layout: str  # "frameflex" (the model's keys, plain or converted) or "official" (read by ff.import_checkpoint)
    loaded: list[str]
    missing: list[str]  # model keys the file lacks: they keep their initialisation
    unexpected: list[str]  # file keys with no place in the model
    skipped: list[str]  # "key (file shape) vs (model shape)": e.g. another dataset's classifier


def init_from(model: nn.Module, path: str | os.PathLike, arch: str | None = None) -> InitReport:
    """Initialise every frame count's branch from a checkpoint of the plain (unconverted) model.

    FFN starts from single-frame-count weights, so each branch gets a copy
    (:func:`frameflex.load_state_dict`, non-strict). Files whose keys are mostly
    foreign to a zoo model go through :func:`frameflex.import_checkpoint` (official
    TSM / TEA / SlowFast / UniFormer layouts). Tensors whose shape does not fit
    (a classifier for another dataset) are skipped and reported.

    Example:
        >>> report = init_from(ffn_model, "tsm_tiny_16f.safetensors")
        >>> report.missing, report.unexpected
        ([], [])
    """
    try:  # the one key path: safe load, containers, prefixes, layout; all or nothing
        sd, layout = read_checkpoint(model, path, arch=arch)
        result = load_state_dict(model, sd, strict=False, ignore_mismatched_sizes=True)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(f"--init {path}: {_one_line(e)}") from None
    skipped = [k for k, _, _ in result.mismatched_keys]
    loaded = [k for k in sd if k not in {*result.unexpected_keys, *skipped}]
    if not loaded:  # nothing was written
        raise UsageError(f"--init {path}: none of its {len(sd)} tensors fit the model "
                         f"(first keys: {', '.join(list(sd)[:4])})")
    return InitReport(layout, loaded, [*result.missing_keys, *skipped], list(result.unexpected_keys),
                      [f"{k} {a} vs {b}" for k, a, b in result.mismatched_keys])


class _EveryFrameCount(nn.Module):
    """One forward for the whole FFN step, so DDP sees a single forward and backward per step."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: Mapping[int, Tensor]) -> dict[int, Tensor]:
        if is_converted(self.model):
            return forward_multi(self.model, clips)
        return {t: logits_of(self.model(x)) for t, x in clips.items()}


# --------------------------------------------------------------------------- the run


def _preflight(ds: Dataset | None, name: str) -> None:
    """Load one item now: a wrong --root or --image-tmpl fails in a second, not after the model is built."""
    if ds is None:
        return
    try:
        with torch.random.fork_rng(devices=[]):
            ds[0]
    except (FileNotFoundError, OSError, ValueError) as e:
        raise UsageError(f"{name}: {_one_line(e)}") from None


def _jsonable(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items() if k != "func"}


class _Trainer:
    """The state of one run; :meth:`state` is exactly what a checkpoint holds."""

    def __init__(self, args: argparse.Namespace, procs: _Procs) -> None:
        self.args, self.procs = args, procs
        self.out = Path(args.out or f"runs/{re.sub(r'[^A-Za-z0-9_.-]', '_', args.model.rpartition(':')[2])}")
        self.resume = self._resume_path(args.resume)
        try:
            spec = get_spec(args.model) if ":" not in args.model else None
        except ValueError as e:  # names the zoo's models
            raise UsageError(_one_line(e)) from None
        if args.frames is not None:
            self.ffn, train_frames = False, (args.frames,)
        elif args.frame_sets is not None:
            self.ffn, train_frames = True, tuple(sorted(set(args.frame_sets)))
        elif spec is not None:
            self.ffn, train_frames = True, spec.frame_sets
        else:
            raise UsageError(f"--model {args.model}: give --frame-sets T T ... (FFN) or --frames T (one frame count)")
        if any(t <= 0 for t in train_frames):
            raise UsageError(f"frame counts must be positive, got {list(train_frames)}")
        if not self.ffn and args.adapters is not None:
            raise UsageError("--adapters needs --frame-sets: a single-frame-count model has no branches to adapt")
        self.train_frames = train_frames
        self.eval_frames = tuple(dict.fromkeys(args.eval_frames or train_frames))

        self.recipe_name = args.recipe or default_recipe(args.model) or "tsm"
        overrides = {k: v for k, v in (("epochs", args.epochs), ("lr_steps", args.lr_steps and tuple(args.lr_steps)),
                                       ("warmup_epochs", args.warmup_epochs), ("weight_decay", args.weight_decay),
                                       ("label_smoothing", args.label_smoothing)) if v is not None}
        if args.clip_grad is not None:
            overrides["clip_grad"] = args.clip_grad if args.clip_grad > 0 else None
        self.recipe = dataclasses.replace(RECIPES[self.recipe_name], **overrides)
        self.total_batch = args.batch_size * procs.world * args.accum_steps
        self.lr = args.lr if args.lr is not None else self.recipe.lr * self.total_batch / self.recipe.batch_size

        input_size = args.input_size or (spec.input_size if spec else 224)
        mean, std = (spec.mean, spec.std) if spec else (IMAGENET_MEAN, IMAGENET_STD)
        train_set, self.val_set, self.num_classes = _build_data(args, train_frames, self.eval_frames, input_size,
                                                                mean, std)
        _preflight(train_set, "training set")
        _preflight(self.val_set, "validation set")
        self.train_set = _SeededItems(train_set, args.seed)
        self.sampler = DistributedSampler(self.train_set, num_replicas=procs.world, rank=procs.rank, shuffle=True,
                                          seed=args.seed)
        self.steps_per_epoch = len(self.sampler) // args.batch_size // args.accum_steps
        if self.steps_per_epoch == 0:
            raise UsageError(f"{len(train_set)} training videos do not fill one step of --batch-size "
                             f"{args.batch_size} x {procs.world} processes x --accum-steps {args.accum_steps}")

        _seed_all(args.seed)  # the same initial weights on every rank
        self.model, self.arch = _build_model(args, self.recipe_name, self.recipe, self.num_classes,
                                             train_frames if self.ffn else None)
        self.init_report = init_from(self.model, args.init, self.arch) if args.init and not self.resume else None
        self.model.to(procs.device)
        if args.sync_bn:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.loss_fn = FFNLoss(kl_weight=args.kl_weight, label_smoothing=self.recipe.label_smoothing)
        groups = param_groups(self.model, self.recipe, self.lr)
        if self.recipe.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=self.recipe.momentum,
                                             nesterov=self.recipe.nesterov)
        else:
            self.optimizer = torch.optim.AdamW(groups, lr=self.lr, betas=self.recipe.betas)
        recipe, steps = self.recipe, self.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(recipe, s / steps))
        self.amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
        self.scaler = torch.amp.GradScaler(procs.device.type, enabled=args.amp == "fp16")
        self.net: nn.Module = _EveryFrameCount(self.model)
        if procs.world > 1:
            self.net = DistributedDataParallel(
                self.net, device_ids=[procs.device.index] if procs.device.type == "cuda" else None,
                find_unused_parameters=args.find_unused_parameters)

        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0
        self.step = 0  # optimizer steps so far
        self.best_top1: float | None = None
        self.best_epoch: int | None = None
        self.sums: dict[str, float] = {}  # this epoch's loss sums and micro-batch count
        self.last_result: dict[str, Any] | None = None
        self._rng: dict[str, Any] | None = None  # this rank's RNG state from the checkpoint

    def _resume_path(self, resume: str | None) -> Path | None:
        if resume == "auto":
            return self.out / "last.pt" if (self.out / "last.pt").is_file() else None
        if resume is not None:
            if not Path(resume).is_file():
                raise UsageError(f"--resume: checkpoint not found: {resume}")
            return Path(resume)
        if (self.out / "last.pt").exists():
            raise UsageError(f"{self.out} already holds a run (last.pt): pass --resume auto to continue it, "
                             "or choose another --out")
        return None

    # ---- checkpoints

    def config(self) -> dict[str, Any]:
        from ._version import __version__

        return {"args": _jsonable(self.args), "recipe_name": self.recipe_name,
                "recipe": dataclasses.asdict(self.recipe), "model": self.args.model, "ffn": self.ffn,
                "train_frames": list(self.train_frames), "num_classes": self.num_classes, "lr": self.lr,
                "total_batch": self.total_batch, "world_size": self.procs.world,
                "model_config": getattr(self.model, "frameflex_config", None), "frameflex_version": __version__}

    def state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "step": self.step,
                "best_top1": self.best_top1, "best_epoch": self.best_epoch, "sums": dict(self.sums),
                "rng": rng, "config": self.config()}

    def save(self, best: bool = False) -> None:
        """Write last.pt (and best.pt); every rank calls it, for its RNG state."""
        rng = self.procs.gather(_rng_state(self.procs.device))
        if self.procs.main:
            _atomic_save(self.state(rng), self.out / "last.pt")
            if best:
                _atomic_copy(self.out / "last.pt", self.out / "best.pt")

    def load(self, path: Path) -> None:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UsageError(f"--resume {path}: not a frameflex training checkpoint: {_one_line(e)}") from None
        if not isinstance(ckpt, dict) or "config" not in ckpt or "optimizer" not in ckpt:
            raise UsageError(f"--resume {path}: not a frameflex training checkpoint (use --init for weights only)")
        saved = ckpt["config"]
        for key, now in (("model", self.args.model), ("ffn", self.ffn), ("train_frames", list(self.train_frames)),
                         ("num_classes", self.num_classes)):
            if saved[key] != now:
                raise UsageError(f"--resume {path}: it was trained with {key}={saved[key]!r}, this run has {now!r}")
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise UsageError(f"--resume {path}: its weights do not fit the model: {_one_line(e)}") from None
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step_in_epoch, self.step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["step"]
        self.best_top1, self.best_epoch, self.sums = ckpt["best_top1"], ckpt["best_epoch"], dict(ckpt["sums"])
        if len(ckpt["rng"]) == self.procs.world and saved["total_batch"] == self.total_batch:
            self._rng = ckpt["rng"][self.procs.rank]

    def restore_rng(self) -> None:
        """Last thing before the first step, so that setting up the run cannot move the restored RNG.

        A fresh run (or one resumed with another world size or batch, whose data order
        changes anyway) seeds per rank: dropout differs between ranks, repeats between runs.
        """
        if self._rng is not None:
            _set_rng_state(self._rng, self.procs.device)
        else:
            _seed_all(self.args.seed * 1_000_003 + 7919 * self.procs.rank + self.step)

    # ---- training

    def batches(self, epoch: int, skip_steps: int) -> DataLoader:
        """This epoch's micro-batches (seeded order via set_epoch) after the first ``skip_steps`` steps."""
        self.sampler.set_epoch(epoch)
        self.train_set.epoch = epoch
        per_step = self.args.batch_size * self.args.accum_steps
        order = list(self.sampler)[skip_steps * per_step: self.steps_per_epoch * per_step]
        return DataLoader(self.train_set, batch_size=self.args.batch_size, sampler=order, drop_last=True,
                          num_workers=self.args.workers, collate_fn=collate_clips,
                          pin_memory=self.procs.device.type == "cuda",
                          generator=torch.Generator().manual_seed(self.args.seed + epoch))

    def train_epoch(self, epoch: int) -> None:
        args, procs = self.args, self.procs
        loader = self.batches(epoch, self.step_in_epoch)
        self.net.train()
        bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch, unit="step", leave=False,
                   desc=f"epoch {epoch + 1}/{self.recipe.epochs}", dynamic_ncols=True,
                   disable=not (procs.main and not args.no_progress))
        autocast = (torch.autocast(procs.device.type, dtype=self.amp) if self.amp is not None
                    else contextlib.nullcontext())
        try:
            for i, (clips, labels) in enumerate(loader):
                clips = {t: x.to(procs.device, non_blocking=True) for t, x in clips.items()}
                labels = labels.to(procs.device, non_blocking=True)
                final = (i + 1) % args.accum_steps == 0
                no_sync = self.net.no_sync() if procs.world > 1 and not final else contextlib.nullcontext()
                with no_sync:
                    with autocast:
                        outs = self.net(clips)
                    loss = self.loss_fn({t: z.float() for t, z in outs.items()}, labels)
                    if not torch.isfinite(loss):
                        parts = {k: round(v.item(), 4) for k, v in self.loss_fn.parts.items()}
                        raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {self.step + 1} "
                                                 f"({parts}): lower --lr, or use --amp bf16 instead of fp16")
                    self.scaler.scale(loss / args.accum_steps).backward()
                self.sums["loss"] = self.sums.get("loss", 0.0) + loss.item()
                for k, v in self.loss_fn.parts.items():
                    self.sums[k] = self.sums.get(k, 0.0) + v.item()
                self.sums["n"] = self.sums.get("n", 0.0) + 1
                if not final:
                    continue
                if self.recipe.clip_grad is not None:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip_grad)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                self.step += 1
                self.step_in_epoch += 1
                bar.update(1)
                bar.set_postfix_str(f"loss {self.sums['loss'] / self.sums['n']:.4f} lr {self.current_lr():.3g}")
                if args.save_every and self.step % args.save_every == 0 and self.step_in_epoch < self.steps_per_epoch:
                    self.save()
        finally:
            bar.close()

    def current_lr(self) -> float:
        """The base group's learning rate of the latest step."""
        return self.lr * lr_factor(self.recipe, max(self.step - 1, 0) / self.steps_per_epoch)

    def validate(self) -> dict[str, Any] | None:
        """Top-1/top-5 at every eval frame count; each rank scores its share, counts are summed."""
        if self.val_set is None:
            return None
        procs, args = self.procs, self.args
        share = Subset(self.val_set, range(procs.rank, len(self.val_set), procs.world))
        hits = [0.0] * (2 * len(self.eval_frames) + 1)
        if len(share):
            loader = DataLoader(share, batch_size=args.batch_size, num_workers=args.workers, collate_fn=collate_clips,
                                pin_memory=procs.device.type == "cuda", generator=torch.Generator())
            r = evaluate(self.model, loader, self.eval_frames, progress=procs.main and not args.no_progress)
            n = r["count"]
            hits = ([round(r["top1"][t] * n / 100) for t in self.eval_frames]
                    + [round(r["top5"][t] * n / 100) for t in self.eval_frames] + [n])
        hits = procs.sum(hits)
        n, k = int(hits[-1]), len(self.eval_frames)
        return {"top1": {t: 100 * hits[i] / n for i, t in enumerate(self.eval_frames)},
                "top5": {t: 100 * hits[k + i] / n for i, t in enumerate(self.eval_frames)}, "count": n}

    def end_epoch(self, epoch: int, seconds: float) -> None:
        """Validate, write last.pt (best.pt), log a table and a JSON line."""
        try:
            result = self.validate()
        except (FileNotFoundError, OSError) as e:  # a frame folder or file of the validation list
            raise UsageError(_one_line(e)) from None
        keys = sorted(self.sums)
        totals = dict(zip(keys, self.procs.sum([self.sums[k] for k in keys])))
        n = totals.pop("n", 0.0) or 1.0
        train = {k: v / n for k, v in totals.items()}
        self.epoch, self.step_in_epoch, self.sums = epoch + 1, 0, {}
        score = None
        if result is not None:
            score = sum(result["top1"].values()) / len(result["top1"])
            self.last_result = result
        best = score is not None and (self.best_top1 is None or score > self.best_top1)
        if best:
            self.best_top1, self.best_epoch = score, self.epoch
        self.save(best=best)
        if not self.procs.main:
            return
        record: dict[str, Any] = {"epoch": self.epoch, "step": self.step, "lr": self.current_lr(),
                                  "seconds": round(seconds, 2), "train": train}
        lines = [f"epoch {self.epoch}/{self.recipe.epochs}  step {self.step}  "
                 + "  ".join(f"{k} {v:.4f}" for k, v in train.items()) + f"  ({seconds:.1f} s)"]
        if result is not None:
            record["val"] = {"top1": {str(t): v for t, v in result["top1"].items()},
                             "top5": {str(t): v for t, v in result["top5"].items()},
                             "count": result["count"], "mean_top1": score}
            record["best_epoch"] = self.best_epoch
            lines += [f"validation, {result['count']} videos, mean top-1 {score:.2f}%"
                      + ("  (best so far: best.pt)" if best else ""), format_table(result)]
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        tqdm.write("\n".join(lines))

    def describe(self) -> str:
        r, a = self.recipe, self.args
        mode = (f"FFN at {list(self.train_frames)} frames" if self.ffn else f"one frame count ({self.train_frames[0]})")
        lr_from = ("--lr" if a.lr is not None
                   else f"{r.lr:g} x {self.total_batch}/{r.batch_size} videos per step")
        sched = (f"x0.1 at epochs {list(r.lr_steps)}" if r.schedule == "step" else f"cosine to {self.lr * r.min_lr / r.lr:.3g}")
        warm = f", {r.warmup_epochs:g}-epoch warm-up" if r.warmup_epochs else ""
        return (f"{a.model} ({'zoo' if self.arch else 'custom'}), {self.num_classes} classes, {mode}; "
                f"{len(self.train_set)} training videos, {self.procs.world} process(es) on {self.procs.device}, "
                f"{a.batch_size} per process x {a.accum_steps} accumulation = {self.total_batch} per step, "
                f"{self.steps_per_epoch} steps per epoch\n"
                f"recipe {self.recipe_name}: {r.optimizer} lr {self.lr:.4g} ({lr_from}), {sched}{warm}, "
                f"{r.epochs} epoch{'s' * (r.epochs != 1)}, weight decay {r.weight_decay:g}, amp {a.amp}")


def _init_summary(report: InitReport, path: str) -> str:
    def keys(name: str) -> str:
        items = getattr(report, name)
        listed = f" ({', '.join(items[:6])}{' ...' if len(items) > 6 else ''})" if items else ""
        return f"{name} {len(items)}{listed}"

    return (f"init: {len(report.loaded)} tensors of {path} ({report.layout} layout) copied into every "
            f"frame count's branch; {keys('missing')}; {keys('unexpected')}; {keys('skipped')}")


# --------------------------------------------------------------------------- command line


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``frameflex train``'s arguments to ``p`` (shared by the CLI and examples/train.py)."""
    m = p.add_argument_group("model")
    m.add_argument("--model", required=True,
                   help="zoo name (tsm_r50, tea_r50, slowfast_r50, uniformer_s, ...) or your builder as "
                        "package.module:function or path/file.py:function, returning an nn.Module that maps "
                        "(B, C, T, H, W) to logits (called with num_classes= if it takes it)")
    frames = m.add_mutually_exclusive_group()
    frames.add_argument("--frame-sets", type=int, nargs="+", metavar="T",
                        help="FFN: train these frame counts together, e.g. 4 8 16 (default for zoo models: the "
                             "paper's L/M/H)")
    frames.add_argument("--frames", type=int, metavar="T", help="train a plain model at this one frame count (CE)")
    m.add_argument("--adapters", nargs="+", metavar="A", default=None,
                   help="FFN adapters: none, auto, or module names/regexes (default: the zoo preset; none for "
                        "custom models)")
    m.add_argument("--num-classes", type=int, default=None, help="default: max label + 1 of the lists (synthetic: 8)")
    m.add_argument("--model-kwargs", nargs="+", default=[], metavar="KEY=VALUE",
                   help="extra builder arguments, VALUE as JSON (e.g. width=32)")
    m.add_argument("--pretrained", action="store_true",
                   help="start from the zoo's published weights (tsm_r50: ImageNet via timm; needs the network or "
                        "timm's cache)")
    m.add_argument("--init", default=None, metavar="PATH",
                   help="initialise every branch from a checkpoint of the plain model (.safetensors/.pth/.pt, "
                        "or an official TSM/TEA/SlowFast/UniFormer file for zoo models)")
    m.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes (CUDA only)")

    d = p.add_argument_group("data")
    d.add_argument("--list", default=None, metavar="FILE",
                   help="training list, TSM format: 'frames_dir num_frames label' per line")
    d.add_argument("--root", default=None, metavar="DIR",
                   help="folder of the frame folders (default: the list's folder)")
    d.add_argument("--val-list", default=None, metavar="FILE", help="validation list (evaluated every epoch)")
    d.add_argument("--val-root", default=None, metavar="DIR", help="frame folders of --val-list (default: --root)")
    d.add_argument("--image-tmpl", default="{:05d}.jpg",
                   help="frame file names (default {:05d}.jpg, Something-Something; Kinetics: img_{:05d}.jpg)")
    d.add_argument("--index-base", type=int, default=1, help="number of the first frame file (default 1)")
    d.add_argument("--flip", action="store_true",
                   help="random horizontal flips (Kinetics; never for Something-Something: left/right are classes)")
    d.add_argument("--synthetic", action="store_true", help="train on frameflex.SyntheticMotion (smoke tests)")
    d.add_argument("--synthetic-videos", type=int, default=64, help="synthetic training videos (default 64)")
    d.add_argument("--synthetic-val-videos", type=int, default=32, help="synthetic validation videos (default 32)")
    d.add_argument("--input-size", type=int, default=None, help="crop size (default: the arch's; custom 224)")
    d.add_argument("--eval-frames", type=int, nargs="+", metavar="T", default=None,
                   help="frame counts to evaluate (default: the trained ones); others use the nearest branch")
    d.add_argument("--batch-size", type=int, default=8, help="videos per process per micro-step (default 8)")
    d.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader workers per process")

    r = p.add_argument_group("recipe (defaults from --recipe; flags override)")
    r.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="official recipe (default: the model's family; custom models: tsm)")
    r.add_argument("--epochs", type=int, default=None)
    r.add_argument("--lr", type=float, default=None,
                   help="peak learning rate as is (default: the recipe's, scaled linearly with the total batch)")
    r.add_argument("--lr-steps", type=int, nargs="+", default=None, metavar="EPOCH", help="step schedule: x0.1 at each")
    r.add_argument("--warmup-epochs", type=float, default=None)
    r.add_argument("--weight-decay", type=float, default=None)
    r.add_argument("--dropout", type=float, default=None, help="builder argument dropout (before the classifier)")
    r.add_argument("--drop-path", type=float, default=None, help="builder argument drop_path_rate")
    r.add_argument("--label-smoothing", type=float, default=None)
    r.add_argument("--clip-grad", type=float, default=None, help="max gradient norm; 0 turns clipping off")
    r.add_argument("--kl-weight", type=float, default=1.0, help="FFN's lambda on the KL terms (default 1)")

    x = p.add_argument_group("run")
    x.add_argument("--out", default=None, metavar="DIR",
                   help="checkpoints (last.pt, best.pt), log.jsonl, args.json, Hub folder model/ (default runs/MODEL)")
    x.add_argument("--resume", default=None, metavar="PATH|auto",
                   help="continue a run from its checkpoint (auto: OUT/last.pt if it exists, else start afresh); "
                        "optimizer and schedule continue as saved, --epochs may grow")
    x.add_argument("--save-every", type=int, default=0, metavar="N", help="also write last.pt every N steps")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--amp", choices=("bf16", "fp16", "none"), default=None,
                   help="mixed precision (default: bf16 on CUDA, none on CPU; fp16 uses a GradScaler)")
    x.add_argument("--accum-steps", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    x.add_argument("--device", default="auto", help="cpu, cuda (torchrun: cuda:LOCAL_RANK); default: cuda if available")
    x.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    x.add_argument("--find-unused-parameters", action="store_true",
                   help="DDP: for custom models whose forward leaves some parameters unused")
    x.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def _check_args(args: argparse.Namespace, procs: _Procs) -> None:
    positive = ("batch_size", "accum_steps", "epochs", "threads", "input_size", "num_classes", "synthetic_videos",
                "synthetic_val_videos", "lr", "frames")
    for name in positive:
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
    for name in ("workers", "save_every", "weight_decay", "warmup_epochs", "dropout", "drop_path",
                 "label_smoothing", "kl_weight"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    for name in ("frame_sets", "eval_frames", "lr_steps"):
        values = getattr(args, name)
        if values is not None and any(v <= 0 for v in values):
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {values}")
    if args.amp is None:
        args.amp = "bf16" if procs.device.type == "cuda" else "none"
    if args.amp == "fp16" and procs.device.type != "cuda":
        raise UsageError("--amp fp16 needs CUDA; use --amp bf16 or none on the CPU")
    if args.sync_bn and procs.device.type != "cuda":
        raise UsageError("--sync-bn needs CUDA (torch's SyncBatchNorm runs on GPUs only)")
    if args.synthetic and (args.list is not None or args.val_list is not None):
        raise UsageError("give either --list/--val-list or --synthetic, not both")


def run(args: argparse.Namespace) -> int:
    """Execute ``frameflex train`` for parsed ``args``; returns the exit status (2: bad input)."""
    if args.threads is not None and args.threads > 0:
        torch.set_num_threads(args.threads)
    procs: _Procs | None = None
    try:
        procs = _start_processes(args.device)
        _check_args(args, procs)
        return _train(_Trainer(args, procs))
    except UsageError as e:
        if procs is None or procs.main:
            print(f"frameflex train: error: {_one_line(e)}", file=sys.stderr, flush=True)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(t: _Trainer) -> int:
    args, procs = t.args, t.procs
    if procs.main:
        t.out.mkdir(parents=True, exist_ok=True)
    if procs.world > 1:
        dist.barrier()
    if t.resume is not None:
        t.load(t.resume)
    say = tqdm.write if procs.main else (lambda *_: None)
    say(t.describe())
    if t.init_report is not None:
        say(_init_summary(t.init_report, args.init))
    if t.resume is not None:
        say(f"resumed {t.resume}: {t.epoch} epochs and {t.step_in_epoch} steps done (step {t.step})"
            + ("" if t._rng is not None else "; another world size or batch: data order and RNG start afresh"))
    if procs.main:
        (t.out / "args.json").write_text(json.dumps(t.config(), indent=2, default=str) + "\n")
    t.restore_rng()
    for epoch in range(t.epoch, t.recipe.epochs):
        start = time.perf_counter()
        try:
            t.train_epoch(epoch)
        except (FileNotFoundError, OSError) as e:  # a frame folder or file named in the list is missing or broken
            raise UsageError(_one_line(e)) from None
        t.end_epoch(epoch, time.perf_counter() - start)
    if procs.main:
        if t.best_epoch is not None:
            say(f"best mean top-1 {t.best_top1:.2f}% at epoch {t.best_epoch} ({t.out / 'best.pt'})")
        if t.arch is not None:
            results = ({"top1": {str(k): round(v, 2) for k, v in t.last_result["top1"].items()}}
                       if t.last_result else None)
            folder = save_pretrained(t.model, t.out / "model", results=results)
            say(f"final model: {folder} (ff.from_pretrained); full training state: {t.out / 'last.pt'}")
        else:
            say(f"final weights: {t.out / 'last.pt'} (key 'model'; load with torch.load(weights_only=True))")
    return 0


def build_parser(prog: str = "frameflex train") -> argparse.ArgumentParser:
    """The standalone parser of :func:`main`."""
    return add_arguments(argparse.ArgumentParser(
        prog=prog, description="Train a frame-flexible (FFN) video model, or a plain one at one frame count, "
        "with the official recipes; runs as is on one CPU/GPU or on many through torchrun."))


def main(argv: Sequence[str] | None = None, prog: str = "frameflex train") -> int:
    """``frameflex train`` / ``examples/train.py``; returns the exit status.

    Example:
        >>> main(["--model", "tsm_tiny", "--synthetic", "--epochs", "1", "--out", "runs/smoke"])  # doctest: +SKIP
        0
    """
    return run(build_parser(prog).parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
