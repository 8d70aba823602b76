"""Data-loading throughput: multi-frame (4/8/16) samples per second from mp4, webm and JPEG frames.

One item is what FFN training reads per video: a 4-, 8- and 16-frame clip with
one shared training augmentation (multi-scale crop to 224 px + flip) from a
video whose short side is 320 px. Sources: an H.264 mp4 like Kinetics (10 s at
30 fps, x264 defaults), a VP9 webm like Something-Something V2 (4 s at 12 fps),
and the mp4's frames as JPEG files (TSM's layout); decoders: torchcodec and
PyAV. Sampling: FFN's independent draws (up to 28 frames decoded) or nested
(16). The reference is one 16-frame clip, the single-frame-count baseline's
item; the target is nested <= 1.15x the reference. The videos are written
first; each round times every setting's three kinds back to back, rates are
medians over ``--repeats`` rounds and costs medians of the per-round ratios
(steadier on a shared machine). Timing starts once every DataLoader worker has
delivered an item (start-up excluded).

    python benchmarks/data.py                          # the README's table
    python benchmarks/data.py --workers 0 --items 8    # quicker
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import markdown_table  # noqa: E402

import frameflex as ff  # noqa: E402
from frameflex.datasets import train_transform, video_dataset  # noqa: E402
from frameflex.video import available_backends  # noqa: E402

TARGET = 1.15


def _frames(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """A panning textured background, a moving square and sensor noise: compresses like real footage."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 16 + 2, (width + 4 * n) // 16 + 2, 3)).astype(np.uint8)
    big = np.kron(coarse, np.ones((16, 16, 1), np.uint8))  # blocks, panned 4 px per frame
    noise = rng.integers(-6, 7, (7, height, width, 3), dtype=np.int16)  # cycled: fresh noise is slow to make
    out = np.empty((n, height, width, 3), np.uint8)
    for f in range(n):
        frame = big[:height, 4 * f:4 * f + width].astype(np.int16)
        y, x = (f * 3) % (height - 40), (f * 7) % (width - 40)
        frame[y:y + 40, x:x + 40] = (255, 40, 40)
        out[f] = (frame + noise[f % 7]).clip(0, 255)
    return out


def _write(path: Path, frames: np.ndarray, fps: int, codec: str, options: dict[str, str]) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = options
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_data(folder: Path, videos: int, short: int, mp4: tuple[int, int], webm: tuple[int, int],
              jpeg: bool) -> dict[str, Path]:
    """Write ``videos`` mp4 and webm files (and JPEG frames of the mp4s); returns ``{source: list file}``."""
    from PIL import Image

    height, width = short, short * 16 // 9 // 2 * 2
    lists: dict[str, list[str]] = {"mp4": [], "webm": [], "jpeg": []}
    for k in range(videos):
        frames = _frames(mp4[0], height, width, seed=k)
        _write(folder / f"k{k}.mp4", frames, mp4[1], "libx264", {})
        lists["mp4"].append(f"k{k}.mp4 {k}")
        _write(folder / f"s{k}.webm", frames[: webm[0]], webm[1], "libvpx-vp9",
               {"deadline": "realtime", "cpu-used": "8", "b": "1M"})
        lists["webm"].append(f"s{k}.webm {k}")
        if jpeg:
            d = folder / f"k{k}"
            d.mkdir()
            for i, img in enumerate(frames):
                Image.fromarray(img).save(d / f"{i + 1:05d}.jpg", quality=90)
            lists["jpeg"].append(f"k{k} {len(frames)} {k}")
    out = {}
    for name, lines in lists.items():
        if lines:
            out[name] = folder / f"{name}.txt"
            out[name].write_text("\n".join(lines) + "\n")
    return out


def _measure(ds: torch.utils.data.Dataset, items: int, workers: int, seed: int) -> tuple[float, float]:
    """(items per second, CPU seconds per item) of loading random items.

    Wall time starts once every worker has delivered an item (start-up excluded);
    CPU time is this process's plus its workers' (``RUSAGE_CHILDREN``, counted
    when they exit), over every item loaded. On a machine shared with other jobs
    CPU time is the steadier measure of the work, wall time what training sees.
    """
    warm = max(1, workers)
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=items + warm,
                                             generator=torch.Generator().manual_seed(seed))
    cpu = _cpu()
    loader = iter(torch.utils.data.DataLoader(ds, batch_size=1, sampler=sampler, num_workers=workers,
                                              collate_fn=ff.collate_clips))
    for _ in range(warm):
        next(loader)
    if workers == 0:
        cpu = _cpu()
    start = time.perf_counter()
    n = sum(1 for _ in loader)  # the workers exit at the end
    wall = time.perf_counter() - start
    assert n == items
    return items / wall, (_cpu() - cpu) / (items if workers == 0 else items + warm)


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=4, help="distinct files per source (default 4)")
    parser.add_argument("--items", type=int, default=12, help="items loaded per timing (default 12)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per setting, interleaved (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers (default 0 2)")
    parser.add_argument("--short-side", type=int, default=320, help="video height (16:9; default 320)")
    parser.add_argument("--crop", type=int, default=224, help="training crop (default 224)")
    parser.add_argument("--mp4", type=int, nargs=2, default=(300, 30), metavar=("FRAMES", "FPS"))
    parser.add_argument("--webm", type=int, nargs=2, default=(48, 12), metavar=("FRAMES", "FPS"))
    parser.add_argument("--sources", nargs="+", default=["mp4", "webm", "jpeg"], choices=["mp4", "webm", "jpeg"])
    parser.add_argument("--frame-sets", type=int, nargs="+", default=[4, 8, 16])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # DataLoader workers run one thread each; the main process does too
    backends = [b for b, problem in available_backends().items() if problem is None]
    fs = tuple(args.frame_sets)
    top = max(fs)
    kinds = {"16f": ((top,), False), "independent": (fs, False), "nested": (fs, True)}
    print(f"# frameflex {ff.__version__}, torch {torch.__version__}, {platform.machine()} "
          f"({os.cpu_count()} CPUs), decoders {backends}; {args.videos} videos per source, {args.items} items "
          f"per timing, median of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        lists = make_data(Path(tmp), args.videos, args.short_side, tuple(args.mp4), tuple(args.webm),
                          "jpeg" in args.sources)
        print(f"# wrote the videos in {time.perf_counter() - start:.1f} s: mp4 {args.mp4[0]} frames at "
              f"{args.mp4[1]} fps, webm {args.webm[0]} frames at {args.webm[1]} fps, "
              f"{args.short_side} px short side, training crop {args.crop} px")
        settings = []
        for source in args.sources:
            for backend in (backends if source != "jpeg" else ["PIL"]):
                for workers in args.workers:
                    settings.append((source, backend, workers))
        rates: dict[tuple, list[float]] = {}
        rng = np.random.default_rng(0)
        for r in range(args.repeats):  # each round: every setting, its three kinds back to back (paired)
            for i in rng.permutation(len(settings)):
                source, backend, workers = settings[i]
                for kind in rng.permutation(list(kinds)):
                    frames, nested = kinds[kind]
                    kw = {} if backend == "PIL" else {"backend": backend}
                    ds = video_dataset(lists[source], frame_sets=frames, nested=nested, train=True,
                                       transform=train_transform(args.crop), **kw)
                    rates.setdefault((source, backend, workers, kind), []).append(
                        _measure(ds, args.items, workers, seed=r))
    rows = []
    med = statistics.median
    for source, backend, workers in settings:
        got = {k: rates[(source, backend, workers, k)] for k in kinds}
        cost = {k: med([a[1] / b[1] for a, b in zip(got[k], got["16f"])]) for k in ("independent", "nested")}
        rows.append({"source": source, "decoder": backend, "workers": workers,
                     **{k: med([x[0] for x in v]) for k, v in got.items()},
                     "cpu_ms_16f": 1e3 * med([x[1] for x in got["16f"]]),
                     "independent_x": cost["independent"], "nested_x": cost["nested"]})
    label = "/".join(map(str, fs))
    print(markdown_table(
        ["source", "decoder", "workers", f"{top}f clips/s", f"{label} indep. /s", f"{label} nested /s",
         f"{top}f CPU ms", f"indep. CPU (x {top}f)", f"nested CPU (x {top}f)"],
        [[r["source"], r["decoder"], r["workers"], f"{r['16f']:.1f}", f"{r['independent']:.1f}",
          f"{r['nested']:.1f}", f"{r['cpu_ms_16f']:.0f}", f"{r['independent_x']:.2f}", f"{r['nested_x']:.2f}"]
         for r in rows]))
    worst = max(r["nested_x"] for r in rows)
    print(f"\nclips/s: wall clock, median of {args.repeats}; CPU: this process and its workers per item, "
          f"cost = median per-round ratio to one {top}-frame clip.\nnested multi-frame sample: at most "
          f"{worst:.2f}x the CPU of one {top}-frame sample (target <= {TARGET}x: "
          f"{'met' if worst <= TARGET else 'NOT met'})")
    return rows


if __name__ == "__main__":
    main()
