"""attn-autodiff: the derived score_mod_grad region against torch.autograd, and the pass on whole modules."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from xdsl.dialects import arith, func, tensor
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import ArrayAttr, FloatAttr, IndexType, IntegerAttr, ModuleOp, TensorType, f32, i1, i64
from xdsl.ir import Operation, Region, SSAValue
from xdsl.utils.exceptions import PassFailedException, VerifyException

from attnc.autodiff.regions import differentiate_score_mod, float_capture_sites
from attnc.dialect import attn
from attnc.dialect.attn_grad import FlashGradOp
from attnc.frontend import ops as attnc
from attnc.frontend.build import Signature, build_module
from attnc.frontend.normalizer import Normalizer, row_max, trace_normalizer
from attnc.frontend.normalizers import Sigmoid, Softmax
from attnc.frontend.trace import trace_mask_mod, trace_score_mod
from attnc.passes.attn_autodiff import AttnAutodiffPass
from attnc.passes.attn_block_mask import AttnBlockMaskPass
from attnc.passes.attn_fuse import AttnFusePass
from attnc.pipeline import make_context

GEN = torch.Generator().manual_seed(0)
B, H, S = 2, 4, 16

slopes = torch.rand(H, generator=GEN, dtype=torch.float64) * 0.5 + 0.1
temp = torch.rand(H, generator=GEN, dtype=torch.float64) + 0.5
bias = torch.randn(H, S, S, generator=GEN, dtype=torch.float64)
bias16 = torch.randn(H, S, generator=GEN).to(torch.float16)
ints = torch.randint(-3, 4, (S,), generator=GEN, dtype=torch.int64)

# A float64 interpreter of scalar regions on Python numbers (ints for index, bools for i1).

_CMP = {"eq": "__eq__", "ne": "__ne__", "slt": "__lt__", "sle": "__le__", "sgt": "__gt__", "sge": "__ge__"}
_CMP |= {"oeq": "__eq__", "une": "__ne__", "olt": "__lt__", "ole": "__le__", "ogt": "__gt__", "oge": "__ge__"}
_EVAL: dict[type[Operation], Callable[..., Any]] = {
    arith.AddfOp: lambda a, b: a + b,
    arith.SubfOp: lambda a, b: a - b,
    arith.MulfOp: lambda a, b: a * b,
    arith.DivfOp: lambda a, b: a / b,
    arith.AddiOp: lambda a, b: a + b,
    arith.SubiOp: lambda a, b: a - b,
    arith.MuliOp: lambda a, b: a * b,
    arith.FloorDivSIOp: lambda a, b: a // b,
    arith.MinimumfOp: min,
    arith.MaximumfOp: max,
    arith.MinnumfOp: min,
    arith.MaxnumfOp: max,
    arith.SelectOp: lambda c, a, b: a if c else b,
    arith.IndexCastOp: int,
    arith.ExtUIOp: int,
    arith.SIToFPOp: float,
    arith.UIToFPOp: float,
    arith.ExtFOp: float,
    arith.TruncFOp: float,
    arith.NegfOp: lambda a: -a,
    mathd.AbsFOp: abs,
    mathd.ExpOp: math.exp,
    mathd.Exp2Op: lambda a: 2.0**a,
    mathd.LogOp: math.log,
    mathd.Log2Op: math.log2,
    mathd.SqrtOp: math.sqrt,
    mathd.RsqrtOp: lambda a: 1.0 / math.sqrt(a),
    mathd.TanhOp: math.tanh,
    mathd.FloorOp: lambda a: float(math.floor(a)),
    mathd.CeilOp: lambda a: float(math.ceil(a)),
    mathd.RoundEvenOp: lambda a: float(round(a)),  # Python rounds half to even, as torch.round does
    mathd.SinOp: math.sin,
    mathd.CosOp: math.cos,
    mathd.TanOp: math.tan,
    mathd.ErfOp: math.erf,
    mathd.Log1pOp: math.log1p,
    mathd.ExpM1Op: math.expm1,
    arith.ShRSIOp: lambda a, b: a >> b,
}


def _evaluate(region: Region, args: list[Any]) -> list[Any]:
    """Every value the region yields, computed in float64."""
    block = region.blocks[0]
    env: dict[SSAValue, Any] = dict(zip(block.args, args, strict=True))
    for op in block.ops:
        if isinstance(op, attn.YieldOp):
            return [env[v] for v in op.values]
        if isinstance(op, arith.ConstantOp):
            assert isinstance(op.value, IntegerAttr | FloatAttr)
            value = op.value.value.data
            env[op.result] = bool(value) if op.result.type == i1 else value
        elif isinstance(op, tensor.ExtractOp):
            env[op.result] = env[op.tensor][tuple(env[i] for i in op.indices)].item()
        elif isinstance(op, arith.CmpiOp | arith.CmpfOp):
            names = (
                arith.CMPI_COMPARISON_OPERATIONS if isinstance(op, arith.CmpiOp) else arith.CMPF_COMPARISON_OPERATIONS
            )
            env[op.result] = getattr(env[op.lhs], _CMP[names[op.predicate.value.data]])(env[op.rhs])
        else:
            env[op.results[0]] = _EVAL[type(op)](*(env[v] for v in op.operands))
    raise AssertionError("no attn.yield")


def _derived_gradients(
    mod: Callable[..., Any], score: float, index: tuple[int, ...], grad: float
) -> tuple[float, list[torch.Tensor]]:
    """dscore and each capture's gradient, from the derived region, its sites scattered."""
    traced = trace_score_mod(mod)
    derived = differentiate_score_mod(traced.region)
    sites = float_capture_sites(traced.region)
    dscore, *rest = _evaluate(derived, [score, *index, *traced.captures, grad])
    grads = [torch.zeros(c.shape, dtype=torch.float64) for c in traced.captures]
    for capture in sites:
        rank = traced.captures[capture].dim()
        adjoint, position, rest = rest[0], tuple(rest[1 : 1 + rank]), rest[1 + rank :]
        grads[capture][position] += adjoint
    assert not rest
    return dscore, grads


def _autograd_gradients(
    mod: Callable[..., Any], score: float, index: tuple[int, ...], grad: float, captures: list[torch.Tensor]
) -> tuple[float, list[torch.Tensor]]:
    """The same gradients by torch.autograd on the mod itself, in float64 (a capture's gradient in its dtype)."""
    s = torch.tensor(score, dtype=torch.float64, requires_grad=True)
    for c in captures:
        c.grad = None
        c.requires_grad_(c.is_floating_point())
    try:
        out = torch.as_tensor(mod(s, *index))
        if out.requires_grad:
            out.double().backward(torch.tensor(grad, dtype=torch.float64))
    finally:
        for c in captures:
            c.requires_grad_(False)
    zero = torch.zeros((), dtype=torch.float64)
    dscore = (s.grad if s.grad is not None else zero).item()
    return dscore, [c.grad if c.grad is not None else torch.zeros(c.shape, dtype=c.dtype) for c in captures]


MODS: list[Callable[..., Any]] = [
    lambda score, b, h, q, kv: 30.0 * attnc.tanh(score / 30.0),
    lambda score, b, h, q, kv: score + slopes[h] * (kv - q),
    lambda score, b, h, q, kv: score + bias[h, q, kv],
    lambda score, b, h, q, kv: score * temp[h] + bias[h, q, kv] - bias[0, q, kv],
    lambda score, b, h, q, kv: attnc.where(q >= kv, score, score * 0.5),
    lambda score, b, h, q, kv: (
        attnc.log(1.0 + attnc.exp(score)) - attnc.exp2(score / temp[h]) * attnc.log2(temp[h] + 1.0)
    ),
    lambda score, b, h, q, kv: attnc.sqrt(score * score + slopes[h]) / (2.0 + attnc.abs(score)) - torch.rsqrt(temp[h]),
    lambda score, b, h, q, kv: attnc.maximum(score, bias[h, q, kv]) + attnc.fmin(-score, bias[h, kv, q]),
    lambda score, b, h, q, kv: torch.clamp(score, min=-0.5, max=0.5) + attnc.sigmoid(score * bias16[h, kv]),
    lambda score, b, h, q, kv: score * score * score + ints[kv] * 0.5 + (q - kv) / 3 + bias[ints[q] % H, q, kv] * 0.0,
    lambda score, b, h, q, kv: score + (q // 2.0) * temp[h] + attnc.minimum(temp[h], slopes[h]),
    lambda score, b, h, q, kv: attnc.exp(score - temp[h]) * attnc.where(score > 0.0, temp[h], -score),
    lambda score, b, h, q, kv: torch.sin(score * temp[h]) + score.cos() + (score * 0.3).tan() + torch.erf(score),
    lambda score, b, h, q, kv: score.abs().log1p() + torch.expm1(score * slopes[h]) + score.sigmoid().clamp_min(0.3),
    lambda score, b, h, q, kv: score.floor() + torch.ceil(score) + (score * 2).round() + score.sign() + score * 0.5,
    lambda score, b, h, q, kv: torch.pow(score.abs() + temp[h], 1.5) + (score * score).pow(temp[h]) + score**11,
    lambda score, b, h, q, kv: score.max(bias[h, q, kv]) + score.square() + score.clamp(max=0.2) + score.neg().relu(),
    lambda score, b, h, q, kv: score.where(ints[q] > (kv >> 2), bias[h, q, kv].neg()) * score.new_ones(()),
]


@pytest.mark.parametrize("mod", MODS)
def test_autodiff_score_mod_matches_autograd(mod):
    """dscore and the capture-site adjoints, scattered, equal torch.autograd's (float64, f32 constants)."""
    captures = trace_score_mod(mod).captures
    for _ in range(6):
        score = torch.randn((), generator=GEN, dtype=torch.float64).item() * 2.0
        index = tuple(int(torch.randint(n, (), generator=GEN)) for n in (B, H, S, S))
        grad = torch.randn((), generator=GEN, dtype=torch.float64).item()
        dscore, grads = _derived_gradients(mod, score, index, grad)
        want_dscore, want_grads = _autograd_gradients(mod, score, index, grad, captures)
        # The region's constants (ln 2 in exp2's rule, the mod's own) are f32.
        assert dscore == pytest.approx(want_dscore, rel=1e-6, abs=1e-9), index
        for got, want in zip(grads, want_grads):
            # autograd rounds a float16 capture's gradient to float16
            tol = 1e-6 if want.dtype == torch.float64 else 1e-3
            torch.testing.assert_close(got, want.double(), rtol=tol, atol=tol * 1e-3)


def test_autodiff_sites_one_per_float_read():
    """Each tensor.extract of a float capture is a site, reads of one tensor apart; integer reads are not."""
    mod = MODS[3]
    traced = trace_score_mod(mod)
    assert float_capture_sites(traced.region) == [0, 1, 1]
    assert float_capture_sites(trace_score_mod(MODS[9]).region) == [1]  # bias, not ints


def test_autodiff_region_signature():
    """The derived region takes score_mod's arguments plus the gradient; yields dscore, then (adjoint, indices) per site."""
    traced = trace_score_mod(MODS[1])
    derived = differentiate_score_mod(traced.region)
    block = derived.blocks[0]
    assert [a.type for a in block.args] == [*(a.type for a in traced.region.blocks[0].args), f32]
    terminator = block.last_op
    assert isinstance(terminator, attn.YieldOp)
    assert [v.type for v in terminator.values] == [f32, f32, IndexType()]
    assert terminator.values[0] is block.args[-1]  # d(score + c)/dscore = 1: the gradient itself


def test_autodiff_unsupported_op_raises():
    """A float op with no derivative rule on the score's path names the op and asks for a user-given backward."""
    traced = trace_score_mod(lambda score, b, h, q, kv: score * 2.0)
    block = traced.region.blocks[0]
    terminator = block.last_op
    assert isinstance(terminator, attn.YieldOp)
    atan = mathd.AtanOp(terminator.values[0])  # no frontend function makes one
    block.insert_op_before(atan, terminator)
    terminator.operands = [atan.result]
    with pytest.raises(PassFailedException, match=r"'math.atan'.*user-given backward"):
        differentiate_score_mod(traced.region)


def _module(mod: Callable[..., Any] | None, mask: Callable[..., Any] | None = None, normalizer: Any = None) -> ModuleOp:
    sig = Signature("bfloat16", H, 2, 64, 64, 0.125)
    score_mod = trace_score_mod(mod) if mod is not None else None
    mask_mod = trace_mask_mod(mask) if mask is not None else None
    module, _ = build_module(sig, score_mod, mask_mod, trace_normalizer(normalizer or Softmax()))
    ctx = make_context()
    AttnFusePass().apply(ctx, module)
    AttnBlockMaskPass().apply(ctx, module)
    return module


def _only(module: ModuleOp, kind: type[Operation]) -> Any:
    ops = [op for op in module.walk() if isinstance(op, kind)]
    assert len(ops) == 1
    return ops[0]


def test_autodiff_pass_threads_dout_and_gradients():
    """dout is appended to the function; dq, dk, dv and the capture gradients are returned after out and lse."""
    module = _module(MODS[3], lambda b, h, q, kv: q >= kv)
    AttnAutodiffPass().apply(make_context(), module)
    module.verify()
    fn, flash, grad = _only(module, func.FuncOp), _only(module, attn.FlashOp), _only(module, attn.FlashGradOp)
    assert fn.args[-1].name_hint == "dout" and fn.args[-1].type == flash.out.type
    assert [grad.out, grad.dout, grad.stat] == [flash.out, fn.args[-1], flash.stats[0]]
    assert [s.value.data for s in grad.capture_sites.data] == [0, 1, 1]
    assert grad.block_mask == flash.block_mask and grad.block_mask is not None and grad.block_mask.data == "affine"
    ret = fn.get_return_op()
    assert ret is not None and list(ret.arguments) == [flash.out, flash.stats[0], *grad.results]
    assert list(fn.function_type.outputs.data) == [r.type for r in ret.arguments]
    assert [r.type for r in grad.capture_grads] == [TensorType(f32, [H]), TensorType(f32, [H, S, S])]


def test_autodiff_pass_derives_elementwise_normalizers_and_leaves_the_rest():
    """Sigmoid gets an elementwise attn.flash_grad with no statistic; a normalizer whose weights read
    its running state is left alone, or, with strict, an error naming that part."""
    module = _module(MODS[0], normalizer=Sigmoid())
    AttnAutodiffPass().apply(make_context(), module)
    grad = next(op for op in module.walk() if isinstance(op, FlashGradOp))
    assert grad.probabilities.data == "elementwise" and grad.stat is None and grad.row_scale is None

    class RunningMaxScaled(Normalizer):
        state = {"m": float("-inf")}

        def update(self, scores, state):
            m_new = attnc.maximum(state["m"], row_max(scores))
            return attnc.exp(scores - m_new), {"m": m_new}, attnc.exp(state["m"] - m_new)

        def finalize(self, acc, state):
            return acc, {}

    module = _module(MODS[0], normalizer=RunningMaxScaled())
    before = str(module)
    AttnAutodiffPass().apply(make_context(), module)
    assert str(module) == before
    with pytest.raises(PassFailedException, match="its update's probabilities read the running state"):
        AttnAutodiffPass(strict=True).apply(make_context(), module)


def test_autodiff_pass_requires_fused_op():
    """The logical chain is rejected: attn-fuse must run first."""
    sig = Signature("bfloat16", H, 2, 64, 64, 0.125)
    module, _ = build_module(sig, None, None, trace_normalizer(Softmax()))
    with pytest.raises(PassFailedException, match="run attn-fuse first"):
        AttnAutodiffPass().apply(make_context(), module)


@pytest.mark.parametrize(
    "sites, error",
    [
        ([2], "capture site reads capture 2, but there are 2"),
        (
            [1],
            r"score_mod_grad region to yield \(f32, f32, index, index, index\), but got \(f32, f32, index, f32, index",
        ),
        ([0, 1, 1, 1], "score_mod_grad region to yield"),
    ],
)
def test_autodiff_flash_grad_verifier_checks_sites(sites, error):
    """capture_sites must name existing float captures and match what score_mod_grad yields."""
    module = _module(MODS[3])
    AttnAutodiffPass().apply(make_context(), module)
    grad = _only(module, attn.FlashGradOp)
    grad.attributes["capture_sites"] = ArrayAttr([IntegerAttr(s, i64) for s in sites])
    with pytest.raises(VerifyException, match=error):
        grad.verify()


def test_autodiff_flash_grad_verifier_checks_types():
    """A capture gradient must be f32 of the capture's shape."""
    module = _module(MODS[1])
    AttnAutodiffPass().apply(make_context(), module)
    grad = _only(module, attn.FlashGradOp)
    bad = attn.FlashGradOp.build(
        operands=[*grad.operands[:5], list(grad.sequences), [grad.stat] if grad.stat else [], list(grad.captures)],
        attributes=dict(grad.attributes),
        regions=[r.clone() for r in grad.regions],
        result_types=[grad.dq.type, grad.dk.type, grad.dv.type, [TensorType(f32, [H + 1])]],
    )
    with pytest.raises(VerifyException, match=r"expected capture gradient of type tensor<4xf32>"):
        bad.verify()
