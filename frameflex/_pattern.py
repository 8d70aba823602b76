"""Regex patterns over module names, matched without backtracking.

``re.fullmatch`` backtracks: a pattern such as ``(.*.*)*z`` takes exponential time
on a long name and would hang :func:`frameflex.convert`. Here Python's own parser
reads the pattern and a Thompson NFA runs it, in time linear in the name. It
supports what names need (literals, ``.``, classes, ``|``, groups, repeats,
``^``/``$``); backreferences, lookarounds and flags are refused with a clear error.
"""
from __future__ import annotations

import re
from typing import Callable

try:  # Python >= 3.11
    from re import _constants as C
    from re import _parser as P
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as C
    import sre_parse as P

from .errors import ArgumentError

__all__ = ["compile_pattern"]

_MAX_STATES = 10_000  # a{5000} expands to 5000 states: refuse, do not hang
_CATEGORIES = {getattr(C, f"CATEGORY_{k}"): re.compile(rx).fullmatch for k, rx in (
    ("DIGIT", r"\d"), ("NOT_DIGIT", r"\D"), ("SPACE", r"\s"), ("NOT_SPACE", r"\S"),
    ("WORD", r"\w"), ("NOT_WORD", r"\W"))}


def _char_class(items) -> Callable[[str], bool]:
    negate = int(bool(items) and items[0][0] is C.NEGATE)
    tests = []
    for op, av in items[negate:]:
        if op is C.LITERAL:
            tests.append(lambda c, v=chr(av): c == v)
        elif op is C.RANGE:
            tests.append(lambda c, lo=av[0], hi=av[1]: lo <= ord(c) <= hi)
        elif op is C.CATEGORY and av in _CATEGORIES:
            tests.append(lambda c, f=_CATEGORIES[av]: f(c) is not None)
        else:
            raise ValueError(f"the character class item {op} is not supported")
    return lambda c: any(t(c) for t in tests) != negate


class _NFA:
    def __init__(self) -> None:
        self.states: list[list] = []  # [kind, arg, next]; kind: char / split / begin / end / match

    def add(self, kind: str, arg=None, nxt=None) -> int:
        if len(self.states) >= _MAX_STATES:
            raise ValueError(f"it expands to more than {_MAX_STATES} states")
        self.states.append([kind, arg, nxt])
        return len(self.states) - 1

    def seq(self, items, out: int) -> int:
        for op, av in reversed(list(items)):
            out = self.one(op, av, out)
        return out

    def one(self, op, av, out: int) -> int:
        if op is C.LITERAL:
            return self.add("char", lambda c, v=chr(av): c == v, out)
        if op is C.NOT_LITERAL:
            return self.add("char", lambda c, v=chr(av): c != v, out)
        if op is C.ANY:
            return self.add("char", lambda c: c != "\n", out)
        if op is C.IN:
            return self.add("char", _char_class(av), out)
        if op is C.BRANCH:
            return self.add("split", [self.seq(alt, out) for alt in av[1]])
        if op is C.SUBPATTERN:
            if av[1] or av[2]:
                raise ValueError("inline flags are not supported")
            return self.seq(av[3], out)
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, body = av
            if hi is C.MAXREPEAT:
                loop = self.add("split", [])
                self.states[loop][1] = [self.seq(body, loop), out]
                tail = loop
            else:
                tail = out
                for _ in range(hi - lo):
                    tail = self.add("split", [self.seq(body, tail), out])
            for _ in range(lo):
                tail = self.seq(body, tail)
            return tail
        if op is C.AT and av in (C.AT_BEGINNING, C.AT_BEGINNING_STRING):
            return self.add("begin", None, out)
        if op is C.AT and av in (C.AT_END, C.AT_END_STRING):
            return self.add("end", None, out)
        what = {"GROUPREF": "backreferences", "GROUPREF_EXISTS": "conditionals", "ASSERT": "lookarounds",
                "ASSERT_NOT": "lookarounds", "AT": "word boundaries", "ATOMIC_GROUP": "atomic groups",
                "POSSESSIVE_REPEAT": "possessive repeats"}.get(str(op), str(op))
        raise ValueError(f"{what} are not supported")

    def closure(self, starts, pos: int, size: int) -> set[int]:
        seen, stack = set(), list(starts)
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            kind, arg, nxt = self.states[s]
            if kind == "split":
                stack.extend(arg)
            elif (kind == "begin" and pos == 0) or (kind == "end" and pos == size):
                stack.append(nxt)
        return seen


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A function telling whether a name ``re.fullmatch``-es ``pattern``, in linear time.

    >>> compile_pattern(r"layer\\d\\.0\\.conv1")("layer3.0.conv1")
    True
    >>> compile_pattern("(.*.*)*z")("a" * 50)  # returns at once; re.fullmatch would not
    False
    """
    try:
        parsed = P.parse(pattern)
    except re.error as e:
        raise ArgumentError(f"{pattern!r} is not a valid regex: {e}") from None
    nfa = _NFA()
    try:
        if parsed.state.flags & ~(re.UNICODE | re.ASCII):
            raise ValueError("inline flags are not supported")
        start = nfa.seq(parsed, nfa.add("match"))
    except ValueError as e:
        raise ArgumentError(f"pattern {pattern!r}: {e}; give module names or a simpler regex") from None

    def fullmatch(name: str) -> bool:
        current = nfa.closure([start], 0, len(name))
        for i, c in enumerate(name):
            step = [nfa.states[s][2] for s in current if nfa.states[s][0] == "char" and nfa.states[s][1](c)]
            if not step:
                return False
            current = nfa.closure(step, i + 1, len(name))
        return any(nfa.states[s][0] == "match" for s in current)

    return fullmatch
