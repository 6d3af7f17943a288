"""Launching the backward kernels over packed sequences or a KV cache (conversion/flash_backward_sequences.py):
dQ, then dK/dV, one program per block of each (sequence, head), or per slot of packed rows; no block table.

As in backward.py, the dQ kernel stores δ = rowsum(dO ⊙ O) − dlse for the dK/dV kernel, and captured
tensors' gradients accumulate in f32 with atomics. dQ, dK and dV start at zero: rows no sequence owns and
keys past a cache's lengths are never written, and their gradient is 0.
"""

from __future__ import annotations

from typing import Any

import torch

from attnc.dialect import kernel_params
from attnc.dialect.attn_sequences import LAYOUTS, packed_slots
from attnc.runtime.backward import row_buffers
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.launch import LaunchConfig, cdiv, run_fitting, set_captures, set_strides
from attnc.runtime.sequences import Sequences


def sequence_backward(
    compiled: CompiledVariant,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    stat: torch.Tensor | None,
    dout: torch.Tensor,
    captures: list[torch.Tensor],
    seqs: Sequences,
    dlse: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """dQ, dK, dV and one f32 gradient per captured tensor, for q, k, v stored as `seqs` says (packed or a
    cache); `stat` and `dlse` as backward.backward takes them."""
    if seqs.layout == "paged":
        raise NotImplementedError("the backward of attention over a paged KV cache is not implemented")
    info = compiled.info
    device = q.device
    heads, kv_heads = q.shape[1], k.shape[1]
    dout = dout.contiguous() if dout.stride(-1) != 1 else dout
    softmax = info.grad_probabilities == "softmax"
    stat, dlse, delta = row_buffers(softmax, stat, dlse, tuple(q.shape[:3]), device)
    capture_grads = [torch.zeros(c.shape, dtype=torch.float32, device=device) for c in captures]
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    if seqs.count == 0 or seqs.max_q == 0:
        return dq, dk, dv, capture_grads
    constexprs = info.constexprs[info.backward_dq]
    args: dict[str, Any] = {
        "q_ptr": q,
        "k_ptr": k,
        "v_ptr": v,
        "out_ptr": out,
        "dout_ptr": dout,
        "lse_ptr": stat,
        "dlse_ptr": dlse,
        "delta_ptr": delta,
        "dq_ptr": dq,
        "dk_ptr": dk,
        "dv_ptr": dv,
        "seq_q": seqs.max_q,
        "seq_kv": seqs.max_k,
        "num_heads": heads,
        "group": heads // kv_heads,
        "scale": info.scale,
        "HEAD_DIM": constexprs["HEAD_DIM"],
        "HEAD_DIM_V": constexprs["HEAD_DIM_V"],
    }
    for name, t in (("q", q), ("k", k), ("v", v), ("out", out), ("dout", dout), ("dq", dq), ("dk", dk), ("dv", dv)):
        set_strides(args, name, t)
    set_captures(args, captures, capture_grads)
    for (name, _), tensor in zip(LAYOUTS[seqs.layout], seqs.meta):
        args[kernel_params.ptr(name)] = tensor
    packed = seqs.layout == "packed"
    if packed:
        args["q_rows"], args["kv_rows"], args["num_seqs"] = q.shape[2], k.shape[2], seqs.count

    c = LaunchConfig(*info.dq_config)
    grid = (seqs.count * heads, cdiv(seqs.max_q, c.block_m))  # (sequence, head) programs on axis 0
    if packed:  # slots of query blocks by heads
        grid = (packed_slots(q.shape[2], seqs.count, c.block_m), heads)
    dq_kernel = getattr(compiled.kernels, info.backward_dq)
    run_fitting(dq_kernel, grid, {**args, "BLOCK_M": c.block_m, "BLOCK_N": c.block_n}, device, c)
    c = LaunchConfig(*info.dkdv_config)
    grid = (seqs.count * kv_heads, cdiv(seqs.max_k, c.block_n))
    if packed:  # slots of key blocks by kv heads
        grid = (packed_slots(k.shape[2], seqs.count, c.block_n), kv_heads)
    dkdv_kernel = getattr(compiled.kernels, info.backward_dkdv)
    run_fitting(dkdv_kernel, grid, {**args, "BLOCK_M": c.block_m, "BLOCK_N": c.block_n}, device, c)
    return dq, dk, dv, capture_grads


__all__ = ["sequence_backward"]
