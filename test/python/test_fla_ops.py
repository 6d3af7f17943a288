"""attnc.ops: flash-linear-attention's calls and layouts ([B, T, H, K], log-decay gates, int64 cu_seqlens)
against the float64 recurrence, on the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from linear_reference import recurrence, rel

from attnc.ops import (
    chunk_gla,
    chunk_retention,
    chunk_simple_gla,
    fused_recurrent_gla,
    fused_recurrent_retention,
    fused_recurrent_simple_gla,
)

B, T, H, K, V = 1, 40, 2, 16, 16


def _qkv(batch: int = B, length: int = T) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return tuple(torch.randn(batch, length, H, d) for d in (K, K, V))  # type: ignore[return-value]


def _heads_first(*ts: torch.Tensor) -> list[torch.Tensor]:
    return [t.transpose(1, 2) for t in ts]


def test_chunk_retention_is_retnet_in_flas_layout():
    q, k, v = _qkv()
    o, state = chunk_retention(q, k, v, output_final_state=True)
    decay = torch.log1p(-(2.0 ** (-5.0 - torch.arange(H, dtype=torch.float64))))
    want, want_state = recurrence(*_heads_first(q, k, v), decay, "head")
    assert o.shape == (B, T, H, V) and o.is_contiguous() and state is not None
    assert rel(o, want.transpose(1, 2)) < 1e-4 and rel(state, want_state) < 1e-4
    o2, none = fused_recurrent_retention(q, k, v)
    assert none is None and torch.equal(o2, o)


@pytest.mark.parametrize("gates", ["g", "g_gamma", "both", "none"])
def test_chunk_simple_gla_gates(gates):
    q, k, v = _qkv()
    g = F.logsigmoid(torch.randn(B, T, H))
    g_gamma = torch.tensor([-0.05, -0.3])
    kwargs = {"g": g if gates in ("g", "both") else None, "g_gamma": g_gamma if gates in ("g_gamma", "both") else None}
    o, _ = chunk_simple_gla(q, k, v, **kwargs)
    if gates == "none":
        want, _ = recurrence(*_heads_first(q, k, v), None, None)
    elif gates == "g_gamma":
        want, _ = recurrence(*_heads_first(q, k, v), g_gamma, "head")
    else:
        per_step = g.transpose(1, 2) + (g_gamma[None, :, None] if gates == "both" else 0.0)
        want, _ = recurrence(*_heads_first(q, k, v), per_step, "scalar")
    assert rel(o, want.transpose(1, 2)) < 1e-4
    assert torch.equal(fused_recurrent_simple_gla(q, k, v, **kwargs)[0], o)


def test_chunk_gla_state_layouts_and_gradients():
    q, k, v = _qkv()
    g = F.logsigmoid(torch.randn(B, T, H, K)) / 4
    h0 = torch.randn(B, H, K, V)
    leaves = [t.clone().requires_grad_() for t in (q, k, v, g, h0)]
    o, state = chunk_gla(*leaves[:4], initial_state=leaves[4], output_final_state=True)
    assert state is not None
    ref = [t.detach().double().requires_grad_() for t in (q, k, v, g, h0)]
    want, want_state = recurrence(*_heads_first(*ref[:3]), ref[3].transpose(1, 2), "vector", initial_state=ref[4])
    assert rel(o, want.transpose(1, 2)) < 1e-4 and rel(state, want_state) < 1e-4
    do, dstate = torch.randn_like(o), torch.randn_like(state)
    ((o * do).sum() + (state * dstate).sum()).backward()
    ((want.transpose(1, 2) * do.double()).sum() + (want_state * dstate.double()).sum()).backward()
    for name, got, expected in zip(["q", "k", "v", "g", "initial_state"], leaves, ref):
        assert got.grad is not None and expected.grad is not None
        assert rel(got.grad, expected.grad) < 1e-3, name
    # fla's state_v_first: the state as [N, H, V, K], in and out
    o_t, state_t = chunk_gla(
        q, k, v, g, initial_state=h0.transpose(-1, -2), output_final_state=True, state_v_first=True
    )
    assert state_t is not None and torch.allclose(o_t, o.detach()) and torch.allclose(state_t, state.detach().mT)
    assert torch.equal(fused_recurrent_gla(q, k, v, gk=g, initial_state=h0)[0], o.detach())


def test_head_first_and_int64_cu_seqlens():
    q, k, v = _qkv(1, 30)
    g = F.logsigmoid(torch.randn(1, 30, H, K))
    cu = torch.tensor([0, 7, 30], dtype=torch.int64)
    o, state = chunk_gla(q, k, v, g, cu_seqlens=cu, output_final_state=True)
    assert state is not None and state.shape == (2, H, K, V)
    for n, (lo, hi) in enumerate([(0, 7), (7, 30)]):
        o_n, s_n = chunk_gla(q[:, lo:hi], k[:, lo:hi], v[:, lo:hi], g[:, lo:hi], output_final_state=True)
        assert s_n is not None
        assert rel(o[:, lo:hi], o_n) < 1e-5 and rel(state[n : n + 1], s_n) < 1e-5
    heads_first = chunk_gla(*_heads_first(q, k, v, g), cu_seqlens=cu, head_first=True)[0]
    assert torch.allclose(heads_first.transpose(1, 2), o)


def test_what_attnc_does_not_take_is_refused():
    q, k, v = _qkv()
    g = torch.zeros(B, T, H, K)
    with pytest.raises(NotImplementedError, match="value-side gate"):
        fused_recurrent_gla(q, k, v, gk=g, gv=torch.zeros(B, T, H, V))
    with pytest.raises(NotImplementedError, match="reverse=True"):
        fused_recurrent_retention(q, k, v, reverse=True)
    with pytest.raises(TypeError, match="unexpected keyword arguments: nonsense"):
        chunk_gla(q, k, v, g, nonsense=1)
    with pytest.raises(ValueError, match=r"\[B, T, H, K\] \(fla's layout"):
        chunk_retention(q[0], k[0], v[0])
    with pytest.raises(ValueError, match=r"g must be the per-step log-decays \[B, T, H\]"):
        chunk_simple_gla(q, k, v, g=torch.zeros(B, T))
    with pytest.raises(ValueError, match="int64 or int32"):
        chunk_gla(q, k, v, g, cu_seqlens=torch.tensor([0.0, 40.0]))


def test_linear_attention_names_its_layout_and_points_to_attnc_ops():
    import attnc

    q = torch.randn(1, 2, 40, 16)  # attnc's [B, H, T, K]
    with pytest.raises(ValueError, match=r"linear_attention takes \[B, H, T, \.\.\.\]; .* use attnc\.ops"):
        attnc.linear_attention(gate="vector")(q, q, q, g=torch.zeros(1, 40, 2, 16))  # g in fla's layout
