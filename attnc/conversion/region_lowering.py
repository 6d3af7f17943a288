"""Lowering a scalar attn region (score_mod, mask_mod, update, finalize, classify) onto tiles.

A region is written for one score and its indices; here every value becomes a
scalar or a 2-d tile ([BLOCK_M, 1] per row, [1, BLOCK_N] per column,
[BLOCK_M, BLOCK_N] per score) and the builder broadcasts as Triton does.
`attn.row_max`/`attn.row_sum` become reductions over the key axis, kept 2-d.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import arith, math, tensor
from xdsl.dialects.builtin import IndexType
from xdsl.ir import Operation, Region, SSAValue
from xdsl.utils.exceptions import PassFailedException

from attnc.conversion.kernel_builder import Capture, KernelBuilder, Value
from attnc.dialect import attn, tile
from attnc.dialect.capture_reads import GUARD_REPORT, guarded_dims

BINARY = (
    arith.AddfOp,
    arith.SubfOp,
    arith.MulfOp,
    arith.DivfOp,
    arith.MaximumfOp,
    arith.MinimumfOp,
    arith.MaxnumfOp,
    arith.MinnumfOp,
    arith.AddiOp,
    arith.SubiOp,
    arith.MuliOp,
    arith.DivSIOp,
    arith.RemSIOp,
    arith.FloorDivSIOp,
    arith.MaxSIOp,
    arith.MinSIOp,
    arith.AndIOp,
    arith.OrIOp,
    arith.XOrIOp,
    arith.ShLIOp,
    arith.ShRSIOp,
)
UNARY = (
    arith.NegfOp,
    math.ExpOp,
    math.Exp2Op,
    math.LogOp,
    math.Log2Op,
    math.TanhOp,
    math.AbsFOp,
    math.AbsIOp,
    math.SqrtOp,
    math.RsqrtOp,
    math.SinOp,
    math.CosOp,
    math.TanOp,
    math.ErfOp,
    math.Log1pOp,
    math.ExpM1Op,
    math.FloorOp,
    math.CeilOp,
    math.RoundEvenOp,
)
LOG2E = 1.4426950408889634

CASTS = (
    arith.IndexCastOp,
    arith.SIToFPOp,
    arith.UIToFPOp,
    arith.FPToSIOp,
    arith.ExtFOp,
    arith.TruncFOp,
    arith.ExtSIOp,
    arith.ExtUIOp,
    arith.TruncIOp,
)


def _lower_op(kb: KernelBuilder, op: Operation, get) -> Value | None:
    if isinstance(op, arith.ConstantOp):
        return kb.constant_like(op)
    if isinstance(op, BINARY):
        return kb.binary(type(op), get(op.operands[0]), get(op.operands[1]))
    if isinstance(op, math.ExpOp):
        # exp(x) = 2^(x·log2 e): the GPU's exp is exp2, and Triton's tl.exp on f32 takes
        # the precise libdevice path; the multiply often folds into a scale (see the builder).
        scaled = kb.binary(arith.MulfOp, get(op.operand), kb.f32(LOG2E))
        return kb.unary(math.Exp2Op, scaled)
    if isinstance(op, UNARY):
        return kb.unary(type(op), get(op.operands[0]))
    if isinstance(op, arith.CmpiOp):
        predicate = arith.CMPI_COMPARISON_OPERATIONS[op.predicate.value.data]
        if predicate not in tile.CmpIOp.PREDICATES:
            raise PassFailedException(
                f"convert-attn-to-tile cannot lower 'arith.cmpi' with unsigned predicate {predicate}: "
                "Triton compares integers as signed"
            )
        return kb.cmp(predicate, get(op.lhs), get(op.rhs))
    if isinstance(op, arith.CmpfOp):
        return kb.cmpf(arith.CMPF_COMPARISON_OPERATIONS[op.predicate.value.data], get(op.lhs), get(op.rhs))
    if isinstance(op, arith.SelectOp):
        return kb.where(get(op.cond), get(op.lhs), get(op.rhs))
    if isinstance(op, CASTS):
        target = op.results[0].type
        return kb.cast(get(op.operands[0]), kb.i32_type if isinstance(target, IndexType) else target)
    if isinstance(op, attn.RowMaxOp):
        return kb.row_reduce("max", get(op.value))
    if isinstance(op, attn.RowSumOp):
        return kb.row_reduce("sum", get(op.value))
    if isinstance(op, tensor.ExtractOp):
        handle = get(op.tensor)
        assert isinstance(handle, Capture)
        source = op.tensor.name_hint or "capture"
        indices = [get(i) for i in op.indices]
        return kb.gather(handle, indices, guarded_dims(op), source, GUARD_REPORT in op.attributes)
    return None


def lower_region(kb: KernelBuilder, region: Region, args: Sequence[Value], what: str) -> list[SSAValue]:
    """Emits the region's ops on tiles with `args` bound to its block arguments; returns what it yields."""
    block = region.blocks[0]
    values: dict[SSAValue, Value] = dict(zip(block.args, args))

    def get(v: SSAValue) -> Value:
        return values[v]

    for op in block.ops:
        if isinstance(op, attn.YieldOp):
            yielded = [values[v] for v in op.values]
            if any(isinstance(v, Capture) for v in yielded):
                raise PassFailedException(f"convert-attn-to-tile: the {what} region yields a captured tensor")
            return [v for v in yielded if isinstance(v, SSAValue)]
        result = _lower_op(kb, op, get)
        if result is None:
            raise PassFailedException(f"convert-attn-to-tile cannot lower '{op.name}' in the {what} region")
        name = op.results[0].name_hint
        if name and isinstance(result, SSAValue) and result.owner is not None and result.name_hint is None:
            result.name_hint = name
        values[op.results[0]] = result
    raise PassFailedException(f"convert-attn-to-tile: the {what} region has no attn.yield")
