"""Built-in normalizers, written as `attn.online_rowscale` instances.

Each built-in is the update/finalize pair a user could write themselves; the
lowering has no special case for any of them.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, f32
from xdsl.ir import Block, Operation, Region, SSAValue

from attnc.dialect.attn import NormalizerSpec, RowMaxOp, RowSumOp, YieldOp


class _Scalars:
    """Appends f32 arith/math ops to one block, naming results as it goes."""

    def __init__(self, block: Block):
        self.block = block

    def _add(self, op: Operation, name: str) -> SSAValue:
        self.block.add_op(op)
        result = op.results[0]
        result.name_hint = name
        return result

    def const(self, value: float, name: str) -> SSAValue:
        return self._add(arith.ConstantOp(FloatAttr(value, f32)), name)

    def binary(self, op: Callable[[SSAValue, SSAValue], Operation], a: SSAValue, b: SSAValue, name: str) -> SSAValue:
        return self._add(op(a, b), name)

    def unary(self, op: Callable[[SSAValue], Operation], a: SSAValue, name: str) -> SSAValue:
        return self._add(op(a), name)

    def is_equal(self, a: SSAValue, b: SSAValue, name: str) -> SSAValue:
        return self._add(arith.CmpfOp(a, b, "oeq"), name)

    def select(self, c: SSAValue, a: SSAValue, b: SSAValue, name: str) -> SSAValue:
        return self._add(arith.SelectOp(c, a, b), name)

    def yield_(self, *values: SSAValue) -> None:
        self.block.add_op(YieldOp(*values))


def _named_block(names: list[str]) -> Block:
    block = Block(arg_types=[f32] * len(names))
    for arg, name in zip(block.args, names):
        arg.name_hint = name
    return block


LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


def softmax() -> NormalizerSpec:
    """Online softmax (FlashAttention-2) in base 2: running max `m` of score·log2(e), running sum `l`.

    exp(s − max) = 2^(s·log2 e − m): the hardware's exp is exp2, and with the scale
    folded into the score's multiplier the kernel spends one FMA and one exp2 per
    score. A row whose scores are all masked keeps m = -inf and l = 0; it yields
    output 0 and logsumexp -inf, never NaN. Finalize gives the natural-log lse.
    """
    upd = _named_block(["score", "m", "l"])
    score, m, l = upd.args
    b = _Scalars(upd)
    log2e = b.const(LOG2E, "log2e")
    score2 = b.binary(arith.MulfOp, score, log2e, "score2")
    tile_max = b.unary(RowMaxOp, score2, "tile_max")
    m_new = b.binary(arith.MaxnumfOp, m, tile_max, "m_new")
    neg_inf = b.const(float("-inf"), "neg_inf")
    zero = b.const(0.0, "zero")
    all_masked = b.is_equal(m_new, neg_inf, "all_masked")
    m_safe = b.select(all_masked, zero, m_new, "m_safe")
    shifted = b.binary(arith.SubfOp, score2, m_safe, "shifted")
    p = b.unary(math.Exp2Op, shifted, "p")
    m_diff = b.binary(arith.SubfOp, m, m_safe, "m_diff")
    alpha = b.unary(math.Exp2Op, m_diff, "alpha")
    l_scaled = b.binary(arith.MulfOp, l, alpha, "l_scaled")
    tile_sum = b.unary(RowSumOp, p, "tile_sum")
    l_new = b.binary(arith.AddfOp, l_scaled, tile_sum, "l_new")
    b.yield_(p, alpha, m_new, l_new)

    fin = _named_block(["m", "l"])
    m, l = fin.args
    b = _Scalars(fin)
    zero = b.const(0.0, "zero")
    one = b.const(1.0, "one")
    ln2 = b.const(LN2, "ln2")
    empty = b.is_equal(l, zero, "empty_row")
    l_safe = b.select(empty, one, l, "l_safe")
    out_scale = b.binary(arith.DivfOp, one, l_safe, "out_scale")
    m_nat = b.binary(arith.MulfOp, m, ln2, "m_nat")
    log_l = b.unary(math.LogOp, l, "log_l")
    lse = b.binary(arith.AddfOp, m_nat, log_l, "lse")
    b.yield_(out_scale, lse)

    return NormalizerSpec("softmax", ["m", "l"], [float("-inf"), 0.0], Region(upd), Region(fin), num_stats=1)


BUILTIN_NORMALIZERS: dict[str, Callable[[], NormalizerSpec]] = {"softmax": softmax}
