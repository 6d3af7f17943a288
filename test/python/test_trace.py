"""Tracing score_mod / mask_mod into attn regions: printed IR, semantics, user errors."""

from __future__ import annotations

import inspect
import io
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from xdsl.dialects import arith, tensor
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerAttr, TensorType, f32, i1
from xdsl.ir import Operation, SSAValue
from xdsl.printer import Printer

from attnc.dialect.attn import YieldOp
from attnc.frontend import ops as attnc
from attnc.frontend.errors import TraceError
from attnc.frontend.trace import TracedRegion, trace_mask_mod, trace_score_mod

B, H, S = 2, 4, 16
GEN = torch.Generator().manual_seed(0)
slopes = torch.rand(H, generator=GEN)
doc = torch.randint(0, 3, (S,), generator=GEN, dtype=torch.int32).sort().values
bias = torch.randn(B, H, S, S, generator=GEN)
temperature = torch.tensor(0.75)


def softcap(score, b, h, q_idx, kv_idx):
    return 30 * attnc.tanh(score / 30)


def alibi(score, b, h, q_idx, kv_idx):
    return score + slopes[h] * (kv_idx - q_idx)


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def sliding_window(b, h, q_idx, kv_idx):
    return (q_idx - kv_idx <= 256) & (q_idx >= kv_idx)


def document(b, h, q_idx, kv_idx):
    return doc[q_idx] == doc[kv_idx]


def prefix_lm(b, h, q_idx, kv_idx):
    return (kv_idx < 64) | (q_idx >= kv_idx)


def torch_causal_softcap(score, b, h, q_idx, kv_idx):
    return torch.where(q_idx >= kv_idx, torch.tanh(score), float("-inf"))


def scaled(score, b, h, q_idx, kv_idx):
    return score * temperature


def _ir(traced: TracedRegion) -> str:
    out = io.StringIO()
    Printer(stream=out).print_region(traced.region)
    return out.getvalue().strip()


def _dedent(text: str) -> str:
    return inspect.cleandoc(text)


def test_trace_softcap_ir():
    """Softcapping traces to divf, tanh and mulf, sharing one constant."""
    assert _ir(trace_score_mod(softcap)) == _dedent(
        """
        {
        ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
          %cst = arith.constant 3.000000e+01 : f32
          %0 = arith.divf %score, %cst : f32
          %1 = math.tanh %0 : f32
          %2 = arith.mulf %cst, %1 : f32
          attn.yield %2 : f32
        }
        """
    )


def test_trace_alibi_ir():
    """ALiBi reads the captured slopes by head and converts the distance to f32."""
    traced = trace_score_mod(alibi)
    assert _ir(traced) == _dedent(
        """
        {
        ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes: tensor<4xf32>):
          %0 = tensor.extract %slopes[%h] : tensor<4xf32>
          %1 = arith.subi %kv_idx, %q_idx : index
          %2 = arith.index_cast %1 : index to i64
          %3 = arith.sitofp %2 : i64 to f32
          %4 = arith.mulf %0, %3 : f32
          %5 = arith.addf %score, %4 : f32
          attn.yield %5 : f32
        }
        """
    )
    assert len(traced.captures) == 1 and traced.captures[0] is slopes


def test_trace_causal_ir():
    """A causal mask is one signed index comparison."""
    assert _ir(trace_mask_mod(causal)) == _dedent(
        """
        {
        ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
          %0 = arith.cmpi sge, %q_idx, %kv_idx : index
          attn.yield %0 : i1
        }
        """
    )


def test_trace_sliding_window_ir():
    """A sliding window combines two comparisons with andi; the constant is an index."""
    assert _ir(trace_mask_mod(sliding_window)) == _dedent(
        """
        {
        ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
          %0 = arith.subi %q_idx, %kv_idx : index
          %c256 = arith.constant 256 : index
          %1 = arith.cmpi sle, %0, %c256 : index
          %2 = arith.cmpi sge, %q_idx, %kv_idx : index
          %3 = arith.andi %1, %2 : i1
          attn.yield %3 : i1
        }
        """
    )


def test_trace_document_mask_ir():
    """Both reads of the document ids use one captured i32 tensor argument."""
    traced = trace_mask_mod(document)
    assert _ir(traced) == _dedent(
        """
        {
        ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %doc: tensor<16xi32>):
          %0 = tensor.extract %doc[%q_idx] : tensor<16xi32>
          %1 = tensor.extract %doc[%kv_idx] : tensor<16xi32>
          %2 = arith.cmpi eq, %0, %1 : i32
          attn.yield %2 : i1
        }
        """
    )
    assert len(traced.captures) == 1 and traced.captures[0] is doc


def test_trace_prefix_lm_ir():
    """A prefix-LM mask ors the prefix test with causality."""
    assert _ir(trace_mask_mod(prefix_lm)) == _dedent(
        """
        {
        ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
          %c64 = arith.constant 64 : index
          %0 = arith.cmpi slt, %kv_idx, %c64 : index
          %1 = arith.cmpi sge, %q_idx, %kv_idx : index
          %2 = arith.ori %0, %1 : i1
          attn.yield %2 : i1
        }
        """
    )


def test_trace_torch_functions_ir():
    """torch.where and torch.tanh on proxies trace to select and math.tanh."""
    assert _ir(trace_score_mod(torch_causal_softcap)) == _dedent(
        """
        {
        ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
          %0 = arith.cmpi sge, %q_idx, %kv_idx : index
          %1 = math.tanh %score : f32
          %cst = arith.constant 0xff800000 : f32
          %2 = arith.select %0, %1, %cst : f32
          attn.yield %2 : f32
        }
        """
    )


def test_trace_zero_dim_tensor_is_captured():
    """A 0-dim tensor is a kernel operand read with an empty index, not a constant."""
    for mod in (scaled, lambda score, b, h, q_idx, kv_idx: temperature * score):
        traced = trace_score_mod(mod)
        ir = _ir(traced)
        assert "%temperature: tensor<f32>" in ir
        assert "tensor.extract %temperature[] : tensor<f32>" in ir
        assert "arith.constant" not in ir
        assert len(traced.captures) == 1 and traced.captures[0] is temperature


def test_trace_constant_mask_mod():
    """A mod that returns a Python constant yields an arith.constant."""
    assert _ir(trace_mask_mod(lambda b, h, q_idx, kv_idx: True)) == _dedent(
        """
        {
        ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
          %true = arith.constant true
          attn.yield %true : i1
        }
        """
    )
    assert "arith.constant 2.000000e+00 : f32" in _ir(trace_score_mod(lambda *args: 2))


@pytest.mark.parametrize(
    ("mod", "trace", "result_type"),
    [
        (softcap, trace_score_mod, f32),
        (alibi, trace_score_mod, f32),
        (torch_causal_softcap, trace_score_mod, f32),
        (scaled, trace_score_mod, f32),
        (causal, trace_mask_mod, i1),
        (sliding_window, trace_mask_mod, i1),
        (document, trace_mask_mod, i1),
        (prefix_lm, trace_mask_mod, i1),
    ],
)
def test_trace_region_signature_verifies(mod, trace, result_type):
    """Every traced region verifies, has the documented arguments and yields one value."""
    traced = trace(mod)
    traced.region.verify()
    (block,) = traced.region.blocks
    arg_types = list(block.arg_types)
    fixed = [f32] if trace is trace_score_mod else []
    fixed += [IndexType()] * 4
    assert arg_types[: len(fixed)] == fixed
    captured = arg_types[len(fixed) :]
    assert len(captured) == len(traced.captures)
    for arg_type, source in zip(captured, traced.captures, strict=True):
        assert isinstance(arg_type, TensorType)
        assert list(arg_type.get_shape()) == list(source.shape)
    terminator = block.last_op
    assert isinstance(terminator, YieldOp)
    assert [v.type for v in terminator.operands] == [result_type]


def test_trace_capture_element_types():
    """Half, bfloat16 and double reads convert to f32; int64 ids index via index_cast."""
    half = torch.randn(H, dtype=torch.float16)
    brain = torch.randn(H, dtype=torch.bfloat16)
    double = torch.randn(H, dtype=torch.float64)
    offsets = torch.arange(S, dtype=torch.int64)

    def mod(score, b, h, q_idx, kv_idx):
        return score + half[h] + brain[h] + double[h] + bias[b, h, offsets[q_idx], kv_idx]

    ir = _ir(trace_score_mod(mod))
    assert "arith.extf %0 : f16 to f32" in ir
    assert "arith.extf %3 : bf16 to f32" in ir
    assert "arith.truncf %6 : f64 to f32" in ir
    assert "%9 = tensor.extract %offsets[%q_idx] : tensor<16xi64>" in ir
    assert "%10 = arith.index_cast %9 : i64 to index" in ir
    assert "tensor.extract %bias[%b, %h, %10, %kv_idx] : tensor<2x4x16x16xf32>" in ir

    flags = torch.rand(S) > 0.5
    assert "tensor.extract %flags[%kv_idx] : tensor<16xi1>" in _ir(
        trace_mask_mod(lambda b, h, q_idx, kv_idx: flags[kv_idx] & (q_idx >= kv_idx))
    )


def test_trace_int_constant_takes_other_type():
    """A Python int next to an i32 value is an i32 constant; a negative index wraps."""
    ir = _ir(trace_mask_mod(lambda b, h, q_idx, kv_idx: doc[q_idx] == 5))
    assert "%c5_i32 = arith.constant 5 : i32" in ir
    assert "arith.cmpi eq, %0, %c5_i32 : i32" in ir
    ir = _ir(trace_score_mod(lambda score, b, h, q_idx, kv_idx: score + bias[0, -1, q_idx, kv_idx]))
    assert "tensor.extract %bias[%c0, %c3, %q_idx, %kv_idx]" in ir


def test_trace_float_comparison_predicates():
    """Float comparisons are ordered, except != which is true for NaN as in torch."""
    ir = _ir(trace_mask_mod(lambda b, h, q_idx, kv_idx: (bias[b, h, q_idx, kv_idx] != 0) & (slopes[h] < 0.5)))
    assert "arith.cmpf une, %0, %cst : f32" in ir
    assert "arith.cmpf olt, %2, %cst_1 : f32" in ir


def test_trace_unnamed_capture_is_capture0():
    """A tensor reached through an attribute has no Python name: capture0."""

    class Holder:
        table = torch.randn(H)

    ir = _ir(trace_score_mod(lambda score, b, h, q_idx, kv_idx: score + Holder.table[h]))
    assert "%capture0: tensor<4xf32>" in ir


# Semantics: the traced region, interpreted, agrees with the same mod run by torch.

_CMPI = {"eq": "__eq__", "ne": "__ne__", "slt": "__lt__", "sle": "__le__", "sgt": "__gt__"}
_CMPI |= {"sge": "__ge__"}
_CMPF = {"oeq": "__eq__", "une": "__ne__", "olt": "__lt__", "ole": "__le__", "ogt": "__gt__"}
_CMPF |= {"oge": "__ge__"}
_EVAL: dict[type[Operation], Callable[..., Any]] = {
    arith.AddfOp: lambda a, b: a + b,
    arith.SubfOp: lambda a, b: a - b,
    arith.MulfOp: lambda a, b: a * b,
    arith.DivfOp: lambda a, b: a / b if b else math.copysign(math.inf, a) if a else math.nan,
    arith.AddiOp: lambda a, b: a + b,
    arith.SubiOp: lambda a, b: a - b,
    arith.MuliOp: lambda a, b: a * b,
    arith.FloorDivSIOp: lambda a, b: a // b,
    arith.MinSIOp: min,
    arith.MaxSIOp: max,
    arith.MinimumfOp: min,
    arith.MaximumfOp: max,
    arith.AndIOp: lambda a, b: a & b,
    arith.OrIOp: lambda a, b: a | b,
    arith.XOrIOp: lambda a, b: a ^ b,
    arith.SelectOp: lambda c, a, b: a if c else b,
    arith.IndexCastOp: int,
    arith.ExtUIOp: int,
    arith.SIToFPOp: float,
    arith.UIToFPOp: float,
    arith.ExtFOp: float,
    arith.TruncFOp: float,
    arith.NegfOp: lambda a: -a,
    mathd.AbsFOp: abs,
    mathd.AbsIOp: abs,
    mathd.ExpOp: math.exp,
    mathd.Exp2Op: lambda a: 2.0**a,
    mathd.LogOp: math.log,
    mathd.Log2Op: math.log2,
    mathd.SqrtOp: math.sqrt,
    mathd.TanhOp: math.tanh,
    mathd.FloorOp: lambda a: float(math.floor(a)),
    mathd.CeilOp: lambda a: float(math.ceil(a)),
    mathd.RoundEvenOp: lambda a: float(round(a)),
    mathd.SinOp: math.sin,
    mathd.CosOp: math.cos,
    mathd.TanOp: math.tan,
    mathd.ErfOp: math.erf,
    mathd.Log1pOp: math.log1p,
    mathd.ExpM1Op: math.expm1,
    mathd.RsqrtOp: lambda a: 1 / math.sqrt(a),
    arith.FPToSIOp: int,
    arith.ShLIOp: lambda a, b: a << b,
    arith.ShRSIOp: lambda a, b: a >> b,
}


def _evaluate(traced: TracedRegion, args: list[Any]) -> Any:
    """Run the region on Python scalars: ints for index and integers, bools for i1."""
    block = traced.region.block
    env: dict[SSAValue, Any] = dict(zip(block.args, [*args, *traced.captures], strict=True))
    for op in block.ops:
        if isinstance(op, YieldOp):
            return env[op.operands[0]]
        if isinstance(op, arith.ConstantOp):
            attr = op.value
            assert isinstance(attr, IntegerAttr | FloatAttr)
            value = attr.value.data
            env[op.result] = bool(value) if op.result.type == i1 else value
        elif isinstance(op, tensor.ExtractOp):
            element = env[op.tensor][tuple(env[i] for i in op.indices)].item()
            env[op.result] = element
        elif isinstance(op, arith.CmpiOp | arith.CmpfOp):
            names = arith.CMPI_COMPARISON_OPERATIONS if isinstance(op, arith.CmpiOp) else None
            names = names or arith.CMPF_COMPARISON_OPERATIONS
            method = (_CMPI | _CMPF)[names[op.predicate.value.data]]
            env[op.result] = getattr(env[op.lhs], method)(env[op.rhs])
        else:
            env[op.results[0]] = _EVAL[type(op)](*(env[v] for v in op.operands))
    raise AssertionError("no attn.yield")


def _eager(mod: Callable[..., Any], score: torch.Tensor | None) -> torch.Tensor:
    """The mod on broadcast index tensors, as the reference runs it."""
    b = torch.arange(B).view(-1, 1, 1, 1)
    h = torch.arange(H).view(1, -1, 1, 1)
    q = torch.arange(S).view(1, 1, -1, 1)
    kv = torch.arange(S).view(1, 1, 1, -1)
    result = mod(b, h, q, kv) if score is None else mod(score, b, h, q, kv)
    return torch.as_tensor(result).broadcast_to(B, H, S, S)


ints = torch.randint(-3, 4, (S,), generator=GEN, dtype=torch.int64)
flags = torch.rand(S, generator=GEN) > 0.5


@pytest.mark.parametrize(
    "mod",
    [
        softcap,
        alibi,
        torch_causal_softcap,
        scaled,
        lambda score, b, h, q, kv: score + bias[b, h, q, kv] + bias[0, h, q // 2, kv % 3],
        lambda score, b, h, q, kv: score * (q - 7) % 5 + (q - 7) % -3 + (kv - q) // 4,
        lambda score, b, h, q, kv: score + (q - kv) / 3 + abs(score) ** 2 - (kv - q) ** 3,
        lambda score, b, h, q, kv: score + ints[q] * 0.5 + ints[kv] // 2 + (q >= kv) * 2,
        lambda score, b, h, q, kv: attnc.sigmoid(score) + attnc.exp2(-score) + 2.0 ** (-h),
        lambda score, b, h, q, kv: attnc.where(flags[kv], score, 1 - score) + attnc.maximum(q, kv),
        lambda score, b, h, q, kv: torch.clamp(score, min=-0.5, max=0.5) + (~flags[q]) * 1.0,
        lambda score, b, h, q, kv: attnc.minimum(score, 0.1) + attnc.log(attnc.sqrt(q + 1.0)),
        lambda score, b, h, q, kv: kv - q,
        lambda score, b, h, q, kv: score.sin() + torch.cos(score) + (score * 0.3).tan() + score.erf() + score.tanh(),
        lambda score, b, h, q, kv: score.abs().log1p() + score.expm1() + (score * score + 1).rsqrt() + score.exp(),
        lambda score, b, h, q, kv: (score * 3).floor() + score.ceil() + torch.round(score * 4) + score.sign(),
        lambda score, b, h, q, kv: score.abs() ** 0.5 + score.abs().pow(1.5) + score**9 + torch.pow(score, q - 7),
        lambda score, b, h, q, kv: torch.pow(-2.0, kv) + 2.0 ** (q - kv) + (score * 3).to(torch.int32),
        lambda score, b, h, q, kv: score.clamp(-0.5, 0.5) + score.max(slopes[h]) + score.min(q * 0.1),
        lambda score, b, h, q, kv: score.where(flags[kv], -score) + torch.full_like(score, 2.0) + (q.int() >> 1),
        lambda score, b, h, q, kv: score + ((q << 2) | (kv >> 1)) + (q ^ 5) + torch.bitwise_right_shift(kv, 2),
        lambda score, b, h, q, kv: torch.special.expit(score) + torch.relu(score) + score.reciprocal(),
    ],
)
def test_trace_score_mod_matches_torch(mod):
    """Interpreting the traced region gives what torch computes from the same score_mod."""
    score = torch.randn(B, H, S, S, generator=GEN, dtype=torch.float64)
    expected = _eager(mod, score)
    traced = trace_score_mod(mod)
    for index in [(0, 0, 0, 0), (1, 3, 15, 0), (1, 2, 5, 9), (0, 1, 9, 5), (1, 0, 15, 15)]:
        got = _evaluate(traced, [score[index].item(), *index])
        want = expected[index].item()
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6), index


@pytest.mark.parametrize(
    "mod",
    [
        causal,
        sliding_window,
        document,
        prefix_lm,
        lambda b, h, q, kv: ((q - kv) % 4 == 0) ^ flags[kv],
        lambda b, h, q, kv: (doc[q] == doc[kv]) & ~(kv > q) | (h == 1),
        lambda b, h, q, kv: torch.logical_and(q >= kv, ints[kv] != 0),
        lambda b, h, q, kv: ((q >> 2) == (kv >> 2)) | ((q ^ kv) & 1).bool() | (1 << kv > q),
        lambda b, h, q, kv: (q - kv).abs().le(3) & q.ge(kv) & ~(kv.to(torch.bool)),
    ],
)
def test_trace_mask_mod_matches_torch(mod):
    """Interpreting the traced mask gives what torch computes at every position."""
    expected = _eager(mod, None)
    traced = trace_mask_mod(mod)
    for index in [(b, h, q, kv) for b in range(B) for h in range(H) for q in (0, 7, 15) for kv in range(S)]:
        assert _evaluate(traced, list(index)) == expected[index].item(), index


# User errors: one TraceError naming this file and line, with a caret under the expression.


def _assert_points_at(error: TraceError, fn: Callable[..., Any], expression: str) -> None:
    lines, start = inspect.getsourcelines(fn)
    offset = next(i for i, line in enumerate(lines) if expression in line)
    source = lines[offset].rstrip()
    text = str(error)
    assert f"test_trace.py:{start + offset}:" in text.splitlines()[0]
    shown, caret = text.splitlines()[1:3]
    assert shown.strip() == source.strip()
    assert caret.strip() == "^" * len(expression)
    assert caret.index("^") - shown.index(source.strip()) == source.strip().index(expression)


def test_trace_error_on_python_if():
    """`if` on a traced comparison points at the condition."""

    def mod(score, b, h, q_idx, kv_idx):
        if score > 0:
            return score
        return -score

    with pytest.raises(TraceError, match="no Python truth value") as info:
        trace_score_mod(mod)
    _assert_points_at(info.value, mod, "score > 0")


def test_trace_error_on_unsupported_torch_function():
    """An unsupported torch function names itself and suggests what to use."""

    def mod(score, b, h, q_idx, kv_idx):
        return score + torch.lgamma(score)

    with pytest.raises(TraceError, match=r"torch\.lgamma cannot be traced in a score_mod; use") as info:
        trace_score_mod(mod)
    _assert_points_at(info.value, mod, "torch.lgamma(score)")


def test_trace_error_on_wrong_index_count():
    """Indexing a 4-d capture with 3 indices is rejected at the subscript."""

    def mod(score, b, h, q_idx, kv_idx):
        return score + bias[h, q_idx, kv_idx]

    with pytest.raises(TraceError, match=r"`bias` has 4 dimensions .* indexed with 3") as info:
        trace_score_mod(mod)
    _assert_points_at(info.value, mod, "bias[h, q_idx, kv_idx]")


def test_trace_error_on_slice_index():
    """A slice reads more than one element and is rejected."""

    def mod(score, b, h, q_idx, kv_idx):
        return score + bias[b, h, q_idx, :]

    with pytest.raises(TraceError, match="index 3 of `bias` is a slice") as info:
        trace_score_mod(mod)
    _assert_points_at(info.value, mod, "bias[b, h, q_idx, :]")


def test_trace_error_on_mask_mod_returning_float():
    """A mask_mod must yield a boolean; the error points at the returned expression."""

    def mod(b, h, q_idx, kv_idx):
        return (q_idx - kv_idx) * 0.5

    with pytest.raises(TraceError, match="mask_mod must return a boolean") as info:
        trace_mask_mod(mod)
    _assert_points_at(info.value, mod, "(q_idx - kv_idx) * 0.5")


def test_trace_error_on_score_mod_returning_bool():
    """A comparison returned from a score_mod is a mask in the wrong place."""
    mod = lambda score, b, h, q_idx, kv_idx: q_idx >= kv_idx

    with pytest.raises(TraceError, match="score_mod must return a float score") as info:
        trace_score_mod(mod)
    _assert_points_at(info.value, mod, "q_idx >= kv_idx")


def test_trace_error_on_python_conversions():
    """float(), Python list indexing and a Tensor method attnc cannot trace are rejected."""
    table = [1.0, 2.0, 3.0, 4.0]

    def as_float(score, b, h, q_idx, kv_idx):
        return score + float(q_idx)

    def list_index(score, b, h, q_idx, kv_idx):
        return score * table[h]

    def method(score, b, h, q_idx, kv_idx):
        return score.cumsum(0)

    for mod, message, expression in [
        (as_float, r"float\(\) of a traced value", "float(q_idx)"),
        (list_index, "cannot index a Python list", "table[h]"),
        (method, "Tensor.cumsum cannot be traced in a score_mod", "score.cumsum"),
    ]:
        with pytest.raises(TraceError, match=message) as info:
            trace_score_mod(mod)
        _assert_points_at(info.value, mod, expression)


def test_trace_error_on_wrong_signature():
    """A mod with the wrong number of parameters is reported at its definition."""

    def mod(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    with pytest.raises(TraceError, match=r"a score_mod takes 5 arguments") as info:
        trace_score_mod(mod)
    _, start = inspect.getsourcelines(mod)
    assert f"test_trace.py:{start}:" in str(info.value)
