"""flash-linear-attention's calls over attnc's kernels: change `from fla.ops.gla import chunk_gla` to
`from attnc.ops import chunk_gla`.

fla's conventions: q, k [B, T, H, K], v [B, T, H, V] (`head_first=True`: [B, H, T, ...], attnc's own
layout), log-space gates (`g` [B, T, H] per step and head, `g_gamma` [H] per head, GLA's `g` [B, T, H, K]
per key channel), `initial_state` and the final state [N, H, K, V] (`state_v_first=True`: [N, H, V, K]),
`cu_seqlens` int64 or int32 [N+1] over a batch of 1, scale K**-0.5 by default; each call returns
`(o, final_state)`, o [B, T, H, V] contiguous like fla's, final_state None unless asked for.

- chunk_retention / fused_recurrent_retention: RetNet, decay 1 − 2^(−5−h) for head h.
- chunk_simple_gla / fused_recurrent_simple_gla: `g` per step and head, `g_gamma` per head, both, or neither.
- chunk_gla / fused_recurrent_gla: `g` (`gk` in the recurrent form) per key channel.

The fused_recurrent forms compute the same recurrence with attnc's chunked kernels. What fla offers and
these do not: `reverse=True`, a value-side gate (`gv`) and fla's `cu_seqlens_cpu` hint (ignored); each
raises or is said so. Gradients reach q, k, v, g and initial_state; `torch.compile` keeps one custom op
per call, as for `attnc.linear_attention`, except with `cu_seqlens`, whose offsets are read on the host
(a graph break, as in fla).
"""

from __future__ import annotations

from typing import Any

import torch

from attnc.frontend.linear import LinearAttention

_VARIANTS: dict[tuple[str | None, int], LinearAttention] = {}


def chunk_retention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """RetNet (fla.ops.retention.chunk_retention): a fixed decay 1 − 2^(−5−h) per head h."""
    head_first = kwargs.pop("head_first", False)
    heads = q.shape[1 if head_first else 2]
    g_gamma = torch.log1p(-torch.exp2(-5.0 - torch.arange(heads, dtype=torch.float32, device=q.device)))
    return _run(q, k, v, "head", g_gamma, scale, initial_state, output_final_state, cu_seqlens, head_first, kwargs)


def chunk_simple_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    g_gamma: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Simple GLA (fla.ops.simple_gla.chunk_simple_gla): log-decay `g` [B, T, H] per step and head and/or
    `g_gamma` [H] per head."""
    head_first = kwargs.pop("head_first", False)
    gate, decay = _scalar_gate(q, g, g_gamma, head_first)
    return _run(q, k, v, gate, decay, scale, initial_state, output_final_state, cu_seqlens, head_first, kwargs)


def chunk_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """GLA (fla.ops.gla.chunk_gla): log-decay `g` [B, T, H, K], one per key channel."""
    head_first = kwargs.pop("head_first", False)
    if not isinstance(g, torch.Tensor):
        raise TypeError("chunk_gla needs g, the log-decays [B, T, H, K], as a torch.Tensor")
    decay = g if head_first else g.transpose(1, 2)
    return _run(q, k, v, "vector", decay, scale, initial_state, output_final_state, cu_seqlens, head_first, kwargs)


def fused_recurrent_retention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla.ops.retention.fused_recurrent_retention: chunk_retention's result (attnc has one kernel family)."""
    _forward_only(reverse)
    return chunk_retention(q, k, v, scale, initial_state, output_final_state, cu_seqlens, **kwargs)


def fused_recurrent_simple_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    g_gamma: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla.ops.simple_gla.fused_recurrent_simple_gla: chunk_simple_gla's result."""
    _forward_only(reverse)
    return chunk_simple_gla(q, k, v, g, g_gamma, scale, initial_state, output_final_state, cu_seqlens, **kwargs)


def fused_recurrent_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    gk: torch.Tensor | None = None,
    gv: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla.ops.gla.fused_recurrent_gla with a key-side gate `gk`: chunk_gla's result (or, without gates,
    plain linear attention)."""
    _forward_only(reverse)
    if gv is not None:
        raise NotImplementedError("fused_recurrent_gla: a value-side gate (gv) is not supported by attnc")
    if gk is None:
        head_first = kwargs.pop("head_first", False)
        return _run(q, k, v, None, None, scale, initial_state, output_final_state, cu_seqlens, head_first, kwargs)
    return chunk_gla(q, k, v, gk, scale, initial_state, output_final_state, cu_seqlens, **kwargs)


def _forward_only(reverse: bool) -> None:
    if reverse:
        raise NotImplementedError("reverse=True (the recurrence from the last step back) is not supported by attnc")


def _scalar_gate(
    q: torch.Tensor, g: torch.Tensor | None, g_gamma: torch.Tensor | None, head_first: bool
) -> tuple[str | None, torch.Tensor | None]:
    """attnc's gate for simple GLA's `g` [B, T, H] and `g_gamma` [H]: scalar (g, plus g_gamma if both), head
    (g_gamma alone) or none."""
    if g_gamma is not None and (not isinstance(g_gamma, torch.Tensor) or g_gamma.dim() != 1):
        raise ValueError("g_gamma must be a 1-D tensor of per-head log-decays [H]")
    if g is None:
        return ("head", g_gamma) if g_gamma is not None else (None, None)
    if not isinstance(g, torch.Tensor) or g.dim() != 3:
        layout = "[B, H, T]" if head_first else "[B, T, H]"
        raise ValueError(f"g must be the per-step log-decays {layout}, but got {_shape(g)}")
    decay = g.float() if head_first else g.float().transpose(1, 2)  # [B, H, T]
    if g_gamma is not None:
        if g_gamma.shape[0] != decay.shape[1]:
            raise ValueError(f"g_gamma must have one log-decay per head ({decay.shape[1]}), but got {_shape(g_gamma)}")
        decay = decay + g_gamma.float()[None, :, None]
    return "scalar", decay


def _run(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    gate: str | None,
    g: torch.Tensor | None,
    scale: float | None,
    initial_state: torch.Tensor | None,
    output_final_state: bool,
    cu_seqlens: torch.Tensor | None,
    head_first: bool,
    options: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """attnc's linear attention on fla's layouts: q, k, v to [B, H, T, ...] (views), cu_seqlens to int32,
    the state's layout as asked; o back to [B, T, H, V]."""
    state_v_first = bool(options.pop("state_v_first", False))
    chunk_size = options.pop("chunk_size", None) or 64
    options.pop("cu_seqlens_cpu", None)  # fla's host copy of cu_seqlens: attnc reads its own
    if options:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(options))}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            layout = "[B, H, T, K]" if head_first else "[B, T, H, K] (fla's layout; head_first=True for [B, H, T, K])"
            raise ValueError(f"{name} must be a 4-D tensor {layout}, but got {_shape(t)}")
    if not head_first:
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if cu_seqlens is not None:
        cu_seqlens = _int32_offsets(cu_seqlens)
    if initial_state is not None and state_v_first:
        initial_state = initial_state.transpose(-1, -2)
    variant = _VARIANTS.get((gate, chunk_size))
    if variant is None:
        variant = _VARIANTS[gate, chunk_size] = LinearAttention(gate, chunk_size=chunk_size)
    o, state = variant(q, k, v, g, scale, initial_state, output_final_state, cu_seqlens)
    if not head_first:
        o = o.transpose(1, 2).contiguous()
    if state is not None and state_v_first:
        state = state.transpose(-1, -2).contiguous()
    return o, state


def _int32_offsets(cu_seqlens: Any) -> torch.Tensor:
    """fla's int64 (or int32) sequence offsets as the int32 ones attnc's kernels read."""
    if not isinstance(cu_seqlens, torch.Tensor) or cu_seqlens.dtype not in (torch.int32, torch.int64):
        raise ValueError("cu_seqlens must be an int64 or int32 tensor of sequence offsets [N+1]")
    if cu_seqlens.dtype == torch.int64 and cu_seqlens.numel() and int(cu_seqlens.max()) >= 2**31:
        raise ValueError("cu_seqlens holds an offset of 2^31 or more, beyond what attnc's int32 offsets hold")
    return cu_seqlens.to(torch.int32)


def _shape(t: Any) -> str:
    return str(list(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


__all__ = [
    "chunk_gla",
    "chunk_retention",
    "chunk_simple_gla",
    "fused_recurrent_gla",
    "fused_recurrent_retention",
    "fused_recurrent_simple_gla",
]
