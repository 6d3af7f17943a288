"""attnc as PyTorch custom ops, so `torch.compile(fullgraph=True)` sees one opaque node per call.

`attnc::attention(variant, q, k, v, captures, scale)` returns (out, stats) and
`attnc::attention_backward(...)` the gradients; both have fake (meta)
implementations for tracing, and the forward's autograd formula calls the
backward op. `variant` names an `AttentionProgram` (attention.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from attnc.runtime.attention import Plan, interpretable, program
from attnc.runtime.backward import backward


def _scale(scale: float) -> float | None:
    return None if math.isnan(scale) else scale  # NaN stands for "the default, D**-0.5"


@torch.library.custom_op("attnc::attention", mutates_args=())
def attention_op(
    variant: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, captures: list[torch.Tensor], scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    plan = program(variant).plan(q, k, v, _scale(scale), backward=False)
    out, stats = plan.run(q, k, v, given=captures)
    stat = stats[0] if stats else q.new_empty((0,), dtype=torch.float32)
    return out.to(q.dtype), stat


@attention_op.register_fake
def _(variant: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, captures: list[torch.Tensor], scale: float):
    out = q.new_empty((q.shape[0], q.shape[1], q.shape[2], v.shape[3]), dtype=q.dtype)
    if program(variant).num_stats == 0:
        return out, q.new_empty((0,), dtype=torch.float32)
    return out, q.new_empty(q.shape[:3], dtype=torch.float32)


@torch.library.custom_op("attnc::attention_backward", mutates_args=())
def attention_backward_op(
    variant: str,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    dout: torch.Tensor,
    dlse: torch.Tensor,
    captures: list[torch.Tensor],
    captures_need_grad: list[bool],
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    # Only the captured tensors that require grad are differentiated: the others cost no reductions or atomics.
    grad_captures = tuple(i for i, need in enumerate(captures_need_grad) if need)
    plan = program(variant).plan(q, k, v, _scale(scale), backward=True, grad_captures=grad_captures)
    return backward_of(plan, q, k, v, out, lse, dout, captures, backward, dlse)


def backward_of(
    plan: Plan,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    dout: torch.Tensor,
    captures: list[torch.Tensor],
    run_kernels: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]],
    *rest: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """dq, dk, dv and the captures' gradients of a backward plan, in their tensors' dtypes and strides:
    `run_kernels(compiled, q, k, v, out, stat, dout, captures, *rest)` launches its kernels on the inputs
    as the plan runs them (upcast on the CPU) with the statistic the backward reads."""
    run = [t.float() for t in (q, k, v, out, dout)] if plan.upcast else [q, k, v, out, dout]
    info = plan.launch.compiled.info
    if info.grad_stat > 0:
        raise NotImplementedError("the backward reads a statistic other than the first, which the op does not keep")
    stat = lse if info.grad_stat == 0 else None
    dq, dk, dv, capture_grads = run_kernels(
        plan.launch.compiled, run[0], run[1], run[2], run[3], stat, run[4], interpretable(captures), *rest
    )
    return (
        grad_like(q, dq),
        grad_like(k, dk),
        grad_like(v, dv),
        [grad_like(c, g) for c, g in zip(captures, capture_grads)],
    )


def grad_like(t: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """`grad` with `t`'s dtype and strides (what the fake kernel promises, and what torch.compile checks)."""
    if grad.dtype == t.dtype and grad.stride() == t.stride():
        return grad
    out = torch.empty_like(t)
    out.copy_(grad)
    return out


@attention_backward_op.register_fake
def _(variant, q, k, v, out, lse, dout, dlse, captures, captures_need_grad, scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), [torch.empty_like(c) for c in captures]


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    variant, q, k, v, captures, scale = inputs
    out, lse = output
    ctx.variant, ctx.scale, ctx.num_captures = variant, scale, len(captures)
    ctx.captures_need_grad = [c.requires_grad for c in captures]
    ctx.save_for_backward(q, k, v, out, lse, *captures)


def _backward(ctx: Any, dout: torch.Tensor, dlse: torch.Tensor):
    q, k, v, out, lse, *captures = ctx.saved_tensors
    dq, dk, dv, capture_grads = attention_backward_op(
        ctx.variant, q, k, v, out, lse, dout, dlse, captures, ctx.captures_need_grad, ctx.scale
    )
    return None, dq, dk, dv, capture_grads, None


attention_op.register_autograd(_backward, setup_context=_setup_context)
