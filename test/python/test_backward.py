"""Gradients from the derived backward kernels (CPU, interpreter) against float64 PyTorch autograd."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import attnc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOL = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 1e-2}


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_bwd_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "score_mod", None), getattr(module, "mask_mod", None)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def check_grads(score_mod, mask_mod, shape, dtype=torch.float32, extra=(), with_lse=False):
    """dq, dk, dv (and grads of `extra` captured tensors) against autograd through the float64 reference."""
    b, hq, hkv, sq, skv, d, dv = shape
    q = torch.randn(b, hq, sq, d, dtype=dtype, requires_grad=True)
    k = torch.randn(b, hkv, skv, d, dtype=dtype, requires_grad=True)
    v = torch.randn(b, hkv, skv, dv, dtype=dtype, requires_grad=True)
    out, lse = attnc.attention(score_mod, mask_mod)(q, k, v, return_lse=True)
    dout = torch.randn_like(out)
    loss = (out * dout).sum() + ((lse.masked_fill(torch.isinf(lse), 0) * 0.3).sum() if with_lse else 0)
    grads = torch.autograd.grad(loss, [q, k, v, *extra])
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref, ref_lse = attnc.attention_reference(q64, k64, v64, score_mod=score_mod, mask_mod=mask_mod)
    ref_loss = (ref * dout.double()).sum() + (
        (ref_lse.masked_fill(torch.isinf(ref_lse), 0) * 0.3).sum() if with_lse else 0
    )
    ref_grads = torch.autograd.grad(ref_loss, [q64, k64, v64, *extra])
    for name, g, r in zip(["dq", "dk", "dv", *[f"d{i}" for i in range(len(extra))]], grads, ref_grads):
        assert not torch.isnan(g).any(), name
        assert g.dtype == (dtype if name in ("dq", "dk", "dv") else r.dtype)
        assert rel(g, r) < TOL[dtype], name
    return grads


@pytest.mark.parametrize(
    "example", ["plain", "causal", "softcap", "alibi", "sliding_window", "document_mask", "prefix_lm"]
)
def test_backward_examples_match_autograd(example):
    """Every example: ragged lengths, GQA, fp32 within 1e-4."""
    score_mod, mask_mod = load_example(example)
    check_grads(score_mod, mask_mod, (1, 4, 2, 45, 77, 32, 32))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_backward_half_precision(dtype):
    """fp16 and bf16 gradients within 1e-2."""
    score_mod, mask_mod = load_example("softcap")
    check_grads(score_mod, mask_mod, (1, 2, 1, 40, 50, 64, 64), dtype)


def test_backward_captured_tensors_get_gradients():
    """A learnable bias read twice and per-head slopes: their gradients match autograd."""
    h, sq, skv = 2, 33, 41
    bias = torch.randn(h, sq, skv, requires_grad=True)
    slopes = torch.rand(h, requires_grad=True)

    def mod(score, b, hh, q_idx, kv_idx):
        return score + bias[hh, q_idx, kv_idx] - 0.5 * bias[0, q_idx, kv_idx] + slopes[hh] * (kv_idx - q_idx)

    def causal(b, hh, q_idx, kv_idx):
        return q_idx >= kv_idx

    check_grads(mod, causal, (1, h, h, sq, skv, 16, 16), extra=(bias, slopes))


def test_backward_differentiates_only_captures_that_require_grad():
    """A captured tensor without requires_grad costs the dQ kernel no reductions or atomics, and the
    one that requires grad still gets its gradient."""
    h, sq, skv = 2, 33, 41
    bias = torch.randn(h, sq, skv, requires_grad=True)
    slopes = torch.rand(h)  # fixed, as ALiBi's are

    def mod(score, b, hh, q_idx, kv_idx):
        return score + bias[hh, q_idx, kv_idx] + slopes[hh] * (kv_idx - q_idx)

    check_grads(mod, None, (1, h, h, sq, skv, 16, 16), extra=(bias,))
    attn = attnc.attention(mod)
    shape = attnc.Shape(1, h, h, sq, skv, 16, 16)
    everything = attn.compile(shape, torch.float32, "cpu", backward=True).stages["triton"]
    bias_only = attn.compile(shape, torch.float32, "cpu", backward=True, grad_captures=(0,)).stages["triton"]
    assert everything.count("tl.atomic_add(") == 4  # bias and slopes, in the full and the partial loop
    assert bias_only.count("tl.atomic_add(") == 2
    dq_kernel = bias_only.split("def attention_bwd_dq")[1].split("def attention_bwd_dkdv")[0]
    assert dq_kernel.count("tl.sum(") == 1  # δ = rowsum(dO ⊙ O) only: no per-tile sums for slopes


def test_backward_fully_masked_rows_have_zero_gradients():
    """Rows with no kept key: zero dq and no NaN anywhere."""

    def late(b, h, q_idx, kv_idx):
        return kv_idx <= q_idx - 20

    grads = check_grads(None, late, (1, 2, 2, 48, 48, 16, 16))
    assert torch.equal(grads[0][:, :, :20], torch.zeros_like(grads[0][:, :, :20]))


def test_backward_through_the_logsumexp():
    """A loss that also reads lse gets the extra dS = dlse·P term."""
    score_mod, mask_mod = load_example("causal")
    check_grads(score_mod, mask_mod, (1, 2, 2, 30, 30, 16, 16), with_lse=True)


def test_backward_dv_head_dim_differs():
    """D != Dv and head dims that are not powers of two."""
    check_grads(None, None, (1, 2, 1, 20, 35, 48, 24))


def test_backward_bf16_captured_parameter_on_cpu():
    """A bf16 captured parameter gets its gradient, and an in-place update is seen by the next call."""
    bias = torch.zeros(2, 16, 16, dtype=torch.bfloat16, requires_grad=True)
    attn = attnc.attention(score_mod=lambda s, b, h, q, kv: s + bias[h, q, kv])
    q, k, v = (torch.randn(1, 2, 16, 16, dtype=torch.bfloat16) for _ in range(3))
    first = attn(q, k, v)
    first.sum().backward()
    assert bias.grad is not None and bias.grad.abs().sum() > 0
    with torch.no_grad():
        bias.add_(torch.randn_like(bias) * 3)
        second = attn(q, k, v)
    ref, _ = attnc.attention_reference(q, k, v, score_mod=lambda s, b, h, qi, kv: s + bias[h, qi, kv])
    assert rel(second, ref) < 1e-2
    assert rel(first.detach(), second) > 1e-2


def test_backward_negative_scale_is_kept():
    """An explicit negative scale is used as given on the gradient path too."""
    q, k, v = (torch.randn(1, 2, 32, 16, requires_grad=True) for _ in range(3))
    out = attnc.attention()(q, k, v, scale=-0.3)
    ref, _ = attnc.attention_reference(q.detach(), k.detach(), v.detach(), scale=-0.3)
    assert rel(out, ref) < 1e-4


def test_backward_rows_set_to_minus_inf_by_score_mod_have_no_nan():
    """A score_mod that removes whole rows with where(..., -inf): every gradient finite and right."""

    def late(score, b, h, q_idx, kv_idx):
        return attnc.where(q_idx >= 5, score, float("-inf"))

    check_grads(late, None, (1, 2, 2, 40, 40, 16, 16))


@pytest.mark.parametrize("normalizer", ["softmax", "sigmoid"])
@pytest.mark.parametrize(
    "score_mod",
    [
        lambda score, b, h, q_idx, kv_idx: 0.0,
        lambda score, b, h, q_idx, kv_idx: h * 0.5,
        lambda score, b, h, q_idx, kv_idx: q_idx * 0.1,
        lambda score, b, h, q_idx, kv_idx: kv_idx * 0.1 - score,
    ],
    ids=["constant", "head-only", "query-only", "key-and-score"],
)
def test_score_mod_ignoring_some_arguments_compiles_and_differentiates(score_mod, normalizer):
    """A score_mod that ignores the score or some indices yields fewer dims than a tile; the kernels
    broadcast it back: forward and gradients match float64 autograd."""
    torch.manual_seed(41)
    q, k, v = (torch.randn(1, 2, 40, 16, dtype=torch.float64) for _ in range(3))
    qf, kf, vf = (t.float().requires_grad_() for t in (q, k, v))
    out = attnc.attention(score_mod=score_mod, normalizer=normalizer)(qf, kf, vf)
    qd, kd, vd = (t.clone().requires_grad_() for t in (q, k, v))
    ref = attnc.attention_reference(qd, kd, vd, score_mod=score_mod, normalizer=normalizer)[0]
    weight = torch.randn_like(ref)
    (out * weight.float()).sum().backward()
    (ref * weight).sum().backward()
    assert rel(out, ref) < 1e-5
    for got, want, like in ((qf.grad, qd.grad, q), (kf.grad, kd.grad, k), (vf.grad, vd.grad, v)):
        assert got is not None
        want = torch.zeros_like(like) if want is None else want  # the mod ignores the score: no path to q, k
        assert (got.double() - want).norm() <= 1e-4 * want.norm() + 1e-6
