"""Interval arithmetic over the index expressions of captured-tensor reads (capture_reads.py).

`interval(expr, extents)` is the range of indices an expression takes when each index argument
(b, h, q_idx, kv_idx) runs over 0 .. extent − 1; `provable(expr)` says whether that range is
exact and defined at every shape, which is what lets the runtime prove a read in range before a
call runs (runtime/capture_bounds.py) and lets attn-guard-captures leave its load unmasked.

Not provable: an index computed from data (`{"unknown": ...}`), an expression that repeats an
argument (`q_idx - q_idx // 2`: the interval of each use is taken apart, so the hull is loose
and could refuse a read that fits), and a division or remainder by anything but a nonzero
constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

Interval = tuple[int, int]
Expr = dict[str, Any]

_DIVISIONS = ("div", "rem", "mod")


def arguments(expr: Expr) -> list[str]:
    """The index arguments `expr` reads, once per use."""
    if "arg" in expr:
        return [expr["arg"]]
    return [a for sub in expr.get("args", ()) for a in arguments(sub)]


def provable(expr: Expr) -> bool:
    """Whether `interval(expr, extents)` is exact and not None for every extents of at least 1."""
    names = arguments(expr)
    return len(names) == len(set(names)) and _total(expr)


def _total(expr: Expr) -> bool:
    if "arg" in expr or "const" in expr:
        return True
    if "op" not in expr or not all(_total(a) for a in expr["args"]):
        return False
    if expr["op"] not in _DIVISIONS:
        return True
    divisor = expr["args"][-1]
    value = interval(divisor, {}) if not arguments(divisor) else None
    return value is not None and value[0] == value[1] != 0


def interval(expr: Expr, extents: Mapping[str, int]) -> Interval | None:
    """The least and greatest index `expr` takes, or None when this arithmetic cannot bound it."""
    if "arg" in expr:
        return (0, extents[expr["arg"]] - 1)
    if "const" in expr:
        return (expr["const"], expr["const"])
    if "op" not in expr:
        return None
    args = [interval(a, extents) for a in expr["args"]]
    if any(a is None for a in args):
        return None
    return _apply(expr["op"], [a for a in args if a is not None])


def _apply(op: str, args: list[Interval]) -> Interval | None:
    (alo, ahi), (blo, bhi) = args[0], args[-1]
    if op == "add":
        return alo + blo, ahi + bhi
    if op == "sub":
        return alo - bhi, ahi - blo
    if op == "mul":
        products = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
        return min(products), max(products)
    if op in ("min", "max"):
        pick = min if op == "min" else max
        return pick(alo, blo), pick(ahi, bhi)
    if op == "select":
        return min(alo, blo), max(ahi, bhi)
    if blo != bhi or blo == 0:  # division and remainder by a constant only
        return None
    c = blo
    if op == "div":  # floordiv or divsi (truncating): the hull of both, each monotone in the dividend
        ends = [f(x / c) for f in (math.floor, math.trunc) for x in (alo, ahi)]
        return min(ends), max(ends)
    if op == "mod":  # Python's %: the sign of the divisor
        if c > 0 and 0 <= alo and ahi < c:
            return alo, ahi
        return (0, c - 1) if c > 0 else (c + 1, 0)
    # remsi: the sign of the dividend, smaller than |c|
    bound = abs(c) - 1
    return (0 if alo >= 0 else max(alo, -bound)), (0 if ahi <= 0 else min(ahi, bound))


__all__ = ["Expr", "Interval", "arguments", "interval", "provable"]
