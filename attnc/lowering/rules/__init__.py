"""Triton rules: one per op, collected in `RULES` by the `@rule` decorator.

A rule receives the `KernelPrinter` and the op, and either binds the op's results to
Python expressions (`p.bind`) or writes lines (`p.assign`, `p.line`). The modules of
this package register their rules when imported; `attnc.lowering.triton` imports them.
(So this module binds no name `arith`, `math`, `scf` or `tile`: those are submodules.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import isinf, isnan
from typing import TYPE_CHECKING, Any, TypeVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    BFloat16Type,
    Float8E4M3FNType,
    Float8E5M2Type,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    i1,
)
from xdsl.ir import Attribute, Operation

from attnc.dialect.tile import element_type_of, float_text

if TYPE_CHECKING:
    from attnc.lowering.triton import KernelPrinter

OpT = TypeVar("OpT", bound=Operation)

Rule = Callable[["KernelPrinter", Any], None]
"""Print one op: `rule(printer, op)`."""

RULES: dict[type[Operation], Rule] = {}


def rule(
    *op_types: type[OpT],
) -> Callable[[Callable[[KernelPrinter, OpT], None]], Callable[[KernelPrinter, OpT], None]]:
    """Register the decorated function as the rule of each of `op_types`."""

    def register(
        fn: Callable[[KernelPrinter, OpT], None],
    ) -> Callable[[KernelPrinter, OpT], None]:
        for op_type in op_types:
            assert op_type not in RULES, f"two Triton rules for '{op_type.name}'"
            RULES[op_type] = fn
        return fn

    return register


_DTYPES: dict[type[Attribute], str] = {
    Float16Type: "tl.float16",
    BFloat16Type: "tl.bfloat16",
    Float32Type: "tl.float32",
    Float64Type: "tl.float64",
    Float8E4M3FNType: "tl.float8e4nv",
    Float8E5M2Type: "tl.float8e5",
    IndexType: "tl.int32",
}


def dtype(ty: Attribute) -> str:
    """The `tl` dtype of a scalar type or of a tensor's elements.

    `index` is Triton's default integer, int32.
    """
    element = element_type_of(ty)
    if isinstance(element, IntegerType):
        if element.width.data not in (1, 8, 16, 32, 64):
            raise NotImplementedError(f"no Triton dtype for {element}")
        return f"tl.int{element.width.data}"
    if type(element) in _DTYPES:
        return _DTYPES[type(element)]
    raise NotImplementedError(f"no Triton dtype for {element}")


def literal(attr: Attribute) -> str:
    """A scalar `FloatAttr`/`IntegerAttr` as a Python literal: `0.5`, `float("-inf")`."""
    if isinstance(attr, FloatAttr):
        value = attr.value.data
        if isnan(value):
            return 'float("nan")'
        if isinf(value):
            return 'float("inf")' if value > 0 else 'float("-inf")'
        return float_text(value, attr.type)
    if isinstance(attr, IntegerAttr):
        if attr.type == i1:
            return "True" if attr.value.data else "False"
        return str(attr.value.data)
    raise NotImplementedError(f"no Python literal for {attr}")


def shape(dims: ArrayAttr[StringAttr] | Sequence[int | str]) -> str:
    """A shape tuple from dims or sizes: `(BLOCK_M, BLOCK_N)`, `(BLOCK_M,)` or `()`."""
    if isinstance(dims, ArrayAttr):
        dims = [d.data for d in dims.data]
    names = [str(d) for d in dims]
    if len(names) == 1:
        return f"({names[0]},)"
    return f"({', '.join(names)})"
