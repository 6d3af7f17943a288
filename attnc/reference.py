"""The PyTorch reference every attnc kernel is checked against.

It runs the user's own `score_mod` / `mask_mod` on whole tensors: the index arguments
are broadcastable int64 tensors (`b` [B,1,1,1], `h` [1,Hq,1,1], `q_idx` [1,1,Sq,1],
`kv_idx` [1,1,1,Skv]), so captured-tensor reads like `bias[b, h, q_idx, kv_idx]`
become advanced indexing, and `attnc.where` / `attnc.exp` / ... compute with torch.

A normalizer other than the string "softmax" runs as the same `Normalizer` object
the compiler traces, on whole rows: the state starts at its initial values, one
`update` sees the whole row of scores as one tile, and `finalize` gives the output
and the row statistics.

`sequences_reference` does the same for packed, cached and paged sequences, one sequence at
a time, with its batch index and its queries at its last positions (q_idx = len_k − len_q + i).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from attnc.frontend.normalizer import Normalizer
from attnc.frontend.normalizers import resolve_normalizer


def attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    score_mod: Callable[..., Any] | None = None,
    mask_mod: Callable[..., Any] | None = None,
    scale: float | None = None,
    normalizer: str | Normalizer = "softmax",
    dtype: torch.dtype = torch.float64,
    first_b: int = 0,
    q_shift: int = 0,
) -> tuple[torch.Tensor, ...]:
    """softmax(score_mod(q kᵀ · scale) masked by mask_mod) v, and its row logsumexp.

    q [B, Hq, Sq, D], k [B, Hkv, Skv, D], v [B, Hkv, Skv, Dv]; query head h reads kv head
    h // (Hq // Hkv). Returns out [B, Hq, Sq, Dv] and lse [B, Hq, Sq] (natural log), both
    in `dtype`. A row with no unmasked key gives out 0 and lse -inf, never NaN. The mods see
    `b` from `first_b` on and `q_idx` from `q_shift` on (one sequence of a serving layout).

    With another `normalizer` (a built-in's name or a Normalizer), returns out and that
    normalizer's row statistics, in the order of its `stats`, each [B, Hq, Sq]:
    `(out,)` for sigmoid and relu, `(out, denominator)` for retention.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"q, k, v must be 4-d [B, H, S, D], got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
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

    is_softmax = isinstance(normalizer, str) and normalizer == "softmax"
    norm = None if is_softmax else resolve_normalizer(normalizer)

    group = q_heads // kv_heads
    qd = q.to(dtype)
    kd = k.to(dtype).repeat_interleave(group, dim=1)
    vd = v.to(dtype).repeat_interleave(group, dim=1)
    scores = (qd @ kd.transpose(-1, -2)) * (head_dim**-0.5 if scale is None else scale)
    shape = scores.shape

    device = q.device
    b = torch.arange(first_b, first_b + batch, device=device).view(-1, 1, 1, 1)
    h = torch.arange(q_heads, device=device).view(1, -1, 1, 1)
    q_idx = torch.arange(q_shift, q_shift + q_len, device=device).view(1, 1, -1, 1)
    kv_idx = torch.arange(kv_len, device=device).view(1, 1, 1, -1)

    if score_mod is not None:
        modded = torch.as_tensor(score_mod(scores, b, h, q_idx, kv_idx), device=device)
        scores = modded.to(dtype).broadcast_to(shape)
    keep = None
    if mask_mod is not None:
        keep = torch.as_tensor(mask_mod(b, h, q_idx, kv_idx), device=device)
        if keep.dtype != torch.bool:
            raise TypeError(f"mask_mod must return booleans, got {keep.dtype}")
        keep = keep.broadcast_to(shape)
    if norm is not None:
        return _run_normalizer(norm, scores, keep, vd, b, h)

    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    # A row of -inf has lse -inf; subtracting 0 instead keeps exp(-inf) = 0, not NaN.
    shift = torch.where(torch.isneginf(lse), torch.zeros_like(lse), lse)
    probs = torch.exp(scores - shift.unsqueeze(-1))
    return probs @ vd, lse


def _run_normalizer(
    norm: Normalizer,
    scores: torch.Tensor,
    keep: torch.Tensor | None,
    v: torch.Tensor,
    b: torch.Tensor,
    h: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """One tile that is the whole row: update from the initial state, then finalize.

    As in the kernel: masked scores read as `masked_score` in update, their p is 0,
    and the accumulator starts at 0 and is rescaled by alpha before p @ v is added.
    """
    row = (*scores.shape[:3], 1)
    like = {"dtype": scores.dtype, "device": scores.device}
    if keep is not None:
        scores = scores.masked_fill(~keep, float(norm.masked_score))
    state = {name: torch.full(row, float(init), **like) for name, init in norm.state.items()}
    norm.b, norm.h = b, h
    try:
        p, new_state, alpha = norm.update(scores, state)
        p = torch.as_tensor(p, **like).broadcast_to(scores.shape)
        if keep is not None:
            p = p.masked_fill(~keep, 0.0)
        acc = torch.zeros(*scores.shape[:3], v.shape[-1], **like)
        acc = acc * torch.as_tensor(alpha, **like) + p @ v
        final_state = {name: torch.as_tensor(new_state[name], **like).broadcast_to(row) for name in norm.state}
        out, stats = norm.finalize(acc, final_state)
    finally:
        del norm.b, norm.h
    out = torch.as_tensor(out, **like).broadcast_to(acc.shape)
    return (out, *(torch.as_tensor(stats[name], **like).broadcast_to(row).squeeze(-1) for name in norm.stats))


def sequences_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    cu_seqlens_q: torch.Tensor | None = None,
    cu_seqlens_k: torch.Tensor | None = None,
    cache_seqlens: torch.Tensor | None = None,
    block_table: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, ...]:
    """out and the row statistics, shaped like q's storage (out with v's head dim); `kwargs` go to
    `attention_reference` (score_mod, mask_mod, scale, normalizer, dtype)."""
    pieces: list[tuple[tuple[Any, ...], tuple[torch.Tensor, ...]]] = []
    if cu_seqlens_q is not None:
        assert cu_seqlens_k is not None
        cq, ck = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
        for i in range(len(cq) - 1):
            qs, ks = q[:, :, cq[i] : cq[i + 1]], k[:, :, ck[i] : ck[i + 1]]
            vs = v[:, :, ck[i] : ck[i + 1]]
            shift = ks.shape[2] - qs.shape[2]
            where = (0, slice(None), slice(cq[i], cq[i + 1]))
            pieces.append((where, attention_reference(qs, ks, vs, first_b=i, q_shift=shift, **kwargs)))
    else:
        assert cache_seqlens is not None
        for i, length in enumerate(cache_seqlens.tolist()):
            if block_table is None:
                ks, vs = k[i : i + 1, :, :length], v[i : i + 1, :, :length]
            else:
                page = k.shape[2]
                ids = block_table[i, : -(-length // page)].long()
                ks = k[ids].transpose(0, 1).reshape(1, k.shape[1], -1, k.shape[3])[:, :, :length]
                vs = v[ids].transpose(0, 1).reshape(1, v.shape[1], -1, v.shape[3])[:, :, :length]
            shift = length - q.shape[2]
            where = (i, slice(None), slice(None))
            pieces.append((where, attention_reference(q[i : i + 1], ks, vs, first_b=i, q_shift=shift, **kwargs)))
    dtype = kwargs.get("dtype", torch.float64)
    out = torch.zeros(*q.shape[:3], v.shape[3], dtype=dtype, device=q.device)
    stats = [torch.zeros(q.shape[:3], dtype=dtype, device=q.device) for _ in pieces[0][1][1:]] if pieces else []
    for where, (o, *st) in pieces:
        out[where] = o[0]
        for stat, part in zip(stats, st):
            stat[where] = part[0]
    return (out, *stats)
