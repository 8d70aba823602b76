"""Argument checks shared by every public function and the CLI (no torch import: the CLI uses them).

One rule each: a frame count is a positive int (not a bool), a frame set is a
non-empty sequence of them with no duplicates, a size is a positive int.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable, Iterable

from .errors import ArgumentError, ArgumentTypeError

__all__ = ["positive_int", "frame_count", "frame_sets", "nonnegative", "probability", "cli_type"]


def positive_int(value: Any, name: str) -> int:
    """``value`` if it is an int > 0 (bools refused), else a clear error naming ``name``.

    >>> positive_int(3, "size")
    3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ArgumentError(f"{name} must be a positive int, got {value!r}")
    return value


def frame_count(value: Any, name: str = "frame count") -> int:
    """A frame count: a positive int."""
    return positive_int(value, name)


def frame_sets(values: Any, name: str = "frame_sets") -> tuple[int, ...]:
    """Frame counts as a tuple in the given order; empty, non-int or duplicate entries are errors.

    >>> frame_sets([8, 4])
    (8, 4)
    >>> frame_sets([4, 8, 4])
    Traceback (most recent call last):
    ...
    frameflex.errors.ArgumentError: frame_sets has duplicate frame counts [4]: [4, 8, 4]
    """
    if values is None or isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ArgumentTypeError(f"{name} must be a list of positive ints such as [4, 8, 16], got {values!r}")
    values = list(values)
    if not values:
        raise ArgumentError(f"{name} is empty: give at least one frame count, e.g. [4, 8, 16]")
    for t in values:
        frame_count(t, f"{name} entry")
    dup = sorted({t for t in values if values.count(t) > 1})
    if dup:
        raise ArgumentError(f"{name} has duplicate frame counts {dup}: {values}")
    return tuple(values)


def nonnegative(value: Any, name: str) -> float:
    """A number >= 0 (int or float, bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} must be a number >= 0, got {value!r} ({type(value).__name__})")
    if not value >= 0:  # NaN too
        raise ArgumentError(f"{name} must be >= 0, got {value!r}")
    return value


def probability(value: Any, name: str) -> float:
    """A number in [0, 1]."""
    if not nonnegative(value, name) <= 1:
        raise ArgumentError(f"{name} must be in [0, 1], got {value!r}")
    return value


def cli_type(check: Callable[[Any, str], Any], convert: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """An argparse ``type=`` applying ``check``: bad values become argparse's one-line error (exit 2).

    >>> parser = argparse.ArgumentParser(prog="frameflex")
    >>> _ = parser.add_argument("--steps", type=cli_type(positive_int))
    >>> parser.parse_args(["--steps", "3"]).steps
    3
    """
    def parse(text: str) -> Any:
        try:
            return check(convert(text), "the value")
        except (ValueError, TypeError) as e:
            raise argparse.ArgumentTypeError(str(e) if isinstance(e, ArgumentError) else
                                             f"expected {getattr(convert, '__name__', 'a value')}, got {text!r}")
    parse.__name__ = check.__name__
    return parse
