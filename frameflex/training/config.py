"""TrainConfig: everything one ``frameflex train`` run depends on, checked when it is built."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .. import _checks
from ..errors import ArgumentError, ArgumentTypeError, UsageError

__all__ = ["TrainConfig", "UsageError"]


@dataclass(frozen=True)
class TrainConfig:
    """The settings of a training run; ``None`` means "the recipe's / the model's default".

    Frozen and checked in ``__post_init__``: a bad value raises :class:`UsageError`
    naming the flag; nothing is changed or filled in here (the run derives defaults
    such as ``amp`` from the device without touching the config).

    Example:
        >>> cfg = TrainConfig(model="tsm_tiny", synthetic=True, epochs=2, out="runs/demo")
        >>> dataclasses.replace(cfg, batch_size=0)
        Traceback (most recent call last):
        ...
        frameflex.errors.UsageError: --batch-size must be a positive int, got 0
    """

    # model
    model: str
    frame_sets: tuple[int, ...] | None = None  # FFN at these counts (zoo default: the paper's L/M/H)
    frames: int | None = None  # a plain model at one count
    adapters: tuple[str, ...] | None = None  # ("none",), ("auto",) or names/patterns; None: the zoo preset
    num_classes: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    init: str | None = None
    sync_bn: bool = False
    # data
    list: str | None = None
    root: str | None = None
    val_list: str | None = None
    val_root: str | None = None
    image_tmpl: str = "{:05d}.jpg"
    index_base: int = 1
    decoder: str = "auto"  # video files: "auto", "torchcodec" or "pyav"
    nested: bool = False  # the smaller frame counts reuse the largest one's segments (one decode)
    bad_videos: str = "error"  # missing videos found before training: "error" or "skip"
    flip: bool = False
    synthetic: bool = False
    synthetic_videos: int = 64
    synthetic_val_videos: int = 32
    input_size: int | None = None
    eval_frames: tuple[int, ...] | None = None
    batch_size: int = 8
    workers: int = 0
    # recipe overrides
    recipe: str | None = None
    epochs: int | None = None
    lr: float | None = None
    lr_steps: tuple[int, ...] | None = None
    warmup_epochs: float | None = None
    weight_decay: float | None = None
    dropout: float | None = None
    drop_path: float | None = None
    label_smoothing: float | None = None
    clip_grad: float | None = None  # 0: no clipping
    kl_weight: float = 1.0
    # run
    out: str | None = None
    resume: str | None = None  # a path, or "auto"
    save_every: int = 0
    seed: int = 0
    amp: str | None = None  # "bf16", "fp16", "none"; None: bf16 on CUDA, none on CPU
    accum_steps: int = 1
    device: str = "auto"
    threads: int | None = None
    find_unused_parameters: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        def flag(name: str) -> str:
            return "--" + name.replace("_", "-")

        try:  # the package's one set of argument checks, reported as a CLI error
            for name in ("batch_size", "accum_steps", "epochs", "threads", "input_size", "num_classes",
                         "synthetic_videos", "synthetic_val_videos", "frames"):
                if getattr(self, name) is not None:
                    _checks.positive_int(getattr(self, name), flag(name))
            for name in ("workers", "save_every", "weight_decay", "warmup_epochs", "dropout", "drop_path",
                         "label_smoothing", "kl_weight", "clip_grad"):
                if getattr(self, name) is not None:
                    _checks.nonnegative(getattr(self, name), flag(name))
            for name in ("frame_sets", "eval_frames"):
                if getattr(self, name) is not None:
                    _checks.frame_sets(getattr(self, name), flag(name))
            if self.lr_steps is not None:
                for step in self.lr_steps:
                    _checks.positive_int(step, "--lr-steps entry")
            if self.lr is not None and not self.lr > 0:
                raise ArgumentError(f"--lr must be positive, got {self.lr}")
        except (ArgumentError, ArgumentTypeError) as e:
            raise UsageError(str(e)) from None
        if self.frames is not None and self.frame_sets is not None:
            raise UsageError("give either --frame-sets (FFN) or --frames (one frame count), not both")
        if self.frames is not None and self.adapters is not None:
            raise UsageError("--adapters needs --frame-sets: a single-frame-count model has no branches to adapt")
        if self.bad_videos not in ("error", "skip"):
            raise UsageError(f"--bad-videos must be error or skip, got {self.bad_videos!r}")
        if self.decoder not in ("auto", "torchcodec", "pyav"):
            raise UsageError(f"--decoder must be auto, torchcodec or pyav, got {self.decoder!r}")
        if self.amp not in (None, "bf16", "fp16", "none"):
            raise UsageError(f"--amp must be bf16, fp16 or none, got {self.amp!r}")
        if self.synthetic and (self.list is not None or self.val_list is not None):
            raise UsageError("give either --list/--val-list or --synthetic, not both")
        if self.synthetic and self.flip:
            raise UsageError("--flip with --synthetic: a flip turns 'left' into 'right', the labels would lie")
        if not self.synthetic and self.list is None:
            raise UsageError("no training data: give --list FILE (a video or frame list) or --synthetic")
        if self.frames is None and self.frame_sets is None and ":" in self.model:
            raise UsageError(f"--model {self.model}: give --frame-sets T T ... (FFN) or --frames T (one frame count)")

    @property
    def ffn(self) -> bool:
        """FFN training (several frame counts, FFNLoss) rather than one frame count with cross-entropy."""
        return self.frames is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (tuples as lists), as saved in ``args.json`` and every checkpoint."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
