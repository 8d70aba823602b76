"""A run's files: atomic writes, the epoch log, the lock on ``--out``, and what a resume must match.

Write order at the end of an epoch: ``best.pt`` (when it is the best), the line of
``log.jsonl``, then ``last.pt``. A kill at any moment thus loses at most the
unfinished epoch, and ``best.pt`` and ``log.jsonl`` are never behind ``last.pt``;
a resume drops log lines of epochs that ``last.pt`` does not hold.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from .config import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None

__all__ = ["atomic_save", "atomic_copy", "append_log", "trim_log", "run_lock", "settings_diff"]


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _replace(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself survives a power cut once the folder is synced
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` whole or not at all: a temp file in the same folder, then os.replace."""
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_copy(src: Path, dst: Path) -> None:
    tmp = _tmp(dst)
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def append_log(path: Path, record: Mapping[str, Any]) -> None:
    """One JSON line, on disk before the call returns."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def trim_log(path: Path, epochs: int) -> int:
    """Drop the lines of epochs after ``epochs`` (written before a kill, redone by the resume); returns how many."""
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    keep = [line for line in lines if line.strip() and json.loads(line)["epoch"] <= epochs]
    if len(keep) == len(lines):
        return 0
    tmp = _tmp(path)
    tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
    _replace(tmp, path)
    return len(lines) - len(keep)


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/train.lock`` (with this pid) for the run; a second run on ``out`` is refused.

    The lock is an OS file lock, released by the OS when the process ends however it
    ends, so a file left by a killed run is recognised as stale and taken over.
    """
    path = out / "train.lock"
    f = open(path, "a+", encoding="utf-8")
    try:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                pid = f.read().strip() or "?"
                raise UsageError(f"{out} is in use by another run (pid {pid}, {path}): wait for it to end, "
                                 "or choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()  # releases the lock; the file stays, harmless and reusable


def settings_diff(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``"key old -> new"`` for every setting that differs (nested dicts compared key by key)."""
    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += [f"{key}.{d}" for d in settings_diff(a, b)]
        elif a != b:
            out.append(f"{key} {a!r} -> {b!r}")
    return out
