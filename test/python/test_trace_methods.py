"""Mods written as Flex users write them: torch functions and Tensor methods on traced values, run on the
CPU (Triton's interpreter) against a float64 reference, forward and gradients; torch functions known
by identity; hints that name what exists."""

from __future__ import annotations

import re

import pytest
import torch
from linear_reference import make_inputs, recurrence
from xdsl.dialects import arith

import attnc
from attnc.frontend.torch_functions import HINTS, OPS_HINT, TORCH_FUNCTIONS
from attnc.frontend.trace import trace_mask_mod, trace_score_mod

SHAPE = (1, 2, 2, 13, 19, 16)  # b, hq, hkv, sq, skv, d: ragged, GQA


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def check(score_mod=None, mask_mod=None, normalizer=None, backward=True) -> None:
    """out (and dq, dk, dv) of the compiled kernels against autograd through the float64 reference."""
    torch.manual_seed(0)
    b, hq, hkv, sq, skv, d = SHAPE
    q = torch.randn(b, hq, sq, d, requires_grad=True)
    k = torch.randn(b, hkv, skv, d, requires_grad=True)
    v = torch.randn(b, hkv, skv, d, requires_grad=True)
    kwargs = {} if normalizer is None else {"normalizer": normalizer}
    out = attnc.attention(score_mod, mask_mod, **kwargs)(q, k, v)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = attnc.attention_reference(q64, k64, v64, score_mod=score_mod, mask_mod=mask_mod, **kwargs)[0]
    assert rel(out, ref) < 1e-5
    if not backward:
        return
    dout = torch.randn_like(out)
    got = torch.autograd.grad((out * dout).sum(), [q, k, v])
    want = torch.autograd.grad((ref * dout.double()).sum(), [q64, k64, v64])
    for name, g, w in zip(("dq", "dk", "dv"), got, want):
        assert rel(g, w) < 1e-4, name


def smooth_functions(score, b, h, q_idx, kv_idx):
    s = score * 0.5
    x = torch.sin(s) + s.cos() + (s * 0.4).tan() + torch.erf(s) + s.abs().log1p() + torch.expm1(s)
    return x + torch.pow(s.abs() + 0.5, 1.5) + (s * s + 1.0).rsqrt() + s.sigmoid() + torch.tanh(s) + s.exp() * 0.1


def steps(score, b, h, q_idx, kv_idx):
    # floor, ceil, round and sign have zero derivative: the gradient comes from the score term alone.
    return score + 0.3 * (score * 2).floor() + 0.2 * score.ceil() + 0.1 * torch.round(score * 3) + score.sign() * 0.4


@pytest.mark.parametrize("score_mod", [smooth_functions, steps])
def test_trace_methods_score_mod_functions(score_mod):
    """sin … sign, as torch functions and methods: the kernels' out and gradients match float64 autograd."""
    check(score_mod)


def test_trace_methods_score_mod_methods():
    """clamp, clamp_min/max, max(other), minimum, to(dtype), float(), square, new_zeros and where: forward
    and gradients."""

    def mod(score, b, h, q_idx, kv_idx):
        s = score.clamp(min=-1.5, max=1.5) + score.clamp_min(0.2) * 0.3 + torch.clamp_max(score, 0.4)
        s = s + score.max((q_idx - kv_idx).float() * 0.2) + torch.minimum(score, kv_idx.to(torch.float32) * 0.1)
        s = s + score.abs().sqrt() * 0.2 + score.to(torch.float16).float() * 0.5 + score.square() * 0.1
        return torch.where(q_idx >= kv_idx, s, s.new_zeros(()) + score * 0.5)

    check(mod)


def test_trace_methods_mask_mod_shifts_and_bits():
    """NATTEN's Morton order and friends: >>, <<, &, |, ^, ~ on indices, in a mask the kernels classify
    at run time."""

    def morton_blocks(b, h, q_idx, kv_idx):
        near = (q_idx >> 2) == (kv_idx >> 2)
        bits = ((q_idx ^ kv_idx) & 1) == 0
        return near | bits & ~((kv_idx << 1) > (q_idx | 8))

    check(mask_mod=morton_blocks, backward=False)


def test_trace_methods_in_a_normalizer():
    """A stateless normalizer written with methods: scores.sigmoid(), clamp_min and to(dtype); its
    gradients come from attn-autodiff."""

    class ClampedSigmoid(attnc.Normalizer):
        def update(self, scores, state):
            return (scores - 1.0).sigmoid().clamp_min(0.01).to(torch.float32), {}, 1.0

        def finalize(self, acc, state):
            return acc, {}

    check(lambda score, b, h, q_idx, kv_idx: score.tanh() * 2.0, normalizer=ClampedSigmoid())


def test_trace_methods_in_linear_feature_maps():
    """Feature maps written with methods (x.relu(), x.exp(), torch.where, x.sigmoid()): the chunked kernels'
    output and the gradients to raw q and k."""
    torch.manual_seed(1)
    q, k, v, _ = make_inputs(None, 1, 2, 2, 20, 16, 16)

    def q_map(x):
        return torch.where(x > 0, x + 1.0, x.exp())

    def k_map(x):
        return x.relu() * 0.5 + x.sigmoid()

    la = attnc.linear_attention(q_map=q_map, k_map=k_map, chunk_size=16)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    o, _ = la(*leaves)
    do = torch.randn_like(o)
    (o * do).sum().backward()
    ref_leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_o, _ = recurrence(q_map(ref_leaves[0]), k_map(ref_leaves[1]), ref_leaves[2], None, None)
    assert rel(o, ref_o) < 1e-5
    (ref_o * do.double()).sum().backward()
    for name, got, want in zip("qkv", leaves, ref_leaves):
        assert rel(got.grad, want.grad) < 1e-4, name


def tanh(x):
    """A user's own function named tanh, torch-function aware as torch's Python functions are."""
    if torch.overrides.has_torch_function_unary(x):
        return torch.overrides.handle_torch_function(tanh, (x,), x)
    return x / (1 + abs(x))


def test_trace_methods_torch_functions_by_identity():
    """A user function that shares torch.tanh's name is not traced as torch.tanh."""
    with pytest.raises(attnc.TraceError, match=r"tanh cannot be traced in a score_mod") as info:
        trace_score_mod(lambda score, b, h, q_idx, kv_idx: tanh(score))
    assert "test_trace_methods.py" in str(info.value).splitlines()[0]
    assert all(getattr(f, "__name__", None) != "tanh" or f in (torch.tanh, torch.Tensor.tanh) for f in TORCH_FUNCTIONS)


def test_trace_methods_where_method_keeps_its_argument_order():
    """x.where(cond, y) is torch.where(cond, x, y), on a traced value and on a captured 0-dim tensor."""
    scale = torch.tensor(2.0)
    traced = trace_score_mod(
        lambda score, b, h, q_idx, kv_idx: score.where(q_idx >= kv_idx, scale.where(q_idx > 0, 3.0))
    )
    selects = [op for op in traced.region.block.ops if isinstance(op, arith.SelectOp)]
    assert len(selects) == 2
    inner, outer = selects
    assert outer.lhs is traced.region.block.args[0] and outer.rhs is inner.result


def test_trace_methods_unsupported_method_raises_at_the_user_line():
    """A Tensor method attnc cannot trace raises TraceError at the call, with a hint."""

    def mod(score, b, h, q_idx, kv_idx):
        return score.logcumsumexp(0)

    with pytest.raises(attnc.TraceError, match=r"Tensor\.logcumsumexp cannot be traced in a score_mod; use") as info:
        trace_score_mod(mod)
    assert "score.logcumsumexp" in str(info.value)
    with pytest.raises(attnc.TraceError, match=r"torch\.max of one value .* torch\.maximum\(a, b\)"):
        trace_mask_mod(lambda b, h, q_idx, kv_idx: q_idx.max(0) > kv_idx)
    with pytest.raises(attnc.TraceError, match="cannot be converted to torch.float64"):
        trace_score_mod(lambda score, b, h, q_idx, kv_idx: score.double())


def test_trace_methods_hints_name_what_exists():
    """Every attnc.X a hint names exists, and every torch function or method it names is traced."""
    hints = [*HINTS.values(), OPS_HINT]
    for text in hints:
        for name in re.findall(r"attnc\.(\w+)", text):
            assert hasattr(attnc, name), f"a hint names attnc.{name}, which does not exist"
        for name in re.findall(r"torch\.(\w+)", text):
            if isinstance(getattr(torch, name), torch.dtype):
                continue
            assert getattr(torch, name) in TORCH_FUNCTIONS, f"a hint names torch.{name}, which is not traced"
        for name in re.findall(r"x\.(\w+)\(", text):
            assert getattr(torch.Tensor, name) in TORCH_FUNCTIONS, f"a hint names x.{name}(), which is not traced"
    # The hint for a method once suggested attnc functions for every Tensor method (attnc.clamp among them).
    trace_score_mod(lambda score, b, h, q_idx, kv_idx: score.clamp(min=0.0))


def test_power_at_zero_has_torchs_gradient():
    """x ** 1.5 and x ** 10 at x = 0: value 0 and gradient 0, as torch.pow (not 0 · inf = NaN)."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 32, 16) for _ in range(3))
    for exponent in (1.5, 10):
        bias = torch.zeros(2, requires_grad=True)
        attnc.attention(score_mod=_biased_power(bias, exponent))(q, k, v).sum().backward()
        assert bias.grad is not None and torch.equal(bias.grad, torch.zeros(2)), exponent


def _biased_power(bias: torch.Tensor, exponent: float):
    def score_mod(score, b, h, q_idx, kv_idx):
        return score + bias[h] ** exponent

    return score_mod
