"""Real video datasets (video files or JPEG frames, in the common list formats) and the standard transforms.

One reader serves both evaluation and training: :func:`video_dataset` recognises
the list format and returns :class:`VideoFiles` (mmaction2 video lists, Kinetics
CSVs, Something-Something V2 JSON; decoded by :mod:`frameflex.video`) or
:class:`VideoList` (TSM / TSN / FFN frame lists, ``frames_dir num_frames label``).
Both sample one clip per frame count with :mod:`frameflex.data`'s segment
sampling, decode only the frames those clips need, and apply ONE spatial
transform to all of them (FFN's clips of one video share their crop).

:func:`eval_transform` and :func:`train_transform` are TSM's test and training
pipelines (resize 256 + centre crop 224; multi-scale corner crop + flip)
rebuilt on ``torchvision.transforms.v2`` so that one call on a (N, C, H, W)
frame stack draws one set of random parameters for every frame.
:func:`transforms_for` picks the input size and normalisation of a zoo arch.
"""

from __future__ import annotations

import csv
import io
import json
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
from ._files import read_json, read_text
from .data import MultiFrameClips, Sampler, SkippedVideo, as_frames
from .errors import ArgumentError, DataError, NotFoundError
from .models._registry import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, get_spec
from .video import VideoDecoder

__all__ = [
    "VideoRecord",
    "VideoList",
    "VideoFiles",
    "video_dataset",
    "list_format",
    "MultiScaleCrop",
    "ThreeCrop",
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
    for n, line in _lines(list_file):
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


class _ClipDataset(torch.utils.data.Dataset):
    """What the frame-folder and the video-file datasets share: the list, the records, the clips."""

    records: list[VideoRecord]

    def __init__(self, list_file: PathLike, root: PathLike | None, frame_sets: Iterable[int], train: bool,
                 transform: Callable[[Tensor], Tensor] | None, sampler: Union[str, Sampler],
                 generator: torch.Generator | None, nested: bool, num_clips: int) -> None:
        self.list_file = Path(list_file)
        self.root = Path(root) if root is not None else self.list_file.parent
        self.clips = MultiFrameClips(frame_sets, train=train, sampler=sampler, transform=transform,
                                     generator=generator, nested=nested, num_clips=num_clips)

    @property
    def frame_sets(self) -> tuple[int, ...]:
        """The frame counts each item has a clip for."""
        return self.clips.frame_sets

    @property
    def train(self) -> bool:
        return self.clips.train

    @property
    def transform(self) -> Callable[[Tensor], Tensor] | None:
        """The spatial transform, run once per video on all its sampled frames."""
        return self.clips.transform

    @transform.setter
    def transform(self, value: Callable[[Tensor], Tensor] | None) -> None:
        self.clips.transform = value

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

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"{type(self).__name__} index must be an int, got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a {type(self).__name__} of {len(self)} videos")
        return index

    def _clips(self, num_frames: int, load: Callable[[Tensor], Tensor]) -> dict[int, Tensor]:
        per_t = self.clips.indices(num_frames)
        union = torch.unique(torch.cat([i.reshape(-1) for i in per_t.values()]))  # sorted: each frame read once
        return self.clips.clips(load(union), union, per_t)


class VideoList(_ClipDataset):
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
        nested: one draw of the largest frame count shared by the others (16 frames
            read for (4, 8, 16), not 28); see :class:`frameflex.MultiFrameClips`.
        num_clips: temporal test views per video; with more than one view
            (clips x crops of a 3-crop ``transform``) each clip is (V, C, T, H, W).

    Example:
        >>> ds = VideoList("sthv1/val_videofolder.txt", root="sthv1/frames", frame_sets=(4, 8, 16),  # doctest: +SKIP
        ...                transform=transforms_for("tsm_r50", train=False))
        >>> clips, label = ds[0]  # doctest: +SKIP
        >>> tuple(clips[8].shape)  # doctest: +SKIP
        (3, 8, 224, 224)
        >>> loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=ff.collate_clips)  # doctest: +SKIP
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
        nested: bool = False,
        num_clips: int = 1,
    ) -> None:
        if isinstance(index_base, bool) or not isinstance(index_base, int) or index_base < 0:
            raise ValueError(f"index_base must be an int >= 0, got {index_base!r}")
        try:
            image_tmpl.format(index_base)
        except (AttributeError, IndexError, KeyError, ValueError) as e:
            raise ValueError(f"image_tmpl must be a format string with one positional field such as "
                             f"'{{:05d}}.jpg', got {image_tmpl!r} ({type(e).__name__}: {e})") from None
        super().__init__(list_file, root, frame_sets, train, transform, sampler, generator, nested, num_clips)
        self.image_tmpl = image_tmpl
        self.index_base = index_base
        self.records = _parse_list(self.list_file, self.root)

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
            hint = " (it is a file: list video files as 'path label' lines)" if record.path.is_file() else ""
            raise FileNotFoundError(f"frames directory not found: {record.path} "
                                    f"({self.list_file}, line {record.line}){hint}")
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
        record = self.records[self._check_index(index)]
        return self._clips(record.num_frames, lambda idx: self.load_frames(record, idx)), record.label


# --------------------------------------------------------------------------- video files

#: The list formats :func:`video_dataset` recognises, as named in its errors.
LIST_FORMATS = {
    "frames": "'frames_dir num_frames label' lines (TSM / mmaction2 frame folders of JPEGs)",
    "videos": "'path/to/video.mp4 label' lines (mmaction2 video list)",
    "kinetics": "a Kinetics CSV with the header 'label,youtube_id,time_start,time_end,split'",
    "ssv2": "a Something-Something V2 JSON (something-something-v2-*.json, labels.json next to it)",
}
_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def _lines(list_file: Path) -> list[tuple[int, str]]:
    """(line number, stripped line) of a UTF-8 list file's non-blank lines; a byte-order mark is dropped."""
    return [(n, line.strip()) for n, line in enumerate(read_text(list_file, "video list file").splitlines(), 1)
            if line.strip()]


def _check_list_file(list_file: Path) -> None:
    if not list_file.is_file():
        what = "is a directory, not a file" if list_file.is_dir() else "not found"
        raise NotFoundError(f"video list file {what}: {list_file}")


def list_format(list_file: PathLike) -> str:
    """Which of :data:`LIST_FORMATS` a list file is in, from its content.

    Example:
        >>> list_format("kinetics400/val.csv")  # doctest: +SKIP
        'kinetics'
    """
    path = Path(list_file)
    _check_list_file(path)
    head = read_text(path, "video list file")[:4096]
    first = next((line.strip() for line in head.splitlines() if line.strip()), "")
    if head.lstrip().startswith("["):
        return "ssv2"
    columns = [c.strip() for c in first.split(",")]
    if all(c in columns for c in _KINETICS_COLUMNS):
        return "kinetics"
    fields = first.split()
    if len(fields) == 3 and all(x.lstrip("-").isdigit() for x in fields[1:]):
        return "frames"
    if len(fields) == 2 and fields[1].lstrip("-").isdigit():
        return "videos"
    known = "; ".join(f"{k}: {v}" for k, v in LIST_FORMATS.items())
    raise DataError(f"cannot tell the format of the video list {path} from its first line {first[:80]!r}; "
                    f"the formats are: {known}")


def _read_video_lines(list_file: Path, root: Path) -> list[VideoRecord]:
    records = []
    for n, line in _lines(list_file):
        fields = line.rsplit(maxsplit=1)
        where = f"{list_file}, line {n}"
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise DataError(f"{where}: expected 'path label' (a video file and an int label), got {line!r}")
        label = int(fields[1])
        if label < 0:
            raise DataError(f"{where}: label must be >= 0, got {label} in {line!r}")
        records.append(VideoRecord(root / fields[0], None, label, n))
    return records


def _read_kinetics(list_file: Path, root: Path, classes: Sequence[str] | None
                   ) -> tuple[list[VideoRecord], list[str]]:
    rows = list(csv.DictReader(io.StringIO(read_text(list_file, "video list file"), newline="")))
    if not rows:
        raise DataError(f"video list file has no videos: {list_file}")
    missing = [c for c in _KINETICS_COLUMNS if c not in rows[0]]
    if missing:
        raise DataError(f"{list_file}: a Kinetics CSV needs the columns {list(_KINETICS_COLUMNS)}, "
                        f"{missing} missing")
    names = list(classes) if classes is not None else sorted({r["label"] for r in rows})
    ids = {name: i for i, name in enumerate(names)}
    folders = {}  # per-class folders as downloaders name them ("air drumming" or "air_drumming"), else flat
    for name in ids:
        folders[name] = next((root / d for d in (name, name.replace(" ", "_")) if (root / d).is_dir()), root)
    records = []
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{list_file}, line {n}"
        if row["label"] not in ids:
            raise DataError(f"{where}: class {row['label']!r} is not among the {len(names)} classes given")
        try:
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
        except (TypeError, ValueError):
            raise DataError(f"{where}: time_start and time_end must be numbers, got "
                            f"{row['time_start']!r}, {row['time_end']!r}") from None
        file = f"{row['youtube_id']}_{start:06d}_{end:06d}.mp4"
        records.append(VideoRecord(folders[row["label"]] / file, None, ids[row["label"]], n))
    return records, names


def _read_ssv2(list_file: Path, root: Path, labels_file: Path | None) -> tuple[list[VideoRecord], list[str]]:
    labels_file = labels_file or list_file.parent / "labels.json"
    try:
        items = json.loads(read_text(list_file, "video list file"))
    except json.JSONDecodeError as e:
        raise DataError(f"{list_file} is not valid JSON: {e}") from None
    if not isinstance(items, list) or not items or not all(isinstance(x, dict) and "id" in x for x in items):
        raise DataError(f"{list_file}: a Something-Something V2 list is a JSON list of objects with an 'id'")
    if "template" not in items[0]:
        raise DataError(f"{list_file} has no 'template' per video, so no labels (the SSv2 test split?)")
    if not labels_file.is_file():
        raise NotFoundError(f"labels file not found: {labels_file} (Something-Something V2's labels.json, "
                            f"template -> id; pass labels_file=... if it is elsewhere)")
    table = read_json(labels_file, "labels file")
    names = [name for name, _ in sorted(table.items(), key=lambda kv: int(kv[1]))]
    records = []
    for n, item in enumerate(items):
        template = str(item.get("template", "")).replace("[", "").replace("]", "")
        if template not in table:
            raise DataError(f"{list_file}, video {n} (id {item['id']}): template {item.get('template')!r} "
                            f"is not in {labels_file}")
        records.append(VideoRecord(root / f"{item['id']}.webm", None, int(table[template]), n + 1))
    return records, names


class VideoFiles(_ClipDataset):
    """Videos stored as files (mp4, webm, ...); items are ``({T: clip}, label)`` as with :class:`VideoList`.

    ``list_file`` is an mmaction2 video list (``relative/path.mp4 label`` per
    line), a Kinetics CSV (``label,youtube_id,time_start,time_end,split``; files
    ``{youtube_id}_{start:06d}_{end:06d}.mp4`` in one folder per class or all in
    ``root``; class ids = the sorted class names, or ``classes``) or a
    Something-Something V2 JSON (files ``{id}.webm``, ids from ``labels.json``
    next to it or ``labels_file``); see :func:`list_format`. Paths are relative
    to ``root`` (default: the list file's folder).

    Each item opens its video with one :class:`~frameflex.video.VideoDecoder` per
    DataLoader worker (made on first use), takes the frame count from the
    container, samples the clips and decodes only the frames they need (uint8).
    A missing, empty, truncated or undecodable file raises an error naming it;
    with ``skip_bad=True`` the item is a :class:`SkippedVideo` instead, which
    :func:`frameflex.collate_clips` leaves out and lists in the batch's ``skipped``.
    :meth:`missing` finds absent files up front (a stat per video, no decoding).

    Args:
        list_file, root, frame_sets, train, transform, sampler, generator: as in :class:`VideoList`.
        nested: one draw of the largest frame count shared by the others (see :class:`frameflex.MultiFrameClips`).
        num_clips: temporal test views per video.
        backend: ``"auto"`` (torchcodec if it loads, else PyAV), ``"torchcodec"`` or ``"pyav"``.
        classes: Kinetics class names in label order (e.g. the training set's ``classes`` for its val set).
        labels_file: Something-Something V2's ``labels.json``.
        skip_bad: return :class:`SkippedVideo` for unreadable videos instead of raising.

    Example:
        >>> ds = VideoFiles("k400/val.csv", root="k400/val", frame_sets=(4, 8, 16),  # doctest: +SKIP
        ...                 transform=transforms_for("tsm_r50"))
        >>> clips, label = ds[0]  # doctest: +SKIP
        >>> tuple(clips[16].shape), ds.classes[label]  # doctest: +SKIP
        ((3, 16, 224, 224), 'abseiling')
    """

    def __init__(
        self,
        list_file: PathLike,
        root: PathLike | None = None,
        frame_sets: Iterable[int] = (4, 8, 16),
        train: bool = False,
        transform: Callable[[Tensor], Tensor] | None = None,
        sampler: Union[str, Sampler] = "segment",
        generator: torch.Generator | None = None,
        nested: bool = False,
        num_clips: int = 1,
        backend: str = "auto",
        classes: Sequence[str] | None = None,
        labels_file: PathLike | None = None,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(list_file, root, frame_sets, train, transform, sampler, generator, nested, num_clips)
        self.decoder = VideoDecoder(backend)  # opens nothing until an item is read
        self.skip_bad = skip_bad
        fmt = list_format(self.list_file)
        self.format = fmt
        self.classes: list[str] | None = None
        if fmt == "videos":
            self.records = _read_video_lines(self.list_file, self.root)
        elif fmt == "kinetics":
            self.records, self.classes = _read_kinetics(self.list_file, self.root, classes)
        elif fmt == "ssv2":
            self.records, self.classes = _read_ssv2(self.list_file, self.root,
                                                    Path(labels_file) if labels_file else None)
        else:
            raise DataError(f"{self.list_file} lists frame folders ('frames_dir num_frames label'), not video "
                            "files: read it with VideoList (video_dataset picks the reader for you)")
        if not self.records:
            raise DataError(f"video list file has no videos: {self.list_file}")

    def missing(self) -> list[VideoRecord]:
        """The records whose video file does not exist or is empty (no decoding)."""
        out = []
        for r in self.records:
            try:
                if r.path.stat().st_size == 0:
                    out.append(r)
            except OSError:
                out.append(r)
        return out

    def drop(self, records: Iterable[VideoRecord]) -> int:
        """Remove ``records`` (e.g. :meth:`missing`) from the dataset; returns how many went."""
        gone = {r.line for r in records}
        before = len(self.records)
        self.records = [r for r in self.records if r.line not in gone]
        return before - len(self.records)

    def _where(self, record: VideoRecord) -> str:
        return f"{self.list_file}, line {record.line}" if self.format != "ssv2" else \
            f"{self.list_file}, video {record.line}"

    def __getitem__(self, index: int) -> Union[tuple[dict[int, Tensor], int], SkippedVideo]:
        record = self.records[self._check_index(index)]
        try:
            video = self.decoder.open(record.path)
            load = video.get_frames if self.transform is not None else (  # no transform: floats, as VideoList
                lambda idx: video.get_frames(idx).float().div_(255))
            return self._clips(video.num_frames, load), record.label
        except (DataError, NotFoundError) as e:
            if not self.skip_bad:
                raise type(e)(f"{e} ({self._where(record)})") from None
            return SkippedVideo(record.path, str(e))



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


class _Frames(v2.Compose):
    """``v2.Compose`` that first brings any video layout to (T, C, H, W) (:func:`frameflex.data.as_frames`)."""

    def forward(self, *inputs: Any) -> Any:
        return super().forward(as_frames(inputs[0]), *inputs[1:])


class ThreeCrop(torch.nn.Module):
    """Three ``size`` x ``size`` crops along the long side (left/centre/right, or top/centre/bottom).

    The multi-view test protocol's spatial views: (N, C, H, W) -> (3, N, C, size, size),
    centred across the short side (run it after resizing the short side to ``size``).

    Example:
        >>> ThreeCrop(4)(torch.rand(2, 3, 4, 10)).shape
        torch.Size([3, 2, 3, 4, 4])
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = _checks.positive_int(size, "size")

    def forward(self, frames: Tensor) -> Tensor:
        h, w = frames.shape[-2:]
        s = self.size
        if min(h, w) < s:
            raise ArgumentError(f"ThreeCrop({s}) needs frames of at least {s} x {s}, got {h} x {w}")
        if w >= h:
            top = (h - s) // 2
            boxes = [(top, left) for left in (0, (w - s) // 2, w - s)]
        else:
            left = (w - s) // 2
            boxes = [(top, left) for top in (0, (h - s) // 2, h - s)]
        return torch.stack([frames[..., y:y + s, x:x + s] for y, x in boxes])

    def extra_repr(self) -> str:
        return f"size={self.size}"


def eval_transform(input_size: int = 224, resize: int | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                   std: Sequence[float] = IMAGENET_STD, crops: int = 1) -> v2.Compose:
    """The standard test pipeline: shorter side to ``resize``, centre crop (or 3 crops), normalise.

    ``crops=1``: ``resize`` defaults to ``input_size * 256 / 224`` (256 for 224, as in
    TSM's ``scale_size``), then one centre crop. ``crops=3``: ``resize`` defaults to
    ``input_size`` and :class:`ThreeCrop` returns (3, N, C, S, S), the 3-crop views of
    multi-view testing. Input: (T, C, H, W) float in [0, 1] or uint8, (T, H, W, C)
    uint8 or ``tv_tensors.Video``.

    Example:
        >>> t = eval_transform(224)
        >>> t(torch.rand(8, 3, 100, 176)).shape
        torch.Size([8, 3, 224, 224])
        >>> eval_transform(224, crops=3)(torch.zeros(8, 240, 320, 3, dtype=torch.uint8)).shape
        torch.Size([3, 8, 3, 224, 224])
    """
    _checks.positive_int(input_size, "input_size")
    if crops not in (1, 3):
        raise ArgumentError(f"crops must be 1 (centre) or 3 (along the long side), got {crops!r}")
    default = input_size * 256 // 224 if crops == 1 else input_size
    resize = _checks.positive_int(resize if resize is not None else default, "resize")
    if resize < input_size:
        raise ValueError(f"resize ({resize}) must be >= input_size ({input_size}) for a centre crop")
    mean, std = _check_stats(mean, std)
    return _Frames([
        v2.Resize(resize, antialias=True),
        v2.CenterCrop(input_size) if crops == 1 else ThreeCrop(input_size),
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
    return _Frames(steps)


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


def video_dataset(list_file: PathLike, root: PathLike | None = None, **kwargs: Any) -> Union[VideoList, VideoFiles]:
    """The dataset of a list file in any of :data:`LIST_FORMATS`: :class:`VideoList` or :class:`VideoFiles`.

    The format is recognised from the file (:func:`list_format`); ``kwargs`` go to
    the dataset (those the other one alone takes, such as ``image_tmpl`` or
    ``backend``, are dropped when they do not apply). Training and evaluation read
    data through this one function.

    Example:
        >>> ds = video_dataset("videos/val.txt", root="videos", frame_sets=(4, 8, 16))  # 'v0.mp4 3' lines  # doctest: +SKIP
        >>> type(ds).__name__  # doctest: +SKIP
        'VideoFiles'
    """
    fmt = list_format(list_file)
    only = {"frames": ("backend", "classes", "labels_file", "skip_bad"), "videos": ("image_tmpl", "index_base")}
    drop = only["frames"] if fmt == "frames" else only["videos"]
    kwargs = {k: v for k, v in kwargs.items() if k not in drop}
    return (VideoList if fmt == "frames" else VideoFiles)(list_file, root, **kwargs)
