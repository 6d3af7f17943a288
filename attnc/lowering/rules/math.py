"""Rules for `math`: elementwise functions as data.

`tl.exp` and most other `tl` math functions take f32 or f64 only; a pass extends
narrower floats first. tanh is written with `tl.sigmoid`, which every Triton backend
and the interpreter have (the libdevice tanh is target specific).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.dialects import math
from xdsl.dialects.builtin import Float32Type, Float64Type
from xdsl.ir import Operation

from attnc.dialect import tile
from attnc.lowering.rules import RULES

if TYPE_CHECKING:
    from attnc.lowering.triton import KernelPrinter

# op -> (template, whether Triton wants f32 or f64 operands)
MATH: dict[type[Operation], tuple[str, bool]] = {
    math.ExpOp: ("tl.exp({})", True),
    math.Exp2Op: ("tl.exp2({})", True),
    math.LogOp: ("tl.log({})", True),
    math.Log2Op: ("tl.log2({})", True),
    math.SqrtOp: ("tl.sqrt({})", True),
    math.RsqrtOp: ("tl.rsqrt({})", True),
    math.SinOp: ("tl.sin({})", True),
    math.CosOp: ("tl.cos({})", True),
    math.ErfOp: ("tl.erf({})", True),
    math.FloorOp: ("tl.floor({})", True),
    math.CeilOp: ("tl.ceil({})", True),
    math.TanhOp: ("2 * tl.sigmoid(2 * {}) - 1", True),
    math.AbsFOp: ("tl.abs({})", False),
    math.AbsIOp: ("tl.abs({})", False),
    math.FmaOp: ("tl.fma({}, {}, {})", False),
}


def _math_rule(template: str, wide_only: bool):
    def emit(p: KernelPrinter, op: Operation) -> None:
        element = tile.element_type_of(op.results[0].type)
        if wide_only and not isinstance(element, Float32Type | Float64Type):
            raise NotImplementedError(f"'{op.name}' on {element}: Triton computes it in f32 or f64 only")
        (result,) = op.results
        text = p.fill(template, [p.tensor(v) for v in op.operands])
        p.assign(result, text, op.name.split(".")[-1])

    return emit


for _op_type, (_template, _wide_only) in MATH.items():
    RULES[_op_type] = _math_rule(_template, _wide_only)
