"""Tiny video files written with PyAV for the tests: H.264 mp4 and VP9 webm, a few frames, 32-64 px."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CODECS = {".mp4": "libx264", ".webm": "libvpx-vp9"}


def frames(n: int, height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8 frames that are easy to tell apart: frame i is a flat colour 8 * i + 16 plus texture."""
    rng = np.random.default_rng(seed)
    level = (16 + 8 * np.arange(n)) % 240
    out = np.empty((n, height, width, 3), np.uint8)
    out[...] = level[:, None, None, None]
    out[..., 1] = rng.integers(0, 64, (height, width))[None]  # a static texture in one channel
    return out


def write_video(path: Path, n: int = 24, height: int = 32, width: int = 48, fps: int = 25, gop: int = 6,
                seed: int = 0, **options: str) -> np.ndarray:
    """Write ``frames(n, ...)`` to ``path`` (codec from the suffix); returns the frames written."""
    import av

    data = frames(n, height, width, seed)
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(CODECS[Path(path).suffix], rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop)}
        for img in data:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return data


def frame_ids(decoded, source: np.ndarray) -> list[int]:
    """For each decoded (N, 3, H, W) frame, the index of the source frame it is closest to."""
    dec = np.asarray(decoded, dtype=np.float32)[:, 0].mean(axis=(1, 2))  # the flat channel's level
    src = source[..., 0].astype(np.float32).mean(axis=(1, 2))
    return np.abs(dec[:, None] - src[None]).argmin(axis=1).tolist()
