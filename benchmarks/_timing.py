"""Small timing helpers shared by the scripts in benchmarks/.

The idea: on a machine shared with other jobs, absolute times drift, so time
the variants you want to compare *interleaved* (each round runs every variant
once, in a fresh shuffled order) and compare medians. The median of per-round
ratios (``paired_ratios``) is the steadiest comparison: when other jobs make the
times bimodal, a ratio of medians can jump by 10-30% while the paired one stays
put. On CPU, process CPU time (``cpu=``) is steadier still.

    from _timing import interleaved, median, ms, markdown_table, paired_ratios

    cpu = {}
    wall = interleaved({"plain": f, "converted": g}, rounds=20, warmup=3, cpu=cpu)
    ratio = median(paired_ratios(wall["converted"], wall["plain"]))
    print(markdown_table(["variant", "median ms"], [[k, ms(median(v))] for k, v in wall.items()]))

Every function here is plain Python + torch; nothing depends on frameflex.
"""
from __future__ import annotations

import csv
import datetime
import gc
import os
import platform
import random
import statistics
import time
from typing import Callable, Iterable, Mapping, Sequence

import torch

__all__ = [
    "pick_device", "sync", "time_once", "interleaved", "median", "quantile", "iqr",
    "paired_ratios", "ms", "markdown_table", "header_line", "write_csv", "seed_all",
]


def pick_device(name: str | None = None) -> torch.device:
    """``name`` if given, else cuda when available, else cpu."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(device: torch.device | str | None) -> None:
    """Wait for queued GPU work (a no-op on CPU), so a timer sees the real end."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device is not None and device.type == "mps":  # pragma: no cover - not on CI
        torch.mps.synchronize()


def time_once(fn: Callable[[], object], device: torch.device | str | None = None) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call of ``fn``; device-synchronised
    on both sides, GC off.

    CPU time counts the work of all this process's threads and not the time spent
    waiting for a core, so on a CPU shared with other jobs it is far steadier than
    wall time (only meaningful on CPU, and with OMP_WAIT_POLICY=PASSIVE: spinning
    OpenMP workers burn CPU time while they wait).
    """
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        sync(device)
        cpu, start = time.process_time(), time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        if gc_was_on:
            gc.enable()


def interleaved(
    fns: Mapping[str, Callable[[], object]],
    rounds: int = 20,
    warmup: int = 2,
    device: torch.device | str | None = None,
    order: str = "shuffle",
    seed: int = 0,
    on_round: Callable[[int, dict[str, float]], None] | None = None,
    cpu: dict[str, list[float]] | None = None,
    calls: int = 1,
) -> dict[str, list[float]]:
    """Time every function once per round, ``rounds`` times; returns ``{name: [wall seconds...]}``.

    ``order`` is ``"shuffle"`` (a fresh random order per round, seeded) or
    ``"rotate"`` (round r starts at variant r mod n), so no variant always runs
    right after the same neighbour (cache, allocator and thermal effects spread
    evenly). ``warmup`` rounds run first and are discarded. Garbage is collected
    between rounds, never inside a timed call. ``on_round(r, {name: s})`` is called
    after each timed round (for progress output). Pass a dict as ``cpu`` to also
    get each call's process CPU seconds, ``{name: [...]}``, same order. ``calls`` > 1
    calls each function that many times in a row and keeps the fastest (wall and CPU
    separately): bursts of other jobs then rarely reach the kept number.
    """
    if order not in ("shuffle", "rotate"):
        raise ValueError(f"order must be 'shuffle' or 'rotate', got {order!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = list(fns)
    rng = random.Random(seed)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(-warmup, rounds):
        if order == "shuffle":
            seq = names[:]
            rng.shuffle(seq)
        else:
            k = r % len(names)
            seq = names[k:] + names[:k]
        gc.collect()
        this, this_cpu = {}, {}
        for name in seq:
            times = [time_once(fns[name], device) for _ in range(max(1, calls))]
            this[name], this_cpu[name] = min(t[0] for t in times), min(t[1] for t in times)
        if r >= 0:
            for name in names:
                out[name].append(this[name])
                if cpu is not None:
                    cpu.setdefault(name, []).append(this_cpu[name])
            if on_round is not None:
                on_round(r, this)
    return out


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def quantile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile, ``q`` in [0, 1]."""
    s = sorted(xs)
    if not s:
        raise ValueError("quantile of an empty sequence")
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def iqr(xs: Sequence[float]) -> tuple[float, float]:
    """(25th, 75th) percentile."""
    return quantile(xs, 0.25), quantile(xs, 0.75)


def paired_ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Per-round ratios ``num[r] / den[r]``: both timed in the same round, so the
    load they saw is as close as it gets. Their median is a second, drift-robust
    estimate next to ``median(num) / median(den)``."""
    if len(num) != len(den):
        raise ValueError(f"paired_ratios needs equal lengths, got {len(num)} and {len(den)}")
    return [a / b for a, b in zip(num, den)]


def ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1e3:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]],
                   align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one char per column: l, r or c (default: l then r)."""
    rows = [[str(c) for c in row] for row in rows]
    n = len(headers)
    for row in rows:
        if len(row) != n:
            raise ValueError(f"row {row} has {len(row)} cells, the header has {n}")
    align = align or ("l" + "r" * (n - 1))
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    widths = [max(w, 3) for w in widths]

    def cell(text: str, i: int) -> str:
        return text.rjust(widths[i]) if align[i] == "r" else (
            text.center(widths[i]) if align[i] == "c" else text.ljust(widths[i]))

    def rule(i: int) -> str:
        w = widths[i]
        return {"l": ":" + "-" * (w - 1), "r": "-" * (w - 1) + ":", "c": ":" + "-" * (w - 2) + ":"}[align[i]]

    lines = ["| " + " | ".join(cell(h, i) for i, h in enumerate(headers)) + " |",
             "| " + " | ".join(rule(i) for i in range(n)) + " |"]
    lines += ["| " + " | ".join(cell(c, i) for i, c in enumerate(r)) + " |" for r in rows]
    return "\n".join(lines)


def header_line(device: torch.device | str, threads: int | None = None) -> str:
    """One line saying what the numbers were measured with."""
    device = torch.device(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    threads = torch.get_num_threads() if threads is None else threads
    env = "".join(f" | {k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
                  if k in os.environ)
    return (f"torch {torch.__version__} | device {device} ({where}) | threads {threads}{env} | "
            f"python {platform.python_version()} | {now}")


def write_csv(path: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(headers)
        w.writerows(rows)


def seed_all(seed: int = 0) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
