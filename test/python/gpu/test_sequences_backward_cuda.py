"""Gradients through packed sequences compiled on a CUDA device against float64 autograd through the
reference (run with `pytest -m gpu`)."""

from __future__ import annotations

import pytest
import torch

import attnc
from attnc.reference import sequences_reference

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_packed_backward_cuda_matches_autograd(dtype):
    """Ragged causal sequences (one with fewer queries than keys), GQA 8/2, D=128, a per-sequence slope that
    gets its gradient, and a loss on lse too."""
    torch.manual_seed(0)
    len_q, len_k = [512, 7, 1000, 0, 64], [512, 300, 1000, 5, 129]
    cu_q = torch.tensor([0, *torch.tensor(len_q).cumsum(0).tolist()], device="cuda", dtype=torch.int32)
    cu_k = torch.tensor([0, *torch.tensor(len_k).cumsum(0).tolist()], device="cuda", dtype=torch.int32)
    opts = {"device": "cuda", "dtype": dtype, "requires_grad": True}
    q = torch.randn(1, 8, sum(len_q), 128, **opts)
    k = torch.randn(1, 2, sum(len_k), 128, **opts)
    v = torch.randn(1, 2, sum(len_k), 128, **opts)
    slopes = torch.rand(len(len_q), device="cuda", requires_grad=True)

    def per_doc(score, b, h, q_idx, kv_idx):
        return score + slopes[b] * (kv_idx - q_idx) * 0.01

    layout = {"cu_seqlens_q": cu_q, "cu_seqlens_k": cu_k}
    attn = attnc.attention(score_mod=per_doc, mask_mod=causal)
    out, lse = attn(q, k, v, return_lse=True, **layout, max_seqlen_q=1000, max_seqlen_k=1000)
    dout = torch.randn_like(out)
    got = torch.autograd.grad((out * dout).sum() + lse.clamp_min(-1e4).sum(), [q, k, v, slopes])
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref, ref_lse = sequences_reference(q64, k64, v64, **layout, score_mod=per_doc, mask_mod=causal)
    loss = (ref * dout.double()).sum() + ref_lse.clamp_min(-1e4).sum()
    want = torch.autograd.grad(loss, [q64, k64, v64, slopes])
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    for name, g, w in zip(["dq", "dk", "dv", "dslopes"], got, want):
        assert rel(g, w) < tol, (name, rel(g, w))
