"""Linear attention as PyTorch custom ops, so `torch.compile(fullgraph=True)` sees one node per call.

`attnc::linear_attention(variant, q, k, v, g, initial_state, cu_seqlens, scale)` returns
(o, final_state, G, A), the last two a vector gate's chunk cumsum and scores (VectorGateSaved),
kept for the backward as flash-linear-attention keeps them (empty for other gates), and
`attnc::linear_attention_backward(...)` the gradients; both have fake implementations for tracing, and the forward's autograd formula calls the backward
op. `variant` names a `LinearProgram` (linear_program.py). Absent gradients
(no g, no initial state) travel as empty tensors, as custom ops cannot return None.
"""

from __future__ import annotations

from typing import Any

import torch

from attnc.runtime import linear_launch
from attnc.runtime.linear_program import program
from attnc.runtime.linear_sequences import sequences


def _run(
    variant: str,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    initial: bool,
    cu_seqlens: torch.Tensor | None,
    scale: float,
    backward: bool,
):
    found = program(variant)
    compiled, upcast = found.compiled_for(q, v, initial, cu_seqlens is not None, scale, backward)
    seqs = sequences(q.shape[0], q.shape[2], cu_seqlens, compiled.info.chunk_size, q.device)
    return compiled, upcast, seqs


def _states(q: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor | None) -> tuple[int, ...]:
    count = q.shape[0] if cu_seqlens is None else cu_seqlens.shape[0] - 1
    return (count, v.shape[1], q.shape[3], v.shape[3])


@torch.library.custom_op("attnc::linear_attention", mutates_args=())
def linear_attention_op(
    variant: str,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    cu_seqlens: torch.Tensor | None,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(o, final state, G, A): a vector gate's saved G and A, for the backward (else empty)."""
    compiled, upcast, seqs = _run(variant, q, k, v, initial_state is not None, cu_seqlens, scale, False)
    run = [t.float() for t in (q, k, v)] if upcast else [q.contiguous(), k.contiguous(), v.contiguous()]
    o, ht, kept = linear_launch.forward(compiled, run[0], run[1], run[2], g, initial_state, seqs)
    if kept is None:  # empty tensors: a custom op's outputs may not alias each other
        return o.to(q.dtype), ht, q.new_empty((0,), dtype=torch.float32), q.new_empty((0,), dtype=torch.float32)
    return o.to(q.dtype), ht, kept.gcum, kept.scores.to(q.dtype)


@linear_attention_op.register_fake
def _(variant, q, k, v, g, initial_state, cu_seqlens, scale):
    la = program(variant)
    o = v.new_empty(v.shape)
    ht = q.new_empty(_states(q, v, cu_seqlens), dtype=torch.float32)
    if la.gate != "vector":
        return o, ht, q.new_empty((0,), dtype=torch.float32), q.new_empty((0,), dtype=torch.float32)
    scores = q.new_empty((v.shape[0], v.shape[1], v.shape[2], la.chunk_size))
    return o, ht, g.new_empty(g.shape, dtype=torch.float32), scores


@torch.library.custom_op("attnc::linear_attention_backward", mutates_args=())
def linear_attention_backward_op(
    variant: str,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    cu_seqlens: torch.Tensor | None,
    scale: float,
    do: torch.Tensor,
    dht: torch.Tensor | None,
    gcum: torch.Tensor | None = None,
    scores: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    compiled, upcast, seqs = _run(variant, q, k, v, initial_state is not None, cu_seqlens, scale, True)
    run = [t.float() for t in (q, k, v, do)] if upcast else [t.contiguous() for t in (q, k, v, do)]
    kept = None
    if gcum is not None and scores is not None and scores.numel():
        kept = linear_launch.VectorGateSaved(gcum, scores.float() if upcast else scores)
    dq, dk, dv, dg, dh0 = linear_launch.backward(
        compiled, run[0], run[1], run[2], g, initial_state, seqs, run[3], dht, kept
    )
    return (  # an absent gradient is a fresh empty tensor: a custom op's outputs may not alias each other
        dq.to(q.dtype),
        dk.to(k.dtype),
        dv.to(v.dtype),
        dg if dg is not None else q.new_empty((0,), dtype=torch.float32),
        dh0 if dh0 is not None else q.new_empty((0,), dtype=torch.float32),
    )


@linear_attention_backward_op.register_fake
def _(variant, q, k, v, g, initial_state, cu_seqlens, scale, do, dht, gcum=None, scores=None):
    dg = torch.empty_like(g) if g is not None else q.new_empty((0,), dtype=torch.float32)
    dh0 = torch.empty_like(initial_state) if initial_state is not None else q.new_empty((0,), dtype=torch.float32)
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), dg, dh0


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
    variant, q, k, v, g, initial_state, cu_seqlens, scale = inputs
    ctx.variant, ctx.scale = variant, scale
    ctx.has_g, ctx.has_initial, ctx.has_cu = g is not None, initial_state is not None, cu_seqlens is not None
    saved = [q, k, v] + ([g] if g is not None else []) + ([initial_state] if initial_state is not None else [])
    saved += [cu_seqlens] if cu_seqlens is not None else []
    ctx.save_for_backward(*saved, *output[2:])  # a vector gate's G and A (else empty)


def _backward(ctx: Any, do: torch.Tensor, dht: torch.Tensor | None, *_kept_grads: Any):
    saved = list(ctx.saved_tensors)
    q, k, v = saved[:3]
    rest, (gcum, scores) = saved[3:-2], saved[-2:]
    g = rest.pop(0) if ctx.has_g else None
    initial_state = rest.pop(0) if ctx.has_initial else None
    cu_seqlens = rest.pop(0) if ctx.has_cu else None
    dq, dk, dv, dg, dh0 = linear_attention_backward_op(
        ctx.variant, q, k, v, g, initial_state, cu_seqlens, ctx.scale, do.contiguous(), dht, gcum, scores
    )
    return None, dq, dk, dv, dg if ctx.has_g else None, dh0 if ctx.has_initial else None, None, None


linear_attention_op.register_autograd(_backward, setup_context=_setup_context)

__all__ = ["linear_attention_backward_op", "linear_attention_op"]
