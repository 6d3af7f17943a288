"""Compiled forward on a CUDA device against the float64 reference (run with `pytest -m gpu`)."""

from __future__ import annotations

import pytest
import torch

import attnc

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def softcap(score, b, h, q_idx, kv_idx):
    return 30.0 * attnc.tanh(score / 30.0)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("mods", [(None, None), (softcap, causal)], ids=["plain", "softcap-causal"])
@pytest.mark.parametrize(
    "shape", [(2, 8, 2, 77, 133, 64, 64), (1, 4, 4, 300, 300, 128, 128), (1, 2, 1, 129, 200, 192, 128)]
)
def test_forward_cuda_matches_reference(dtype, mods, shape):
    """Ragged lengths, GQA, D≠Dv: compiled kernel output and lse match the float64 reference."""
    b, hq, hkv, sq, skv, d, dv = shape
    q = torch.randn(b, hq, sq, d, device="cuda", dtype=dtype)
    k = torch.randn(b, hkv, skv, d, device="cuda", dtype=dtype)
    v = torch.randn(b, hkv, skv, dv, device="cuda", dtype=dtype)
    out, lse = attnc.attention(*mods)(q, k, v, return_lse=True)
    ref, ref_lse = attnc.attention_reference(q, k, v, score_mod=mods[0], mask_mod=mods[1])
    tol = 1e-4 if dtype == torch.float32 else 1e-2
    assert rel(out, ref) < tol
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), finite)
    assert rel(lse[finite], ref_lse[finite]) < tol


def test_forward_cuda_document_mask_runtime_table():
    """A mask reading a captured tensor gets a runtime block table and the right answer."""
    doc = torch.repeat_interleave(torch.arange(5, device="cuda"), torch.tensor([50, 100, 7, 200, 43], device="cuda"))

    def same_doc(b, h, q_idx, kv_idx):
        return (doc[q_idx] == doc[kv_idx]) & (q_idx >= kv_idx)

    q, k, v = (torch.randn(1, 4, 400, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = attnc.attention(mask_mod=same_doc)(q, k, v)
    ref, _ = attnc.attention_reference(q, k, v, mask_mod=same_doc)
    assert rel(out, ref) < 1e-2


@pytest.mark.parametrize("normalizer", ["sigmoid", "relu", "retention"])
def test_forward_cuda_normalizers_match_reference(normalizer):
    """Non-softmax normalizers compiled for the GPU match the float64 reference (causal, GQA, ragged)."""
    q = torch.randn(1, 4, 150, 64, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 2, 201, 64, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(1, 2, 201, 64, device="cuda", dtype=torch.bfloat16)
    out = attnc.attention(mask_mod=causal, normalizer=normalizer)(q, k, v)
    ref = attnc.attention_reference(q, k, v, mask_mod=causal, normalizer=normalizer)[0]
    assert rel(out, ref) < 1e-2


def test_forward_cuda_softmax_with_sinks():
    """Sinks join the denominator on the GPU as on the CPU."""
    sinks = torch.randn(4, device="cuda")
    q, k, v = (torch.randn(1, 4, 130, 64, device="cuda", dtype=torch.float16) for _ in range(3))
    norm = attnc.SoftmaxWithSinks(sinks)
    out, lse = attnc.attention(mask_mod=causal, normalizer=norm)(q, k, v, return_lse=True)
    ref, ref_lse = attnc.attention_reference(q, k, v, mask_mod=causal, normalizer=norm)
    assert rel(out, ref) < 1e-2
    assert rel(lse, ref_lse) < 1e-2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_backward_cuda_matches_autograd(dtype):
    """Compiled dQ/dK/dV and a captured bias gradient against float64 autograd (causal, GQA, ragged)."""
    bias = torch.randn(4, 150, 201, device="cuda", requires_grad=True)

    def biased(score, b, h, q_idx, kv_idx):
        return score + bias[h, q_idx, kv_idx]

    q = torch.randn(1, 4, 150, 64, device="cuda", dtype=dtype, requires_grad=True)
    k = torch.randn(1, 2, 201, 64, device="cuda", dtype=dtype, requires_grad=True)
    v = torch.randn(1, 2, 201, 64, device="cuda", dtype=dtype, requires_grad=True)
    out = attnc.attention(score_mod=biased, mask_mod=causal)(q, k, v)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, [q, k, v, bias], dout)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref, _ = attnc.attention_reference(q64, k64, v64, score_mod=biased, mask_mod=causal)
    ref_grads = torch.autograd.grad(ref, [q64, k64, v64, bias], dout.double())
    tol = 1e-4 if dtype == torch.float32 else 1e-2
    for g, r in zip(grads, ref_grads):
        assert rel(g, r) < tol


@pytest.mark.parametrize("normalizer", ["sigmoid", "relu", "retention", "sinks"])
def test_normalizer_backward_cuda_matches_autograd(normalizer):
    """Derived gradients of the other normalizers, compiled, against float64 autograd (causal, GQA, ragged)."""
    sinks = torch.randn(4, device="cuda", requires_grad=True)
    norm = attnc.SoftmaxWithSinks(sinks) if normalizer == "sinks" else normalizer
    q = torch.randn(1, 4, 150, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, 2, 201, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, 2, 201, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    out = attnc.attention(mask_mod=causal, normalizer=norm)(q, k, v)
    dout = torch.randn_like(out)
    wrt = [q, k, v, sinks] if normalizer == "sinks" else [q, k, v]
    grads = torch.autograd.grad(out, wrt, dout)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = attnc.attention_reference(q64, k64, v64, mask_mod=causal, normalizer=norm)[0]
    ref_grads = torch.autograd.grad(ref, [q64, k64, v64, *wrt[3:]], dout.double())
    for g, r in zip(grads, ref_grads):
        assert rel(g, r) < 2e-2
