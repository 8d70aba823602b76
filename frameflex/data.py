"""Frame sampling, multi-frame clips and a synthetic motion dataset.

FFN trains one model on several frame counts at once: every video yields one
clip per frame count, each sampled independently (TSN segment sampling), and
all of them share ONE spatial augmentation. This module provides exactly
that, plus :class:`SyntheticMotion`, a tiny dataset whose classes can only be
told apart by how things move (like Something-Something), not by how a frame
looks, so the frame-count effect can be seen on a CPU in minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Union

import torch
from torch import Tensor

from . import _checks
from .errors import ArgumentError, DataError

__all__ = [
    "segment_indices",
    "uniform_indices",
    "as_frames",
    "MultiFrameClips",
    "collate_clips",
    "ClipBatch",
    "SkippedVideo",
    "SyntheticMotion",
]

Sampler = Callable[..., Tensor]


def _randint(high: int, size: int, generator: torch.Generator | None) -> Tensor:
    return torch.randint(high, (size,), generator=generator)


def _check_clip(clip: tuple[int, int]) -> tuple[int, int]:
    j, n = clip
    _checks.positive_int(n, "number of clips")
    if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < n:
        raise ArgumentError(f"clip must be (j, n) with 0 <= j < n, got {clip!r}")
    return j, n


def _centre_indices(num_frames: int, num_segments: int, clip: tuple[int, int] = (0, 1)) -> Tensor:
    # TSM's _get_test_indices: the middle frame of each of T equal segments (clip j of n: at (j + 0.5) / n).
    j, n = clip
    tick = num_frames / num_segments
    if n == 1:
        return torch.tensor([int(tick / 2.0 + tick * i) for i in range(num_segments)], dtype=torch.long)
    return torch.tensor([int(tick * (i + (j + 0.5) / n)) for i in range(num_segments)], dtype=torch.long)


def segment_indices(
    num_frames: int,
    num_segments: int,
    train: bool,
    generator: torch.Generator | None = None,
    clip: tuple[int, int] = (0, 1),
) -> Tensor:
    """0-based frame indices by TSN segment sampling, as in the official TSM code.

    The video is cut into ``num_segments`` equal segments; training takes a
    random frame in each (``_sample_indices``), testing the centre frame
    (``_get_test_indices``). Videos shorter than ``num_segments`` repeat frames
    evenly (centre formula) in both modes instead of TSM's all-zero indices.
    ``clip=(j, n)`` is test clip ``j`` of ``n`` (multi-view testing): the frame
    at ``(j + 0.5) / n`` of each segment instead of its centre.

    Example:
        >>> segment_indices(32, 4, train=False).tolist()
        [4, 12, 20, 28]
        >>> segment_indices(32, 4, train=False, clip=(1, 2)).tolist()  # the second of 2 test clips
        [6, 14, 22, 30]
        >>> idx = segment_indices(32, 4, train=True)  # one random frame in each 8-frame segment
        >>> bool(((idx // 8) == torch.arange(4)).all())
        True
    """
    _checks.positive_int(num_frames, "num_frames")
    _checks.positive_int(num_segments, "num_segments")
    clip = _check_clip(clip)
    average_duration = num_frames // num_segments
    if not train or average_duration == 0:
        return _centre_indices(num_frames, num_segments, clip)
    offsets = torch.arange(num_segments) * average_duration
    return offsets + _randint(average_duration, num_segments, generator)


def uniform_indices(
    num_frames: int,
    num_segments: int,
    stride: int | None = None,
    train: bool = False,
    generator: torch.Generator | None = None,
    clip: tuple[int, int] = (0, 1),
) -> Tensor:
    """0-based frame indices spaced evenly over the video or with a fixed stride.

    ``stride=None`` spreads ``num_segments`` frames over the whole video
    (``linspace(0, n - 1, T)`` rounded); deterministic in both modes.
    ``stride=s`` takes every s-th frame of a window of ``T * s`` frames
    (SlowFast style): random window start in training, centred at test, and
    indices clamped into the video when it is shorter than the window.
    ``clip=(j, n)`` is test clip ``j`` of ``n``: the frames (or the window) shifted
    to ``(j + 0.5) / n`` of the gap between frames (of the slack), centred for ``n = 1``.

    Example:
        >>> uniform_indices(32, 4).tolist()
        [0, 10, 21, 31]
        >>> uniform_indices(32, 4, stride=2).tolist()  # centred 8-frame window
        [12, 14, 16, 18]
    """
    _checks.positive_int(num_frames, "num_frames")
    _checks.positive_int(num_segments, "num_segments")
    j, n = _check_clip(clip)
    if stride is None:
        idx = torch.linspace(0, num_frames - 1, num_segments)
        if n > 1:
            gap = (num_frames - 1) / max(num_segments - 1, 1)
            idx = (idx + ((j + 0.5) / n - 0.5) * gap).clamp_(0, num_frames - 1)
        return idx.round().long()
    _checks.positive_int(stride, "stride")
    window = num_segments * stride
    slack = max(num_frames - window, 0)
    if train and slack > 0:
        start = int(_randint(slack + 1, 1, generator).item())
    else:
        start = slack // 2 if n == 1 else int(slack * (j + 0.5) / n)
    idx = start + torch.arange(num_segments) * stride
    return idx.clamp_(0, num_frames - 1)


def _uniform_sampler(n: int, t: int, train: bool, generator: torch.Generator | None,
                     clip: tuple[int, int] = (0, 1)) -> Tensor:
    return uniform_indices(n, t, train=train, generator=generator, clip=clip)


# Module-level functions, not lambdas: datasets must pickle for DataLoader workers under spawn.
_SAMPLERS: dict[str, Sampler] = {"segment": segment_indices, "uniform": _uniform_sampler}


def as_frames(video: Any) -> Tensor:
    """A video as a (T, C, H, W) tensor, from any of the layouts decoders and torchvision use.

    Accepted: ``tv_tensors.Video`` (T, C, H, W); a (T, C, H, W) tensor (C is 1 or
    3); a (T, H, W, C) uint8 tensor, as PyAV, decord and most decoders return
    (permuted, not copied). Anything else is an error naming the shape it got.

    Example:
        >>> as_frames(torch.zeros(16, 112, 112, 3, dtype=torch.uint8)).shape
        torch.Size([16, 3, 112, 112])
    """
    from torchvision import tv_tensors

    if isinstance(video, Tensor) and video.dim() == 4:
        if isinstance(video, tv_tensors.Video):
            return video.as_subclass(Tensor)
        if video.shape[1] in (1, 3):
            return video
        if video.dtype == torch.uint8 and video.shape[-1] in (1, 3):
            return video.permute(0, 3, 1, 2)
    got = (f"{type(video).__name__} of shape {tuple(video.shape)} ({video.dtype})"
           if isinstance(video, Tensor) else type(video).__name__)
    raise ArgumentError(f"video must be a (T, H, W, C) uint8 tensor, a (T, C, H, W) tensor or a "
                     f"tv_tensors.Video (T, C, H, W), with C = 1 or 3; got {got}")


class MultiFrameClips:
    """Turn one decoded video into ``{T: clip (C, T, H, W)}`` for every T.

    Each frame count's indices are sampled independently (as FFN does), and
    the spatial ``transform`` runs ONCE on the stacked union of the needed
    frames, because FFN's clips of one video must share one augmentation
    (same crop, same flip) so that the only thing that differs between the
    branches is the frame count. The video may be (T, H, W, C) uint8,
    (T, C, H, W) or a ``tv_tensors.Video`` (see :func:`as_frames`).

    Args:
        frame_sets: the frame counts to produce, e.g. ``(4, 8, 16)``.
        train: random sampling (training) or deterministic centre sampling.
        sampler: ``"segment"`` (TSN), ``"uniform"`` (evenly spaced), or a callable
            ``sampler(num_frames, num_segments, train=..., generator=...) -> LongTensor``,
            e.g. ``functools.partial(uniform_indices, stride=2)`` (with ``num_clips > 1``
            it is also given ``clip=(j, num_clips)``).
        transform: any callable on a (N, C, H, W) tensor, applied to all frames at
            once (``torchvision.transforms.v2`` draws its random parameters once per
            call, so every frame and every clip gets the same crop/flip). It may
            return (S, N, C, H', W'): S spatial crops, e.g. ``eval_transform(crops=3)``.
        generator: torch generator for the sampling. Default None uses the global RNG,
            which DataLoader seeds differently in each worker (a shared generator
            would be copied into every worker and repeat the same draws).
        nested: sample only the largest frame count; each smaller count T takes
            the segments of it nearest to its own (every 2nd for 8 of 16, every
            4th for 4 of 16), so a (4, 8, 16) sample decodes 16 frames, not 28.
            Default False: FFN's independent draws.
        num_clips: temporal test views per video (multi-view evaluation). With
            more than one view (clips x crops) each clip is (V, C, T, H, W),
            views ordered clip-major.

    Example:
        >>> clips = MultiFrameClips((4, 8), train=False)
        >>> out = clips(torch.rand(32, 3, 16, 16))
        >>> {t: tuple(c.shape) for t, c in out.items()}
        {4: (3, 4, 16, 16), 8: (3, 8, 16, 16)}
        >>> MultiFrameClips((4, 8, 16), nested=True, train=False).indices(64)[4].tolist()
        [10, 26, 42, 58]
    """

    def __init__(
        self,
        frame_sets: Iterable[int],
        train: bool = True,
        sampler: Union[str, Sampler] = "segment",
        transform: Callable[[Tensor], Tensor] | None = None,
        generator: torch.Generator | None = None,
        nested: bool = False,
        num_clips: int = 1,
    ) -> None:
        frame_sets = _checks.frame_sets(frame_sets)
        if isinstance(sampler, str):
            if sampler not in _SAMPLERS:
                raise ValueError(f"unknown sampler {sampler!r}; use one of {sorted(_SAMPLERS)} or a callable")
            sampler = _SAMPLERS[sampler]
        elif not callable(sampler):
            raise TypeError(f"sampler must be a name or a callable, got {type(sampler).__name__}")
        self.frame_sets = frame_sets
        self.train = train
        self.sampler = sampler
        self.transform = transform
        self.generator = generator
        self.nested = bool(nested)
        self.num_clips = _checks.positive_int(num_clips, "num_clips")

    def _sample(self, num_frames: int, t: int, clip: int) -> Tensor:
        kw = {"clip": (clip, self.num_clips)} if self.num_clips > 1 else {}
        idx = torch.as_tensor(self.sampler(num_frames, t, train=self.train, generator=self.generator, **kw),
                              dtype=torch.long)
        if idx.shape != (t,) or (idx < 0).any() or (idx >= num_frames).any():
            raise ValueError(
                f"sampler returned indices {idx.tolist()} for T={t}; expected {t} indices in [0, {num_frames})"
            )
        return idx

    def indices(self, num_frames: int) -> dict[int, Tensor]:
        """The sampled frame indices per frame count: (T,), or (num_clips, T) with several clips."""
        out: dict[int, list[Tensor]] = {t: [] for t in self.frame_sets}
        top = max(self.frame_sets)
        for j in range(self.num_clips):
            if self.nested:
                high = self._sample(num_frames, top, j)
                for t in self.frame_sets:  # segment i of T covers segments [i, i + 1) * top / T of `top`
                    out[t].append(high[((torch.arange(t) + 0.5) * top / t).long()])
            else:
                for t in self.frame_sets:
                    out[t].append(self._sample(num_frames, t, j))
        return {t: torch.stack(v) if self.num_clips > 1 else v[0] for t, v in out.items()}

    def clips(self, frames: Tensor, union: Tensor, per_t: Mapping[int, Tensor]) -> dict[int, Tensor]:
        """Transform ``frames`` (the video's frames ``union``, sorted) once and cut every clip of ``per_t``."""
        frames = as_frames(frames)
        if self.transform is not None:
            frames = self.transform(frames)
            n = union.numel()
            if not isinstance(frames, Tensor) or frames.dim() not in (4, 5) or frames.shape[-4] != n:
                got = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
                raise ValueError(f"transform must map (N, C, H, W) to (N, C, H', W'), got {got} for N={n} "
                                 "(or to (crops, N, C, H', W'))")
        crops = (frames.unsqueeze(0) if frames.dim() == 4 else frames).transpose(1, 2)  # (S, C, N, H, W), a view
        out = {}
        for t, idx in per_t.items():
            pos = torch.searchsorted(union, idx.reshape(-1)).view(-1, t)  # (clips, T)
            views = crops[:, :, pos]  # (S, C, clips, T, H, W): the one copy
            if views.shape[0] * views.shape[2] == 1:
                out[t] = views[0, :, 0]  # (C, T, H, W), contiguous
            else:  # (clips * S, C, T, H, W), clip-major
                out[t] = views.permute(2, 0, 1, 3, 4, 5).flatten(0, 1).contiguous()
        return out

    def __call__(self, video: Any) -> dict[int, Tensor]:
        video = as_frames(video)
        per_t = self.indices(video.shape[0])
        union = torch.unique(torch.cat([i.reshape(-1) for i in per_t.values()]))  # sorted
        return self.clips(video[union], union, per_t)


class SkippedVideo(NamedTuple):
    """What a dataset with ``skip_bad=True`` returns for a video it cannot read; :func:`collate_clips` drops it."""

    path: Path
    error: str


class ClipBatch(tuple):
    """``(clips, labels)`` from :func:`collate_clips`; :attr:`skipped` lists the unreadable videos left out."""

    def __new__(cls, items: Iterable[Any] = (), skipped: Iterable[SkippedVideo] = ()) -> "ClipBatch":
        self = super().__new__(cls, items)
        self.skipped = tuple(skipped)
        return self

    def pin_memory(self, device: Any = None) -> "ClipBatch":
        clips, labels = self
        return ClipBatch(({t: c.pin_memory() for t, c in clips.items()}, labels.pin_memory()), self.skipped)


def _stack(tensors: list[Tensor]) -> Tensor:
    """``torch.stack``; in a DataLoader worker straight into shared memory, as ``default_collate`` does,
    so the batch is not copied again on its way to the main process."""
    out = None
    if torch.utils.data.get_worker_info() is not None:
        first = tensors[0]
        storage = first._typed_storage()._new_shared(len(tensors) * first.numel(), device=first.device)
        out = first.new(storage).resize_(len(tensors), *first.shape)
    return torch.stack(tensors, out=out)


def collate_clips(batch: Sequence[Any]) -> Union[dict[int, Tensor], ClipBatch]:
    """``collate_fn`` for a DataLoader over ``({T: clip}, label)`` or ``{T: clip}`` items.

    Returns ``({T: (B, C, T, H, W)}, labels)`` (a :class:`ClipBatch`; or only the
    dict). Labels may be ints (-> LongTensor) or tensors such as soft targets
    (-> stacked). :class:`SkippedVideo` items are left out and listed in the
    batch's ``skipped`` (a batch of only those has no clips and no labels).

    Example:
        >>> item = ({4: torch.zeros(3, 4, 8, 8), 8: torch.zeros(3, 8, 8, 8)}, 1)
        >>> clips, y = collate_clips([item, item])
        >>> tuple(clips[8].shape), y.tolist()
        ((2, 3, 8, 8, 8), [1, 1])
    """
    if len(batch) == 0:
        raise ValueError("collate_clips got an empty batch")
    skipped = [item for item in batch if isinstance(item, SkippedVideo)]
    if skipped:
        batch = [item for item in batch if not isinstance(item, SkippedVideo)]
        if not batch:
            return ClipBatch(({}, torch.zeros(0, dtype=torch.long)), skipped)
    with_labels = isinstance(batch[0], (tuple, list))
    dicts, labels = [], []
    for i, item in enumerate(batch):
        if isinstance(item, (tuple, list)) != with_labels:
            raise ValueError(f"batch item {i} is {type(item).__name__}; mix of labelled and unlabelled items")
        d, *rest = item if with_labels else (item,)
        if with_labels and len(rest) != 1:
            raise ValueError(f"batch item {i} must be (clips, label), got a {type(item).__name__} of length {len(item)}")
        if not isinstance(d, Mapping):
            raise ValueError(f"batch item {i}: clips must be a dict {{T: clip}}, got {type(d).__name__}")
        dicts.append(d)
        if with_labels:
            labels.append(rest[0])
    keys = sorted(dicts[0])
    for i, d in enumerate(dicts):
        if sorted(d) != keys:
            raise ValueError(f"batch item {i} has frame counts {sorted(d)}, item 0 has {keys}")
    clips = {t: _stack([d[t] for d in dicts]) for t in keys}
    if not with_labels:
        if skipped:
            raise DataError(f"collate_clips: unlabelled items cannot report skipped videos: {skipped[0]}")
        return clips
    if all(isinstance(y, Tensor) for y in labels):
        y = torch.stack(labels)
    elif all(isinstance(y, int) and not isinstance(y, bool) for y in labels):
        y = torch.tensor(labels, dtype=torch.long)
    else:
        kinds = sorted({type(y).__name__ for y in labels})
        raise ValueError(f"labels must be all ints or all tensors, got {kinds}")
    return ClipBatch((clips, y), skipped)


# --------------------------------------------------------------------------- synthetic data


class SyntheticVideos(torch.utils.data.Dataset):
    """What the synthetic sets share: video ``i`` is drawn from its own seed, classes cycle.

    Subclasses set ``num_videos``, ``seed``, ``num_classes``, ``clips`` (a ``MultiFrameClips``)
    and write ``_render(label, generator)`` -> (N, C, H, W).
    """

    @property
    def frame_sets(self) -> tuple[int, ...]:
        return self.clips.frame_sets

    def __len__(self) -> int:
        return self.num_videos

    def label(self, index: int) -> int:
        """The label of video ``index`` (classes cycle, so any prefix is balanced)."""
        return index % self.num_classes

    def __getitem__(self, index: int) -> tuple[dict[int, Tensor], int]:
        video, label = self.video(index)
        return self.clips(video), label

    def video(self, index: int) -> tuple[Tensor, int]:
        """The raw video (N, C, H, W) float in [0, 1] and its label, for ``index``."""
        if isinstance(index, bool) or not isinstance(index, int) or not -self.num_videos <= index < self.num_videos:
            raise IndexError(f"index {index!r} out of range for {type(self).__name__} of {self.num_videos} videos")
        index %= self.num_videos
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + index) % (2**63))
        label = self.label(index)
        return self._render(label, g), label


class SyntheticMotion(SyntheticVideos):
    """Synthetic videos whose class is a motion direction, not an appearance.

    A textured two-colour square on a noisy textured background moves left,
    right, up or down (wrapping around the frame), grows, shrinks, or rotates
    clockwise / counter-clockwise. Start position, angle, size, colours,
    speed and background are random, and their per-frame distribution is the
    same for every class, so a single frame does not reveal the label: only the
    temporal order does (like Something-Something). Videos are generated on
    the fly, deterministically from ``(seed, index)``; use another ``seed`` for a
    held-out split.

    With ``paced=True`` every motion comes in a slow and a fast version
    (``"left slow"``, ``"left fast"``, ...; the slow one ``pace_ratio`` times slower).
    Then the class also depends on how far the object moves between two
    sampled frames, which is what changes with the frame count: the setting
    where a model trained at one frame count misreads clips of another.

    Args:
        num_videos: length of the dataset.
        num_classes: how many of :attr:`classes` to use (first ones), 2 to 8
            (2 to 16 with ``paced``).
        video_frames: frames per raw video.
        size: frame height and width in pixels.
        frame_sets: clip frame counts returned by ``__getitem__``.
        train: random segment sampling (True) or centre sampling (False).
        seed: selects the videos.
        transform: spatial transform on the (N, C, H, W) frame stack, shared by all clips.
        speed: range of displacement per raw frame, in pixels for a 32-px frame
            (scaled with ``size``); rotation and scaling use matching rates.
        noise: std of the per-frame pixel noise.
        clutter: contrast of the static background texture (0: flat grey).
        paced: slow and fast version of each motion, as separate classes.
        pace_ratio: how many times slower the slow version is.

    Example:
        >>> ds = SyntheticMotion(16, num_classes=4, frame_sets=(4, 8), train=False)
        >>> clips, label = ds[0]
        >>> tuple(clips[8].shape), ds.classes[label]
        ((3, 8, 32, 32), 'left')
        >>> SyntheticMotion(16, num_classes=4, paced=True).classes
        ['left slow', 'left fast', 'right slow', 'right fast']
    """

    #: The motions, in label order (without ``paced``).
    CLASSES = ("left", "right", "up", "down", "grow", "shrink", "rotate_cw", "rotate_ccw")

    def __init__(
        self,
        num_videos: int,
        num_classes: int = 8,
        video_frames: int = 32,
        size: int = 32,
        frame_sets: Iterable[int] = (4, 8, 16),
        train: bool = True,
        seed: int = 0,
        transform: Callable[[Tensor], Tensor] | None = None,
        speed: tuple[float, float] = (0.8, 1.2),
        noise: float = 0.03,
        clutter: float = 0.1,
        paced: bool = False,
        pace_ratio: float = 3.0,
    ) -> None:
        _checks.positive_int(num_videos, "num_videos")
        _checks.positive_int(video_frames, "video_frames")
        _checks.positive_int(size, "size")
        most = len(self.CLASSES) * (2 if paced else 1)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 2 <= num_classes <= most:
            raise ValueError(f"num_classes must be an int in [2, {most}] (paced={paced}), got {num_classes!r}")
        lo, hi = speed
        if not 0 < lo <= hi:
            raise ValueError(f"speed must be (low, high) with 0 < low <= high, got {speed!r}")
        if not pace_ratio > 1:
            raise ValueError(f"pace_ratio must be > 1, got {pace_ratio!r}")
        self.num_videos = num_videos
        self.num_classes = num_classes
        self.video_frames = video_frames
        self.size = size
        self.seed = seed
        self.speed = (float(lo), float(hi))
        self.noise = float(noise)
        self.clutter = float(clutter)
        self.paced = paced
        self.pace_ratio = float(pace_ratio)
        self.clips = MultiFrameClips(frame_sets, train=train, sampler="segment", transform=transform)

    @property
    def classes(self) -> list[str]:
        """Class names, index = label."""
        if self.paced:
            return [f"{m} {p}" for m in self.CLASSES for p in ("slow", "fast")][: self.num_classes]
        return list(self.CLASSES[: self.num_classes])

    def _render(self, label: int, g: torch.Generator) -> Tensor:
        n, s = self.video_frames, self.size
        scale = s / 32.0  # motion and sizes are defined for a 32-px frame

        def u(*shape: int) -> Tensor:
            return torch.rand(shape, generator=g)

        t = torch.arange(n, dtype=torch.float32)
        speed = (self.speed[0] + (self.speed[1] - self.speed[0]) * u(1)) * scale  # px / frame
        cls = self.CLASSES[label // 2 if self.paced else label]
        if self.paced and label % 2 == 0:
            speed = speed / self.pace_ratio
        # Scaling classes change size at a rate tied to their speed; the others draw their
        # size as if they did, with an independent speed, so size does not give the class away.
        size_speed = speed if cls in ("grow", "shrink") else (
            self.speed[0] + (self.speed[1] - self.speed[0]) * u(1)) * scale

        # Half-size: the same trapezoid-shaped per-frame distribution for every class,
        # so object size in one frame says nothing about grow/shrink.
        h_lo, h_hi = 3.0 * scale, 9.0 * scale
        log_range = math.log(h_hi / h_lo)
        growth = size_speed / (4.0 * scale) * 0.12  # log-size change per frame
        span = (growth * (n - 1)).clamp(max=log_range * 0.9)
        start = u(1) * (log_range - span)
        log_h = start + u(1) * span  # a random point of a would-be trajectory
        if cls == "grow":
            log_h = start + growth * t
        elif cls == "shrink":
            log_h = start + span - growth * t
        else:
            log_h = log_h.expand(n)
        half = h_lo * torch.exp(log_h)

        cx = u(1) * s + torch.zeros(n)
        cy = u(1) * s + torch.zeros(n)
        if cls in ("left", "right"):
            cx = cx + (1 if cls == "right" else -1) * speed * t
        elif cls in ("up", "down"):
            cy = cy + (1 if cls == "down" else -1) * speed * t
        omega = speed / (6.0 * scale)  # rad / frame: a corner ~6 px out moves about `speed` px
        angle = u(1) * 2 * math.pi + torch.zeros(n)
        if cls in ("rotate_cw", "rotate_ccw"):
            angle = angle + (1 if cls == "rotate_cw" else -1) * omega * t

        # Pixel offsets from the object centre on a torus, so motion wraps around.
        coords = torch.arange(s, dtype=torch.float32) + 0.5
        dx = torch.remainder(coords.view(1, 1, s) - cx.view(n, 1, 1) + s / 2, s) - s / 2
        dy = torch.remainder(coords.view(1, s, 1) - cy.view(n, 1, 1) + s / 2, s) - s / 2
        cos, sin = torch.cos(angle).view(n, 1, 1), torch.sin(angle).view(n, 1, 1)
        a = cos * dx + sin * dy  # object frame coordinates, in pixels
        b = -sin * dx + cos * dy
        h = half.view(n, 1, 1)
        inside = (h - torch.maximum(a.abs(), b.abs()) + 0.5).clamp(0, 1)  # ~1 px anti-aliased edge
        split = torch.sigmoid(2.0 * a)  # two colours split along one axis: shows rotation
        stripe = 0.5 + 0.5 * torch.cos(b * (2 * math.pi / (2.5 * scale)))  # texture

        c1, c2 = u(3, 1, 1, 1), u(3, 1, 1, 1)
        obj = c1 * (1 - split) + c2 * split  # (3, n, s, s)
        obj = obj * (0.75 + 0.25 * stripe)

        # Static low-frequency coloured background plus per-frame noise.
        coarse = max(2, s // 8)
        bg = torch.nn.functional.interpolate(u(1, 3, coarse, coarse), size=(s, s), mode="bilinear", align_corners=False)
        bg = 0.5 + self.clutter * (bg[0].unsqueeze(1) - 0.5)  # (3, 1, s, s)
        video = bg * (1 - inside) + obj * inside
        video = video + self.noise * torch.randn(video.shape, generator=g)
        return video.clamp_(0, 1).transpose(0, 1).contiguous()  # (n, 3, s, s)
