"""A call's sequence layout: packed (`cu_seqlens_q/k`), a KV cache (`cache_seqlens`) or a paged cache
(`cache_seqlens` + `block_table`), checked and summarised for the plan (dialect/attn_sequences.py
has the conventions).

Shapes, dtypes and devices are always checked. Values (offsets, lengths, page ids) are checked where
reading them costs no device→host sync: on the CPU, or on CUDA when `ATTNC_DEBUG=1`. The kernels
clamp every length they read, so unchecked values never make them read outside a tensor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import torch


@dataclass(frozen=True)
class Sequences:
    """What the plan needs: the layout, its metadata tensors in kernel order, how many sequences, the
    longest query and key lengths (the grid covers `max_q` rows; positions stay below `max_k`)."""

    layout: str  # "packed" | "cache" | "paged"
    meta: tuple[torch.Tensor, ...]
    count: int
    max_q: int
    max_k: int
    page_size: int = 0
    num_splits: int = 0  # decoding: 0 chooses, 1 none, n splits of each sequence's keys

    def key(self) -> tuple[Any, ...]:
        """What a plan depends on: the lengths rounded up to powers of two, so one plan serves many calls."""
        meta = tuple((m.shape, m.stride()) for m in self.meta)
        return (self.layout, self.count, _bucket(self.max_q), _bucket(self.max_k), self.page_size, meta)


def debug_checks() -> bool:
    """`ATTNC_DEBUG=1`: check what costs a device→host sync on CUDA too."""
    return os.environ.get("ATTNC_DEBUG", "") not in ("", "0")


def check_num_splits(num_splits: Any) -> None:
    if isinstance(num_splits, bool) or not isinstance(num_splits, int) or num_splits < 0:
        raise TypeError(f"num_splits must be a non-negative int (0 chooses, 1 none), but got {num_splits!r}")


def sequences(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: Any = None,
    cu_seqlens_k: Any = None,
    max_seqlen_q: Any = None,
    max_seqlen_k: Any = None,
    cache_seqlens: Any = None,
    block_table: Any = None,
    num_splits: Any = 0,
) -> Sequences | None:
    """The call's layout, or None for dense q, k, v; raises ValueError/TypeError naming the argument."""
    check_num_splits(num_splits)
    packed = cu_seqlens_q is not None or cu_seqlens_k is not None
    cached = cache_seqlens is not None or block_table is not None
    if packed and cached:
        raise ValueError(
            "cu_seqlens_q/cu_seqlens_k (packed sequences) and cache_seqlens (a KV cache) exclude each other"
        )
    if not packed and (max_seqlen_q is not None or max_seqlen_k is not None):
        raise ValueError("max_seqlen_q and max_seqlen_k go with cu_seqlens_q and cu_seqlens_k")
    if num_splits > 1 and not cached:
        raise ValueError("num_splits splits the keys of a KV cache; it goes with cache_seqlens")
    if packed:
        return _packed(q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    if cached:
        return replace(_cached(q, k, cache_seqlens, block_table), num_splits=num_splits)
    return None


def _index_tensor(name: str, t: Any, dims: int, device: torch.device) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of int32, but got {type(t).__name__}")
    if t.dtype != torch.int32:
        raise TypeError(f"{name} must be int32, but got {t.dtype}")
    if t.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimension{'s' if dims > 1 else ''}, but got shape {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"{name} must be on q's device {device}, but is on {t.device}")
    if dims == 1 and t.numel() > 1 and t.stride(0) != 1:  # the kernels read lengths and offsets at b, b + 1
        raise ValueError(f"{name} must be contiguous, but has stride {t.stride(0)}")
    return t


def _bucket(n: int) -> int:
    """The next power of two (plain ints: triton.next_power_of_2 is a jit function in recent Triton)."""
    return 1 << max(n - 1, 0).bit_length()


def _max_seqlen(name: str, given: Any, lengths: torch.Tensor | None) -> int:
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int) or given < 0:
            raise TypeError(f"{name} must be a non-negative Python int or None, but got {given!r}")
        if lengths is not None and lengths.numel() and int(lengths.max()) > given:
            raise ValueError(f"{name} is {given}, but a sequence has length {int(lengths.max())}")
        return given
    assert lengths is not None
    return int(lengths.max()) if lengths.numel() else 0


def _packed(q: torch.Tensor, k: torch.Tensor, cu_q: Any, cu_k: Any, max_q: Any, max_k: Any) -> Sequences:
    if cu_q is None or cu_k is None:
        raise ValueError("packed sequences need both cu_seqlens_q and cu_seqlens_k")
    cu_q = _index_tensor("cu_seqlens_q", cu_q, 1, q.device)
    cu_k = _index_tensor("cu_seqlens_k", cu_k, 1, q.device)
    if cu_q.shape[0] < 1 or cu_q.shape != cu_k.shape:
        raise ValueError(
            f"cu_seqlens_q and cu_seqlens_k must both have N+1 entries, but got {cu_q.shape[0]} and {cu_k.shape[0]}"
        )
    if q.shape[0] != 1 or k.shape[0] != 1:
        raise ValueError(
            f"packed q, k and v must have batch 1 ([1, H, total, D]), but got q {tuple(q.shape)} and k {tuple(k.shape)}"
        )
    check = q.device.type == "cpu" or debug_checks() or max_q is None or max_k is None
    len_q = len_k = None
    if check:
        for name, cu, total in (("cu_seqlens_q", cu_q, q.shape[2]), ("cu_seqlens_k", cu_k, k.shape[2])):
            host = cu.cpu()
            if int(host[0]) != 0:
                raise ValueError(f"{name} must start at 0, but starts at {int(host[0])}")
            if bool((host[1:] < host[:-1]).any()):
                raise ValueError(f"{name} must not decrease, but got {host.tolist()}")
            if int(host[-1]) != total:
                raise ValueError(f"{name} must end at the number of packed rows, {total}, but ends at {int(host[-1])}")
        len_q, len_k = (cu_q[1:] - cu_q[:-1]).cpu(), (cu_k[1:] - cu_k[:-1]).cpu()
        longer = (len_q > len_k).nonzero()
        if longer.numel():
            i = int(longer[0])
            raise ValueError(
                f"sequence {i} has {int(len_q[i])} queries but {int(len_k[i])} keys; queries are a sequence's "
                "last positions, so there may not be more of them than keys"
            )
    mq = _max_seqlen("max_seqlen_q", max_q, len_q)
    mk = _max_seqlen("max_seqlen_k", max_k, len_k)
    return Sequences("packed", (cu_q, cu_k), cu_q.shape[0] - 1, mq, max(mk, mq))


def _cached(q: torch.Tensor, k: torch.Tensor, lens: Any, table: Any) -> Sequences:
    if lens is None:
        raise ValueError("block_table needs cache_seqlens, the number of valid keys of each sequence")
    batch, seq_q = q.shape[0], q.shape[2]
    lens = _index_tensor("cache_seqlens", lens, 1, q.device)
    if lens.shape[0] != batch:
        raise ValueError(f"cache_seqlens must have one length per sequence ({batch}), but got {lens.shape[0]}")
    if table is None:
        if k.shape[0] != batch:
            raise ValueError(f"the KV cache must have batch {batch} like q, but got k of shape {tuple(k.shape)}")
        capacity, meta, page = k.shape[2], (lens,), 0
    else:
        table = _index_tensor("block_table", table, 2, q.device)
        if k.shape[0] == 0:
            raise ValueError("a paged cache needs at least one page, but k has none")
        if table.shape[0] != batch:
            raise ValueError(f"block_table must have one row per sequence ({batch}), but got {table.shape[0]}")
        page = k.shape[2]
        capacity, meta = table.shape[1] * page, (lens, table)
    if q.device.type == "cpu" or debug_checks():
        host = lens.cpu()
        if host.numel() and (int(host.min()) < seq_q or int(host.max()) > capacity):
            bad = int(host[(host < seq_q) | (host > capacity)][0])
            raise ValueError(
                f"cache_seqlens must be between Sq ({seq_q}) and the cache's capacity ({capacity}), but got {bad}"
            )
        if table is not None:
            _check_pages(table.cpu(), host, page, k.shape[0])
    layout = "cache" if table is None else "paged"
    return Sequences(layout, meta, batch, seq_q, capacity, page)


def _check_pages(table: torch.Tensor, lens: torch.Tensor, page: int, num_pages: int) -> None:
    used = (lens + page - 1) // page
    for b in range(table.shape[0]):
        ids = table[b, : int(used[b])]
        bad = ((ids < 0) | (ids >= num_pages)).nonzero()
        if bad.numel():
            j = int(bad[0])
            raise ValueError(
                f"block_table[{b}, {j}] is page {int(ids[j])}, outside the cache's {num_pages} pages [0, {num_pages})"
            )


__all__ = ["Sequences", "check_num_splits", "debug_checks", "sequences"]
