"""The PyTorch reference every attnc kernel is checked against.

It runs the user's own `score_mod` / `mask_mod` on whole tensors: the index arguments
are broadcastable int64 tensors (`b` [B,1,1,1], `h` [1,Hq,1,1], `q_idx` [1,1,Sq,1],
`kv_idx` [1,1,1,Skv]), so captured-tensor reads like `bias[b, h, q_idx, kv_idx]`
become advanced indexing, and `attnc.where` / `attnc.exp` / ... compute with torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    score_mod: Callable[..., Any] | None = None,
    mask_mod: Callable[..., Any] | None = None,
    scale: float | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(score_mod(q kᵀ · scale) masked by mask_mod) v, and its row logsumexp.

    q [B, Hq, Sq, D], k [B, Hkv, Skv, D], v [B, Hkv, Skv, Dv]; query head h reads kv head
    h // (Hq // Hkv). Returns out [B, Hq, Sq, Dv] and lse [B, Hq, Sq] (natural log), both
    in `dtype`. A row with no unmasked key gives out 0 and lse -inf, never NaN.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"q, k, v must be 4-d [B, H, S, D], got {tuple(q.shape)}, {tuple(k.shape)}, "
            f"{tuple(v.shape)}"
        )
    batch, q_heads, q_len, head_dim = q.shape
    kv_heads, kv_len = k.shape[1], k.shape[2]
    if k.shape[0] != batch or v.shape[0] != batch:
        raise ValueError(f"batch sizes differ: q {batch}, k {k.shape[0]}, v {v.shape[0]}")
    if k.shape[3] != head_dim:
        raise ValueError(f"q head dim {head_dim} != k head dim {k.shape[3]}")
    if v.shape[1] != kv_heads or v.shape[2] != kv_len:
        raise ValueError(f"k {tuple(k.shape)} and v {tuple(v.shape)} differ in heads or length")
    if q_heads % kv_heads != 0:
        raise ValueError(f"query heads {q_heads} are not a multiple of kv heads {kv_heads}")

    group = q_heads // kv_heads
    qd = q.to(dtype)
    kd = k.to(dtype).repeat_interleave(group, dim=1)
    vd = v.to(dtype).repeat_interleave(group, dim=1)
    scores = (qd @ kd.transpose(-1, -2)) * (head_dim**-0.5 if scale is None else scale)
    shape = scores.shape

    device = q.device
    b = torch.arange(batch, device=device).view(-1, 1, 1, 1)
    h = torch.arange(q_heads, device=device).view(1, -1, 1, 1)
    q_idx = torch.arange(q_len, device=device).view(1, 1, -1, 1)
    kv_idx = torch.arange(kv_len, device=device).view(1, 1, 1, -1)

    if score_mod is not None:
        modded = torch.as_tensor(score_mod(scores, b, h, q_idx, kv_idx), device=device)
        scores = modded.to(dtype).broadcast_to(shape)
    if mask_mod is not None:
        keep = torch.as_tensor(mask_mod(b, h, q_idx, kv_idx), device=device)
        if keep.dtype != torch.bool:
            raise TypeError(f"mask_mod must return booleans, got {keep.dtype}")
        scores = scores.masked_fill(~keep.broadcast_to(shape), float("-inf"))

    lse = torch.logsumexp(scores, dim=-1)
    # A row of -inf has lse -inf; subtracting 0 instead keeps exp(-inf) = 0, not NaN.
    shift = torch.where(torch.isneginf(lse), torch.zeros_like(lse), lse)
    probs = torch.exp(scores - shift.unsqueeze(-1))
    return probs @ vd, lse
