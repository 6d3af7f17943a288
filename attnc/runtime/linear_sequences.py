"""Linear attention's sequence table: where each sequence of a call lies and how its chunks are numbered.

Every chunk kernel sees sequences through these run-time arrays, so one kernel serves
padded batches and packed (`cu_seqlens`) batches alike: sequence n spans
`[starts[n], ends[n])` of batch row `n * batch_step` (1 for a batch, 0 for a pack), and
chunks are numbered globally in sequence order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from attnc.runtime.launch import cdiv


@dataclass
class SequenceTable:
    """Where each sequence of one call lies and how its chunks are numbered (see conversion/chunk_common.py)."""

    count: int  # N: sequences
    batch_step: int
    starts: torch.Tensor
    ends: torch.Tensor
    chunk_offset: torch.Tensor
    chunk_seq: torch.Tensor
    chunk_idx: torch.Tensor
    num_chunks: int
    max_chunks: int  # chunks of the longest sequence
    chunk_first: torch.Tensor  # [chunks] each chunk's first step
    token_chunk: torch.Tensor  # [T] each step's chunk (packed sequences only; else empty)


_SEQ_CACHE: dict[tuple[Any, ...], SequenceTable] = {}


def sequences(
    batch: int, length: int, cu_seqlens: torch.Tensor | None, chunk: int, device: torch.device
) -> SequenceTable:
    """The table for a padded batch [B, T] (cached by shape) or for the sequences `cu_seqlens` packs."""
    if cu_seqlens is None:
        key = (batch, length, chunk, str(device))
        hit = _SEQ_CACHE.get(key)
        if hit is not None:
            return hit
        lengths = [length] * batch
        starts_l = [0] * batch
        batch_step = 1
    else:
        bounds = cu_seqlens.tolist()
        starts_l = bounds[:-1]
        lengths = [e - s for s, e in zip(bounds[:-1], bounds[1:])]
        batch_step = 0
    counts = [cdiv(n, chunk) for n in lengths]
    offsets, total = [], 0
    for c in counts:
        offsets.append(total)
        total += c
    chunk_seq = [n for n, c in enumerate(counts) for _ in range(c)]
    chunk_idx = [i for c in counts for i in range(c)]

    def i32(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.int32, device=device)

    out = SequenceTable(
        count=len(lengths),
        batch_step=batch_step,
        starts=i32(starts_l),
        ends=i32([s + n for s, n in zip(starts_l, lengths)]),
        chunk_offset=i32(offsets),
        chunk_seq=i32(chunk_seq),
        chunk_idx=i32(chunk_idx),
        num_chunks=total,
        max_chunks=max(counts, default=0),
        chunk_first=i32([starts_l[n] + i * chunk for n, i in zip(chunk_seq, chunk_idx)]),
        token_chunk=i32(
            []
            if cu_seqlens is None
            else [c for c, n in enumerate(chunk_seq) for _ in range(min(chunk, lengths[n] - chunk_idx[c] * chunk))]
        ),
    )
    if cu_seqlens is None:
        _SEQ_CACHE[(batch, length, chunk, str(device))] = out
    return out


__all__ = ["SequenceTable", "sequences"]
