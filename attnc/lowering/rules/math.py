"""Rules for `math`: elementwise functions as data.

`tl.exp` and most other `tl` math functions take f32 or f64 only; a pass extends
narrower floats first. What `tl` lacks is written with what every Triton backend and
the interpreter have (libdevice is target specific, and the interpreter has none):
tanh with `tl.sigmoid`; log1p as log(u)·x/(u − 1) with u = 1 + x (Goldberg), exact where
u rounds to 1; expm1 as its Taylor polynomial where |x| < 0.5, where exp(x) − 1 would
cancel; roundeven from floor and the fraction it drops.
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

# x + x²/2! + ... + x⁹/9!, in Horner's form: within 1e-8 relative where |x| < 0.5.
_EXPM1_TAYLOR = "{0} * (" + "".join(f"1 + {{0}} / {k} * (" for k in range(2, 9)) + "1 + {0} / 9" + ")" * 8

# Where log1p(x) is x itself (1 + x rounds to 1, or x = inf); the divisor stays nonzero there.
_LOG1P_EXACT = '(1 + {0} == 1) | ({0} == float("inf"))'

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
    math.TanOp: ("tl.sin({0}) / tl.cos({0})", True),
    math.Log1pOp: (
        f"tl.where({_LOG1P_EXACT}, {{0}}, tl.log(1 + {{0}}) * ({{0}} / tl.where({_LOG1P_EXACT}, 1, 1 + {{0}} - 1)))",
        True,
    ),
    math.ExpM1Op: (f"tl.where(tl.abs({{0}}) < 0.5, {_EXPM1_TAYLOR}, tl.exp({{0}}) - 1)", True),
    math.RoundEvenOp: (
        "tl.floor({0}) + tl.where(({0} - tl.floor({0}) > 0.5)"
        " | (({0} - tl.floor({0}) == 0.5) & (tl.floor({0}) % 2 != 0)), 1.0, 0.0)",
        True,
    ),
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
