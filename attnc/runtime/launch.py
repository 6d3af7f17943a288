"""Launching a compiled variant on torch tensors: CUDA tensors run compiled, CPU tensors interpreted."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any

import torch

from attnc.runtime.block_table import block_tables
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.targets import interpreted

_PARAMS: dict[int, tuple[str, ...]] = {}
_INTERPRETED: dict[int, Any] = {}


@dataclass(frozen=True)
class LaunchConfig:
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def _params(kernel: Any) -> tuple[str, ...]:
    names = _PARAMS.get(id(kernel))
    if names is None:
        names = tuple(inspect.signature(getattr(kernel, "fn", kernel)).parameters)
        _PARAMS[id(kernel)] = names
    return names


def run_kernel(
    kernel: Any, grid: tuple[int, ...], args: dict[str, Any], device: torch.device, config: LaunchConfig | None
) -> Any:
    """Run a generated kernel, compiled on CUDA or in Triton's interpreter on the CPU; returns Triton's handle."""
    names = _params(kernel)
    kwargs = {k: args[k] for k in names}
    if device.type == "cpu":
        runner = _INTERPRETED.get(id(kernel))
        if runner is None:
            runner = _INTERPRETED[id(kernel)] = interpreted(kernel)
        return runner[grid](**kwargs)
    if config is not None:
        kwargs["num_warps"] = config.num_warps
        kwargs["num_stages"] = config.num_stages
    if device.index is not None and device.index != torch.cuda.current_device():
        with torch.cuda.device(device):  # Triton launches on the current device
            return kernel[grid](**kwargs)
    return kernel[grid](**kwargs)


def run_fitting(
    kernel: Any, grid: tuple[int, ...], args: dict[str, Any], device: torch.device, config: LaunchConfig
) -> LaunchConfig:
    """`run_kernel`, stepping `num_stages` down while the compiled kernel does not fit the device.

    Software pipelining keeps `num_stages` copies of each loop-carried load in shared
    memory; a captured tensor read per score (`bias[h, q_idx, kv_idx]`) adds a whole
    BLOCK_M × BLOCK_N tile per stage. Returns the configuration that ran, for reuse.
    """
    from triton.runtime.errors import OutOfResources

    while True:
        try:
            run_kernel(kernel, grid, args, device, config)
            return config
        except OutOfResources:
            if config.num_stages <= 1:
                raise
            config = replace(config, num_stages=config.num_stages - 1)


class PreparedLaunch:
    """Everything about a forward launch that depends only on shapes: the warm path fills in pointers.

    Built once per (shapes, strides, dtype, device); a warm call then allocates the
    outputs and launches, which keeps host overhead to a few microseconds of Python
    beyond Triton's own launch.
    """

    def __init__(
        self,
        compiled: CompiledVariant,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        captures: list[torch.Tensor],
        config: LaunchConfig,
    ):
        batch, heads, seq_q, head_dim = q.shape
        kv_heads, seq_kv, head_dim_v = k.shape[1], k.shape[2], v.shape[3]
        self.compiled = compiled
        self.device = q.device
        self.config = config
        self.out_shape = (batch, heads, seq_q, head_dim_v)
        self.stat_shape = (batch, heads, seq_q)
        self.empty = seq_q == 0 or batch == 0
        self.grid = (-(-seq_q // config.block_m), batch * heads)
        self.static_tables = compiled.info.block_mask != "runtime"
        self.table_args = (config.block_m, config.block_n, batch, heads, seq_q, seq_kv)
        out_strides = (heads * seq_q * head_dim_v, seq_q * head_dim_v, head_dim_v, 1)  # contiguous
        args: dict[str, Any] = {
            "seq_q": seq_q,
            "seq_kv": seq_kv,
            "num_heads": heads,
            "group": heads // kv_heads,
            "scale": compiled.info.scale,
            "BLOCK_M": config.block_m,
            "BLOCK_N": config.block_n,
            "HEAD_DIM": _pow2(head_dim),
            "HEAD_DIM_V": _pow2(head_dim_v),
        }
        for name, strides in (("q", q.stride()), ("k", k.stride()), ("v", v.stride()), ("out", out_strides)):
            for dim, stride in zip("bhsd", strides):
                args[f"stride_{name}_{dim}"] = stride
        for i, tensor in enumerate(captures):
            for j, stride in enumerate(tensor.stride()):
                args[f"cap{i}_stride{j}"] = stride
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
        stats = [
            torch.empty(self.stat_shape, dtype=torch.float32, device=self.device)
            for _ in range(self.compiled.info.num_stats)
        ]
        if self.empty:
            return out, stats
        if not self.static_tables:
            self._set_tables(captures)
        args = dict(self.args)
        args["q_ptr"], args["k_ptr"], args["v_ptr"], args["out_ptr"] = q, k, v, out
        for i, stat in enumerate(stats):
            args[f"stat{i}_ptr"] = stat
        for i, tensor in enumerate(captures):
            args[f"cap{i}_ptr"] = tensor
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
