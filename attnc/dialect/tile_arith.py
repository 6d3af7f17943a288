"""`tile` ops that are the tensor forms of `arith` ops: comparisons, select and casts; and inline asm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects import arith
from xdsl.dialects.builtin import AnyFloat, IndexType, IntegerType, StringAttr, i1
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    AnyAttr,
    IRDLOperation,
    VarConstraint,
    attr_def,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from attnc.dialect.tile_types import element_type_of, shape_of, shape_str, with_shape

# ===-------------------------------------------------------------------=== #
# Comparisons, select and casts on tensors
#
# xDSL 0.74's arith.cmpi/cmpf always produce a scalar i1, arith.select takes a scalar
# condition, and its integer casts take scalars only; these ops are their tensor forms.
# ===-------------------------------------------------------------------=== #


class _CmpOp(IRDLOperation):
    predicate = prop_def(StringAttr)
    lhs = operand_def()
    rhs = operand_def()
    result = result_def()
    traits = traits_def(Pure())
    PREDICATES: ClassVar[Sequence[str]]
    KIND: ClassVar[str]

    def __init__(self, lhs: SSAValue | Operation, rhs: SSAValue | Operation, predicate: str):
        if predicate not in self.PREDICATES:
            raise ValueError(f"'{self.name}' has no predicate {predicate!r}")
        lhs, rhs = SSAValue.get(lhs), SSAValue.get(rhs)
        super().__init__(
            operands=[lhs, rhs],
            properties={"predicate": StringAttr(predicate)},
            result_types=[with_shape(i1, shape_of(lhs.type))],
        )

    def _verify_element(self, element: Attribute) -> bool:
        raise NotImplementedError

    def verify_(self) -> None:
        if self.predicate.data not in self.PREDICATES:
            raise VerifyException(
                f"'{self.name}' op expected a predicate of {', '.join(self.PREDICATES)}, but got {self.predicate.data}"
            )
        if self.lhs.type != self.rhs.type:
            raise VerifyException(
                f"'{self.name}' op expected operands of one type, but got {self.lhs.type} and {self.rhs.type}"
            )
        if not self._verify_element(element_type_of(self.lhs.type)):
            raise VerifyException(f"'{self.name}' op expected {self.KIND} operands, but got {self.lhs.type}")
        expected = with_shape(i1, shape_of(self.lhs.type))
        if self.result.type != expected:
            raise VerifyException(f"'{self.name}' op expected result type {expected}, but got {self.result.type}")

    @classmethod
    def parse(cls, parser: Parser) -> _CmpOp:
        predicate = parser.parse_identifier(" for a predicate")
        parser.parse_punctuation(",")
        lhs = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        rhs = parser.parse_unresolved_operand()
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        type = parser.parse_type()
        op = cls.build(
            operands=[
                parser.resolve_operand(lhs, type),
                parser.resolve_operand(rhs, type),
            ],
            properties={"predicate": StringAttr(predicate)},
            result_types=[with_shape(i1, shape_of(type))],
        )
        op.attributes |= attributes
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.predicate.data}, ")
        printer.print_operand(self.lhs)
        printer.print_string(", ")
        printer.print_operand(self.rhs)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.lhs.type)


@irdl_op_definition
class CmpIOp(_CmpOp):
    """`a < b` and friends on integer tiles: `arith.cmpi`'s signed predicates and equality.

    Triton compares integers by their dtype, and every tile integer is signed.

    ```mlir
    %in_bounds = tile.cmpi slt, %offs, %n_v : tensor<128xi32>
    ```
    """

    name = "tile.cmpi"
    PREDICATES: ClassVar[Sequence[str]] = ("eq", "ne", "slt", "sle", "sgt", "sge")
    KIND: ClassVar[str] = "integer"

    def _verify_element(self, element: Attribute) -> bool:
        return isinstance(element, IntegerType | IndexType)


@irdl_op_definition
class CmpFOp(_CmpOp):
    """`a < b` and friends on float tiles; predicates as in `arith.cmpf`.

    ```mlir
    %pos = tile.cmpf ogt, %s, %zero : tensor<128x64xf32>
    ```
    """

    name = "tile.cmpf"
    # arith.cmpf's predicates without the constants `false` and `true`
    PREDICATES: ClassVar[Sequence[str]] = arith.CMPF_COMPARISON_OPERATIONS[1:-1]
    KIND: ClassVar[str] = "float"

    def _verify_element(self, element: Attribute) -> bool:
        return isinstance(element, AnyFloat)


@irdl_op_definition
class SelectOp(IRDLOperation):
    """`tl.where(cond, a, b)` with a condition of the tile's shape.

    ```mlir
    %s2 = tile.select %causal, %s, %ninf : tensor<128x64xf32>
    ```
    """

    name = "tile.select"
    T: ClassVar = VarConstraint("T", AnyAttr())
    cond = operand_def()
    true_value = operand_def(T)
    false_value = operand_def(T)
    result = result_def(T)
    traits = traits_def(Pure())

    def __init__(
        self,
        cond: SSAValue | Operation,
        true_value: SSAValue | Operation,
        false_value: SSAValue | Operation,
    ):
        true_value = SSAValue.get(true_value)
        super().__init__(operands=[cond, true_value, false_value], result_types=[true_value.type])

    def verify_(self) -> None:
        expected = with_shape(i1, shape_of(self.result.type))
        if self.cond.type != expected:
            raise VerifyException(f"'tile.select' op expected a condition of type {expected}, but got {self.cond.type}")

    @classmethod
    def parse(cls, parser: Parser) -> SelectOp:
        cond = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        true_value = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        false_value = parser.parse_unresolved_operand()
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        type = parser.parse_type()
        op = cls(
            parser.resolve_operand(cond, with_shape(i1, shape_of(type))),
            parser.resolve_operand(true_value, type),
            parser.resolve_operand(false_value, type),
        )
        op.attributes |= attributes
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_list(self.operands, printer.print_operand)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)


@irdl_op_definition
class CastOp(IRDLOperation):
    """`x.to(tl.float32)`: Triton's conversion between element types.

    Floats round to nearest, floats to ints truncate toward zero, ints widen signed
    except `i1`, which widens unsigned (`true` becomes 1).

    ```mlir
    %p = tile.cast %s : tensor<128x64xf32> to tensor<128x64xbf16>
    ```
    """

    name = "tile.cast"
    value = operand_def()
    result = result_def()
    traits = traits_def(Pure())
    assembly_format = "$value attr-dict `:` type($value) `to` type($result)"

    def __init__(self, value: SSAValue | Operation, element_type: Attribute):
        value = SSAValue.get(value)
        super().__init__(
            operands=[value],
            result_types=[with_shape(element_type, shape_of(value.type))],
        )

    def verify_(self) -> None:
        if shape_of(self.value.type) != shape_of(self.result.type):
            raise VerifyException(
                f"'tile.cast' op expected a result of shape "
                f"{shape_str(shape_of(self.value.type))}, but got "
                f"{shape_str(shape_of(self.result.type))}"
            )
        for type in (self.value.type, self.result.type):
            if not isinstance(element_type_of(type), IntegerType | IndexType | AnyFloat):
                raise VerifyException(f"'tile.cast' op expected integer or float types, but got {type}")


@irdl_op_definition
class InlineAsmOp(IRDLOperation):
    """`tl.inline_asm_elementwise(asm, constraints, [x], dtype, is_pure=True, pack=1)`: one target
    instruction per element, for a math function whose hardware form a pass chose (the result has
    the operand's shape and element type).

    ```mlir
    %t = tile.inline_asm %x {asm = "tanh.approx.f32 $0, $1;", constraints = "=r,r"} : tensor<128x64xf32>
    ```
    """

    name = "tile.inline_asm"
    T: ClassVar = VarConstraint("T", AnyAttr())
    value = operand_def(T)
    result = result_def(T)
    asm = attr_def(StringAttr)
    constraints = attr_def(StringAttr)
    traits = traits_def(Pure())
    assembly_format = "$value attr-dict `:` type($value)"

    def __init__(self, value: SSAValue | Operation, asm: str, constraints: str):
        value = SSAValue.get(value)
        super().__init__(
            operands=[value],
            result_types=[value.type],
            attributes={"asm": StringAttr(asm), "constraints": StringAttr(constraints)},
        )
