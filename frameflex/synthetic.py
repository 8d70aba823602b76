"""Synthetic videos whose class is in the motion, not in any one frame."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from . import _checks
from .data import MultiFrameClips, SyntheticVideos
from .errors import ArgumentError

__all__ = ["SyntheticActions"]


def _interp(a: float, b: float, u: Tensor) -> Tensor:
    return a + (b - a) * u


class SyntheticActions(SyntheticVideos):
    """Two objects; 14 classes told apart by direction, speed, acceleration and order of motion.

    Every video shows two textured squares on a noisy textured background, one in the
    upper and one in the lower half. In the one-object classes one of them moves
    horizontally (wrapping around the left and right edges) and the other stays still;
    in the two-object classes both move. Sizes, colours and positions are drawn the same
    way for every class ("separate" is "approach" played backwards), so a single frame
    does not give the class away: only the motion does, as in Something-Something.
    The frame count matters: slow and fast differ by how far an object moves between
    two sampled frames (and a fast one can jump half the frame between the frames of a
    4-frame clip), shaking fast aliases when frames are far apart, speeding up looks
    like one speed when only a few frames are seen, and "right and back" differs from
    "left and back" only in the order of its two halves.

    Args:
        num_videos: length of the dataset.
        video_frames: frames per raw video.
        size: frame height and width in pixels (motion is defined for 32 px, scaled).
        frame_sets: clip frame counts returned by ``__getitem__``.
        train: random segment sampling (True) or centre sampling (False).
        seed: selects the videos; use another for a held-out split.
        transform: spatial transform on the (N, C, H, W) frame stack, shared by all clips.
        speed: range of the fast speed in px per raw frame (32-px frame); slow is a third
            of it, the other one-object motions two thirds on average.
        object_size: range of the objects' half-size in px (32-px frame).
        jitter: std of a per-frame random offset of each object, in px (32-px frame).
        noise: std of the per-frame pixel noise.
        clutter: contrast of the static background texture.

    Example:
        >>> ds = SyntheticActions(32, frame_sets=(4, 8), train=False)
        >>> clips, label = ds[0]
        >>> tuple(clips[8].shape), ds.classes[label], len(ds.classes)
        ((3, 8, 32, 32), 'right slow', 14)
    """

    #: Class names, index = label. (A "with a pause" pair was tried and dropped: at the
    #: default budget tsm_tiny confused it with "speeding up" and "slow" at 16 frames.)
    CLASSES = (
        "right slow", "left slow", "right fast", "left fast",
        "right speeding up", "left speeding up",
        "right and back", "left and back", "shake fast", "shake slow",
        "approach", "separate", "opposite directions", "still",
    )

    def __init__(
        self,
        num_videos: int,
        video_frames: int = 32,
        size: int = 32,
        frame_sets: Iterable[int] = (4, 8, 16),
        train: bool = True,
        seed: int = 0,
        transform: Callable[[Tensor], Tensor] | None = None,
        speed: tuple[float, float] = (2.0, 2.5),
        object_size: tuple[float, float] = (3.0, 4.5),
        jitter: float = 0.0,
        noise: float = 0.02,
        clutter: float = 0.1,
    ) -> None:
        _checks.positive_int(num_videos, "num_videos")
        _checks.positive_int(video_frames, "video_frames")
        _checks.positive_int(size, "size")
        if not 0 < speed[0] <= speed[1]:
            raise ArgumentError(f"speed must be (low, high) with 0 < low <= high, got {speed!r}")
        for name, v in (("jitter", jitter), ("noise", noise), ("clutter", clutter)):
            _checks.nonnegative(v, name)
        self.num_videos = num_videos
        self.video_frames = video_frames
        self.size = size
        self.seed = seed
        self.speed = (float(speed[0]), float(speed[1]))
        self.object_size = (float(object_size[0]), float(object_size[1]))
        self.jitter = float(jitter)
        self.noise = float(noise)
        self.clutter = float(clutter)
        self.clips = MultiFrameClips(frame_sets, train=train, sampler="segment", transform=transform)

    num_classes = len(CLASSES)

    @property
    def classes(self) -> list[str]:
        return list(self.CLASSES)

    def params(self) -> dict:
        """The task's parameters (what the numbers of a run on it depend on)."""
        return {"task": type(self).__name__, "classes": len(self.CLASSES), "video_frames": self.video_frames,
                "size": self.size, "speed": list(self.speed), "object_size": list(self.object_size), "jitter": self.jitter, "noise": self.noise, "clutter": self.clutter}

    def _tracks(self, label: int, g: torch.Generator) -> Tensor:
        """x (2, n) in px of the two objects, up to a shift (one per object, or one for both if both move)."""
        n = self.video_frames

        def u(*shape: int) -> Tensor:
            return torch.rand(shape, generator=g)

        t = torch.arange(n, dtype=torch.float32)
        zero = torch.zeros(n)
        cls = self.CLASSES[label]
        words = cls.split()
        fast = _interp(*self.speed, u(1))  # px per raw frame
        sign = -1.0 if words[0] == "left" else 1.0
        reverse = False
        if words[0] in ("right", "left"):
            if words[1] in ("slow", "fast"):
                x = (fast if words[1] == "fast" else fast / 3) * t
            elif words[1] == "speeding":  # from standing to 2x the mean speed
                x = (2 / 3) * fast * t**2 / (n - 1)
            else:  # and back: out at 2/3 of the fast speed, turning at a random time in the middle
                turn = _interp(0.35, 0.65, u(1)) * (n - 1)
                x = (2 / 3) * fast * torch.where(t < turn, t, 2 * turn - t)
            tracks = torch.stack([sign * x, zero])
        elif cls.startswith("shake"):
            amp = _interp(3.0, 5.0, u(1))
            period = _interp(*((4.0, 6.0) if cls == "shake fast" else (12.0, 18.0)), u(1))
            tracks = torch.stack([amp * torch.sin(2 * math.pi * t / period + u(1) * 2 * math.pi), zero])
        elif cls in ("approach", "separate"):
            # both move at 1/6 of the fast speed towards each other (or apart: the same, reversed)
            d = fast / 6 * t
            tracks = torch.stack([d, d[-1] + _interp(2.0, 6.0, u(1)) + d[-1] - d])
            reverse = cls == "separate"
        elif cls == "opposite directions":
            tracks = torch.stack([fast / 2 * t, -fast / 2 * t])
        else:  # still
            tracks = torch.stack([zero, zero])
        return tracks.flip(1) if reverse else tracks

    def _render(self, label: int, g: torch.Generator) -> Tensor:
        n, s = self.video_frames, self.size
        scale = s / 32.0

        def u(*shape: int) -> Tensor:
            return torch.rand(shape, generator=g)

        tracks = self._tracks(label, g) * scale  # (2, n)
        cls = self.CLASSES[label]
        if cls in ("approach", "separate"):
            # no wrapping: the pair is shifted as one to where both stay inside the frame
            half = _interp(*self.object_size, u(2)) * scale
            lo = (half + 1 - tracks.amin(1)).max()
            hi = (s - half - 1 - tracks.amax(1)).min()
            x = tracks + lo + u(1) * (hi - lo).clamp(min=0)
        else:
            if u(1).item() < 0.5:
                tracks = tracks.flip(0)  # the mover is the upper or the lower object
            half = _interp(*self.object_size, u(2)) * scale
            x = tracks + u(2, 1) * s  # anywhere: objects wrap around the left and right edges
        x = x + self.jitter * scale * torch.randn(2, n, generator=g)
        rows = torch.stack([_interp(0.2, 0.32, u(1)), _interp(0.68, 0.8, u(1))]).view(2) * s  # never overlap
        if u(1).item() < 0.5:
            rows = rows.flip(0)
        y = rows.view(2, 1) + self.jitter * scale * torch.randn(2, n, generator=g)

        coords = torch.arange(s, dtype=torch.float32) + 0.5
        coarse = max(2, s // 8)
        bg = torch.nn.functional.interpolate(u(1, 3, coarse, coarse), size=(s, s), mode="bilinear", align_corners=False)
        video = (0.5 + self.clutter * (bg[0].unsqueeze(1) - 0.5)).expand(3, n, s, s)  # (3, n, s, s)
        for k in range(2):
            dx = torch.remainder(coords.view(1, 1, s) - x[k].view(n, 1, 1) + s / 2, s) - s / 2
            dy = coords.view(1, s, 1) - y[k].view(n, 1, 1)
            h = half[k]
            inside = (h - torch.maximum(dx.abs(), dy.abs()) + 0.5).clamp(0, 1)
            stripe = 0.5 + 0.5 * torch.cos(dy * (2 * math.pi / (2.5 * scale)))
            colour = u(3, 1, 1, 1)
            obj = colour * (0.7 + 0.3 * stripe)
            video = video * (1 - inside) + obj * inside
        video = video + self.noise * torch.randn(video.shape, generator=g)
        return video.clamp_(0, 1).transpose(0, 1).contiguous()
