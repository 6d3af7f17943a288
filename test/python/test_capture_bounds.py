"""Captured tensors are read in range: a tensor too small for its indices at a call's shape is refused
before any kernel runs, naming it; reads that fit run as before."""

from __future__ import annotations

import pytest
import torch

import attnc

Q, K, V = (torch.randn(1, 4, 40, 32, generator=torch.Generator().manual_seed(i)) for i in range(3))


def _bias_mod(table: torch.Tensor, index):
    return lambda score, b, h, q_idx, kv_idx: score + table[index(b, h, q_idx, kv_idx)]


@pytest.mark.parametrize(
    ("size", "index", "message"),
    [
        (
            2,
            lambda b, h, q, kv: h,
            r"'table' \(shape \(2,\)\) is read in score_mod at dimension 0 with indices from 0 to 3",
        ),
        (30, lambda b, h, q, kv: q, r"indices from 0 to 39, but that dimension has size 30"),
        (39, lambda b, h, q, kv: kv, r"indices from 0 to 39, but that dimension has size 39"),
        (80, lambda b, h, q, kv: q - kv, r"indices from -39 to 39, .*negative indices do not wrap"),
    ],
    ids=["bias[h]", "bias[q_idx]", "bias[kv_idx]", "bias[q_idx - kv_idx]"],
)
def test_capture_bounds_refuse_a_tensor_too_small(size, index, message):
    """A captured tensor shorter than its index range (or indexed below 0) is a ValueError naming it."""
    table = torch.randn(size)
    with pytest.raises(ValueError, match=message):
        attnc.attention(score_mod=_bias_mod(table, index))(Q, K, V)


@pytest.mark.parametrize(
    ("size", "index"),
    [
        (79, lambda b, h, q, kv: q - kv + 39),  # relative positions
        (4, lambda b, h, q, kv: q % 4),
        (2, lambda b, h, q, kv: h // 2),
        (40, lambda b, h, q, kv: kv),
    ],
    ids=["relative", "modulo", "floordiv", "kv"],
)
def test_capture_bounds_accept_reads_that_fit(size, index):
    """Reads whose range fits run and match the reference."""
    table = torch.randn(size)
    mod = _bias_mod(table, index)
    out = attnc.attention(score_mod=mod)(Q, K, V)
    ref, _ = attnc.attention_reference(Q, K, V, score_mod=mod)
    assert ((out.double() - ref).norm() / ref.norm()).item() < 1e-5


def test_capture_bounds_check_masks_normalizers_and_longer_calls():
    """A document mask shorter than the keys, sinks fewer than the heads, and a variant reused at a longer
    length are refused; the first, fitting call of the same variant ran."""
    doc = torch.zeros(30, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"'doc' \(shape \(30,\)\) is read in mask_mod"):
        attnc.attention(mask_mod=lambda b, h, q_idx, kv_idx: doc[q_idx] == doc[kv_idx])(Q, K, V)
    with pytest.raises(ValueError, match=r"'sinks' \(shape \(2,\)\) is read in finalize .* from 0 to 3"):
        attnc.attention(normalizer=attnc.SoftmaxWithSinks(torch.randn(2)))(Q, K, V)
    positions = torch.randn(40)
    attn = attnc.attention(score_mod=_bias_mod(positions, lambda b, h, q, kv: kv))
    attn(Q, K, V)
    longer = torch.randn(1, 4, 41, 32)
    with pytest.raises(ValueError, match=r"indices from 0 to 40, but that dimension has size 40"):
        attn(Q, longer, longer)
    q = Q.clone().requires_grad_()
    with pytest.raises(ValueError, match=r"indices from 0 to 40"):  # the training path checks too
        attn(q, longer, longer)
