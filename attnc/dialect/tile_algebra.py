"""`tile` ops on whole tiles: matrix products, reductions, transposes, alignment hints."""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import (
    I32,
    AnyFloat,
    IntegerAttr,
    IntegerType,
    TensorType,
    UnitAttr,
    f32,
    i1,
    i32,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    AnyAttr,
    IRDLOperation,
    VarConstraint,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from attnc.dialect.tile_types import (
    InputPrecision,
    InputPrecisionAttr,
    ReduceKind,
    ReduceKindAttr,
    axes_str,
    element_type_of,
    shape_of,
    shape_str,
    with_shape,
)

# ===-------------------------------------------------------------------=== #
# Tile algebra
# ===-------------------------------------------------------------------=== #


def dot_result_element_type(input_element_type: Attribute) -> Attribute:
    """What `tl.dot` accumulates in without an accumulator: i32 for ints, else f32."""
    return i32 if isinstance(input_element_type, IntegerType) else f32


@irdl_op_definition
class DotOp(IRDLOperation):
    """`tl.dot(a, b, acc)`: a `MxK` times a `KxN` tile, plus `acc` if given.

    ```mlir
    %acc2 = tile.dot %q, %k acc %acc : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
    %s = tile.dot %a, %b precision ieee : tensor<32x32xf32>, tensor<32x32xf32> -> tensor<32x32xf32>
    ```
    """

    name = "tile.dot"
    T: ClassVar = VarConstraint("T", AnyAttr())
    a = operand_def()
    b = operand_def()
    acc = opt_operand_def(T)
    input_precision = opt_prop_def(InputPrecisionAttr)
    result = result_def(T)
    traits = traits_def(Pure())
    assembly_format = (
        "$a `,` $b (`acc` $acc^)? (`precision` $input_precision^)? attr-dict "
        "`:` type($a) `,` type($b) `->` type($result)"
    )

    def __init__(
        self,
        a: SSAValue | Operation,
        b: SSAValue | Operation,
        acc: SSAValue | Operation | None = None,
        *,
        input_precision: InputPrecision | str | None = None,
        result_type: Attribute | None = None,
    ):
        a, b = SSAValue.get(a), SSAValue.get(b)
        if result_type is None and acc is not None:
            result_type = SSAValue.get(acc).type
        if result_type is None:
            result_type = TensorType(
                dot_result_element_type(element_type_of(a.type)),
                [shape_of(a.type)[0], shape_of(b.type)[-1]],
            )
        properties: dict[str, Attribute] = {}
        if input_precision is not None:
            properties["input_precision"] = InputPrecisionAttr(InputPrecision(input_precision))
        super().__init__(
            operands=[a, b, [SSAValue.get(acc)] if acc is not None else []],
            properties=properties,
            result_types=[result_type],
        )

    def verify_(self) -> None:
        a, b = shape_of(self.a.type), shape_of(self.b.type)
        for shape in (a, b):
            if len(shape) != 2:
                raise VerifyException(f"'tile.dot' op expected operands of rank 2, but got {len(shape)}")
        if a[1] != b[0]:
            raise VerifyException(
                f"'tile.dot' op expected a MxK times a KxN tile, but got {shape_str(a)} times {shape_str(b)}"
            )
        a_element, b_element = (
            element_type_of(self.a.type),
            element_type_of(self.b.type),
        )
        if a_element != b_element:
            raise VerifyException(
                f"'tile.dot' op expected operands of one element type, but got {a_element} and {b_element}"
            )
        shape = shape_of(self.result.type)
        if shape != (a[0], b[1]):
            raise VerifyException(
                f"'tile.dot' op expected a result of shape {shape_str((a[0], b[1]))}, but got {shape_str(shape)}"
            )


def reduce_result_element_type(kind: ReduceKind, element_type: Attribute) -> Attribute:
    """Triton's result type: max/min widen to f32/i32 below 32 bits, sum widens ints."""
    width = element_type.bitwidth if isinstance(element_type, IntegerType | AnyFloat) else 32
    if width >= 32 or element_type == i1:
        return element_type
    if isinstance(element_type, IntegerType):
        return i32
    return f32 if kind != ReduceKind.SUM else element_type


@irdl_op_definition
class ReduceOp(IRDLOperation):
    """`tl.max(x, axis=1)`, `tl.min`, `tl.sum`: one dim reduced away.

    Below 32 bits, `tl.max`/`tl.min` compute in f32/i32 and `tl.sum` of ints in i32;
    the result type says so. A `sum` may ask for a wider float result, printed as
    `tl.sum(x, axis=1, dtype=tl.float32)`.

    ```mlir
    %m = tile.reduce max %s axis 1 : tensor<128x64xf32> -> tensor<128xf32>
    ```
    """

    name = "tile.reduce"
    kind = prop_def(ReduceKindAttr)
    value = operand_def(TensorType)
    axis = prop_def(IntegerAttr[I32])
    result = result_def()
    traits = traits_def(Pure())
    assembly_format = "$kind $value `axis` $axis attr-dict `:` type($value) `->` type($result)"

    def __init__(
        self,
        value: SSAValue | Operation,
        kind: ReduceKind | str,
        axis: int,
        result_element_type: Attribute | None = None,
    ):
        value = SSAValue.get(value)
        kind = ReduceKind(kind)
        shape = list(shape_of(value.type))
        if 0 <= axis < len(shape):
            del shape[axis]
        if result_element_type is None:
            result_element_type = reduce_result_element_type(kind, element_type_of(value.type))
        super().__init__(
            operands=[value],
            properties={"kind": ReduceKindAttr(kind), "axis": IntegerAttr(axis, i32)},
            result_types=[with_shape(result_element_type, shape)],
        )

    def verify_(self) -> None:
        shape = list(shape_of(self.value.type))
        axis = self.axis.value.data
        if not 0 <= axis < len(shape):
            raise VerifyException(f"'tile.reduce' op expected axis {axes_str(len(shape))}, but got {axis}")
        del shape[axis]
        element = element_type_of(self.value.type)
        kind = self.kind.data
        result_element = element_type_of(self.result.type)
        allowed = {reduce_result_element_type(kind, element)}
        if kind == ReduceKind.SUM and isinstance(element, AnyFloat):
            allowed.add(f32)
        if result_element not in allowed or shape_of(self.result.type) != tuple(shape):
            expected = with_shape(reduce_result_element_type(kind, element), shape)
            raise VerifyException(f"'tile.reduce' op expected result type {expected}, but got {self.result.type}")


@irdl_op_definition
class CumsumOp(IRDLOperation):
    """`tl.cumsum(x, axis=0)`: the inclusive prefix sum along one dim, same shape and type;
    `reverse`, the suffix sum (`tl.cumsum(x, axis=0, reverse=True)`).

    ```mlir
    %gc = tile.cumsum %g axis 0 : tensor<64xf32> -> tensor<64xf32>
    %dg = tile.cumsum %dG axis 0 reverse : tensor<64xf32> -> tensor<64xf32>
    ```
    """

    name = "tile.cumsum"
    value = operand_def(TensorType)
    axis = prop_def(IntegerAttr[I32])
    reverse = opt_prop_def(UnitAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$value `axis` $axis (`reverse` $reverse^)? attr-dict `:` type($value) `->` type($result)"

    def __init__(self, value: SSAValue | Operation, axis: int, reverse: bool = False):
        value = SSAValue.get(value)
        super().__init__(
            operands=[value],
            properties={"axis": IntegerAttr(axis, i32), **({"reverse": UnitAttr()} if reverse else {})},
            result_types=[value.type],
        )

    def verify_(self) -> None:
        rank = len(shape_of(self.value.type))
        axis = self.axis.value.data
        if not 0 <= axis < rank:
            raise VerifyException(f"'tile.cumsum' op expected axis {axes_str(rank)}, but got {axis}")
        if self.result.type != self.value.type:
            raise VerifyException(
                f"'tile.cumsum' op expected result type {self.value.type}, but got {self.result.type}"
            )


@irdl_op_definition
class TransOp(IRDLOperation):
    """`tl.trans(x)` of a 2-D tile.

    ```mlir
    %kt = tile.trans %k : tensor<64x128xbf16> -> tensor<128x64xbf16>
    ```
    """

    name = "tile.trans"
    value = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$value attr-dict `:` type($value) `->` type($result)"

    def __init__(self, value: SSAValue | Operation):
        value = SSAValue.get(value)
        shape = shape_of(value.type)[::-1]
        super().__init__(
            operands=[value],
            result_types=[TensorType(element_type_of(value.type), shape)],
        )

    def verify_(self) -> None:
        shape = shape_of(self.value.type)
        if len(shape) != 2:
            raise VerifyException(f"'tile.trans' op expected an operand of rank 2, but got {len(shape)}")
        expected = TensorType(element_type_of(self.value.type), shape[::-1])
        if self.result.type != expected:
            raise VerifyException(f"'tile.trans' op expected result type {expected}, but got {self.result.type}")


@irdl_op_definition
class MultipleOfOp(IRDLOperation):
    """`tl.multiple_of(x, 16)`: a promise to the compiler, the value is unchanged.

    ```mlir
    %start = tile.multiple_of %start0 16 : i32
    ```
    """

    name = "tile.multiple_of"
    T: ClassVar = VarConstraint("T", AnyAttr())
    value = operand_def(T)
    multiple = prop_def(IntegerAttr[I32])
    result = result_def(T)
    traits = traits_def(Pure())
    assembly_format = "$value $multiple attr-dict `:` type($value)"

    def __init__(self, value: SSAValue | Operation, multiple: int):
        value = SSAValue.get(value)
        super().__init__(
            operands=[value],
            properties={"multiple": IntegerAttr(multiple, i32)},
            result_types=[value.type],
        )

    def verify_(self) -> None:
        if not isinstance(element_type_of(self.value.type), IntegerType):
            raise VerifyException(f"'tile.multiple_of' op expected an integer operand, but got {self.value.type}")
        if self.multiple.value.data <= 0:
            raise VerifyException(
                f"'tile.multiple_of' op expected a positive multiple, but got {self.multiple.value.data}"
            )
