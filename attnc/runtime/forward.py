"""The forward launch of a compiled softmax-style variant: block tables, then the forward kernel.

A `PreparedLaunch` holds everything that depends only on shapes, so a warm call allocates
the outputs and launches, which keeps host overhead to a few microseconds of Python
beyond Triton's own launch. On a GPU its launch configuration is tuned (tune.py).
"""

from __future__ import annotations

from typing import Any

import torch
import triton

from attnc.dialect import kernel_params
from attnc.runtime import tune
from attnc.runtime.block_table import block_tables
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.launch import LaunchConfig, cdiv, run_fitting, run_kernel, set_capture_shapes, set_strides

# Launch configurations (block_m, block_n, num_warps, num_stages) the tuner tries beside the default, by target.
CANDIDATES: dict[str, list[tuple[int, int, int, int]]] = {
    "cuda:90": [(128, 128, 8, 3), (128, 64, 4, 3), (128, 64, 8, 2)],
    "cuda:80": [(128, 64, 4, 3), (128, 64, 8, 3), (64, 64, 4, 3), (128, 32, 4, 3)],
}


def forward_args(
    compiled: CompiledVariant,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    captures: list[torch.Tensor],
    config: LaunchConfig,
    out_shape: tuple[int, ...],
) -> dict[str, Any]:
    """The forward kernel's arguments that depend on shapes alone: heads, scale, blocks, head dims, the
    strides of q, k, v, the (contiguous) output and the captured tensors."""
    info = compiled.info
    constexprs = info.constexprs[info.forward]
    args: dict[str, Any] = {
        "num_heads": q.shape[1],
        "group": q.shape[1] // k.shape[1],
        "scale": info.scale,
        "BLOCK_M": config.block_m,
        "BLOCK_N": config.block_n,
        "HEAD_DIM": constexprs["HEAD_DIM"],
        "HEAD_DIM_V": constexprs["HEAD_DIM_V"],
    }
    set_strides(args, "q", q)
    set_strides(args, "k", k)
    set_strides(args, "v", v)
    set_strides(args, "out", torch.empty(out_shape, device="meta"))  # contiguous
    set_capture_shapes(args, captures)
    return args


class PreparedLaunch:
    """Everything about a forward launch that depends only on shapes: the warm path fills in pointers."""

    def __init__(
        self,
        compiled: CompiledVariant,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        captures: list[torch.Tensor],
        config: LaunchConfig,
    ):
        batch, heads, seq_q, _ = q.shape
        seq_kv, head_dim_v = k.shape[2], v.shape[3]
        info = compiled.info
        self.compiled = compiled
        self.device = q.device
        self.config = config
        self.out_shape = (batch, heads, seq_q, head_dim_v)
        self.stat_shape = (batch, heads, seq_q)
        self.empty = seq_q == 0 or batch == 0
        self.grid = (cdiv(seq_q, config.block_m), batch * heads)
        self.static_tables = info.block_mask != "runtime"
        self.table_args = (config.block_m, config.block_n, batch, heads, seq_q, seq_kv)
        self.stat_names = [kernel_params.stat_ptr(i) for i in range(info.num_stats)]
        self.capture_names = [kernel_params.capture_ptr(i) for i in range(len(captures))]
        args = forward_args(compiled, q, k, v, captures, config, self.out_shape)
        args.update(seq_q=seq_q, seq_kv=seq_kv)
        self.args = args
        if self.static_tables and not self.empty:
            self._set_tables(captures)

    def _set_tables(self, captures: list[torch.Tensor]) -> None:
        def launch_table(kernel: Any, grid: tuple[int, ...], args: dict[str, Any]) -> None:
            run_kernel(kernel, grid, args, self.device, None)

        tables = block_tables(self.compiled, launch_table, *self.table_args, captures, self.device)
        self.args.update(
            full_num_ptr=tables.full_num,
            full_idx_ptr=tables.full_idx,
            part_num_ptr=tables.part_num,
            part_idx_ptr=tables.part_idx,
            table_stride_b=tables.stride_b,
            table_stride_h=tables.stride_h,
            num_kv_blocks=tables.num_kv_blocks,
        )

    def run(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, captures: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = torch.empty(self.out_shape, dtype=v.dtype, device=self.device)
        stats = [torch.empty(self.stat_shape, dtype=torch.float32, device=self.device) for _ in self.stat_names]
        if self.empty:
            return out, stats
        if not self.static_tables:
            self._set_tables(captures)  # block_table.py reuses it while the tensors are unchanged
        args = dict(self.args)
        args["q_ptr"], args["k_ptr"], args["v_ptr"], args["out_ptr"] = q, k, v, out
        for name, stat in zip(self.stat_names, stats):
            args[name] = stat
        for name, tensor in zip(self.capture_names, captures):
            args[name] = tensor
        self.config = run_fitting(self.compiled.forward, self.grid, args, self.device, self.config)
        return out, stats


def forward(
    compiled: CompiledVariant,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    captures: list[torch.Tensor],
    config: LaunchConfig,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Allocates the outputs, builds the block tables, launches the forward kernel."""
    return PreparedLaunch(compiled, q, k, v, captures, config).run(q, k, v, captures)


def tuned_config(
    compiled: CompiledVariant,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    captures: list[torch.Tensor],
    default: LaunchConfig,
) -> LaunchConfig:
    """The fastest forward configuration for this shape bucket (the default when tuning is off)."""
    info = compiled.info

    def candidates() -> list[tuple[int, ...]]:
        space = [LaunchConfig(*c) for c in CANDIDATES.get(info.target, [])]
        if max(q.shape[3], v.shape[3]) > 128:
            space = [c for c in space if c.block_m * c.block_n <= 128 * 64]
        return [_as_tuple(c) for c in (default, *[c for c in space if c != default])]

    def run(c: tuple[int, ...]) -> None:
        forward(compiled, q, k, v, captures, LaunchConfig(*c))

    shape = (q.shape[0], q.shape[1], triton.next_power_of_2(q.shape[2]), triton.next_power_of_2(k.shape[2]))
    key = tune.tuning_key("attention", info.key, info.forward, shape, q.device)
    return LaunchConfig(*tune.tuned(key, _as_tuple(default), candidates, run))


def _as_tuple(c: LaunchConfig) -> tuple[int, ...]:
    return (c.block_m, c.block_n, c.num_warps, c.num_stages)


__all__ = ["CANDIDATES", "PreparedLaunch", "forward", "forward_args", "tuned_config"]
