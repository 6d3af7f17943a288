"""Tracing Normalizers into update/finalize regions: printed IR, online semantics, user errors."""

from __future__ import annotations

import inspect
import io
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from xdsl.dialects import arith, func, tensor
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import DYNAMIC_INDEX, FloatAttr, ModuleOp, TensorType, f32
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.parser import Parser
from xdsl.printer import Printer

from attnc.dialect.attn import NormalizerSpec, OnlineRowscaleOp, RowMaxOp, RowSumOp, YieldOp
from attnc.frontend import ops as attnc
from attnc.frontend.errors import TraceError
from attnc.frontend.normalizer import Normalizer, row_max, row_sum, trace_normalizer
from attnc.frontend.normalizers import (
    BUILTIN_NORMALIZERS,
    ReLU,
    Retention,
    Sigmoid,
    Softmax,
    SoftmaxWithSinks,
    resolve_normalizer,
)
from attnc.frontend.trace import trace_score_mod
from attnc.pipeline import make_context
from attnc.reference import attention_reference

GEN = torch.Generator().manual_seed(0)
HEADS = 4


class TemperedSoftmax(Normalizer):
    """Softmax of scores / temperature[h], a learned temperature per query head."""

    state = {"m": float("-inf"), "l": 0.0}
    stats = ("lse",)

    def __init__(self, temperature: torch.Tensor) -> None:
        self.temperature = temperature

    def update(self, scores, state):
        s = scores / self.temperature[self.h]
        m_new = attnc.maximum(state["m"], row_max(s))
        m_safe = attnc.where(m_new == float("-inf"), 0.0, m_new)
        p = attnc.exp(s - m_safe)
        alpha = attnc.exp(state["m"] - m_safe)
        return p, {"m": m_new, "l": state["l"] * alpha + row_sum(p)}, alpha

    def finalize(self, acc, state):
        l_safe = attnc.where(state["l"] == 0.0, 1.0, state["l"])
        return acc / l_safe, {"lse": state["m"] + attnc.log(state["l"])}


def _normalizers() -> list[Normalizer]:
    sinks = torch.randn(HEADS, generator=GEN, dtype=torch.float64)
    temperature = torch.rand(HEADS, generator=GEN, dtype=torch.float64) + 0.5
    return [Softmax(), Sigmoid(), ReLU(), Retention(), SoftmaxWithSinks(sinks), TemperedSoftmax(temperature)]


def _ir(region: Region) -> str:
    out = io.StringIO()
    Printer(stream=out).print_region(region)
    return out.getvalue().strip()


def _ops(region: Region) -> list[type[Operation]]:
    return [type(op) for op in region.block.ops]


# The IR of each built-in.


def test_normalizer_softmax_ir():
    """Softmax traces to the base-2 online softmax: one row_max, one row_sum, maxnumf, exp2."""
    spec = trace_normalizer(Softmax())
    assert (spec.name, spec.state, spec.init, spec.stat_names) == ("softmax", ["m", "l"], [-math.inf, 0.0], ["lse"])
    assert spec.masked_score == -math.inf and spec.captures == []
    assert _ir(spec.update) == inspect.cleandoc(
        """
        {
        ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
          %cst = arith.constant 1.44269502 : f32
          %0 = arith.mulf %score, %cst : f32
          %1 = attn.row_max %0 : f32
          %m_new = arith.maxnumf %m, %1 : f32
          %cst_1 = arith.constant 0xff800000 : f32
          %2 = arith.cmpf oeq, %m_new, %cst_1 : f32
          %cst_2 = arith.constant 0.000000e+00 : f32
          %3 = arith.select %2, %cst_2, %m_new : f32
          %4 = arith.subf %0, %3 : f32
          %p = math.exp2 %4 : f32
          %5 = arith.subf %m, %3 : f32
          %alpha = math.exp2 %5 : f32
          %6 = arith.mulf %l, %alpha : f32
          %7 = attn.row_sum %p : f32
          %l_new = arith.addf %6, %7 : f32
          attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
        }
        """
    )
    assert _ir(spec.finalize) == inspect.cleandoc(
        """
        {
        ^bb0(%acc: f32, %b: index, %h: index, %m: f32, %l: f32):
          %cst = arith.constant 0.000000e+00 : f32
          %0 = arith.cmpf oeq, %l, %cst : f32
          %cst_1 = arith.constant 1.000000e+00 : f32
          %1 = arith.select %0, %cst_1, %l : f32
          %2 = arith.divf %cst_1, %1 : f32
          %out = arith.mulf %acc, %2 : f32
          %cst_2 = arith.constant 0.693147182 : f32
          %3 = arith.mulf %m, %cst_2 : f32
          %4 = math.log %l : f32
          %lse = arith.addf %3, %4 : f32
          attn.yield %out, %lse : f32, f32
        }
        """
    )


def test_normalizer_sigmoid_ir():
    """Sigmoid is stateless: p = 0.5 + 0.5·tanh(score/2), alpha the constant 1, out = acc."""
    spec = trace_normalizer(Sigmoid())
    assert (spec.state, spec.stat_names, spec.masked_score) == ([], [], -math.inf)
    assert _ir(spec.update) == inspect.cleandoc(
        """
        {
        ^bb0(%score: f32, %b: index, %h: index):
          %cst = arith.constant 5.000000e-01 : f32
          %0 = arith.mulf %score, %cst : f32
          %1 = math.tanh %0 : f32
          %2 = arith.mulf %cst, %1 : f32
          %p = arith.addf %cst, %2 : f32
          %cst_1 = arith.constant 1.000000e+00 : f32
          attn.yield %p, %cst_1 : f32, f32
        }
        """
    )
    assert _ir(spec.finalize) == inspect.cleandoc(
        """
        {
        ^bb0(%acc: f32, %b: index, %h: index):
          attn.yield %acc : f32
        }
        """
    )


def test_normalizer_relu_ir():
    """ReLU is one maxnumf against 0 per score."""
    spec = trace_normalizer(ReLU())
    assert _ir(spec.update) == inspect.cleandoc(
        """
        {
        ^bb0(%score: f32, %b: index, %h: index):
          %cst = arith.constant 0.000000e+00 : f32
          %p = arith.maxnumf %score, %cst : f32
          %cst_1 = arith.constant 1.000000e+00 : f32
          attn.yield %p, %cst_1 : f32, f32
        }
        """
    )
    assert _ops(spec.finalize) == [YieldOp]


def test_normalizer_retention_ir():
    """Retention sums |score| over the row into d; masked scores read as 0."""
    spec = trace_normalizer(Retention())
    assert (spec.state, spec.init, spec.stat_names, spec.masked_score) == (["d"], [0.0], ["denominator"], 0.0)
    assert _ir(spec.update) == inspect.cleandoc(
        """
        {
        ^bb0(%score: f32, %b: index, %h: index, %d: f32):
          %0 = math.absf %score : f32
          %1 = attn.row_sum %0 : f32
          %d_new = arith.addf %d, %1 : f32
          %cst = arith.constant 1.000000e+00 : f32
          attn.yield %score, %cst, %d_new : f32, f32, f32
        }
        """
    )
    assert _ir(spec.finalize) == inspect.cleandoc(
        """
        {
        ^bb0(%acc: f32, %b: index, %h: index, %d: f32):
          %cst = arith.constant 1.000000e+00 : f32
          %denominator = arith.maxnumf %d, %cst : f32
          %0 = arith.divf %cst, %denominator : f32
          %out = arith.mulf %acc, %0 : f32
          attn.yield %out, %denominator : f32, f32
        }
        """
    )


def test_normalizer_sinks_capture_in_both_regions():
    """The sinks tensor is a trailing argument of update and finalize; finalize reads sinks[h]."""
    sinks = torch.randn(8, generator=GEN)
    spec = trace_normalizer(SoftmaxWithSinks(sinks))
    assert spec.name == "softmax_with_sinks" and spec.stat_names == ["lse"]
    assert len(spec.captures) == 1 and spec.captures[0] is sinks
    for region, first in ((spec.update, "score"), (spec.finalize, "acc")):
        names = [arg.name_hint for arg in region.block.args]
        assert names == [first, "b", "h", "m", "l", "sinks"]
        assert region.block.args[-1].type == TensorType(f32, [8])
    # Update is softmax's, untouched; finalize reads the sink of this head.
    assert _ir(spec.update).split("\n")[2:] == _ir(trace_normalizer(Softmax()).update).split("\n")[2:]
    assert "tensor.extract %sinks[%h] : tensor<8xf32>" in _ir(spec.finalize)
    assert RowMaxOp not in _ops(spec.finalize) and RowSumOp not in _ops(spec.finalize)


def test_normalizer_user_defined_captures_temperature():
    """A user's normalizer reading self.temperature[self.h] captures the tensor under its attribute name."""
    temperature = torch.rand(HEADS, generator=GEN) + 0.5
    spec = trace_normalizer(TemperedSoftmax(temperature))
    assert spec.name == "TemperedSoftmax" and spec.captures == [temperature]
    update = _ir(spec.update)
    assert "^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32, %temperature: tensor<4xf32>):" in update
    assert "tensor.extract %temperature[%h] : tensor<4xf32>" in update
    assert "arith.maximumf %m, %" in update  # attnc.maximum propagates NaN, like torch.maximum
    assert "^bb0(%acc: f32, %b: index, %h: index, %m: f32, %l: f32, %temperature: tensor<4xf32>):" in _ir(spec.finalize)


def test_normalizer_capture_only_finalize_reads_joins_update():
    """Captures are one list for both regions: update's first, then those only finalize reads."""
    first, second = torch.randn(HEADS, generator=GEN), torch.randn(2, HEADS, generator=GEN)

    class TwoTables(Normalizer):
        def __init__(self) -> None:
            self.first, self.second = first, second

        def update(self, scores, state):
            return attnc.exp(scores - self.first[self.h]), {}, 1.0

        def finalize(self, acc, state):
            return acc * self.second[self.b, self.h] + self.first[self.h], {}

    spec = trace_normalizer(TwoTables())
    assert spec.captures == [first, second]
    for region in (spec.update, spec.finalize):
        assert [arg.name_hint for arg in region.block.args[3:]] == ["first", "second"]
        assert [arg.type for arg in region.block.args[3:]] == [TensorType(f32, [4]), TensorType(f32, [2, 4])]


def test_normalizer_tracing_leaves_no_indices_behind():
    """self.b and self.h are set only while tracing; tracing twice gives fresh regions."""
    norm = Softmax()
    first, second = trace_normalizer(norm), trace_normalizer(norm)
    assert norm.b is None and norm.h is None and "b" not in vars(norm)
    assert first.update is not second.update and _ir(first.update) == _ir(second.update)


@pytest.mark.parametrize("norm", _normalizers(), ids=repr)
def test_normalizer_regions_verify_in_online_rowscale(norm):
    """Every traced normalizer verifies inside attn.online_rowscale and survives a print/parse round trip."""
    spec = trace_normalizer(norm)
    scores_type = TensorType(f32, [DYNAMIC_INDEX, HEADS, DYNAMIC_INDEX, DYNAMIC_INDEX])
    capture_types = [arg.type for arg in spec.update.block.args[3 + len(spec.state) :]]
    block = Block(arg_types=[scores_type, *capture_types])
    op = OnlineRowscaleOp(block.args[0], None, spec, block.args[1:])
    block.add_op(op)
    block.add_op(func.ReturnOp(op.probs, *op.stats))
    result_types = [op.probs.type, *[s.type for s in op.stats]]
    module = ModuleOp([func.FuncOp("f", ([scores_type, *capture_types], result_types), Region(block))])
    module.verify()
    assert len(op.stats) == len(norm.stats)
    text = str(module)
    reparsed = Parser(make_context(), text).parse_module()
    reparsed.verify()
    assert str(reparsed) == text


# Semantics: the traced regions, run online tile by tile, agree with the reference.

_BINARY: dict[type[Operation], Callable[[Any, Any], Any]] = {
    arith.AddfOp: torch.add,
    arith.SubfOp: torch.sub,
    arith.MulfOp: torch.mul,
    arith.DivfOp: torch.div,
    arith.MaximumfOp: torch.maximum,
    arith.MinimumfOp: torch.minimum,
    arith.MaxnumfOp: torch.fmax,
    arith.MinnumfOp: torch.fmin,
}
_UNARY: dict[type[Operation], Callable[[Any], Any]] = {
    arith.NegfOp: torch.neg,
    mathd.ExpOp: torch.exp,
    mathd.Exp2Op: torch.exp2,
    mathd.LogOp: torch.log,
    mathd.Log2Op: torch.log2,
    mathd.AbsFOp: torch.abs,
    mathd.SqrtOp: torch.sqrt,
    mathd.TanhOp: torch.tanh,
    arith.TruncFOp: lambda x: x,  # float64 captures: kept in float64 here
    RowMaxOp: lambda x: x.amax(-1, keepdim=True),
    RowSumOp: lambda x: x.sum(-1, keepdim=True),
}
_CMPF = {"oeq": torch.eq, "une": torch.ne, "olt": torch.lt, "ole": torch.le, "ogt": torch.gt, "oge": torch.ge}


def _run_region(region: Region, args: list[Any]) -> list[torch.Tensor]:
    """Run a normalizer region in float64 on a tile: element values [rows, cols], row values [rows, 1]."""
    env: dict[SSAValue, Any] = dict(zip(region.block.args, args, strict=True))
    for op in region.block.ops:
        if isinstance(op, YieldOp):
            return [torch.as_tensor(env[v], dtype=torch.float64) for v in op.operands]
        if isinstance(op, arith.ConstantOp):
            assert isinstance(op.value, FloatAttr)
            env[op.result] = torch.tensor(op.value.value.data, dtype=torch.float64)
        elif isinstance(op, tensor.ExtractOp):
            env[op.result] = env[op.tensor][tuple(env[i] for i in op.indices)].double()
        elif isinstance(op, arith.CmpfOp):
            predicate = arith.CMPF_COMPARISON_OPERATIONS[op.predicate.value.data]
            env[op.result] = _CMPF[predicate](env[op.lhs], env[op.rhs])
        elif isinstance(op, arith.SelectOp):
            env[op.result] = torch.where(env[op.cond], env[op.lhs], env[op.rhs])
        elif type(op) in _BINARY:
            env[op.results[0]] = _BINARY[type(op)](env[op.operands[0]], env[op.operands[1]])
        else:
            env[op.results[0]] = _UNARY[type(op)](env[op.operands[0]])
    raise AssertionError("no attn.yield")


def _run_online(
    spec: NormalizerSpec, scores: torch.Tensor, keep: torch.Tensor, v: torch.Tensor, block_n: int
) -> list[torch.Tensor]:
    """What the kernel does: key tiles of block_n (the last one padded with masked columns), fully
    masked tiles skipped, masked scores set to masked_score before update and their p to 0 after."""
    batch, heads, q_len, kv_len = scores.shape
    pad = -kv_len % block_n
    scores = torch.nn.functional.pad(scores, (0, pad))
    keep = torch.nn.functional.pad(keep, (0, pad), value=False)
    v = torch.nn.functional.pad(v, (0, 0, 0, pad))
    outs, stats = [], []
    for b in range(batch):
        for h in range(heads):
            state = [torch.full((q_len, 1), init, dtype=torch.float64) for init in spec.init]
            acc = torch.zeros(q_len, v.shape[-1], dtype=torch.float64)
            for start in range(0, kv_len + pad, block_n):
                tile = slice(start, start + block_n)
                kept = keep[b, h, :, tile]
                if not kept.any():
                    continue
                s = torch.where(kept, scores[b, h, :, tile], spec.masked_score)
                p, alpha, *state = _run_region(spec.update, [s, b, h, *state, *spec.captures])
                p = torch.where(kept, p, 0.0)
                acc = acc * alpha + p @ v[b, h, tile]
            out, *row_stats = _run_region(spec.finalize, [acc, b, h, *state, *spec.captures])
            outs.append(out.broadcast_to(acc.shape))
            stats.append([stat.broadcast_to(q_len, 1).squeeze(-1) for stat in row_stats])
    out = torch.stack(outs).view(batch, heads, q_len, -1)
    return [out, *(torch.stack(column).view(batch, heads, q_len) for column in zip(*stats))]


MASKS: dict[str, Callable[..., Any]] = {
    "none": lambda b, h, q, kv: q >= 0,
    "causal": lambda b, h, q, kv: q >= kv,
    # Rows 0-4 see no key; head 1 sees only even keys.
    "empty_rows": lambda b, h, q, kv: (q >= 5) & (kv <= q) & ((h != 1) | (kv % 2 == 0)),
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("norm", _normalizers(), ids=repr)
def test_normalizer_online_regions_match_reference(norm, mask):
    """The traced regions run tile by tile (ragged, masked, GQA) give the float64 reference's out and stats."""
    q = torch.randn(2, HEADS, 24, 16, generator=GEN, dtype=torch.float64)
    k = torch.randn(2, 2, 40, 16, generator=GEN, dtype=torch.float64) * 2
    v = torch.randn(2, 2, 40, 8, generator=GEN, dtype=torch.float64)
    want = attention_reference(q, k, v, mask_mod=MASKS[mask], normalizer=norm)
    assert len(want) == 1 + len(norm.stats)

    scores = q @ k.repeat_interleave(2, 1).transpose(-1, -2) / 4
    i, j = torch.arange(24).view(-1, 1), torch.arange(40).view(1, -1)
    keep = MASKS[mask](torch.arange(2).view(-1, 1, 1, 1), torch.arange(HEADS).view(1, -1, 1, 1), i, j)
    keep = keep.broadcast_to(scores.shape)
    spec = trace_normalizer(norm)
    for block_n in (16, 32):
        got = _run_online(spec, scores, keep, v.repeat_interleave(2, 1), block_n)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert not g.isnan().any()
            finite = torch.isfinite(w)
            assert torch.equal(finite, torch.isfinite(g)) and torch.equal(g[~finite], w[~finite])
            error = (g[finite] - w[finite]).norm() / w[finite].norm()
            # The regions' constants (log2 e, ln 2) are f32; everything else is float64.
            assert error < 1e-6, f"block {block_n}: relative error {error}"


# Functions for normalizers, on tensors and traced values.


def test_normalizer_row_reductions_and_fmax_on_tensors():
    """row_max / row_sum reduce the last dimension keeping it; fmax / fmin ignore NaN."""
    x = torch.tensor([[1.0, -2.0, 5.0], [0.5, 0.25, -1.0]], dtype=torch.float64)
    assert torch.equal(row_max(x), torch.tensor([[5.0], [0.5]], dtype=torch.float64))
    assert torch.equal(row_sum(x), torch.tensor([[4.0], [-0.25]], dtype=torch.float64))
    nan = float("nan")
    assert attnc.fmax(nan, 2.0) == 2.0 and attnc.fmax(2.0, nan) == 2.0 and attnc.fmin(3.0, -1) == -1
    got = attnc.fmax(torch.tensor([nan, 1.0, -3.0]), 0.0)
    assert torch.equal(got, torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(TypeError, match="row_sum"):
        row_sum(3.0)


def test_normalizer_fmax_traces_to_maxnumf():
    """attnc.fmax / fmin and torch.fmax on traced values are arith.maxnumf / minnumf."""
    ir = _ir(
        trace_score_mod(
            lambda score, b, h, q, kv: attnc.fmax(score, 0) + attnc.fmin(score, h) + torch.fmax(score, score)
        ).region
    )
    assert "arith.maxnumf %score, %cst : f32" in ir
    assert "arith.minnumf %score, %2 : f32" in ir
    assert "arith.maxnumf %score, %score : f32" in ir


# Resolving names.


def test_normalizer_resolve_builtin_names():
    """Names give fresh built-in instances; an instance passes through."""
    assert set(BUILTIN_NORMALIZERS) == {"softmax", "sigmoid", "relu", "retention"}
    for name, cls in BUILTIN_NORMALIZERS.items():
        norm = resolve_normalizer(name)
        assert type(norm) is cls and trace_normalizer(norm).name == name
    norm = Retention()
    assert resolve_normalizer(norm) is norm


def test_normalizer_resolve_rejects_unknown():
    """Unknown names, classes and other objects are rejected with what to pass instead."""
    with pytest.raises(ValueError, match="unknown normalizer 'sparsemax'; available: 'softmax', 'sigmoid'"):
        resolve_normalizer("sparsemax")
    with pytest.raises(ValueError, match=r"SoftmaxWithSinks\(sinks\)"):
        resolve_normalizer("softmax_with_sinks")
    with pytest.raises(TypeError, match=r"instance of Retention, not the class: write Retention\(\)"):
        resolve_normalizer(Retention)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a name .* or an attnc.Normalizer instance, got function"):
        resolve_normalizer(lambda s: s)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"float tensor \[query heads\]"):
        SoftmaxWithSinks(torch.zeros(2, 4))


# User errors: a TraceError naming this file and line, with a caret under the expression.


def _assert_points_at(error: TraceError, fn: Callable[..., Any], expression: str) -> None:
    lines, start = inspect.getsourcelines(fn)
    offset = next(i for i, line in enumerate(lines) if expression in line)
    source = lines[offset].rstrip()
    text = str(error)
    assert f"test_normalizer_trace.py:{start + offset}:" in text.splitlines()[0]
    shown, caret = text.splitlines()[1:3]
    assert shown.strip() == source.strip()
    assert caret.strip() == "^" * len(expression)
    assert caret.index("^") - shown.index(source.strip()) == source.strip().index(expression)


class _Stateful(Normalizer):
    state = {"m": float("-inf"), "l": 0.0}

    def finalize(self, acc, state):
        return acc, {}


def test_normalizer_error_update_return_structure():
    """update must return (p, new_state, alpha); the error points at the return."""

    class Swapped(_Stateful):
        def update(self, scores, state):
            return scores, 1.0, {"m": state["m"], "l": state["l"]}

    with pytest.raises(TraceError, match=r"update must return \(p, new_state, alpha\)") as info:
        trace_normalizer(Swapped())
    _assert_points_at(info.value, Swapped.update, 'scores, 1.0, {"m": state["m"], "l": state["l"]}')


def test_normalizer_error_state_keys():
    """The new state must have exactly the declared names."""

    class Missing(_Stateful):
        def update(self, scores, state):
            return scores, {"m": state["m"], "n": state["l"]}, 1.0

    with pytest.raises(
        TraceError,
        match=r"update's new state has 'n', which `state` does not declare, and lacks 'l' \(`state` declares 'm', 'l'\)",
    ):
        trace_normalizer(Missing())


def test_normalizer_error_state_per_score():
    """A state value computed from scores without a row reduction points at where it was computed."""

    class NoReduction(_Stateful):
        def update(self, scores, state):
            m_new = attnc.maximum(state["m"], scores)
            return attnc.exp(scores - m_new), {"m": m_new, "l": state["l"]}, 1.0

    with pytest.raises(TraceError, match=r"update returns new state 'm' per score.*attnc.row_max") as info:
        trace_normalizer(NoReduction())
    _assert_points_at(info.value, NoReduction.update, 'attnc.maximum(state["m"], scores)')


def test_normalizer_error_alpha_per_score():
    """alpha rescales the whole accumulator row, so it cannot vary per score."""

    class ElementAlpha(Normalizer):
        def update(self, scores, state):
            return attnc.exp(scores), {}, scores

        def finalize(self, acc, state):
            return acc, {}

    with pytest.raises(TraceError, match="update returns alpha per score"):
        trace_normalizer(ElementAlpha())


def test_normalizer_error_undeclared_stat():
    """finalize may return only the statistics `stats` declares."""

    class Undeclared(_Stateful):
        stats = ("lse",)

        def update(self, scores, state):
            return scores, dict(state), 1.0

        def finalize(self, acc, state):
            return acc, {"lse": state["m"], "max": state["m"]}

    with pytest.raises(
        TraceError, match=r"finalize's statistics has 'max', which `stats` does not declare \(`stats` declares 'lse'\)"
    ) as info:
        trace_normalizer(Undeclared())
    _assert_points_at(info.value, Undeclared.finalize, 'acc, {"lse": state["m"], "max": state["m"]}')


def test_normalizer_error_stat_per_element():
    """A statistic computed from the accumulator is per element, not per row."""

    class AccStat(_Stateful):
        stats = ("norm",)

        def update(self, scores, state):
            return scores, dict(state), 1.0

        def finalize(self, acc, state):
            return acc, {"norm": acc * state["l"]}

    with pytest.raises(TraceError, match="statistic 'norm' per accumulator element") as info:
        trace_normalizer(AccStat())
    _assert_points_at(info.value, AccStat.finalize, 'acc * state["l"]')


def test_normalizer_error_row_reduction_outside_update():
    """row_max / row_sum reduce a tile of scores: not in finalize, not in a score_mod, not of a row value."""

    class InFinalize(Normalizer):
        def update(self, scores, state):
            return scores, {}, 1.0

        def finalize(self, acc, state):
            return acc / row_sum(acc), {}

    with pytest.raises(TraceError, match="belongs in a Normalizer's update, not in a Normalizer's finalize") as info:
        trace_normalizer(InFinalize())
    _assert_points_at(info.value, InFinalize.finalize, "row_sum(acc)")

    def mod(score, b, h, q_idx, kv_idx):
        return score - row_max(score)

    with pytest.raises(TraceError, match="not in a score_mod") as info:
        trace_score_mod(mod)
    _assert_points_at(info.value, mod, "row_max(score)")

    class OfState(_Stateful):
        def update(self, scores, state):
            return scores, {"m": state["m"], "l": row_sum(state["l"])}, 1.0

    with pytest.raises(TraceError, match="row_sum of a value that is the same along the row") as info:
        trace_normalizer(OfState())
    _assert_points_at(info.value, OfState.update, 'row_sum(state["l"])')


def test_normalizer_error_reads_undeclared_state():
    """Reading a state name that `state` does not declare points at the read."""

    class Undeclared(Normalizer):
        state = {"m": 0.0}

        def update(self, scores, state):
            return scores, {"m": state["m"] + state["count"]}, 1.0

        def finalize(self, acc, state):
            return acc, {}

    with pytest.raises(TraceError, match=r"update reads state 'count', but `state` declares m") as info:
        trace_normalizer(Undeclared())
    _assert_points_at(info.value, Undeclared.update, 'state["count"]')


def test_normalizer_error_declarations():
    """stats written as a bare string, a non-number initial state and a missing method are named."""

    class BareStat(_Stateful):
        stats = "lse"  # type: ignore[assignment]

    with pytest.raises(
        TraceError, match=r"BareStat.stats must be a tuple of names, got 'lse'; write \('lse',\)"
    ) as info:
        trace_normalizer(BareStat())
    _, start = inspect.getsourcelines(BareStat)
    assert f"test_normalizer_trace.py:{start}:" in str(info.value)

    class TensorInit(_Stateful):
        state = {"m": torch.zeros(1)}  # type: ignore[dict-item]

    with pytest.raises(TraceError, match=r"TensorInit.state\['m'\] must be a number"):
        trace_normalizer(TensorInit())

    with pytest.raises(TraceError, match=r"_Stateful does not define update\(self, scores, state\)"):
        trace_normalizer(_Stateful())


def test_normalizer_error_wrong_signature():
    """An update that cannot take (scores, state) is reported at its definition."""

    class OneArgument(_Stateful):
        def update(self, scores):  # type: ignore[override]
            return scores, {}, 1.0

    with pytest.raises(TraceError, match=r"a Normalizer's update takes \(self, scores, state\)") as info:
        trace_normalizer(OneArgument())
    _, start = inspect.getsourcelines(OneArgument.update)
    assert f"test_normalizer_trace.py:{start}:" in str(info.value)


def test_normalizer_error_tensor_result():
    """Returning a whole captured tensor instead of one element is rejected."""
    table = torch.randn(HEADS, generator=GEN)

    class WholeTable(Normalizer):
        def update(self, scores, state):
            return scores, {}, table

        def finalize(self, acc, state):
            return acc, {}

    with pytest.raises(TraceError, match=r"alpha is a tensor of shape \(4,\); index it"):
        trace_normalizer(WholeTable())
