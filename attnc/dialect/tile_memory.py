"""`tile` ops on global memory: pointer arithmetic, loads and stores."""

from __future__ import annotations

from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerAttr, IntegerType, i1
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import MemoryReadEffect, MemoryWriteEffect, Pure
from xdsl.utils.exceptions import VerifyException

from attnc.dialect.tile_types import (
    PtrType,
    element_type_of,
    parse_scalar,
    print_scalar,
    scalar_attr,
    shape_of,
    shape_str,
    verify_scalar_attr,
    with_shape,
)

# ===-------------------------------------------------------------------=== #
# Memory
# ===-------------------------------------------------------------------=== #


def _broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    if not a or not b:
        return a or b
    if len(a) != len(b):
        return None
    out: list[int] = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y) if 1 in (x, y) else x)
    return tuple(out)


def _verify_pointer(op: Operation, role: str, type: Attribute) -> PtrType:
    pointee = element_type_of(type)
    if not isinstance(pointee, PtrType):
        raise VerifyException(f"'{op.name}' op expected a pointer {role}, but got {type}")
    return pointee


def _verify_mask(op: Operation, mask: SSAValue | None, ptr_type: Attribute) -> None:
    if mask is None:
        return
    expected = with_shape(i1, shape_of(ptr_type))
    if mask.type != expected:
        raise VerifyException(f"'{op.name}' op expected mask of type {expected}, but got {mask.type}")


@irdl_op_definition
class AddPtrOp(IRDLOperation):
    """Pointer arithmetic in elements: `ptr + offset`, broadcasting like Triton.

    ```mlir
    %ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f32>, tensor<128xi32> -> tensor<128x!tile.ptr<f32>>
    ```
    """

    name = "tile.addptr"
    ptr = operand_def()
    offset = operand_def()
    result = result_def()
    traits = traits_def(Pure())
    assembly_format = "$ptr `,` $offset attr-dict `:` type($ptr) `,` type($offset) `->` type($result)"

    def __init__(self, ptr: SSAValue | Operation, offset: SSAValue | Operation):
        ptr, offset = SSAValue.get(ptr), SSAValue.get(offset)
        shape = _broadcast_shapes(shape_of(ptr.type), shape_of(offset.type)) or ()
        super().__init__(
            operands=[ptr, offset],
            result_types=[with_shape(element_type_of(ptr.type), shape)],
        )

    def verify_(self) -> None:
        pointer = _verify_pointer(self, "operand", self.ptr.type)
        offset_element = element_type_of(self.offset.type)
        if not isinstance(offset_element, IntegerType | IndexType):
            raise VerifyException(f"'tile.addptr' op expected an integer offset, but got {self.offset.type}")
        shape = _broadcast_shapes(shape_of(self.ptr.type), shape_of(self.offset.type))
        if shape is None:
            raise VerifyException(
                f"'tile.addptr' op cannot broadcast {shape_str(shape_of(self.ptr.type))} "
                f"with {shape_str(shape_of(self.offset.type))}"
            )
        expected = with_shape(pointer, shape)
        if self.result.type != expected:
            raise VerifyException(f"'tile.addptr' op expected result type {expected}, but got {self.result.type}")


@irdl_op_definition
class LoadOp(IRDLOperation):
    """`tl.load(ptrs, mask=mask, other=other)`; `other` is a value or a constant.

    ```mlir
    %x = tile.load %ptrs mask %in_bounds other 0.0 : tensor<128x!tile.ptr<f32>> -> tensor<128xf32>
    ```
    """

    name = "tile.load"
    ptr = operand_def()
    mask = opt_operand_def()
    other = opt_operand_def()
    other_value = opt_prop_def(FloatAttr | IntegerAttr)
    result = result_def()
    traits = traits_def(MemoryReadEffect())
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(
        self,
        ptr: SSAValue | Operation,
        mask: SSAValue | Operation | None = None,
        other: SSAValue | Operation | float | None = None,
    ):
        ptr = SSAValue.get(ptr)
        pointee = element_type_of(ptr.type)
        assert isinstance(pointee, PtrType), f"expected a pointer, but got {ptr.type}"
        result_type = with_shape(pointee.pointee, shape_of(ptr.type))
        other_operand: list[SSAValue] = []
        properties: dict[str, Attribute] = {}
        if isinstance(other, float | int):
            properties["other_value"] = scalar_attr(other, pointee.pointee)
        elif other is not None:
            other_operand = [SSAValue.get(other)]
        super().__init__(
            operands=[
                ptr,
                [SSAValue.get(mask)] if mask is not None else [],
                other_operand,
            ],
            properties=properties,
            result_types=[result_type],
        )

    def verify_(self) -> None:
        pointer = _verify_pointer(self, "operand", self.ptr.type)
        expected = with_shape(pointer.pointee, shape_of(self.ptr.type))
        if self.result.type != expected:
            raise VerifyException(f"'tile.load' op expected result type {expected}, but got {self.result.type}")
        _verify_mask(self, self.mask, self.ptr.type)
        if self.other is not None and self.other_value is not None:
            raise VerifyException("'tile.load' op expected other as a value or a constant, not both")
        if self.other is not None and self.other.type != expected:
            raise VerifyException(f"'tile.load' op expected other of type {expected}, but got {self.other.type}")
        if self.other_value is not None:
            verify_scalar_attr(self, "other", self.other_value, pointer.pointee)
        if self.mask is None and (self.other is not None or self.other_value is not None):
            raise VerifyException("'tile.load' op expected a mask when other is given")

    @classmethod
    def parse(cls, parser: Parser) -> LoadOp:
        ptr = parser.parse_unresolved_operand()
        mask = other = None
        other_value: float | int | bool | None = None
        if parser.parse_optional_keyword("mask") is not None:
            mask = parser.parse_unresolved_operand()
        if parser.parse_optional_keyword("other") is not None:
            other = parser.parse_optional_unresolved_operand()
            if other is None:
                other_value = parse_scalar(parser)
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        ptr_type = parser.parse_type()
        parser.parse_punctuation("->")
        result_type = parser.parse_type()
        shape = shape_of(ptr_type)
        operands = [parser.resolve_operand(ptr, ptr_type), [], []]
        if mask is not None:
            operands[1] = [parser.resolve_operand(mask, with_shape(i1, shape))]
        if other is not None:
            operands[2] = [parser.resolve_operand(other, result_type)]
        properties: dict[str, Attribute] = {}
        if other_value is not None:
            properties["other_value"] = scalar_attr(other_value, element_type_of(result_type))
        op = cls.build(operands=operands, result_types=[result_type], properties=properties)
        op.attributes |= attributes
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.ptr)
        if self.mask is not None:
            printer.print_string(" mask ")
            printer.print_operand(self.mask)
        if self.other is not None:
            printer.print_string(" other ")
            printer.print_operand(self.other)
        elif self.other_value is not None:
            printer.print_string(" other ")
            print_scalar(printer, self.other_value)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.ptr.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)


class _StoreLikeOp(IRDLOperation):
    """A write of `value` through `ptrs` under an optional mask: tl.store and tl.atomic_add."""

    ptr = operand_def()
    value = operand_def()
    mask = opt_operand_def()
    traits = traits_def(MemoryWriteEffect())

    def __init__(
        self,
        ptr: SSAValue | Operation,
        value: SSAValue | Operation,
        mask: SSAValue | Operation | None = None,
    ):
        super().__init__(
            operands=[ptr, value, [SSAValue.get(mask)] if mask is not None else []],
        )

    def verify_(self) -> None:
        pointer = _verify_pointer(self, "operand", self.ptr.type)
        expected = with_shape(pointer.pointee, shape_of(self.ptr.type))
        if self.value.type != expected:
            raise VerifyException(f"'{self.name}' op expected value of type {expected}, but got {self.value.type}")
        _verify_mask(self, self.mask, self.ptr.type)

    @classmethod
    def parse(cls, parser: Parser) -> _StoreLikeOp:
        ptr = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        value = parser.parse_unresolved_operand()
        mask = None
        if parser.parse_optional_keyword("mask") is not None:
            mask = parser.parse_unresolved_operand()
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        ptr_type = parser.parse_type()
        parser.parse_punctuation(",")
        value_type = parser.parse_type()
        op = cls(
            parser.resolve_operand(ptr, ptr_type),
            parser.resolve_operand(value, value_type),
            None if mask is None else parser.resolve_operand(mask, with_shape(i1, shape_of(ptr_type))),
        )
        op.attributes |= attributes
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.ptr)
        printer.print_string(", ")
        printer.print_operand(self.value)
        if self.mask is not None:
            printer.print_string(" mask ")
            printer.print_operand(self.mask)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.ptr.type)
        printer.print_string(", ")
        printer.print_attribute(self.value.type)


@irdl_op_definition
class StoreOp(_StoreLikeOp):
    """`tl.store(ptrs, value, mask=mask)`.

    ```mlir
    tile.store %ptrs, %y mask %in_bounds : tensor<128x!tile.ptr<f32>>, tensor<128xf32>
    ```
    """

    name = "tile.store"


@irdl_op_definition
class AtomicAddOp(_StoreLikeOp):
    """`tl.atomic_add(ptrs, value, mask=mask)`: adds into memory other programs may add to too.

    The order of the additions is not fixed, so float sums may differ in the last bits
    between runs.

    ```mlir
    tile.atomic_add %ptrs, %g mask %keep : tensor<128x64x!tile.ptr<f32>>, tensor<128x64xf32>
    ```
    """

    name = "tile.atomic_add"
