"""Real video datasets stored as JPEG frames, in TSM's list format, plus the standard transforms.

One reader serves both evaluation and training: :class:`VideoList` reads the
list files of the TSM / TSN / FFN code bases (``frames_dir num_frames label``
per line), samples one clip per frame count with :mod:`frameflex.data`'s
segment sampling, decodes only the frames those clips need, and applies ONE
spatial transform to all of them (FFN's clips of one video share their crop).

:func:`eval_transform` and :func:`train_transform` are TSM's test and training
pipelines (resize 256 + centre crop 224; multi-scale corner crop + flip)
rebuilt on ``torchvision.transforms.v2`` so that one call on a (N, C, H, W)
frame stack draws one set of random parameters for every frame.
:func:`transforms_for` picks the input size and normalisation of a zoo arch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Union

import torch
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as TF
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from . import _checks
from .data import MultiFrameClips, Sampler
from .models._registry import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, get_spec

__all__ = [
    "VideoRecord",
    "VideoList",
    "MultiScaleCrop",
    "eval_transform",
    "train_transform",
    "transforms_for",
]

PathLike = Union[str, os.PathLike]


class VideoRecord(NamedTuple):
    """One line of a list file: where the frames are, how many, which class, and where it was read."""

    path: Path  # the frames directory, resolved against the dataset root
    num_frames: int
    label: int
    line: int  # 1-based line number in the list file, for error messages


def _parse_list(list_file: Path, root: Path) -> list[VideoRecord]:
    if not list_file.is_file():
        what = "is a directory, not a file" if list_file.is_dir() else "not found"
        raise FileNotFoundError(f"video list file {what}: {list_file}")
    records = []
    with open(list_file, encoding="utf-8") as f:
        for n, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue  # blank lines (e.g. a trailing newline) are harmless
            where = f"{list_file}, line {n}"
            fields = line.split()
            if len(fields) != 3:
                raise ValueError(f"{where}: expected 3 fields 'frames_dir num_frames label', "
                                 f"got {len(fields)}: {line!r}")
            directory, frames, label = fields
            try:
                num_frames = int(frames)
            except ValueError:
                raise ValueError(f"{where}: num_frames must be an int, got {frames!r} in {line!r}") from None
            try:
                label_ = int(label)
            except ValueError:
                raise ValueError(f"{where}: label must be an int, got {label!r} in {line!r}") from None
            if num_frames <= 0:
                raise ValueError(f"{where}: num_frames must be positive, got {num_frames} in {line!r}")
            if label_ < 0:
                raise ValueError(f"{where}: label must be >= 0, got {label_} in {line!r}")
            records.append(VideoRecord(root / directory, num_frames, label_, n))
    if not records:
        raise ValueError(f"video list file has no videos: {list_file}")
    return records


class VideoList(torch.utils.data.Dataset):
    """Videos stored as folders of JPEG frames, listed in TSM's format; items are ``({T: clip}, label)``.

    Each line of ``list_file`` is ``frames_dir num_frames label`` (whitespace
    separated). ``frames_dir`` is relative to ``root`` (default: the list
    file's folder) unless absolute; its frames are ``image_tmpl.format(i)``
    for ``i = index_base, ..., index_base + num_frames - 1`` (TSM: ``img_{:05d}.jpg``
    from 1 for Kinetics, ``{:05d}.jpg`` from 1 for Something-Something).

    For each video, one clip per frame count is sampled by :class:`frameflex.MultiFrameClips`
    (TSN segment sampling: a random frame per segment with ``train=True``, the
    centre frame otherwise), only the union of the sampled frames is decoded
    (PIL, RGB, float in [0, 1]), and ``transform`` runs once on that (N, C, H, W)
    stack so every clip gets the same crop and flip. Clips are (C, T, H, W).

    The list is checked when the dataset is built (each bad line is an error
    naming the file and line); frame folders and files are checked when a video
    is loaded, and errors name the missing path and its list line.

    Args:
        list_file: the list file.
        root: folder that ``frames_dir`` entries are relative to.
        frame_sets: frame counts to return, e.g. ``(4, 8, 16)``.
        train: random (training) or centre (test) sampling.
        transform: callable on a float (N, C, H, W) stack in [0, 1], e.g.
            :func:`eval_transform` / :func:`train_transform` / :func:`transforms_for`.
            Without one, frames keep their size, so a DataLoader can batch only
            videos of equal frame size.
        image_tmpl: frame file name template, formatted with the frame number.
        index_base: number of the first frame file (1 in TSM's frame folders).
        sampler: ``"segment"``, ``"uniform"`` or a callable, as in :class:`frameflex.MultiFrameClips`.
        generator: torch generator for the sampling; leave None with DataLoader
            workers (each worker seeds the global RNG differently, a generator
            would be copied into every worker).

    Example:
        >>> ds = VideoList("sthv1/val_videofolder.txt", root="sthv1/frames", frame_sets=(4, 8, 16),
        ...                transform=transforms_for("tsm_r50", train=False))
        >>> clips, label = ds[0]
        >>> tuple(clips[8].shape)
        (3, 8, 224, 224)
        >>> loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=ff.collate_clips)
    """

    def __init__(
        self,
        list_file: PathLike,
        root: PathLike | None = None,
        frame_sets: Iterable[int] = (4, 8, 16),
        train: bool = False,
        transform: Callable[[Tensor], Tensor] | None = None,
        image_tmpl: str = "{:05d}.jpg",
        index_base: int = 1,
        sampler: Union[str, Sampler] = "segment",
        generator: torch.Generator | None = None,
    ) -> None:
        if isinstance(index_base, bool) or not isinstance(index_base, int) or index_base < 0:
            raise ValueError(f"index_base must be an int >= 0, got {index_base!r}")
        try:
            image_tmpl.format(index_base)
        except (AttributeError, IndexError, KeyError, ValueError) as e:
            raise ValueError(f"image_tmpl must be a format string with one positional field such as "
                             f"'{{:05d}}.jpg', got {image_tmpl!r} ({type(e).__name__}: {e})") from None
        self.list_file = Path(list_file)
        self.root = Path(root) if root is not None else self.list_file.parent
        self.image_tmpl = image_tmpl
        self.index_base = index_base
        self.transform = transform
        self.clips = MultiFrameClips(frame_sets, train=train, sampler=sampler, transform=None,
                                     generator=generator)
        self.records = _parse_list(self.list_file, self.root)

    @property
    def frame_sets(self) -> tuple[int, ...]:
        """The frame counts each item has a clip for."""
        return self.clips.frame_sets

    @property
    def train(self) -> bool:
        return self.clips.train

    @property
    def labels(self) -> list[int]:
        """The label of every video, in list order."""
        return [r.label for r in self.records]

    @property
    def num_classes(self) -> int:
        """``max(label) + 1``: the classifier size the list implies (classes absent from it included)."""
        return max(self.labels) + 1

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return (f"VideoList({str(self.list_file)!r}, root={str(self.root)!r}, videos={len(self)}, "
                f"frame_sets={self.frame_sets}, train={self.train}, image_tmpl={self.image_tmpl!r}, "
                f"index_base={self.index_base})")

    def frame_path(self, record: VideoRecord, index: int) -> Path:
        """The file of 0-based frame ``index`` of ``record``."""
        return record.path / self.image_tmpl.format(index + self.index_base)

    def load_frames(self, record: VideoRecord, indices: Sequence[int] | Tensor) -> Tensor:
        """Decode the given 0-based frames of one video: float (N, 3, H, W) in [0, 1]."""
        if not record.path.is_dir():
            raise FileNotFoundError(f"frames directory not found: {record.path} "
                                    f"({self.list_file}, line {record.line})")
        frames = []
        for i in torch.as_tensor(indices).tolist():
            path = self.frame_path(record, i)
            try:
                with Image.open(path) as img:
                    frame = TF.pil_to_tensor(img.convert("RGB"))
            except FileNotFoundError:
                raise FileNotFoundError(f"frame file not found: {path} (frame {i + 1} of {record.num_frames}; "
                                        f"{self.list_file}, line {record.line})") from None
            except (UnidentifiedImageError, OSError) as e:
                raise OSError(f"cannot decode frame file {path} ({self.list_file}, line {record.line}): "
                              f"{e}") from None
            if frames and frame.shape != frames[0].shape:
                raise ValueError(f"frame file {path} is {tuple(frame.shape[1:])} (H, W), but the earlier frames "
                                 f"of {record.path} are {tuple(frames[0].shape[1:])}")
            frames.append(frame)
        return torch.stack(frames).float().div_(255)

    def __getitem__(self, index: int) -> tuple[dict[int, Tensor], int]:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"VideoList index must be an int, got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a VideoList of {len(self)} videos")
        record = self.records[index]
        per_t = self.clips.indices(record.num_frames)
        union = torch.unique(torch.cat(list(per_t.values())))  # sorted: each needed frame decoded once
        frames = self.load_frames(record, union)
        if self.transform is not None:
            frames = self.transform(frames)
            if not isinstance(frames, Tensor) or frames.dim() != 4 or frames.shape[0] != union.numel():
                got = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
                raise ValueError(f"transform must map (N, C, H, W) to (N, C, H', W'), got {got} "
                                 f"for N={union.numel()}")
        clips = {t: frames[torch.searchsorted(union, idx)].transpose(0, 1).contiguous() for t, idx in per_t.items()}
        return clips, record.label


# --------------------------------------------------------------------------- transforms


def _check_stats(mean: Sequence[float], std: Sequence[float]) -> tuple[list[float], list[float]]:
    mean, std = [float(m) for m in mean], [float(s) for s in std]
    if len(mean) != len(std) or not mean:
        raise ValueError(f"mean and std must have one value per channel, got {mean} and {std}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive, got {std}")
    return mean, std


class MultiScaleCrop(v2.Transform):
    """TSM's ``GroupMultiScaleCrop``: a corner/centre crop of a random scale, resized to ``size``.

    The crop side is ``int(min(H, W) * s)`` for a scale ``s`` in ``scales``, drawn
    independently for height and width among scale pairs at most ``max_distort``
    steps apart (sides within 2 px of ``size`` snap to it); the crop sits at one
    of 13 fixed positions (corners, centre, edge centres, quarter points), then
    is resized to ``size`` x ``size``. One draw per call, applied to every frame.

    Example:
        >>> crop = MultiScaleCrop(224)
        >>> crop(torch.rand(8, 3, 256, 340)).shape
        torch.Size([8, 3, 224, 224])
    """

    def __init__(self, size: int, scales: Sequence[float] = (1, 0.875, 0.75, 0.66), max_distort: int = 1,
                 antialias: bool = True) -> None:
        super().__init__()
        self.size = _checks.positive_int(size, "size")
        scales = tuple(float(s) for s in scales)
        if not scales or any(not 0 < s <= 1 for s in scales):
            raise ValueError(f"scales must be non-empty and in (0, 1], got {scales}")
        if isinstance(max_distort, bool) or not isinstance(max_distort, int) or max_distort < 0:
            raise ValueError(f"max_distort must be an int >= 0, got {max_distort!r}")
        self.scales = scales
        self.max_distort = max_distort
        self.antialias = antialias

    def crop_params(self, height: int, width: int) -> dict[str, int]:
        """One random crop ``{top, left, height, width}`` for an image of that size."""
        base = min(height, width)
        sides = [int(base * s) for s in self.scales]
        sides = [self.size if abs(x - self.size) < 3 and self.size <= base else max(x, 1) for x in sides]
        pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= self.max_distort]
        crop_h, crop_w = pairs[int(torch.randint(len(pairs), ()))]
        h_step, w_step = (height - crop_h) // 4, (width - crop_w) // 4
        offsets = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2),  # corners and centre, as (y, x) steps
                   (2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        dy, dx = offsets[int(torch.randint(len(offsets), ()))]
        return {"top": dy * h_step, "left": dx * w_step, "height": crop_h, "width": crop_w}

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        from torchvision.transforms.v2._utils import query_size

        return self.crop_params(*query_size(flat_inputs))

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return TF.resized_crop(inpt, **params, size=[self.size, self.size], antialias=self.antialias)

    # torchvision < 0.21 names these hooks with a leading underscore.
    _get_params = make_params
    _transform = transform

    def extra_repr(self) -> str:
        return f"size={self.size}, scales={self.scales}, max_distort={self.max_distort}"


def eval_transform(input_size: int = 224, resize: int | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                   std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """The standard 1-clip test pipeline: shorter side to ``resize``, centre crop, normalise.

    ``resize`` defaults to ``input_size * 256 / 224`` (256 for 224, as in TSM's
    ``scale_size``). Input: a (N, C, H, W) stack, float in [0, 1] or uint8.

    Example:
        >>> t = eval_transform(224)
        >>> t(torch.rand(8, 3, 100, 176)).shape
        torch.Size([8, 3, 224, 224])
    """
    _checks.positive_int(input_size, "input_size")
    resize = _checks.positive_int(resize if resize is not None else input_size * 256 // 224, "resize")
    if resize < input_size:
        raise ValueError(f"resize ({resize}) must be >= input_size ({input_size}) for a centre crop")
    mean, std = _check_stats(mean, std)
    return v2.Compose([
        v2.Resize(resize, antialias=True),
        v2.CenterCrop(input_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def train_transform(input_size: int = 224, mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD, scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
                    flip: bool = True) -> v2.Compose:
    """TSM's training augmentation: :class:`MultiScaleCrop`, horizontal flip, normalise.

    Set ``flip=False`` for Something-Something, where "left to right" and
    "right to left" are different classes (TSM does the same). One call draws
    one crop and one flip for the whole (N, C, H, W) stack.

    Example:
        >>> t = train_transform(224, flip=False)
        >>> t(torch.rand(16, 3, 100, 132)).shape
        torch.Size([16, 3, 224, 224])
    """
    mean, std = _check_stats(mean, std)
    steps: list[Callable] = [MultiScaleCrop(input_size, scales)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)


def transforms_for(arch_or_spec: Union[str, ModelSpec, torch.nn.Module], train: bool = False,
                   **kwargs: Any) -> v2.Compose:
    """:func:`eval_transform` or :func:`train_transform` with a zoo arch's input size, mean and std.

    ``arch_or_spec`` is a zoo name, a :class:`ModelSpec`, or a model built by
    ``ff.create_model`` / ``ff.from_pretrained``. ``kwargs`` go to the transform
    (e.g. ``flip=False``, ``resize=...``) and override the arch's values.

    Example:
        >>> t = transforms_for("slowfast_r50", train=True, flip=False)  # mean 0.45, std 0.225
    """
    if isinstance(arch_or_spec, torch.nn.Module):
        config = getattr(arch_or_spec, "frameflex_config", None)
        if not config or "architecture" not in config:
            raise ValueError(f"{type(arch_or_spec).__name__} was not built by ff.create_model, so its arch is "
                             "unknown: pass the arch name, or build the transform with eval_transform(...)")
        arch_or_spec = config["architecture"]
    spec = get_spec(arch_or_spec) if isinstance(arch_or_spec, str) else arch_or_spec
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"arch_or_spec must be a zoo name, a ModelSpec or a zoo model, "
                        f"got {type(arch_or_spec).__name__}")
    kw = {"input_size": spec.input_size, "mean": spec.mean, "std": spec.std, **kwargs}
    return train_transform(**kw) if train else eval_transform(**kw)
