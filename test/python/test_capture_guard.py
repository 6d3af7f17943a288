"""Captured-tensor reads the runtime cannot bound before a call (an index read from data) are masked in
the kernels: outside the tensor they read 0 (False) and add no gradient; ATTNC_DEBUG=1 reports them."""

from __future__ import annotations

import re

import pytest
import torch
from triton.runtime.errors import InterpreterError

import attnc
from attnc.dialect.index_intervals import provable

B, H, S, D = 1, 2, 40, 16
SHAPE = attnc.Shape(B, H, H, S, S, D, D)


def _inputs(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, S, D, generator=g) for _ in range(3)]


def _relative_error(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a.double() - ref).norm() / ref.norm()).item()


def _document_variant(bias: torch.Tensor, allowed: torch.Tensor, doc: torch.Tensor):
    """A bias and a mask, each indexed by the document a position belongs to (read from `doc`)."""

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + bias[doc[kv_idx]]

    def mask_mod(b, h, q_idx, kv_idx):
        return allowed[doc[q_idx]] | (q_idx >= kv_idx)

    return score_mod, mask_mod


def test_capture_guard_reads_outside_a_tensor_give_zero_and_no_gradient():
    """Document ids past the end of the bias and the mask table, or below 0, read 0 (False): the output
    and every gradient match a float64 reference whose tables are padded with zeros, and the bias gets no
    gradient for the ids it does not have."""
    q, k, v = (t.requires_grad_() for t in _inputs(0))
    g = torch.Generator().manual_seed(1)
    bias = torch.randn(10, generator=g).requires_grad_()
    allowed = torch.rand(10, generator=g) > 0.5
    doc = torch.randint(-4, 15, (S,), generator=g)
    assert ((doc < 0) | (doc >= 10)).any() and ((doc >= 0) & (doc < 10)).any()
    out = attnc.attention(*_document_variant(bias, allowed, doc))(q, k, v)
    dout = torch.randn(out.shape, generator=g)
    out.backward(dout)

    outside = (doc < 0) | (doc >= 10)
    padded_doc = torch.where(outside, 10, doc)  # entry 10 of the padded tables is the 0 a masked read gives
    padded_bias = torch.cat([bias.detach().double(), torch.zeros(1, dtype=torch.float64)]).requires_grad_()
    padded_allowed = torch.cat([allowed, torch.zeros(1, dtype=torch.bool)])
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    score_mod, mask_mod = _document_variant(padded_bias, padded_allowed, padded_doc)
    ref, _ = attnc.attention_reference(q64, k64, v64, score_mod=score_mod, mask_mod=mask_mod)
    ref.backward(dout.double())
    assert _relative_error(out, ref) < 1e-5
    for got, want in ((q.grad, q64.grad), (k.grad, k64.grad), (v.grad, v64.grad)):
        assert _relative_error(got, want) < 1e-5
    assert bias.grad is not None and padded_bias.grad is not None
    assert _relative_error(bias.grad, padded_bias.grad[:10]) < 1e-5


@pytest.mark.parametrize(
    "index",
    [
        lambda doc, q_idx, kv_idx: doc[kv_idx],  # read from data
        lambda doc, q_idx, kv_idx: kv_idx - kv_idx // 2,  # kv_idx twice: not bounded exactly, so guarded
    ],
    ids=["data", "repeated-argument"],
)
def test_capture_guard_reads_in_range_match_the_reference_forward_and_backward(index):
    """Guarded reads that stay inside the tensor give the reference's output and gradients."""
    q, k, v = (t.requires_grad_() for t in _inputs(2))
    g = torch.Generator().manual_seed(3)
    bias = torch.randn(S, generator=g).requires_grad_()
    doc = torch.randint(0, S, (S,), generator=g)

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + bias[index(doc, q_idx, kv_idx)]

    out = attnc.attention(score_mod=score_mod)(q, k, v)
    dout = torch.randn(out.shape, generator=g)
    out.backward(dout)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    bias64 = bias.detach().double().requires_grad_()

    def reference_mod(score, b, h, q_idx, kv_idx):
        return score + bias64[index(doc, q_idx, kv_idx)]

    ref, _ = attnc.attention_reference(q64, k64, v64, score_mod=reference_mod)
    ref.backward(dout.double())
    for got, want in ((out, ref), (q.grad, q64.grad), (k.grad, k64.grad), (v.grad, v64.grad), (bias.grad, bias64.grad)):
        assert got is not None and want is not None
        assert _relative_error(got, want) < 1e-5


def test_capture_guard_debug_mode_reports_the_read(monkeypatch):
    """With ATTNC_DEBUG=1 a read outside the tensor raises naming it and the dimension, in the forward and in
    training, although the same variant was compiled and cached without it a moment before (the flag is part
    of the kernels' key); in range, the debug kernels give the reference's answer."""
    q, k, v = _inputs(4)
    bias = torch.randn(10)
    doc = torch.arange(S) % 12  # ids 10 and 11 have no bias

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + bias[doc[kv_idx]]

    attnc.attention(score_mod=score_mod)(q, k, v)
    monkeypatch.setenv("ATTNC_DEBUG", "1")
    message = r"captured tensor 'bias' is read outside its shape at dimension 0"
    with pytest.raises(InterpreterError, match=message):
        attnc.attention(score_mod=score_mod)(q, k, v)
    with pytest.raises(InterpreterError, match=message):
        attnc.attention(score_mod=score_mod)(q.clone().requires_grad_(), k, v)
    doc.clamp_(max=9)
    ref, _ = attnc.attention_reference(q, k, v, score_mod=score_mod)
    assert _relative_error(attnc.attention(score_mod=score_mod)(q, k, v), ref) < 1e-5


def test_capture_guard_masks_only_the_reads_it_cannot_prove():
    """ALiBi-style reads bounded before the call compile to plain loads; a read indexed by data gets a
    size parameter and a masked load, in the forward and in the block table a mask reading it needs."""
    slopes, rel = torch.randn(H), torch.randn(2 * S - 1)

    def proved(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * rel[q_idx - kv_idx + S - 1]

    plain = attnc.compile(proved, shape=SHAPE, dtype=torch.float32, target="cpu", backward=True)
    assert "attn.guard" not in plain.ir("flash")
    source = plain.triton_source()
    assert re.search(r"cap\d_size|_in_range|device_assert", source) is None

    bias, allowed, doc = torch.randn(10), torch.rand(10) > 0.5, torch.arange(S)
    guarded = attnc.compile(*_document_variant(bias, allowed, doc), shape=SHAPE, dtype=torch.float32, target="cpu")
    assert "attn.guard = array<i64: 0>" in guarded.ir("flash")
    table, forward = guarded.triton_source().split("def attention_fwd(")
    assert "mask=allowed_in_range, other=False" in table and "bias_in_range" not in table
    assert "mask=bias_in_range, other=0.0" in forward and "mask=allowed_in_range, other=False" in forward
    assert "cap0_size0" not in table + forward  # doc[q_idx], doc[kv_idx]: bounded


def test_capture_guard_debug_kernels_keep_their_assertions_when_cross_compiled(monkeypatch):
    """ATTNC_DEBUG=1 compiles the kernel with Triton's debug, so its TTIR keeps the device assertion."""
    bias, doc = torch.randn(10), torch.arange(S)
    monkeypatch.setenv("ATTNC_DEBUG", "1")
    c = attnc.compile(
        lambda score, b, h, q_idx, kv_idx: score + bias[doc[kv_idx]], shape=SHAPE, dtype=torch.float16, target="cuda:90"
    )
    assert "@triton.jit(debug=True)" in c.triton_source()
    ttir = c.asm("ttir")
    assert isinstance(ttir, str) and "tt.assert" in ttir and "captured tensor 'bias'" in ttir


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"op": "sub", "args": [{"arg": "q_idx"}, {"arg": "kv_idx"}]}, True),
        ({"op": "rem", "args": [{"op": "sub", "args": [{"arg": "q_idx"}, {"const": 9}]}, {"const": 4}]}, True),
        ({"op": "div", "args": [{"arg": "q_idx"}, {"op": "add", "args": [{"const": 1}, {"const": 1}]}]}, True),
        ({"unknown": "tensor.extract"}, False),
        ({"op": "sub", "args": [{"arg": "q_idx"}, {"op": "div", "args": [{"arg": "q_idx"}, {"const": 2}]}]}, False),
        ({"op": "div", "args": [{"arg": "q_idx"}, {"arg": "h"}]}, False),
        ({"op": "mod", "args": [{"arg": "q_idx"}, {"const": 0}]}, False),
    ],
    ids=["relative", "remsi", "constant-divisor", "data", "repeated", "divisor-argument", "divisor-zero"],
)
def test_capture_guard_provable_says_what_the_runtime_bounds(expr, expected):
    """The runtime bounds exactly the index expressions with each argument once and constant divisors."""
    assert provable(expr) is expected
