"""Normalizers beyond softmax, compiled and run on CPU tensors, against closed-form float64 formulas."""

from __future__ import annotations

import pytest
import torch

import attnc


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def scores_and_mask(q, k, mask_mod, scale=None):
    """float64 scores [B, Hq, Sq, Skv] (GQA expanded) and the kept mask."""
    group = q.shape[1] // k.shape[1]
    kk = k.double().repeat_interleave(group, dim=1)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = q.double() @ kk.transpose(-1, -2) * scale
    keep = torch.ones_like(s, dtype=torch.bool)
    if mask_mod is not None:
        b, h, sq, skv = s.shape
        keep = mask_mod(
            torch.arange(b)[:, None, None, None],
            torch.arange(h)[None, :, None, None],
            torch.arange(sq)[None, None, :, None],
            torch.arange(skv)[None, None, None, :],
        ).expand_as(s)
    return s, keep


def values(q, v):
    return v.double().repeat_interleave(q.shape[1] // v.shape[1], dim=1)


def closed_form(name, q, k, v, mask_mod, sinks=None):
    """The normalizers' formulas written directly, not through attnc.Normalizer."""
    s, keep = scores_and_mask(q, k, mask_mod)
    vv = values(q, v)
    if name == "sigmoid":
        return (torch.sigmoid(s) * keep) @ vv, None
    if name == "relu":
        return (torch.relu(s) * keep) @ vv, None
    if name == "retention":
        s = s * keep
        denominator = s.abs().sum(-1, keepdim=True).clamp_min(1.0)
        return (s / denominator) @ vv, denominator.squeeze(-1)
    if name == "sinks":
        s = s.masked_fill(~keep, float("-inf"))
        logits = torch.cat([s, sinks.double()[None, :, None, None].expand(*s.shape[:3], 1)], dim=-1)
        p = torch.softmax(logits, dim=-1)[..., :-1]
        return p @ vv, torch.logsumexp(logits, dim=-1)
    raise AssertionError(name)


def inputs(b, hq, hkv, sq, skv, d, dtype=torch.float32):
    return (
        torch.randn(b, hq, sq, d, dtype=dtype),
        torch.randn(b, hkv, skv, d, dtype=dtype),
        torch.randn(b, hkv, skv, d, dtype=dtype),
    )


@pytest.mark.parametrize("name", ["sigmoid", "relu", "retention"])
@pytest.mark.parametrize("mask_mod", [None, causal], ids=["full", "causal"])
def test_normalizer_matches_formula(name, mask_mod):
    """Ragged lengths, GQA, with and without a causal mask; masked scores contribute exactly 0."""
    q, k, v = inputs(1, 4, 2, 45, 77, 32)
    out, stats = attnc.attention(mask_mod=mask_mod, normalizer=name)(q, k, v, return_lse=True)
    ref, ref_stats = closed_form(name, q, k, v, mask_mod)
    assert rel(out, ref) < 1e-4
    if ref_stats is None:
        assert stats is None
    else:
        assert rel(stats, ref_stats) < 1e-4


@pytest.mark.parametrize("mask_mod", [None, causal], ids=["full", "causal"])
def test_softmax_with_sinks_matches_formula(mask_mod):
    """gpt-oss sinks: one logit per query head joins the softmax denominator."""
    q, k, v = inputs(2, 4, 1, 33, 50, 16)
    sinks = torch.randn(4)
    norm = attnc.SoftmaxWithSinks(sinks)
    out, lse = attnc.attention(mask_mod=mask_mod, normalizer=norm)(q, k, v, return_lse=True)
    ref, ref_lse = closed_form("sinks", q, k, v, mask_mod, sinks)
    assert rel(out, ref) < 1e-4
    assert rel(lse, ref_lse) < 1e-4


def test_sigmoid_fp16_and_bf16():
    """Half-precision inputs within 1e-2."""
    for dtype in (torch.float16, torch.bfloat16):
        q, k, v = inputs(1, 2, 2, 40, 40, 64, dtype)
        out = attnc.attention(mask_mod=causal, normalizer="sigmoid")(q, k, v)
        assert out.dtype == dtype
        assert rel(out, closed_form("sigmoid", q, k, v, causal)[0]) < 1e-2


class TemperedSoftmax(attnc.Normalizer):
    """Softmax with a learned temperature per query head."""

    state = {"m": float("-inf"), "l": 0.0}
    stats = ("lse",)

    def __init__(self, temperature: torch.Tensor):
        self.temperature = temperature

    def update(self, scores, state):
        scaled = scores / self.temperature[self.h]
        m_new = attnc.maximum(state["m"], attnc.row_max(scaled))
        m_safe = attnc.where(m_new == float("-inf"), 0.0, m_new)
        p = attnc.exp(scaled - m_safe)
        alpha = attnc.exp(state["m"] - m_safe)
        return p, {"m": m_new, "l": state["l"] * alpha + attnc.row_sum(p)}, alpha

    def finalize(self, acc, state):
        l_safe = attnc.where(state["l"] == 0.0, 1.0, state["l"])
        return acc / l_safe, {"lse": state["m"] + attnc.log(state["l"])}


def test_user_defined_normalizer_end_to_end():
    """A user Normalizer reading a captured per-head tensor compiles and matches its formula."""
    temperature = torch.rand(4) + 0.5
    q, k, v = inputs(1, 4, 2, 29, 61, 32)
    out, lse = attnc.attention(mask_mod=causal, normalizer=TemperedSoftmax(temperature))(q, k, v, return_lse=True)
    s, keep = scores_and_mask(q, k, causal)
    s = (s / temperature.double()[None, :, None, None]).masked_fill(~keep, float("-inf"))
    ref = torch.softmax(s, -1) @ values(q, v)
    assert rel(out, ref) < 1e-4
    assert rel(lse, torch.logsumexp(s, -1)) < 1e-4


def test_unknown_normalizer_is_an_error():
    """A normalizer name attnc does not know names the ones it does."""
    with pytest.raises(ValueError, match=r"softmax"):
        attnc.attention(normalizer="sparsemax")
    with pytest.raises(TypeError):
        attnc.attention(normalizer=42)  # type: ignore[arg-type]


def test_public_names_are_exported():
    """attnc.__all__ lists exactly what attnc loads lazily."""
    assert sorted(attnc.__all__) == sorted(attnc._EXPORTS)
    for name in attnc.__all__:
        assert getattr(attnc, name) is not None
