"""Launching a compiled variant on torch tensors: CUDA tensors run compiled, CPU tensors interpreted."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from attnc.runtime.block_table import block_tables
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.targets import interpreted

_PARAMS: dict[int, frozenset[str]] = {}
_INTERPRETED: dict[int, Any] = {}


@dataclass(frozen=True)
class LaunchConfig:
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def _params(kernel: Any) -> frozenset[str]:
    names = _PARAMS.get(id(kernel))
    if names is None:
        names = frozenset(inspect.signature(getattr(kernel, "fn", kernel)).parameters)
        _PARAMS[id(kernel)] = names
    return names


def run_kernel(kernel: Any, grid: tuple[int, ...], args: dict[str, Any], device: torch.device, config: LaunchConfig | None) -> None:
    """Run a generated kernel, compiled on CUDA or in Triton's interpreter on the CPU."""
    names = _params(kernel)
    kwargs = {k: v for k, v in args.items() if k in names}
    if device.type == "cpu":
        runner = _INTERPRETED.get(id(kernel))
        if runner is None:
            runner = _INTERPRETED[id(kernel)] = interpreted(kernel)
        runner[grid](**kwargs)
        return
    if config is not None:
        kwargs["num_warps"] = config.num_warps
        kwargs["num_stages"] = config.num_stages
    kernel[grid](**kwargs)


def forward(
    compiled: CompiledVariant,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    captures: list[torch.Tensor],
    config: LaunchConfig,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Allocates the outputs, builds the block tables, launches the forward kernel."""
    batch, heads, seq_q, head_dim = q.shape
    kv_heads, seq_kv, head_dim_v = k.shape[1], k.shape[2], v.shape[3]
    device = q.device
    out = torch.empty((batch, heads, seq_q, head_dim_v), dtype=v.dtype, device=device)
    stats = [torch.empty((batch, heads, seq_q), dtype=torch.float32, device=device) for _ in range(compiled.info.num_stats)]
    if seq_q == 0 or batch == 0:
        return out, stats

    def launch_table(kernel: Any, grid: tuple[int, ...], args: dict[str, Any]) -> None:
        run_kernel(kernel, grid, args, device, None)

    tables = block_tables(
        compiled, launch_table, config.block_m, config.block_n, batch, heads, seq_q, seq_kv, captures, device
    )
    args: dict[str, Any] = {
        "q_ptr": q,
        "k_ptr": k,
        "v_ptr": v,
        "out_ptr": out,
        "seq_q": seq_q,
        "seq_kv": seq_kv,
        "num_heads": heads,
        "group": heads // kv_heads,
        "scale": compiled.info.scale,
        "full_num_ptr": tables.full_num,
        "full_idx_ptr": tables.full_idx,
        "part_num_ptr": tables.part_num,
        "part_idx_ptr": tables.part_idx,
        "table_stride_b": tables.stride_b,
        "table_stride_h": tables.stride_h,
        "num_kv_blocks": tables.num_kv_blocks,
        "BLOCK_M": config.block_m,
        "BLOCK_N": config.block_n,
        "HEAD_DIM": _pow2(head_dim),
        "HEAD_DIM_V": _pow2(head_dim_v),
    }
    for name, t in (("q", q), ("k", k), ("v", v), ("out", out)):
        for dim, stride in zip("bhsd", t.stride()):
            args[f"stride_{name}_{dim}"] = stride
    for i, stat in enumerate(stats):
        args[f"stat{i}_ptr"] = stat
    for i, tensor in enumerate(captures):
        args[f"cap{i}_ptr"] = tensor
        for j, stride in enumerate(tensor.stride()):
            args[f"cap{i}_stride{j}"] = stride
    grid = (-(-seq_q // config.block_m), batch * heads)
    run_kernel(compiled.forward, grid, args, device, config)
    return out, stats
