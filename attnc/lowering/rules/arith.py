"""Rules for `arith` and for the tensor forms of compare, select and cast in `tile`.

Elementwise ops are data: a template whose `{}` are the operands, each an atom (a
name, a literal, `x[:, None]`), so no template needs more parentheses than it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from xdsl.dialects import arith
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    i1,
    i32,
)
from xdsl.ir import Attribute, Operation

from attnc.dialect import tile
from attnc.lowering.rules import RULES, dtype, literal, rule, shape

if TYPE_CHECKING:
    from attnc.lowering.triton import KernelPrinter

# Integer division in Triton is C's: `//` truncates toward zero and `%` takes the sign
# of the dividend, on tensors. floordivsi and ceildivsi round from there.
BINARY: dict[type[Operation], str] = {
    arith.AddfOp: "{} + {}",
    arith.AddiOp: "{} + {}",
    arith.SubfOp: "{} - {}",
    arith.SubiOp: "{} - {}",
    arith.MulfOp: "{} * {}",
    arith.MuliOp: "{} * {}",
    arith.DivfOp: "{} / {}",
    arith.DivSIOp: "{} // {}",
    arith.RemSIOp: "{} % {}",
    arith.FloorDivSIOp: ("tl.where(({0} % {1} != 0) & (({0} % {1} < 0) != ({1} < 0)), {0} // {1} - 1, {0} // {1})"),
    arith.CeilDivSIOp: ("tl.where(({0} % {1} != 0) & (({0} % {1} < 0) == ({1} < 0)), {0} // {1} + 1, {0} // {1})"),
    arith.AndIOp: "{} & {}",
    arith.OrIOp: "{} | {}",
    arith.XOrIOp: "{} ^ {}",
    arith.ShLIOp: "{} << {}",
    arith.ShRSIOp: "{} >> {}",
    # arith.maximumf propagates NaN; arith.maxnumf is Triton's default.
    arith.MaximumfOp: "tl.maximum({}, {}, propagate_nan=tl.PropagateNan.ALL)",
    arith.MinimumfOp: "tl.minimum({}, {}, propagate_nan=tl.PropagateNan.ALL)",
    arith.MaxnumfOp: "tl.maximum({}, {})",
    arith.MinnumfOp: "tl.minimum({}, {})",
    arith.MaxSIOp: "tl.maximum({}, {})",
    arith.MinSIOp: "tl.minimum({}, {})",
    arith.NegfOp: "-{}",
    arith.SelectOp: "tl.where({}, {}, {})",
    tile.SelectOp: "tl.where({}, {}, {})",
}

# Python evaluates these exactly like Triton when every operand is a Python int.
_PYTHON_EXACT = frozenset(
    {
        arith.AddiOp,
        arith.SubiOp,
        arith.MuliOp,
        arith.AndIOp,
        arith.OrIOp,
        arith.XOrIOp,
        arith.ShLIOp,
        arith.ShRSIOp,
    }
)

# Predicates by name; Triton compares floats ordered, except `!=`, which is une.
CMPI: dict[str, str] = {
    "eq": "{0} == {1}",
    "ne": "{0} != {1}",
    "slt": "{0} < {1}",
    "sle": "{0} <= {1}",
    "sgt": "{0} > {1}",
    "sge": "{0} >= {1}",
}
CMPF: dict[str, str] = {
    "oeq": "{0} == {1}",
    "une": "{0} != {1}",
    "olt": "{0} < {1}",
    "ole": "{0} <= {1}",
    "ogt": "{0} > {1}",
    "oge": "{0} >= {1}",
    "one": "({0} < {1}) | ({0} > {1})",
    "ord": "({0} == {0}) & ({1} == {1})",
    "uno": "({0} != {0}) | ({1} != {1})",
    "ueq": "~(({0} < {1}) | ({0} > {1}))",
    "ult": "~({0} >= {1})",
    "ule": "~({0} > {1})",
    "ugt": "~({0} <= {1})",
    "uge": "~({0} < {1})",
}


def emit_elementwise(p: KernelPrinter, op: Operation, template: str, python_exact: bool) -> None:
    """Print `template` on the operands; arithmetic on Python numbers stays constish."""
    (result,) = op.results
    all_constish = all(p.is_constish(v) for v in op.operands)
    if all_constish and not (python_exact and result.type in (i32, i1, IndexType())):
        # Triton would compute on Python numbers; give it tensors of the IR's type.
        texts = [p.tensor(v) for v in op.operands]
        constish = False
    else:
        texts = [p.expr(v) for v in op.operands]
        constish = all_constish
    text = p.fill(template, texts)
    p.assign(result, text, op.name.split(".")[-1], constish=constish)


def _elementwise_rule(template: str, python_exact: bool):
    def emit(p: KernelPrinter, op: Operation) -> None:
        emit_elementwise(p, op, template, python_exact)

    return emit


for _op_type, _template in BINARY.items():
    RULES[_op_type] = _elementwise_rule(_template, _op_type in _PYTHON_EXACT)


@rule(arith.CmpiOp, tile.CmpIOp)
def cmpi(p: KernelPrinter, op: arith.CmpiOp | tile.CmpIOp) -> None:
    predicate = _predicate(op, arith.CMPI_COMPARISON_OPERATIONS)
    if predicate not in CMPI:
        raise NotImplementedError(f"'{op.name}' with unsigned predicate {predicate}")
    emit_elementwise(p, op, CMPI[predicate], python_exact=True)


@rule(arith.CmpfOp, tile.CmpFOp)
def cmpf(p: KernelPrinter, op: arith.CmpfOp | tile.CmpFOp) -> None:
    predicate = _predicate(op, arith.CMPF_COMPARISON_OPERATIONS)
    if predicate not in CMPF:
        raise NotImplementedError(f"'{op.name}' with predicate {predicate}")
    emit_elementwise(p, op, CMPF[predicate], python_exact=False)


def _predicate(op: Operation, names: Sequence[str]) -> str:
    """The predicate's name: arith's ops hold its index in `names`, tile's the name itself."""
    predicate = op.properties["predicate"]
    if isinstance(predicate, IntegerAttr):
        return names[predicate.value.data]
    assert isinstance(predicate, StringAttr)
    return predicate.data


@rule(arith.ConstantOp)
def constant(p: KernelPrinter, op: arith.ConstantOp) -> None:
    value = op.value
    if isinstance(value, FloatAttr | IntegerAttr):
        p.bind(op.result, literal(value), constish=True)
        return
    if isinstance(value, DenseIntOrFPElementsAttr) and value.is_splat():
        element = value.get_attrs()[0]
        dims = shape(tile.shape_of(op.result.type))
        p.assign(
            op.result,
            f"tl.full({dims}, {literal(element)}, {dtype(op.result.type)})",
            "c",
        )
        return
    raise NotImplementedError(f"'arith.constant' with value {value}")


# --- conversions ------------------------------------------------------------

_SIGNED_CASTS = (arith.SIToFPOp, arith.ExtSIOp)
_UNSIGNED_CASTS = (arith.UIToFPOp, arith.ExtUIOp)


def _is_int(type: Attribute) -> bool:
    return isinstance(tile.element_type_of(type), IntegerType | IndexType)


@rule(
    arith.ExtFOp,
    arith.TruncFOp,
    arith.SIToFPOp,
    arith.UIToFPOp,
    arith.FPToSIOp,
    arith.ExtSIOp,
    arith.ExtUIOp,
    arith.TruncIOp,
    arith.IndexCastOp,
    arith.BitcastOp,
    tile.CastOp,
)
def convert(p: KernelPrinter, op: Operation) -> None:
    """`x.to(tl.float32)`; Triton widens i1 unsigned and every other int signed."""
    (source,) = op.operands
    (result,) = op.results
    from_i1 = tile.element_type_of(source.type) == i1
    if isinstance(op, _SIGNED_CASTS) and from_i1:
        raise NotImplementedError(f"'{op.name}' from i1 (Triton widens i1 unsigned)")
    if isinstance(op, _UNSIGNED_CASTS) and not from_i1:
        raise NotImplementedError(f"'{op.name}' from a wider integer than i1")
    target = dtype(result.type)
    if dtype(source.type) == target:
        p.bind(result, p.expr(source), constish=p.is_constish(source))
        return
    bitcast = ", bitcast=True" if isinstance(op, arith.BitcastOp) else ""
    if not p.is_constish(source):
        text = f"{p.operand(source)}.to({target}{bitcast})"
    elif _is_int(source.type) and not bitcast:
        text = f"tl.cast({p.expr(source)}, {target})"
    else:
        text = f"{p.tensor(source)}.to({target}{bitcast})"
    p.assign(result, text, op.name.split(".")[-1])
