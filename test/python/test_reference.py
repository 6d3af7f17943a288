"""The float64 PyTorch reference: plain, masked, modded and GQA attention."""

from __future__ import annotations

import math

import pytest
import torch

from attnc.frontend import ops as attnc
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
    scores = 20 * torch.tanh(scores / 20) + slopes.view(1, 4, 1, 1) * (
        i.view(1, -1) - i.view(-1, 1)
    )
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
