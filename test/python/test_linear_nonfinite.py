"""NaN and ±inf in linear attention's inputs stay where the float64 recurrence puts them (CPU interpreter).

Each (batch, head) slot of a [2, 2] call gets one non-finite value at its own step: q at
(0, 0, t=20), k at (0, 1, t=32, a chunk's first step), v at (1, 0, t=50) and g at
(1, 1, t=63, a chunk's last step); chunk 32, T=80. The output is NaN or ±inf exactly where
the recurrence's is and matches it elsewhere; with the loss on each slot's outputs before
its step, so are the gradients, but for dg and, after a non-finite g, dk and dv at the later
steps of its chunk (see `_known_extra`).
"""

from __future__ import annotations

import pytest
import torch
from linear_reference import make_inputs, recurrence, rel

import attnc

# the interpreter's numpy warns of the NaN and inf arithmetic these tests make on purpose
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

NAN, INF = float("nan"), float("inf")
SLOTS = {"q": (0, 0, 20), "k": (0, 1, 32), "v": (1, 0, 50), "g": (1, 1, 63)}
CHUNK, LENGTH = 32, 80


def _poisoned(gate, value):
    """Fresh inputs with `value` at each tensor's slot (channel 3 of a per-channel tensor)."""
    q, k, v, g = make_inputs(gate, 2, 2, 2, LENGTH, 16, 16)
    tensors = {"q": q, "k": k, "v": v, "g": g}
    for name, (b, h, t) in SLOTS.items():
        x = tensors[name]
        if x is None or (name == "g" and gate == "head"):  # a per-head g reaches a whole head
            continue
        if x.dim() == 3:
            x[b, h, t] = value
        else:
            x[b, h, t, 3] = value
    return tensors["q"], tensors["k"], tensors["v"], tensors["g"]


def _assert_same_nonfinite(got: torch.Tensor, want: torch.Tensor, tol: float, skip: torch.Tensor | None = None):
    """got is NaN or ±inf exactly where want is (outside `skip`) and matches it elsewhere."""
    got_finite, want_finite = torch.isfinite(got), torch.isfinite(want)
    outside = torch.ones_like(want_finite) if skip is None else ~skip
    assert torch.equal(got_finite & outside, want_finite & outside)
    both = got_finite & want_finite
    error = (got[both].double() - want[both].double()).norm()
    assert error <= tol * max(want[both].double().norm().item(), 1.0)  # some finite parts are all 0


@pytest.mark.parametrize("value", [NAN, INF, -INF])
@pytest.mark.parametrize("gate", [None, "head", "scalar", "vector"])
def test_linear_nonfinite_output_follows_recurrence(gate, value):
    """NaN, inf or -inf in q, k, v and g (each in its own slot): the output is non-finite exactly where
    the float64 recurrence's is (g = -inf is a reset: all finite) and matches it to 1e-5 elsewhere."""
    torch.manual_seed(30)
    q, k, v, g = _poisoned(gate, value)
    o, _ = attnc.linear_attention(gate=gate, chunk_size=CHUNK)(q, k, v, g=g)
    ref, _ = recurrence(q, k, v, g, gate)
    assert not torch.isfinite(ref).all()
    _assert_same_nonfinite(o, ref, 1e-5)


def _known_extra(gate, name: str, shape: torch.Size) -> torch.Tensor | None:
    """Where a gradient may be non-finite beyond float64 autograd's. dg_t sums dG_s over the later steps
    s of its sequence, which are non-finite after a non-finite k or v (the reference's exp(g_t)⟨S_{t-1},
    dS_t⟩ is finite up to that step); a non-finite g_t sits in the running sum G of its chunk, so
    exp(G_i − G_j) is NaN also for later steps j < i of the chunk, where dk_j and dv_j should not see it."""
    extra = torch.zeros(shape, dtype=torch.bool)
    if name == "g" and gate in ("scalar", "vector"):
        for b, h, t in (SLOTS["k"], SLOTS["v"]):
            extra[b, h, : t + 1] = True
    if name in ("k", "v") and gate in ("scalar", "vector"):
        b, h, t = SLOTS["g"]
        extra[b, h, t : (t // CHUNK + 1) * CHUNK] = True
    return extra


@pytest.mark.parametrize("value", [NAN, INF])
@pytest.mark.parametrize("gate", [None, "head", "scalar", "vector"])
def test_linear_nonfinite_gradients_follow_autograd(gate, value):
    """The same inputs, the loss on each slot's outputs before its non-finite step: dq, dk, dv and dg are
    non-finite where float64 autograd's are (and where `_known_extra` says) and match it to 1e-4 elsewhere."""
    torch.manual_seed(31)
    q, k, v, g = _poisoned(gate, value)
    do = torch.randn(2, 2, LENGTH, 16)
    for b, h, t in SLOTS.values():
        do[b, h, t:] = 0.0
    leaves = [x.clone().requires_grad_() for x in (q, k, v)] + ([g.clone().requires_grad_()] if g is not None else [])
    o, _ = attnc.linear_attention(gate=gate, chunk_size=CHUNK)(*leaves[:3], g=leaves[3] if g is not None else None)
    (o * do).sum().backward()
    ref_leaves = [x.detach().double().requires_grad_() for x in leaves]
    ref_o, _ = recurrence(*ref_leaves[:3], ref_leaves[3] if g is not None else None, gate)
    (ref_o * do.double()).sum().backward()
    for name, got, want in zip("qkvg", leaves, ref_leaves):
        assert got.grad is not None and want.grad is not None
        _assert_same_nonfinite(got.grad, want.grad.float(), 1e-4, _known_extra(gate, name, want.grad.shape))


def _reset_gate(gate):
    """A log-decay of -inf (a reset: exp(g) = 0) at a sequence's first step, at both sides of a chunk
    boundary and twice within one chunk, and -1e4 (whose exp is 0 as well) elsewhere."""
    g = make_inputs(gate, 2, 2, 2, 90, 16, 16)[3]
    assert g is not None
    if gate == "head":
        g[1] = -INF
        return g
    for t in (0, 31, 32, 40, 45):
        g[0, 1, t] = -INF
    g[1, 0, 70] = -1e4
    if gate == "vector":
        g[1, 1, torch.rand(90) < 0.1, :5] = -INF
    return g


@pytest.mark.parametrize("gate", ["head", "scalar", "vector"])
def test_linear_reset_gate_matches_autograd(gate):
    """g = -inf resets the state (the initial one at step 0): output, final state and every gradient are
    finite and match float64 autograd (1e-5 forward, 1e-4 backward; chunk 32, T=90)."""
    torch.manual_seed(32)
    q, k, v, _ = make_inputs(gate, 2, 2, 2, 90, 16, 16)
    g = _reset_gate(gate)
    h0 = torch.randn(2, 2, 16, 16)
    leaves = [x.clone().requires_grad_() for x in (q, k, v, g, h0)]
    la = attnc.linear_attention(gate=gate, chunk_size=CHUNK)
    o, state = la(*leaves[:3], g=leaves[3], initial_state=leaves[4], output_final_state=True)
    assert state is not None
    do, dstate = torch.randn_like(o), torch.randn_like(state)
    (o * do).sum().add((state * dstate).sum()).backward()
    ref_leaves = [x.detach().double().requires_grad_() for x in leaves]
    ref_o, ref_state = recurrence(*ref_leaves[:4], gate, initial_state=ref_leaves[4])
    (ref_o * do.double()).sum().add((ref_state * dstate.double()).sum()).backward()
    assert torch.isfinite(o).all() and rel(o, ref_o) < 1e-5 and rel(state, ref_state) < 1e-5
    for name, got, want in zip(["q", "k", "v", "g", "initial_state"], leaves, ref_leaves):
        assert got.grad is not None and torch.isfinite(got.grad).all(), name
        assert rel(got.grad, want.grad) < 1e-4, name


def test_linear_nonfinite_stays_in_its_sequence():
    """Packed sequences of 40, 70 and 30 steps, NaN in v at step 10 of the second: the other two
    sequences' outputs and gradients, dg included, are finite and match float64 autograd."""
    torch.manual_seed(33)
    bounds = [0, 40, 110, 140]
    q, k, v, g = make_inputs("scalar", 1, 2, 2, 140, 16, 16)
    assert g is not None
    v[0, 1, 50, 2] = NAN
    cu = torch.tensor(bounds, dtype=torch.int32)
    leaves = [x.clone().requires_grad_() for x in (q, k, v, g)]
    la = attnc.linear_attention(gate="scalar", chunk_size=16)
    o, _ = la(*leaves[:3], g=leaves[3], cu_seqlens=cu)
    do = torch.randn_like(o)
    (o * do).sum().backward()
    for lo, hi in ((0, 40), (110, 140)):
        ref_leaves = [x.detach()[:, :, lo:hi].double().requires_grad_() for x in (q, k, v, g)]
        ref_o, _ = recurrence(*ref_leaves, "scalar")
        (ref_o * do[:, :, lo:hi].double()).sum().backward()
        assert torch.isfinite(o[:, :, lo:hi]).all() and rel(o[:, :, lo:hi], ref_o) < 1e-5
        for name, got, want in zip("qkvg", leaves, ref_leaves):
            assert got.grad is not None and want.grad is not None
            part = got.grad[:, :, lo:hi]
            assert torch.isfinite(part).all() and rel(part, want.grad) < 1e-4, (name, lo)
    assert torch.isfinite(o[:, :, 40:50]).all() and not torch.isfinite(o[0, 1, 50:110, 2]).any()
