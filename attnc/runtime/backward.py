"""Launching the derived backward kernels (dQ, then dK/dV) of a compiled softmax variant.

δ = rowsum(dO ⊙ O) is computed here with torch; the kernels recompute P from the
saved logsumexp. dQ, dK, dV and the captured tensors' gradients accumulate in f32
and are cast to their tensors' dtypes at the end. GQA: the dK/dV kernel sums over
the query heads of each kv head itself, so dK and dV need no atomics; captured
tensors' gradients are added with atomics (order not fixed).
"""

from __future__ import annotations

from typing import Any

import torch

from attnc.runtime.block_table import block_tables
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.launch import LaunchConfig, _pow2, run_kernel


def backward_config(forward: LaunchConfig, q: torch.Tensor) -> LaunchConfig:
    """Tiles for the backward kernels on a GPU: each holds q, k, v, dO and two products at once, so
    the forward's 128×128 tiles overflow shared memory at D = 128 (266 KB asked, 227 KB on an H200).
    The interpreter keeps the forward's tiles."""
    if q.device.type != "cuda":
        return forward
    head_dim = q.shape[-1]
    if q.element_size() > 2 or head_dim > 128:
        return LaunchConfig(32, 32, 4, 1)
    return LaunchConfig(64, 64, 4, 3 if head_dim <= 64 else 2)


def _strides(args: dict[str, Any], name: str, t: torch.Tensor) -> None:
    for dim, stride in zip("bhsd", t.stride()):
        args[f"stride_{name}_{dim}"] = stride


def backward(
    compiled: CompiledVariant,
    config: LaunchConfig,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    dout: torch.Tensor,
    captures: list[torch.Tensor],
    dlse: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """dQ, dK, dV and one f32 gradient per captured tensor.

    A gradient flowing into the logsumexp adds dlse·P to dS, which is δ − dlse in place of δ.
    """
    info = compiled.info
    config = backward_config(config, q)
    batch, heads, seq_q, head_dim = q.shape
    kv_heads, seq_kv, head_dim_v = k.shape[1], k.shape[2], v.shape[3]
    device = q.device
    dout = dout.contiguous() if dout.stride(-1) != 1 else dout
    delta = (dout.float() * out.float()).sum(-1)
    if dlse is not None:
        delta = delta - dlse.float()
    delta = delta.contiguous()
    # A row whose scores are all −inf (a score_mod's where(..., -inf)) has lse = −inf; +inf makes its P 0, not NaN.
    lse = torch.where(lse == float("-inf"), float("inf"), lse).contiguous()
    dq = torch.zeros(q.shape, dtype=torch.float32, device=device)
    dk = torch.zeros(k.shape, dtype=torch.float32, device=device)
    dv = torch.zeros(v.shape, dtype=torch.float32, device=device)
    capture_grads = [torch.zeros(c.shape, dtype=torch.float32, device=device) for c in captures]
    if batch == 0 or seq_q == 0 or seq_kv == 0:
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), capture_grads

    def launch_table(kernel: Any, grid: tuple[int, ...], args: dict[str, Any]) -> None:
        run_kernel(kernel, grid, args, device, None)

    tables = block_tables(
        compiled, launch_table, config.block_m, config.block_n, batch, heads, seq_q, seq_kv, captures, device
    )
    args: dict[str, Any] = {
        "q_ptr": q,
        "k_ptr": k,
        "v_ptr": v,
        "dout_ptr": dout,
        "lse_ptr": lse,
        "delta_ptr": delta,
        "dq_ptr": dq,
        "dk_ptr": dk,
        "dv_ptr": dv,
        "seq_q": seq_q,
        "seq_kv": seq_kv,
        "num_heads": heads,
        "group": heads // kv_heads,
        "scale": info.scale,
        "BLOCK_M": config.block_m,
        "BLOCK_N": config.block_n,
        "HEAD_DIM": _pow2(head_dim),
        "HEAD_DIM_V": _pow2(head_dim_v),
    }
    for name, t in (("q", q), ("k", k), ("v", v), ("dout", dout), ("dq", dq), ("dk", dk), ("dv", dv)):
        _strides(args, name, t)
    for i, (tensor, grad) in enumerate(zip(captures, capture_grads)):
        args[f"cap{i}_ptr"] = tensor
        args[f"capgrad{i}_ptr"] = grad
        for j, (stride, grad_stride) in enumerate(zip(tensor.stride(), grad.stride())):
            args[f"cap{i}_stride{j}"] = stride
            args[f"capgrad{i}_stride{j}"] = grad_stride

    def with_tables(t: Any, rows_name: str) -> dict[str, Any]:
        return {
            **args,
            "full_num_ptr": t.full_num,
            "full_idx_ptr": t.full_idx,
            "part_num_ptr": t.part_num,
            "part_idx_ptr": t.part_idx,
            "table_stride_b": t.stride_b,
            "table_stride_h": t.stride_h,
            rows_name: t.num_kv_blocks,
        }

    num_q = -(-seq_q // config.block_m)
    num_kv = -(-seq_kv // config.block_n)
    dq_kernel = getattr(compiled.kernels, info.backward_dq)
    dkdv_kernel = getattr(compiled.kernels, info.backward_dkdv)
    run_kernel(dq_kernel, (num_q, batch * heads), with_tables(tables, "num_kv_blocks"), device, config)
    run_kernel(
        dkdv_kernel, (num_kv, batch * kv_heads), with_tables(tables.transposed(), "num_q_blocks"), device, config
    )
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), capture_grads
