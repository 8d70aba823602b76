"""Reading and writing the files frameflex owns: whole or not at all, errors naming the file."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import DataError, NotFoundError

__all__ = ["write_atomically", "read_text", "read_json"]

_TMP_SUFFIX = ".frameflex-tmp"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")


def _remove_stale_tmp(folder: Path) -> None:
    """Temporary files of killed writers (their pid is gone); a live writer's stay."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    for tmp in folder.glob(f".*{_TMP_SUFFIX}"):
        try:
            os.kill(int(tmp.name[: -len(_TMP_SUFFIX)].rsplit(".", 1)[1]), 0)
        except (ValueError, IndexError, ProcessLookupError):
            with contextlib.suppress(OSError):
                tmp.unlink()
        except PermissionError:  # another user's live process
            pass


def write_atomically(writers: Mapping[Path, Callable[[Path], None]]) -> None:
    """Write every file with its ``writer(tmp_path)``, then rename them all into place.

    Nothing is replaced until every file is written and synced, so a failure or a
    kill while writing leaves the old files as they were; temporary files are
    removed on failure (and, after a kill, by the next write to that folder).

    >>> write_atomically({Path("out/a.json"): lambda p: p.write_text("{}")})  # doctest: +SKIP
    """
    done: dict[Path, Path] = {}
    try:
        for path, write in writers.items():
            _remove_stale_tmp(path.parent)
            tmp = _tmp_name(path)
            done[path] = tmp
            write(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        for path, tmp in done.items():
            os.replace(tmp, path)
        for folder in {p.parent for p in done}:
            with contextlib.suppress(OSError):  # make the renames durable (not on every OS)
                fd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    finally:
        for tmp in done.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _check_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise NotFoundError(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise NotFoundError(f"{what} not found: {path}")


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped); errors name the file and the byte.

    >>> read_text("classes.txt", "class names file").splitlines()  # doctest: +SKIP
    """
    path = Path(path)
    _check_file(path, what)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{what} {path} is not UTF-8 text: byte {data[e.start]:#04x} at line {line} "
                         f"(offset {e.start}); save it as UTF-8") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """A JSON file's content; an invalid file is an error naming the file, line and column."""
    text = read_text(path, what)
    if not text.strip():
        raise DataError(f"{what} {path} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{what} {path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
