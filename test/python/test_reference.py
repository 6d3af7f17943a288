"""The float64 PyTorch reference: plain, masked, modded and GQA attention; every normalizer."""

from __future__ import annotations

import math

import pytest
import torch

from attnc.frontend import ops as attnc
from attnc.frontend.normalizer import Normalizer, row_max, row_sum
from attnc.frontend.normalizers import Softmax, SoftmaxWithSinks
from attnc.reference import attention_reference

GEN = torch.Generator().manual_seed(0)


def _qkv(batch=2, q_heads=4, kv_heads=4, q_len=24, kv_len=40, dim=16, dim_v=8, dtype=torch.float32):
    q = torch.randn(batch, q_heads, q_len, dim, generator=GEN, dtype=dtype)
    k = torch.randn(batch, kv_heads, kv_len, dim, generator=GEN, dtype=dtype)
    v = torch.randn(batch, kv_heads, kv_len, dim_v, generator=GEN, dtype=dtype)
    return q, k, v


def _direct(q, k, v, scale, keep=None):
    """softmax(q kᵀ · scale) v in float64, one (batch, head, query) row at a time."""
    q, k, v = q.double(), k.double(), v.double()
    batch, heads, q_len, _ = q.shape
    group = heads // k.shape[1]
    out = torch.empty(batch, heads, q_len, v.shape[-1], dtype=torch.float64)
    lse = torch.empty(batch, heads, q_len, dtype=torch.float64)
    for b in range(batch):
        for h in range(heads):
            for i in range(q_len):
                s = k[b, h // group] @ q[b, h, i] * scale
                if keep is not None:
                    s = s[keep[i]]
                m = s.max()
                w = torch.exp(s - m)
                values = v[b, h // group] if keep is None else v[b, h // group][keep[i]]
                out[b, h, i] = w @ values / w.sum()
                lse[b, h, i] = m + torch.log(w.sum())
    return out, lse


def _assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    error = (got - want).norm() / want.norm()
    assert got.dtype == torch.float64
    assert error < 1e-12, f"relative error {error}"


def test_reference_plain_matches_direct_softmax():
    """Without mods the reference is softmax(q kᵀ / sqrt(D)) v with natural-log lse."""
    q, k, v = _qkv()
    out, lse = attention_reference(q, k, v)
    want_out, want_lse = _direct(q, k, v, 16**-0.5)
    _assert_close(out, want_out)
    _assert_close(lse, want_lse)


def test_reference_causal_matches_direct_softmax():
    """A causal mask_mod drops keys after the query, with an explicit scale."""
    q, k, v = _qkv(q_len=40, kv_len=40)
    out, lse = attention_reference(q, k, v, mask_mod=lambda b, h, qi, kv: qi >= kv, scale=0.3)
    keep = torch.arange(40).view(-1, 1) >= torch.arange(40).view(1, -1)
    want_out, want_lse = _direct(q, k, v, 0.3, keep)
    _assert_close(out, want_out)
    _assert_close(lse, want_lse)


def test_reference_fully_masked_rows_are_zero():
    """Rows without a visible key give output 0 and lse -inf, never NaN."""
    q, k, v = _qkv(q_len=24, kv_len=40)
    out, lse = attention_reference(q, k, v, mask_mod=lambda b, h, qi, kv: (qi >= 8) & (kv <= qi))
    assert not out.isnan().any() and not lse.isnan().any()
    assert (out[:, :, :8] == 0).all()
    assert torch.isneginf(lse[:, :, :8]).all()
    assert torch.isfinite(lse[:, :, 8:]).all()

    out, lse = attention_reference(q, k, v, mask_mod=lambda b, h, qi, kv: False)
    assert (out == 0).all() and torch.isneginf(lse).all()


def test_reference_gqa_reads_shared_kv_heads():
    """Query head h reads kv head h // (Hq // Hkv)."""
    q, k, v = _qkv(q_heads=6, kv_heads=2)
    out, lse = attention_reference(q, k, v)
    want_out, want_lse = _direct(q, k, v, 16**-0.5)
    _assert_close(out, want_out)
    _assert_close(lse, want_lse)
    # Heads 0-2 share kv head 0: repeating it by hand gives the same result.
    repeated = attention_reference(q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1))
    assert torch.equal(out, repeated[0]) and torch.equal(lse, repeated[1])


def test_reference_runs_score_mod_with_captures():
    """ALiBi and softcapping written with attnc ops and captured tensors run on tensors."""
    q, k, v = _qkv(q_len=8, kv_len=8)
    slopes = torch.rand(4, generator=GEN, dtype=torch.float64)
    bias = torch.randn(2, 4, 8, 8, generator=GEN, dtype=torch.float64)

    def mod(score, b, h, q_idx, kv_idx):
        capped = 20 * attnc.tanh(score / 20)
        return capped + slopes[h] * (kv_idx - q_idx) + bias[b, h, q_idx, kv_idx]

    out, _ = attention_reference(q, k, v, score_mod=mod)
    scores = q.double() @ k.double().transpose(-1, -2) / 4
    i = torch.arange(8)
    scores = 20 * torch.tanh(scores / 20) + slopes.view(1, 4, 1, 1) * (i.view(1, -1) - i.view(-1, 1))
    want = torch.softmax(scores + bias, dim=-1) @ v.double()
    _assert_close(out, want)


def test_reference_returns_requested_dtype():
    """`dtype` sets the computation and result precision."""
    q, k, v = _qkv(dtype=torch.float16)
    out, lse = attention_reference(q, k, v, dtype=torch.float32)
    assert out.dtype == lse.dtype == torch.float32
    want, _ = attention_reference(q, k, v)
    assert (out.double() - want).norm() / want.norm() < 1e-5


def test_reference_rejects_bad_shapes():
    """Head counts that do not divide and mismatched head dims are errors."""
    q, k, v = _qkv(q_heads=4, kv_heads=3)
    with pytest.raises(ValueError, match="not a multiple of kv heads 3"):
        attention_reference(q, k, v)
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="head dim 16 != k head dim 8"):
        attention_reference(q, k[..., :8], v)


def test_reference_ops_on_numbers_and_tensors():
    """attnc ops compute with math on numbers and with torch on tensors."""
    assert attnc.exp(1.0) == pytest.approx(math.e)
    assert attnc.sigmoid(-800.0) == 0.0 and attnc.sigmoid(0.0) == 0.5
    assert attnc.maximum(2, 3) == 3 and attnc.minimum(2.5, -1) == -1
    assert attnc.abs(-3) == 3 and attnc.where(False, 1, 2) == 2
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    assert torch.equal(attnc.maximum(x, 0.0), torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64))
    assert attnc.maximum(x, 0.0).dtype == torch.float64
    assert torch.equal(attnc.where(x > 0, x, -x), x.abs())
    assert torch.allclose(attnc.exp2(x), 2.0**x) and torch.allclose(
        attnc.log2(attnc.sqrt(x.exp())), x / 2 / math.log(2)
    )


# Normalizers other than softmax: the same Normalizer object the compiler traces, run on
# whole rows, against closed forms written out here.


def _scores_and_keep(q, k, scale, mask=None):
    """Scaled scores in float64 with kv heads repeated, and the keep mask (all True without one)."""
    group = q.shape[1] // k.shape[1]
    scores = q.double() @ k.double().repeat_interleave(group, 1).transpose(-1, -2) * scale
    keep = torch.ones_like(scores, dtype=torch.bool)
    if mask is not None:
        i, j = torch.arange(scores.shape[2]).view(-1, 1), torch.arange(scores.shape[3]).view(1, -1)
        keep = mask(i, j).broadcast_to(scores.shape)
    return scores, keep


def _values(q, v):
    return v.double().repeat_interleave(q.shape[1] // v.shape[1], 1)


def _late_causal(b, h, qi, kv):
    # Causal, and query rows 0-5 see no key at all.
    return (qi >= 6) & (kv <= qi)


@pytest.mark.parametrize("mask", [None, _late_causal])
def test_reference_sigmoid_and_relu_closed_form(mask):
    """sigmoid / relu: out = (f(s) · keep) @ v, no statistics; masked keys add exactly 0."""
    q, k, v = _qkv(q_heads=4, kv_heads=2)
    scores, keep = _scores_and_keep(q, k, 0.25, mask and (lambda i, j: mask(0, 0, i, j)))
    for name, f in (("sigmoid", torch.sigmoid), ("relu", torch.relu)):
        result = attention_reference(q, k, v, mask_mod=mask, scale=0.25, normalizer=name)
        assert isinstance(result, tuple) and len(result) == 1
        _assert_close(result[0], (f(scores) * keep) @ _values(q, v))
        if mask is not None:
            assert (result[0][:, :, :6] == 0).all()


@pytest.mark.parametrize("mask", [None, _late_causal])
def test_reference_retention_closed_form(mask):
    """RetNet's parallel form: out = S v / max(Σ|S|, 1) with S the decayed, masked scores; stat the denominator."""
    q, k, v = _qkv(q_len=32, kv_len=32)
    gamma = torch.tensor([0.9, 0.95, 0.98, 0.99], dtype=torch.float64)

    def decay(score, b, h, q_idx, kv_idx):
        return score * gamma[h] ** (q_idx - kv_idx).clamp(min=0)

    out, denominator = attention_reference(q, k, v, score_mod=decay, mask_mod=mask, normalizer="retention")
    scores, keep = _scores_and_keep(q, k, 0.25, mask and (lambda i, j: mask(0, 0, i, j)))
    i = torch.arange(32)
    distance = (i.view(-1, 1) - i.view(1, -1)).clamp(min=0)
    decayed = scores * gamma.view(1, -1, 1, 1) ** distance * keep
    want_denominator = decayed.abs().sum(-1).clamp(min=1)
    _assert_close(out, decayed @ v.double() / want_denominator.unsqueeze(-1))
    _assert_close(denominator, want_denominator)
    if mask is not None:
        assert (out[:, :, :6] == 0).all() and (denominator[:, :, :6] == 1).all()


@pytest.mark.parametrize("mask", [None, _late_causal])
def test_reference_sinks_closed_form(mask):
    """Sinks: softmax over the row plus one logit per head that takes weight but has no value."""
    q, k, v = _qkv(q_heads=6, kv_heads=2)
    sinks = torch.randn(6, generator=GEN, dtype=torch.float64) * 3
    out, lse = attention_reference(q, k, v, mask_mod=mask, normalizer=SoftmaxWithSinks(sinks))
    scores, keep = _scores_and_keep(q, k, 0.25, mask and (lambda i, j: mask(0, 0, i, j)))
    logits = torch.cat([scores.masked_fill(~keep, -math.inf), sinks.view(1, -1, 1, 1).expand(*scores.shape[:3], 1)], -1)
    weights = torch.softmax(logits, -1)[..., :-1]
    _assert_close(out, weights @ _values(q, v))
    _assert_close(lse, torch.logsumexp(logits, -1))
    if mask is not None:
        # A row without keys gives the sink all the weight: out 0, lse the sink.
        assert (out[:, :, :6] == 0).all()
        assert torch.allclose(lse[:, :, :6], sinks.view(1, -1, 1).expand(2, 6, 6), rtol=1e-14, atol=0)


def test_reference_softmax_normalizer_matches_softmax_path():
    """The base-2 Softmax normalizer run on whole rows equals the closed-form softmax path, masked rows too."""
    q, k, v = _qkv(q_heads=4, kv_heads=2)
    for mask in (None, _late_causal):
        want_out, want_lse = attention_reference(q, k, v, mask_mod=mask)
        out, lse = attention_reference(q, k, v, mask_mod=mask, normalizer=Softmax())
        _assert_close(out, want_out)
        finite = torch.isfinite(want_lse)
        assert torch.equal(finite, torch.isfinite(lse)) and not lse.isnan().any()
        _assert_close(lse[finite], want_lse[finite])


def test_reference_user_normalizer_with_captured_temperature():
    """A user's Normalizer reads a per-head tensor through self.h; its stats come back in order."""
    temperature = torch.rand(4, generator=GEN, dtype=torch.float64) + 0.5

    class Tempered(Normalizer):
        state = {"m": -math.inf, "l": 0.0}
        stats = ("lse", "max")

        def update(self, scores, state):
            s = scores / temperature[self.h]
            m_new = attnc.maximum(state["m"], row_max(s))
            alpha = attnc.exp(state["m"] - m_new)
            p = attnc.exp(s - m_new)
            return p, {"m": m_new, "l": state["l"] * alpha + row_sum(p)}, alpha

        def finalize(self, acc, state):
            return acc / state["l"], {"max": state["m"], "lse": state["m"] + attnc.log(state["l"])}

    q, k, v = _qkv()
    out, lse, row_maximum = attention_reference(q, k, v, normalizer=Tempered())
    scores, _ = _scores_and_keep(q, k, 0.25)
    scores = scores / temperature.view(1, -1, 1, 1)
    _assert_close(out, torch.softmax(scores, -1) @ v.double())
    _assert_close(lse, torch.logsumexp(scores, -1))
    _assert_close(row_maximum, scores.amax(-1))


def test_reference_rejects_unknown_normalizer():
    """An unknown normalizer name is a ValueError listing the built-ins."""
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="unknown normalizer 'sparsemax'; available: 'softmax'"):
        attention_reference(q, k, v, normalizer="sparsemax")
