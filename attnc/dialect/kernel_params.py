"""How generated kernels name their parameters: the one spelling the builders (conversion/)
declare and the launchers (runtime/) fill in.

A tensor `t` arrives as `t_ptr` with strides `stride_t_b`, `stride_t_h`, `stride_t_s`,
`stride_t_d`; captured tensor i as `cap{i}_ptr` with `cap{i}_stride{j}` per dimension (and
`cap{i}_size{j}` for a dimension a guarded read masks), its gradient as
`capgrad{i}_ptr`/`capgrad{i}_stride{j}`; row statistic i as `stat{i}_ptr`.
Head dims reach the kernels padded (`padded_head_dim`) as constexprs.
"""

from __future__ import annotations

import triton

PAGE_SIZE = "PAGE_SIZE"  # a paged cache's page size, a constexpr of the kernels that read one


def ptr(tensor: str) -> str:
    return f"{tensor}_ptr"


def stride(tensor: str, dim: str) -> str:
    return f"stride_{tensor}_{dim}"


def capture_ptr(index: int) -> str:
    return f"cap{index}_ptr"


def capture_stride(index: int, dim: int) -> str:
    return f"cap{index}_stride{dim}"


def capture_size(index: int, dim: int) -> str:
    return f"cap{index}_size{dim}"


def capture_grad_ptr(index: int) -> str:
    return f"capgrad{index}_ptr"


def capture_grad_stride(index: int, dim: int) -> str:
    return f"capgrad{index}_stride{dim}"


def stat_ptr(index: int) -> str:
    return f"stat{index}_ptr"


def padded_head_dim(n: int) -> int:
    """A head dim as the kernels' tiles hold it: a power of two, at least 16 (tl.dot's smallest)."""
    return max(16, triton.next_power_of_2(n))


__all__ = [
    "PAGE_SIZE",
    "capture_grad_ptr",
    "capture_grad_stride",
    "capture_ptr",
    "capture_size",
    "capture_stride",
    "padded_head_dim",
    "ptr",
    "stat_ptr",
    "stride",
]
