"""Captured tensors are read in range: each read's index expressions (dialect/capture_reads.py) are
bounded by interval arithmetic (dialect/index_intervals.py) at the call's shape, and a tensor too small
for them is refused before any kernel runs, naming the tensor, the dimension, its size and the range of
indices.

Dimensions attn-guard-captures guarded (an index computed from data, or one the arithmetic cannot bound
exactly) are not checked here: the kernels mask those loads instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from attnc.dialect.index_intervals import interval


def check_capture_reads(reads: list[dict[str, Any]], captures: list[torch.Tensor], extents: Mapping[str, int]) -> None:
    """Raises ValueError when a captured tensor is indexed outside its shape for some index in `extents`
    (b, h, q_idx, kv_idx → the number of values each takes)."""
    if any(n <= 0 for n in extents.values()):
        return  # no program reads anything
    for read in reads:
        tensor = captures[read["capture"]]
        for dim, expr in enumerate(read["indices"]):
            if dim in read["guarded"] or dim >= tensor.dim():
                continue
            found = interval(expr, extents)
            assert found is not None, f"attn-guard-captures left an index it cannot prove unguarded: {expr}"
            lo, hi = found
            size = tensor.shape[dim]
            if lo < 0 or hi >= size:
                raise ValueError(
                    f"captured tensor '{read['name']}' (shape {tuple(tensor.shape)}) is read in {read['region']} at "
                    f"dimension {dim} with indices from {lo} to {hi}, but that dimension has size {size}"
                    + ("; negative indices do not wrap" if lo < 0 else "")
                )


__all__ = ["check_capture_reads"]
