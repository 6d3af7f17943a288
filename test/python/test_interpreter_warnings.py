"""Triton's interpreter computes the kernels' deliberate infinities with numpy; its overflow and
invalid-value warnings (exp(-inf) states, fully masked rows) do not reach the user."""

from __future__ import annotations

import warnings

import torch

import attnc


def test_fully_masked_rows_and_reset_states_warn_nothing():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 40, 16) for _ in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the call
        out = attnc.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx < 10)(q, k, v)
        o, _ = attnc.linear_attention(gate="scalar")(q, k, v, g=torch.full((1, 2, 40), -float("inf")))
    assert not out.isnan().any() and not o.isnan().any()
