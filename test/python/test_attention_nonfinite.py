"""NaN and ±inf in v reach only the rows that weigh them: a key the mask hides (p = 0) never turns
0 · inf into NaN in an earlier row, for softmax-family normalizers, dense and over a KV cache."""

from __future__ import annotations

import pytest
import torch

import attnc


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


@pytest.mark.parametrize("normalizer", ["softmax", "sigmoid", "retention"])
@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_later_value_does_not_reach_earlier_rows(normalizer, bad):
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 64, 32) for _ in range(3))
    v[0, 1, 30, 5] = bad
    out = attnc.attention(mask_mod=causal, normalizer=normalizer)(q, k, v)
    want = attnc.attention_reference(q[:, :, :30], k[:, :, :30], v[:, :, :30], mask_mod=causal, normalizer=normalizer)
    assert torch.isfinite(out[:, :, :30]).all() and torch.isfinite(out[:, 0]).all()
    assert (out[:, :, :30].double() - want[0]).abs().max() < 1e-4
    assert not torch.isfinite(out[0, 1, 30:]).all(dim=-1).any()  # every later row weighs it


def test_over_a_kv_cache_with_speculative_queries():
    """Over a cache, the non-finite value of the last key reaches only the last query."""
    torch.manual_seed(1)
    q = torch.randn(2, 4, 8, 32)
    k, v = torch.randn(2, 2, 50, 32), torch.randn(2, 2, 50, 32)
    lens = torch.tensor([50, 20], dtype=torch.int32)
    v[1, 0, 19] = float("inf")
    out = attnc.attention(mask_mod=causal)(q, k, v, cache_seqlens=lens, num_splits=2)
    assert torch.isfinite(out[0]).all() and torch.isfinite(out[1, :, :7]).all()
    assert not torch.isfinite(out[1, :2, 7]).any()  # the query heads of kv head 0 weigh it
