"""The autograd node of an attnc attention call: the compiled forward, and the derived backward."""

from __future__ import annotations

from typing import Any

import torch

from attnc.runtime.backward import backward
from attnc.runtime.launch import PreparedLaunch


class AttentionFunction(torch.autograd.Function):
    """forward: (launch, q, k, v, *captures) → (out, lse); backward: dQ, dK, dV and captured-tensor grads."""

    @staticmethod
    def forward(ctx: Any, launch: PreparedLaunch, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *captures: torch.Tensor):  # type: ignore[override]
        out, stats = launch.run(q, k, v, list(captures))
        lse = stats[0]
        ctx.launch = launch
        ctx.save_for_backward(q, k, v, out, lse, *captures)
        return out, lse

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor, dlse: torch.Tensor):  # type: ignore[override]
        q, k, v, out, lse, *captures = ctx.saved_tensors
        launch: PreparedLaunch = ctx.launch
        dq, dk, dv, capture_grads = backward(
            launch.compiled, launch.config, q, k, v, out, lse, dout, captures, dlse
        )
        grads = [
            g.to(c.dtype) if c.requires_grad and c.is_floating_point() else None for c, g in zip(captures, capture_grads)
        ]
        return None, dq, dk, dv, *grads
