"""Compiled linear attention on a CUDA device against the float64 recurrence (run with `pytest -m gpu`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import attnc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from linear_reference import make_inputs, recurrence, rel  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("gate", [None, "head", "scalar", "vector"])
@pytest.mark.parametrize("dims", [(64, 64), (128, 128), (96, 48)])
def test_linear_cuda_forward_backward(gate, dtype, dims):
    """T=300, GQA-like heads (2 → 4), an initial state: output, final state and every gradient."""
    torch.manual_seed(0)
    dim_k, dim_v = dims
    q, k, v, g = make_inputs(gate, 2, 2, 4, 300, dim_k, dim_v, dtype)
    h0 = torch.randn(2, 4, dim_k, dim_v)
    leaves = [t.cuda().requires_grad_() for t in (q, k, v, h0)]
    g_leaf = g.cuda().requires_grad_() if g is not None else None
    o, state = attnc.linear_attention(gate=gate)(
        *leaves[:3], g=g_leaf, initial_state=leaves[3], output_final_state=True
    )
    do, dstate = torch.randn_like(o), torch.randn_like(state)
    (o.float() * do.float()).sum().add((state * dstate).sum()).backward()

    ref_leaves = [t.detach().double().cpu().requires_grad_() for t in leaves]
    ref_g = g_leaf.detach().double().cpu().requires_grad_() if g_leaf is not None else None
    ref_o, ref_state = recurrence(*ref_leaves[:3], ref_g, gate, initial_state=ref_leaves[3])
    (ref_o * do.double().cpu()).sum().add((ref_state * dstate.double().cpu()).sum()).backward()
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    # dg = reverse sums of q·dq − k·dk: a difference of large terms, so 16-bit rounding of the
    # chunk states and scores shows more there (on the CPU, fp16 gives ~3e-4 elsewhere but
    # 2e-3 (scalar) to 9e-3 (head, a sum over every step) for dg; bf16 has 8x coarser steps).
    g_tol = 1e-4 if dtype == torch.float32 else 1e-1
    assert rel(o.cpu(), ref_o) < tol and rel(state.cpu(), ref_state) < tol
    got = [t.grad for t in leaves] + ([g_leaf.grad] if g_leaf is not None else [])
    want = [t.grad for t in ref_leaves] + ([ref_g.grad] if ref_g is not None else [])
    for name, a, b in zip(["q", "k", "v", "initial_state", "g"], got, want):
        assert a is not None and b is not None
        assert rel(a.cpu(), b) < (g_tol if name == "g" else tol), name


def test_linear_cuda_cu_seqlens():
    """Packed sequences on the GPU equal separate runs."""
    torch.manual_seed(1)
    cu = torch.tensor([0, 100, 164, 400], dtype=torch.int32, device="cuda")
    q, k, v, g = (t.cuda() for t in make_inputs("vector", 1, 4, 4, 400, 64, 64, torch.bfloat16))
    la = attnc.linear_attention(gate="vector")
    o, state = la(q, k, v, g=g, output_final_state=True, cu_seqlens=cu)
    assert state is not None
    for n in range(3):
        lo, hi = cu[n].item(), cu[n + 1].item()
        o_n, s_n = la(
            q[:, :, lo:hi], k[:, :, lo:hi], v[:, :, lo:hi], g=g[:, :, lo:hi].contiguous(), output_final_state=True
        )
        assert s_n is not None
        assert rel(o[:, :, lo:hi], o_n) < 1e-2 and rel(state[n : n + 1], s_n) < 1e-2


@pytest.mark.parametrize("gate", ["scalar", "vector"])
def test_linear_cuda_matches_fla(gate):
    """Outputs agree with flash-linear-attention's chunk kernels (when fla-core is installed)."""
    fla = pytest.importorskip("fla.ops.simple_gla" if gate == "scalar" else "fla.ops.gla")
    torch.manual_seed(2)
    q, k, v, g = (t.cuda() for t in make_inputs(gate, 2, 4, 4, 500, 128, 128, torch.bfloat16))
    o, _ = attnc.linear_attention(gate=gate)(q, k, v, g=g)
    fn = fla.chunk_simple_gla if gate == "scalar" else fla.chunk_gla
    bt = [t.transpose(1, 2).contiguous() for t in (q, k, v, g)]
    ref = fn(bt[0], bt[1], bt[2], g=bt[3])
    ref = ref[0] if isinstance(ref, tuple) else ref
    assert rel(o, ref.transpose(1, 2)) < 1e-2
