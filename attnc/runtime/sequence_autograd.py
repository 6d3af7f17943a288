"""Gradients through `attnc::attention_sequences` (sequence_op.py) for packed sequences and a KV cache, so
`out.sum().backward()` works eagerly and under `torch.compile(fullgraph=True)`.

`attnc::attention_sequences_backward(variant, q, k, v, out, lse, dout, dlse, meta, layout, max_seqlen_q,
max_seqlen_k, captures, captures_need_grad, scale)` returns (dq, dk, dv, capture_grads) and is the forward
op's registered autograd formula, as autograd.py does for dense attention. A paged cache has no backward.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from attnc.runtime.attention import program
from attnc.runtime.autograd import backward_of
from attnc.runtime.sequence_backward import sequence_backward
from attnc.runtime.sequence_op import attention_sequences_op
from attnc.runtime.sequences import Sequences, sequences


def _sequences(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, meta: list[torch.Tensor], layout: str, max_q: int, max_k: int
) -> Sequences:
    if layout == "packed":
        seqs = sequences(q, k, v, meta[0], meta[1], None if max_q < 0 else max_q, None if max_k < 0 else max_k)
    elif layout == "cache":
        seqs = sequences(q, k, v, cache_seqlens=meta[0])
    else:
        raise NotImplementedError(f"the backward of attention over {layout} sequences is not implemented")
    assert seqs is not None
    return seqs


@torch.library.custom_op("attnc::attention_sequences_backward", mutates_args=())
def attention_sequences_backward_op(
    variant: str,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    dout: torch.Tensor,
    dlse: torch.Tensor,
    meta: list[torch.Tensor],
    layout: str,
    max_seqlen_q: int,
    max_seqlen_k: int,
    captures: list[torch.Tensor],
    captures_need_grad: list[bool],
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    seqs = _sequences(q, k, v, meta, layout, max_seqlen_q, max_seqlen_k)
    grad_captures = tuple(i for i, need in enumerate(captures_need_grad) if need)
    resolved = None if math.isnan(scale) else scale
    plan = program(variant).plan(q, k, v, resolved, backward=True, grad_captures=grad_captures, seqs=seqs)
    return backward_of(plan, q, k, v, out, lse, dout, captures, sequence_backward, seqs, dlse)


@attention_sequences_backward_op.register_fake
def _(variant, q, k, v, out, lse, dout, dlse, meta, layout, max_seqlen_q, max_seqlen_k, captures, need, scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), [torch.empty_like(c) for c in captures]


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    variant, q, k, v, meta, layout, max_seqlen_q, max_seqlen_k, _num_splits, captures, scale = inputs
    out, lse = output
    ctx.call = (variant, layout, max_seqlen_q, max_seqlen_k, scale)
    ctx.num_meta = len(meta)
    ctx.captures_need_grad = [c.requires_grad for c in captures]
    ctx.save_for_backward(q, k, v, out, lse, *meta, *captures)


def _backward(ctx: Any, dout: torch.Tensor, dlse: torch.Tensor):
    q, k, v, out, lse, *rest = ctx.saved_tensors
    meta, captures = rest[: ctx.num_meta], rest[ctx.num_meta :]
    variant, layout, max_seqlen_q, max_seqlen_k, scale = ctx.call
    dq, dk, dv, capture_grads = attention_sequences_backward_op(
        variant, q, k, v, out, lse, dout, dlse, meta, layout, max_seqlen_q, max_seqlen_k, captures,
        ctx.captures_need_grad, scale,
    )  # fmt: skip
    return None, dq, dk, dv, [None] * ctx.num_meta, None, None, None, None, capture_grads, None


attention_sequences_op.register_autograd(_backward, setup_context=_setup_context)

__all__ = ["attention_sequences_backward_op"]
