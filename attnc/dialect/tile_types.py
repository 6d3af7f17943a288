"""The `tile` dialect's types and attributes, and the shape and scalar helpers that its
ops share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects.builtin import (
    AnyFloat,
    BFloat16Type,
    Float16Type,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    TensorType,
    i1,
)
from xdsl.dialects.utils import EnumAttribute
from xdsl.ir import (
    Attribute,
    Operation,
    ParametrizedAttribute,
    SpacedOpaqueSyntaxAttribute,
    TypeAttribute,
)
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

# ===-------------------------------------------------------------------=== #
# Types and attributes
# ===-------------------------------------------------------------------=== #


@irdl_attr_definition
class PtrType(ParametrizedAttribute, TypeAttribute):
    """A pointer to global memory holding elements of `pointee`.

    ```mlir
    !tile.ptr<bf16>
    ```
    """

    name = "tile.ptr"
    pointee: Attribute

    def __init__(self, pointee: Attribute):
        super().__init__(pointee)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            return (parser.parse_type(),)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_attribute(self.pointee)

    def verify(self) -> None:
        if not isinstance(self.pointee, IntegerType | AnyFloat):
            raise VerifyException(f"'tile.ptr' expected an integer or float pointee, but got {self.pointee}")


class ReduceKind(StrEnum):
    MAX = "max"
    MIN = "min"
    SUM = "sum"


@irdl_attr_definition
class ReduceKindAttr(EnumAttribute[ReduceKind], SpacedOpaqueSyntaxAttribute):
    """Which reduction `tile.reduce` computes: `tl.max`, `tl.min` or `tl.sum`."""

    name = "tile.reduce_kind"


class InputPrecision(StrEnum):
    IEEE = "ieee"
    TF32 = "tf32"
    TF32X3 = "tf32x3"


@irdl_attr_definition
class InputPrecisionAttr(EnumAttribute[InputPrecision], SpacedOpaqueSyntaxAttribute):
    """How `tile.dot` multiplies f32 inputs (`tl.dot(..., input_precision=...)`)."""

    name = "tile.input_precision"


# ===-------------------------------------------------------------------=== #
# Helpers shared by the verifiers and the custom syntax
# ===-------------------------------------------------------------------=== #


def shape_of(type: Attribute) -> tuple[int, ...]:
    """The nominal shape of a tensor type, `()` for a scalar."""
    if isinstance(type, TensorType):
        return tuple(type.get_shape())
    return ()


def element_type_of(type: Attribute) -> Attribute:
    """The element type of a tensor type, the type itself for a scalar."""
    if isinstance(type, TensorType):
        return type.get_element_type()
    return type


def with_shape(element_type: Attribute, shape: Sequence[int]) -> Attribute:
    """`tensor<shape x element_type>`, or the bare element type for the empty shape."""
    if not shape:
        return element_type
    return TensorType(element_type, shape)


def shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def axes_str(n: int) -> str:
    """`0 or 1`, `0, 1 or 2`: the valid axes of a rank-`n` value."""
    axes = [str(a) for a in range(n)]
    if len(axes) == 1:
        return axes[0]
    return ", ".join(axes[:-1]) + " or " + axes[-1]


def is_scalar(type: Attribute) -> bool:
    return isinstance(type, IntegerType | IndexType | AnyFloat | PtrType)


def scalar_attr(value: float | bool, type: Attribute) -> FloatAttr | IntegerAttr:
    """`value` as an attribute of scalar `type` (float for float types, else integer)."""
    if isinstance(type, AnyFloat):
        return FloatAttr(float(value), type)
    if type == i1:
        return IntegerAttr(-1 if value else 0, i1)
    assert isinstance(type, IntegerType | IndexType), f"expected a scalar type, got {type}"
    return IntegerAttr(int(value), type)


def _round_to(value: float, type: Attribute) -> float:
    """`value` rounded to the precision of f16, bf16 or f32 `type` (to nearest even); other types keep it."""
    if isinstance(type, Float16Type | BFloat16Type | Float32Type):
        return type.unpack(type.pack([value]), 1)[0]
    return value


def float_text(value: float, type: Attribute) -> str:
    """The shortest decimal that reads back as `value` at the precision of `type`.

    Finite values only; always has a `.` or an exponent, as MLIR and Python want.
    """
    target = _round_to(value, type)
    text = repr(value)
    for digits in range(1, 18):
        candidate = f"{value:.{digits}g}"
        try:
            if _round_to(float(candidate), type) == target:
                text = repr(float(candidate))
                break
        except OverflowError:
            continue
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{exponent}" if exponent else mantissa


def print_scalar(printer: Printer, attr: Attribute) -> None:
    """Print a scalar attribute without its type: `-inf`, `0.5`, `1`, `true`."""
    if isinstance(attr, FloatAttr):
        value = attr.value.data
        if math.isnan(value):
            printer.print_string("nan")
        elif math.isinf(value):
            printer.print_string("inf" if value > 0 else "-inf")
        else:
            printer.print_string(float_text(value, attr.type))
    elif isinstance(attr, IntegerAttr):
        printer.print_int(attr.value.data, attr.type)
    else:
        printer.print_attribute(attr)


def parse_scalar(parser: Parser) -> float | int | bool:
    """Parse what `print_scalar` prints."""
    negative = parser.parse_optional_punctuation("-") is not None
    if parser.parse_optional_keyword("inf") is not None:
        return -math.inf if negative else math.inf
    if not negative and parser.parse_optional_keyword("nan") is not None:
        return math.nan
    if not negative and (boolean := parser.parse_optional_boolean()) is not None:
        return boolean
    value = parser.parse_number()
    return -value if negative else value


def scalar_value(attr: Attribute) -> float | int | bool:
    if isinstance(attr, FloatAttr):
        return attr.value.data
    assert isinstance(attr, IntegerAttr)
    if attr.type == i1:
        return bool(attr.value.data)
    return attr.value.data


def verify_scalar_attr(op: Operation, role: str, attr: Attribute, type: Attribute) -> None:
    if not isinstance(attr, FloatAttr | IntegerAttr) or attr.type != type:
        raise VerifyException(f"'{op.name}' op expected {role} of type {type}, but got {attr}")
