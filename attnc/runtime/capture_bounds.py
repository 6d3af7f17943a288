"""Captured tensors are read in range: each read's index expressions (dialect/capture_reads.py) are
bounded by interval arithmetic at the call's shape, and a tensor too small for them is refused before
any kernel runs, naming the tensor, the dimension, its size and the range of indices.

Exact for expressions that use each index argument at most once (bias[h, q_idx - kv_idx + 9]); one
that repeats an argument, or computes an index from data, is not bounded here (never refused for it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

Interval = tuple[int, int]


def check_capture_reads(reads: list[dict[str, Any]], captures: list[torch.Tensor], extents: Mapping[str, int]) -> None:
    """Raises ValueError when a captured tensor is indexed outside its shape for some index in `extents`
    (b, h, q_idx, kv_idx → the number of values each takes)."""
    if any(n <= 0 for n in extents.values()):
        return  # no program reads anything
    for read in reads:
        tensor = captures[read["capture"]]
        for dim, expr in enumerate(read["indices"]):
            if _repeats_an_argument(expr):
                continue
            found = _interval(expr, extents)
            if found is None or dim >= tensor.dim():
                continue
            lo, hi = found
            size = tensor.shape[dim]
            if lo < 0 or hi >= size:
                raise ValueError(
                    f"captured tensor '{read['name']}' (shape {tuple(tensor.shape)}) is read in {read['region']} at "
                    f"dimension {dim} with indices from {lo} to {hi}, but that dimension has size {size}"
                    + ("; negative indices do not wrap" if lo < 0 else "")
                )


def _arguments(expr: dict[str, Any]) -> list[str]:
    if "arg" in expr:
        return [expr["arg"]]
    return [a for sub in expr.get("args", ()) for a in _arguments(sub)]


def _repeats_an_argument(expr: dict[str, Any]) -> bool:
    names = _arguments(expr)
    return len(names) != len(set(names))


def _interval(expr: dict[str, Any], extents: Mapping[str, int]) -> Interval | None:
    if "arg" in expr:
        return (0, extents[expr["arg"]] - 1)
    if "const" in expr:
        return (expr["const"], expr["const"])
    if "op" not in expr:
        return None
    args = [_interval(a, extents) for a in expr["args"]]
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
    if op == "rem" and c > 0 and alo >= 0:
        return 0, min(ahi, c - 1)
    return None


__all__ = ["check_capture_reads"]
