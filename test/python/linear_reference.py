"""A float64 step-by-step linear-attention recurrence, the ground truth of the linear-attention tests."""

from __future__ import annotations

import torch


def recurrence(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    gate: str | None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """S_t = exp(g_t) ⊙ S_{t-1} + k_tᵀ v_t, o_t = scale · q_t S_t, one step at a time in float64 (differentiable)."""
    q, k, v = q.double(), k.double(), v.double()
    batch, heads, length, dim_v = v.shape
    dim_k = q.shape[3]
    group = heads // q.shape[1]
    q, k = q.repeat_interleave(group, 1), k.repeat_interleave(group, 1)
    scale = dim_k**-0.5 if scale is None else scale
    state = (
        torch.zeros(batch, heads, dim_k, dim_v, dtype=torch.float64)
        if initial_state is None
        else initial_state.double()
    )
    outs = []
    for t in range(length):
        if gate == "head":
            assert g is not None
            state = state * g.double().exp().view(1, heads, 1, 1)
        elif gate == "scalar":
            assert g is not None
            state = state * g[:, :, t].double().exp()[..., None, None]
        elif gate == "vector":
            assert g is not None
            state = state * g[:, :, t].double().exp()[..., None]
        state = state + k[:, :, t, :, None] * v[:, :, t, None, :]
        outs.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, :, t], state))
    out = torch.stack(outs, dim=2) if outs else v.new_zeros(batch, heads, 0, dim_v, dtype=torch.float64)
    return out, state


def make_inputs(
    gate: str | None,
    batch: int,
    heads_qk: int,
    heads: int,
    length: int,
    dim_k: int,
    dim_v: int,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Fresh random q, k, v and log-decays g ≤ 0 of the gate's shape."""
    q = torch.randn(batch, heads_qk, length, dim_k).to(dtype)
    k = (0.5 * torch.randn(batch, heads_qk, length, dim_k)).to(dtype)
    v = torch.randn(batch, heads, length, dim_v).to(dtype)
    g = {
        None: None,
        "head": torch.log(1 - 2.0 ** (-5.0 - torch.arange(heads, dtype=torch.float32))),  # RetNet's γ_h
        "scalar": torch.nn.functional.logsigmoid(torch.randn(batch, heads, length) + 2.0),
        "vector": torch.nn.functional.logsigmoid(torch.randn(batch, heads, length, dim_k) + 2.0),
    }[gate]
    return q, k, v, g


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()
