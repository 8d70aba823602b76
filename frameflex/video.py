"""Decode only the frames a clip needs from a video file (mp4, webm, ...).

Two backends, same frames for the same index: torchcodec (PyTorch's decoder,
needs FFmpeg's shared libraries on the system) when it loads, PyAV (its wheels
bundle FFmpeg) otherwise. Frame ``i`` is the ``i``-th frame in presentation
order; the frame count and fps come from the container (a scan of its packets,
no decoding), never from a list file. Only the requested frames are decoded:
each backend seeks to the keyframe before a wanted frame and decodes forward.

:class:`VideoDecoder` is what datasets hold: it picks the backend, keeps the
last opened file, and is rebuilt in every DataLoader worker (it does not
pickle its open files), so each worker has one decoder, opened lazily.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor

from .errors import ArgumentError, DataError, NotFoundError

__all__ = ["VideoReader", "VideoDecoder", "open_video", "available_backends", "default_backend"]

PathLike = Union[str, os.PathLike]
BACKENDS = ("torchcodec", "pyav")


@functools.lru_cache(maxsize=None)
def _torchcodec_problem() -> str | None:
    """Why torchcodec cannot be used here, or None when it can."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads FFmpeg's shared libraries)
    except ImportError as e:
        return f"torchcodec is not installed ({e})"
    except Exception as e:  # RuntimeError/OSError: FFmpeg's libraries are missing or of another version
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"torchcodec cannot load FFmpeg ({first}); install FFmpeg (e.g. apt-get install ffmpeg)"
    return None


@functools.lru_cache(maxsize=None)
def _pyav_problem() -> str | None:
    try:
        import av  # noqa: F401
    except ImportError as e:
        return f"PyAV is not installed ({e}); pip install av"
    return None


def available_backends() -> dict[str, str | None]:
    """``{backend: None if usable else the reason it is not}``, in order of preference.

    Example:
        >>> available_backends()  # doctest: +SKIP
        {'torchcodec': None, 'pyav': None}
    """
    return {"torchcodec": _torchcodec_problem(), "pyav": _pyav_problem()}


def default_backend() -> str:
    """The backend ``"auto"`` means here: torchcodec if it loads, else PyAV.

    Example:
        >>> default_backend() in ("torchcodec", "pyav")
        True
    """
    problems = available_backends()
    for name in BACKENDS:
        if problems[name] is None:
            return name
    raise DataError("no video decoder can load: " + "; ".join(f"{k}: {v}" for k, v in problems.items()))


def _resolve_backend(backend: str) -> str:
    if backend == "auto":
        return default_backend()
    if backend not in BACKENDS:
        raise ArgumentError(f"unknown video backend {backend!r}; use 'auto' or one of {list(BACKENDS)}")
    problem = available_backends()[backend]
    if problem is not None:
        raise DataError(f"video backend {backend} is not available: {problem}")
    return backend


def _short(error: BaseException) -> str:
    # torchcodec prefixes its messages with the C++ function, file and line.
    text = re.sub(r"^\w+, \S+:\d+, ", "", str(error).strip())
    return f"{type(error).__name__}: {text}"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise NotFoundError(f"video file not found: {path}")
    if path.is_dir():
        raise DataError(f"video path is a directory, not a file: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"video file is empty (0 bytes): {path}")


class VideoReader:
    """One open video file: :attr:`num_frames`, :attr:`fps`, and :meth:`get_frames`.

    Use :func:`open_video` to make one. Frames come back as uint8 (N, C, H, W),
    RGB, in the order asked (repeats allowed); each distinct frame is decoded once.
    """

    backend: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.num_frames = 0  # frames found by scanning the packets
        self.header_frames: int | None = None  # what the container's header says, when it says
        self.fps = 0.0

    def get_frames(self, indices: Sequence[int] | Tensor) -> Tensor:
        """Frames ``indices`` (0-based, presentation order) as uint8 (N, 3, H, W)."""
        idx = [int(i) for i in torch.as_tensor(indices, dtype=torch.long).reshape(-1).tolist()]
        if not idx:
            raise ArgumentError(f"get_frames needs at least one frame index ({self.path})")
        bad = [i for i in idx if not 0 <= i < self.num_frames]
        if bad:
            raise ArgumentError(f"frame indices {bad} out of range for {self.path} "
                                f"({self.num_frames} frames)")
        wanted = sorted(set(idx))
        try:
            frames = self._decode(wanted)
        except DataError:
            raise
        except Exception as e:  # the backends raise RuntimeError, av.FFmpegError, ValueError ...
            raise DataError(f"cannot decode {self.path} (frames {wanted[0]}..{wanted[-1]} of "
                            f"{self.num_frames}, {self.backend}): {_short(e)}") from None
        where = {i: k for k, i in enumerate(wanted)}
        return frames[[where[i] for i in idx]]

    def _decode(self, wanted: list[int]) -> Tensor:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file (also done when the reader is garbage-collected)."""

    def __repr__(self) -> str:
        return (f"VideoReader({str(self.path)!r}, backend={self.backend!r}, num_frames={self.num_frames}, "
                f"fps={self.fps:g})")


class _TorchcodecReader(VideoReader):
    backend = "torchcodec"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        from torchcodec.decoders import VideoDecoder as _Decoder

        # "exact": the index of every frame from a scan of the packets, like the PyAV reader.
        self._decoder = _Decoder(str(path), seek_mode="exact", dimension_order="NCHW", num_ffmpeg_threads=1)
        meta = self._decoder.metadata
        self.num_frames = int(meta.num_frames_from_content or 0)
        self.header_frames = meta.num_frames_from_header
        self.fps = float(meta.average_fps or 0.0)

    def _decode(self, wanted: list[int]) -> Tensor:
        return self._decoder.get_frames_at(wanted).data

    def close(self) -> None:
        self._decoder = None


class _PyAVReader(VideoReader):
    backend = "pyav"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import av

        self._container = av.open(str(path))
        if not self._container.streams.video:
            self._container.close()
            raise DataError(f"no video stream in {path}")
        stream = self._stream = self._container.streams.video[0]
        stream.thread_count = 1  # DataLoader workers are the parallelism; FFmpeg threads would compete
        pts, keys = [], []
        for packet in self._container.demux(stream):
            if packet.pts is not None and packet.size > 0:
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        self._pts = sorted(pts)  # presentation order (packets come in decode order)
        self._keys = sorted(keys)
        self.num_frames = len(self._pts)
        self.header_frames = stream.frames or None
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self._frames: Any = None  # the running decode generator
        self._last = None  # pts of the last decoded frame
        self.frames_decoded = 0  # what seeking saves: about the frames asked for plus a GOP each, not the file

    def _keyframe_before(self, pts: int) -> int | None:
        k = bisect.bisect_right(self._keys, pts)
        return self._keys[k - 1] if k else None

    def _decode(self, wanted: list[int]) -> Tensor:
        out = []
        for i in wanted:
            target = self._pts[i]
            key = self._keyframe_before(target)
            # Decoding on is cheaper than seeking unless the target is behind us or past a keyframe.
            if self._frames is None or self._last is None or target <= self._last or (
                    key is not None and key > self._last):
                self._container.seek(key if key is not None else target, stream=self._stream, backward=True,
                                     any_frame=False)
                self._frames = self._container.decode(self._stream)
            for frame in self._frames:
                self.frames_decoded += 1
                self._last = frame.pts
                if frame.pts is not None and frame.pts >= target:
                    break
            else:
                self._frames = None
                raise DataError(f"{self.path} ends before frame {i} of {self.num_frames} "
                                "(truncated or corrupt file?)")
            if frame.pts != target:
                raise DataError(f"{self.path}: frame {i} (pts {target}) not found after seeking")
            out.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
        return torch.stack(out).permute(0, 3, 1, 2)

    def close(self) -> None:
        self._frames = None
        self._container.close()


_READERS = {"torchcodec": _TorchcodecReader, "pyav": _PyAVReader}


def open_video(path: PathLike, backend: str = "auto") -> VideoReader:
    """Open a video file for frame-accurate reads; errors name the path and what is wrong.

    ``backend``: ``"auto"`` (torchcodec if it loads, else PyAV; PyAV too for a file
    torchcodec cannot open), ``"torchcodec"`` or ``"pyav"``. A missing file raises :class:`~frameflex.errors.NotFoundError`; an empty,
    truncated or undecodable one :class:`~frameflex.errors.DataError`.

    Example:
        >>> video = open_video("clip.mp4")  # doctest: +SKIP
        >>> video.num_frames, video.fps  # doctest: +SKIP
        (300, 30.0)
        >>> video.get_frames([0, 150, 299]).shape  # uint8, only these three decoded  # doctest: +SKIP
        torch.Size([3, 3, 240, 320])
    """
    path = Path(path)
    name = _resolve_backend(backend)
    _check_file(path)
    # "auto": a file the system's FFmpeg (torchcodec) cannot read may still open with PyAV's own FFmpeg.
    fallback = backend == "auto" and name == "torchcodec" and _pyav_problem() is None
    try:
        return _open(path, name)
    except DataError:
        if not fallback:
            raise
        first = sys.exc_info()[1]
    try:
        return _open(path, "pyav")
    except DataError:
        raise first from None


def _open(path: Path, name: str) -> VideoReader:
    try:
        reader = _READERS[name](path)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"cannot open video {path} ({name}): {_short(e)}") from None
    problem = None
    if reader.num_frames <= 0:
        problem = f"no video frames in {path} ({name})"
    elif reader.header_frames and reader.num_frames < 0.95 * reader.header_frames:
        problem = (f"video file is truncated: {path} has {reader.num_frames} of the "
                   f"{reader.header_frames} frames its header lists")
    if problem:
        reader.close()
        raise DataError(problem)
    return reader


_INHERITED: list = []


class VideoDecoder:
    """A per-process decoder for datasets: opens files lazily and keeps the last one open.

    It pickles without its open file, so every DataLoader worker gets its own
    and opens what it reads itself. ``backend`` as in :func:`open_video`.

    Example:
        >>> decoder = VideoDecoder()
        >>> decoder.open("clip.mp4").num_frames  # doctest: +SKIP
        300
    """

    def __init__(self, backend: str = "auto") -> None:
        _resolve_backend(backend)  # fails now, naming the problem, if it cannot work
        self.backend = backend
        self._reader: VideoReader | None = None
        self._pid = os.getpid()

    def open(self, path: PathLike) -> VideoReader:
        """The reader of ``path``: the open one if it is the last file asked for."""
        path = Path(path)
        if self._pid != os.getpid():  # a forked worker: never share the parent's file, nor tear it down here
            _INHERITED.append(self._reader)  # (FFmpeg's state copied by fork is not ours to free)
            self._reader, self._pid = None, os.getpid()
        if self._reader is None or self._reader.path != path:
            self.close()
            self._reader = open_video(path, self.backend)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __getstate__(self) -> dict[str, Any]:
        return {"backend": self.backend}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.backend, self._reader, self._pid = state["backend"], None, os.getpid()

    def __repr__(self) -> str:
        return f"VideoDecoder(backend={self.backend!r})"
