"""One exception hierarchy: every error frameflex raises on purpose is a :class:`FrameflexError`.

Each class also derives from the built-in exception a caller would expect
(``ValueError``, ``TypeError``, ``FileNotFoundError``, ``KeyError``, ``RuntimeError``),
so ``except ValueError`` keeps working and ``except ff.FrameflexError`` catches them all.

>>> import frameflex as ff
>>> try:
...     ff.convert(None, frame_sets=[8, 8])
... except ff.FrameflexError as e:
...     print(type(e).__name__, "-", e)
ArgumentError - frame_sets has duplicate frame counts [8]: [8, 8]
"""
from __future__ import annotations

__all__ = [
    "FrameflexError", "ArgumentError", "ArgumentTypeError", "ConversionError", "CheckpointError",
    "StateDictError", "NotFoundError", "UnknownKeyError", "DataError", "UsageError", "OverwriteError",
    "UntrustedCodeError",
]


class FrameflexError(Exception):
    """Base class of every error frameflex raises on purpose."""


class ArgumentError(FrameflexError, ValueError):
    """An argument has a bad value (a frame count of 0, duplicate frame sets, a size < 1 ...)."""


class ArgumentTypeError(FrameflexError, TypeError):
    """An argument has the wrong type (a str where frame counts are expected ...)."""


class ConversionError(FrameflexError, ValueError):
    """A model that cannot be converted, is not frame-flexible where it must be, or already is."""


class CheckpointError(FrameflexError, ValueError):
    """A checkpoint or weights file that cannot be used: truncated, foreign, wrong layout."""


class StateDictError(CheckpointError, RuntimeError):
    """A state dict whose keys, shapes or dtypes do not fit the model (like torch, a RuntimeError)."""


class NotFoundError(FrameflexError, FileNotFoundError):
    """A file, folder or Hub repository that does not exist."""


class OverwriteError(FrameflexError, FileExistsError):
    """A file frameflex did not write would be replaced (pass ``overwrite=True`` to allow it)."""


class UntrustedCodeError(FrameflexError, PermissionError):
    """Code named by a downloaded file, which runs only with ``trust_remote_code=True``."""


class UnknownKeyError(FrameflexError, KeyError):
    """A name that is not known: a model name, a frame count with no clip ..."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(FrameflexError, ValueError):
    """Data that cannot be read: a bad list line, an undecodable video, a malformed batch."""


class UsageError(FrameflexError, ValueError):
    """A bad command-line flag: the CLI prints it as one line and exits with status 2."""
