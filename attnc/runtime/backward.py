"""Launching the derived backward kernels (dQ, then dK/dV) of a compiled variant.

Softmax: the dQ kernel computes δ = rowsum(dO ⊙ O) − dlse for its rows and stores it
for the dK/dV kernel; both recompute P from the saved logsumexp. Elementwise
normalizers (sigmoid, ReLU, retention) recompute their weights from the scores. dQ, dK and dV accumulate in
f32 registers and are written once, in their tensors' dtypes. GQA: the dK/dV kernel
sums over the query heads of each kv head itself, so dK and dV need no atomics;
captured tensors' gradients are added in f32 with atomics (order not fixed).
"""

from __future__ import annotations

from typing import Any

import torch

from attnc.runtime.block_table import block_tables
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.launch import LaunchConfig, cdiv, run_fitting, run_kernel, set_captures, set_strides


def row_buffers(
    softmax: bool, stat: torch.Tensor | None, dlse: torch.Tensor | None, shape: tuple[int, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the backward kernels read and write per query row, contiguous f32 of `shape`: the statistic, the
    gradient reaching the logsumexp (zeros when none) and δ (written by the dQ kernel for softmax)."""
    dlse = torch.zeros(shape, dtype=torch.float32, device=device) if dlse is None else dlse.float().contiguous()
    # δ: written by the dQ kernel for softmax; no kernel reads it otherwise.
    delta = (torch.empty if softmax else torch.zeros)(shape, dtype=torch.float32, device=device)
    if stat is None:
        stat = delta  # a stand-in pointer: the kernels of a normalizer without statistics never read it
    elif softmax:
        # A row whose scores are all −inf (a score_mod's where(..., -inf)) has lse = −inf; +inf makes P 0, not NaN.
        stat = torch.where(stat == float("-inf"), float("inf"), stat).contiguous()
    else:
        stat = stat.float().contiguous()
    return stat, dlse, delta


def backward(
    compiled: CompiledVariant,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    stat: torch.Tensor | None,
    dout: torch.Tensor,
    captures: list[torch.Tensor],
    dlse: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """dQ, dK, dV and one f32 gradient per captured tensor.

    `stat` is the forward statistic the backward reads (`info.grad_stat`): the logsumexp
    for softmax, the row's denominator for an elementwise normalizer scaled by its
    inverse, None for one without. For softmax, a gradient flowing into the logsumexp
    adds dlse·P to dS, which is δ − dlse in place of δ; other statistics are held
    constant (RetNet's rule), so `dlse` is not read.
    """
    info = compiled.info
    # attn-tile's choice per kernel (block_m, block_n, num_warps, num_stages).
    dq_config, dkdv_config = LaunchConfig(*info.dq_config), LaunchConfig(*info.dkdv_config)
    batch, heads, seq_q, _ = q.shape
    kv_heads, seq_kv = k.shape[1], k.shape[2]
    device = q.device
    dout = dout.contiguous() if dout.stride(-1) != 1 else dout
    stat, dlse, delta = row_buffers(info.grad_probabilities == "softmax", stat, dlse, (batch, heads, seq_q), device)
    capture_grads = [torch.zeros(c.shape, dtype=torch.float32, device=device) for c in captures]
    if batch == 0 or seq_q == 0 or seq_kv == 0:
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v), capture_grads
    # Each element is written once, in the inputs' dtype: no zero fill, no conversion pass.
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)

    def launch_table(kernel: Any, grid: tuple[int, ...], args: dict[str, Any]) -> None:
        run_kernel(kernel, grid, args, device, None)

    def tables_for(c: LaunchConfig) -> Any:
        return block_tables(compiled, launch_table, c.block_m, c.block_n, batch, heads, seq_q, seq_kv, captures, device)

    args: dict[str, Any] = {
        "q_ptr": q,
        "k_ptr": k,
        "v_ptr": v,
        "dout_ptr": dout,
        "out_ptr": out,
        "lse_ptr": stat,
        "dlse_ptr": dlse,
        "delta_ptr": delta,
        "dq_ptr": dq,
        "dk_ptr": dk,
        "dv_ptr": dv,
        "seq_q": seq_q,
        "seq_kv": seq_kv,
        "num_heads": heads,
        "group": heads // kv_heads,
        "scale": info.scale,
        "HEAD_DIM": info.constexprs[info.backward_dq]["HEAD_DIM"],
        "HEAD_DIM_V": info.constexprs[info.backward_dq]["HEAD_DIM_V"],
    }
    for name, t in (("q", q), ("k", k), ("v", v), ("out", out), ("dout", dout), ("dq", dq), ("dk", dk), ("dv", dv)):
        set_strides(args, name, t)
    set_captures(args, captures, capture_grads)

    def with_tables(c: LaunchConfig, t: Any, rows_name: str) -> dict[str, Any]:
        return {
            **args,
            "BLOCK_M": c.block_m,
            "BLOCK_N": c.block_n,
            "full_num_ptr": t.full_num,
            "full_idx_ptr": t.full_idx,
            "part_num_ptr": t.part_num,
            "part_idx_ptr": t.part_idx,
            "table_stride_b": t.stride_b,
            "table_stride_h": t.stride_h,
            rows_name: t.num_kv_blocks,
        }

    dq_kernel = getattr(compiled.kernels, info.backward_dq)
    dkdv_kernel = getattr(compiled.kernels, info.backward_dkdv)
    c = dq_config
    run_fitting(
        dq_kernel,
        (cdiv(seq_q, c.block_m), batch * heads),
        with_tables(c, tables_for(c), "num_kv_blocks"),
        device,
        c,
    )
    c = dkdv_config
    dkdv_args = with_tables(c, tables_for(c).transposed(), "num_q_blocks")
    run_fitting(dkdv_kernel, (cdiv(seq_kv, c.block_n), batch * kv_heads), dkdv_args, device, c)
    return dq, dk, dv, capture_grads
