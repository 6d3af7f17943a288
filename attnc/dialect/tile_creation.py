"""`tile` ops that make tiles: ranges, constants, splats, new dims and broadcasts.

Every shape they create is named by its block sizes (`dims`), checked against the
constexprs of the enclosing `tile.func`.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I32,
    ArrayAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    i32,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    IRDLOperation,
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

from attnc.dialect.tile_kernel import enclosing_func
from attnc.dialect.tile_types import (
    axes_str,
    element_type_of,
    is_scalar,
    parse_scalar,
    print_scalar,
    scalar_attr,
    shape_of,
    shape_str,
    verify_scalar_attr,
)

# ===-------------------------------------------------------------------=== #
# Making tiles
# ===-------------------------------------------------------------------=== #


def _verify_dims(op: Operation, dims: ArrayAttr[StringAttr], type: Attribute) -> None:
    """Check that `dims` names one block size per dim of `type`.

    A dim is either a decimal literal equal to the nominal size, or the name of a
    constexpr of the enclosing `tile.func`.
    """
    shape = shape_of(type)
    if len(dims.data) != len(shape):
        raise VerifyException(f"'{op.name}' op expected {len(shape)} dims for {type}, but got {len(dims.data)}")
    func = enclosing_func(op)
    for dim, size in zip(dims.data, shape, strict=True):
        name = dim.data
        if name.isdecimal():
            if int(name) != size:
                raise VerifyException(f"'{op.name}' op expected dim \"{name}\" to equal the nominal size {size}")
        elif not name.isidentifier():
            raise VerifyException(f"'{op.name}' op expected dim \"{name}\" to be a constexpr name or a decimal literal")
        elif func is not None and name not in func.constexprs.data:
            raise VerifyException(f"'{op.name}' op expected dim \"{name}\" to be a constexpr of @{func.sym_name.data}")


def _dims_attr(dims: Sequence[str]) -> ArrayAttr[StringAttr]:
    return ArrayAttr([StringAttr(d) for d in dims])


@irdl_op_definition
class ArangeOp(IRDLOperation):
    """`tl.arange(0, BLOCK_M)`.

    ```mlir
    %offs_m = tile.arange ["BLOCK_M"] : tensor<128xi32>
    ```
    """

    name = "tile.arange"
    dims = prop_def(ArrayAttr[StringAttr])
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$dims attr-dict `:` type($result)"

    def __init__(self, dim: str, size: int):
        super().__init__(
            properties={"dims": _dims_attr([dim])},
            result_types=[TensorType(i32, [size])],
        )

    def verify_(self) -> None:
        type = self.result.type
        if len(shape_of(type)) != 1 or element_type_of(type) != i32:
            raise VerifyException(f"'tile.arange' op expected a result of type tensor<Nxi32>, but got {type}")
        _verify_dims(self, self.dims, type)


@irdl_op_definition
class FullOp(IRDLOperation):
    """`tl.full((BLOCK_M, BLOCK_N), value, dtype)`.

    ```mlir
    %m_i = tile.full ["BLOCK_M"] -inf : tensor<128xf32>
    ```
    """

    name = "tile.full"
    dims = prop_def(ArrayAttr[StringAttr])
    value = prop_def(FloatAttr | IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(
        self,
        value: float | bool,
        dims: Sequence[str],
        shape: Sequence[int],
        element_type: Attribute,
    ):
        super().__init__(
            properties={
                "dims": _dims_attr(dims),
                "value": scalar_attr(value, element_type),
            },
            result_types=[TensorType(element_type, shape)],
        )

    def verify_(self) -> None:
        _verify_dims(self, self.dims, self.result.type)
        verify_scalar_attr(self, "value", self.value, element_type_of(self.result.type))

    @classmethod
    def parse(cls, parser: Parser) -> FullOp:
        dims = parser.parse_attribute()
        value = parse_scalar(parser)
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        type = parser.parse_type()
        if not isinstance(dims, ArrayAttr) or not all(isinstance(d, StringAttr) for d in dims.data):
            parser.raise_error("expected dims as an array of strings")
        if not isinstance(type, TensorType):
            parser.raise_error(f"expected a tensor type, but got {type}")
        names = [d.data for d in dims.data if isinstance(d, StringAttr)]
        op = cls(value, names, type.get_shape(), type.get_element_type())
        op.attributes |= attributes
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.dims)
        printer.print_string(" ")
        print_scalar(printer, self.value)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)


@irdl_op_definition
class SplatOp(IRDLOperation):
    """A scalar copied into every element of a tile: `tl.full((BLOCK_M,), x, dtype)`.

    Where Triton would broadcast the scalar by itself (an operand of `+`, a load's
    mask) the emitter prints just `x`.

    ```mlir
    %n_v = tile.splat %n ["BLOCK_M"] : i32 -> tensor<128xi32>
    ```
    """

    name = "tile.splat"
    value = operand_def()
    dims = prop_def(ArrayAttr[StringAttr])
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$value $dims attr-dict `:` type($value) `->` type($result)"

    def __init__(self, value: SSAValue | Operation, dims: Sequence[str], shape: Sequence[int]):
        value = SSAValue.get(value)
        super().__init__(
            operands=[value],
            properties={"dims": _dims_attr(dims)},
            result_types=[TensorType(value.type, shape)],
        )

    def verify_(self) -> None:
        if not is_scalar(self.value.type):
            raise VerifyException(f"'tile.splat' op expected a scalar operand, but got {self.value.type}")
        if element_type_of(self.result.type) != self.value.type:
            raise VerifyException(
                f"'tile.splat' op expected result element type {self.value.type}, but got "
                f"{element_type_of(self.result.type)}"
            )
        _verify_dims(self, self.dims, self.result.type)


@irdl_op_definition
class ExpandDimsOp(IRDLOperation):
    """A new dim of size 1 at `axis`: `x[:, None]` (axis 1) or `x[None, :]` (axis 0).

    ```mlir
    %col = tile.expand_dims %offs_m 1 : tensor<128xi32> -> tensor<128x1xi32>
    ```
    """

    name = "tile.expand_dims"
    value = operand_def(TensorType)
    axis = prop_def(IntegerAttr[I32])
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$value $axis attr-dict `:` type($value) `->` type($result)"

    def __init__(self, value: SSAValue | Operation, axis: int):
        value = SSAValue.get(value)
        shape = list(shape_of(value.type))
        shape.insert(min(max(axis, 0), len(shape)), 1)
        super().__init__(
            operands=[value],
            properties={"axis": IntegerAttr(axis, i32)},
            result_types=[TensorType(element_type_of(value.type), shape)],
        )

    def verify_(self) -> None:
        shape = list(shape_of(self.value.type))
        axis = self.axis.value.data
        if not 0 <= axis <= len(shape):
            raise VerifyException(f"'tile.expand_dims' op expected axis {axes_str(len(shape) + 1)}, but got {axis}")
        shape.insert(axis, 1)
        expected = TensorType(element_type_of(self.value.type), shape)
        if self.result.type != expected:
            raise VerifyException(f"'tile.expand_dims' op expected result type {expected}, but got {self.result.type}")


@irdl_op_definition
class BroadcastOp(IRDLOperation):
    """Size-1 dims stretched to the dims given: `tl.broadcast_to(x, (BLOCK_M, BLOCK_N))`.

    Where Triton would broadcast by itself (`rows[:, None] + cols[None, :]`) the
    emitter prints just `x`.

    ```mlir
    %b = tile.broadcast %col ["BLOCK_M", "BLOCK_N"] : tensor<128x1xi32> -> tensor<128x64xi32>
    ```
    """

    name = "tile.broadcast"
    value = operand_def(TensorType)
    dims = prop_def(ArrayAttr[StringAttr])
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$value $dims attr-dict `:` type($value) `->` type($result)"

    def __init__(self, value: SSAValue | Operation, dims: Sequence[str], shape: Sequence[int]):
        value = SSAValue.get(value)
        super().__init__(
            operands=[value],
            properties={"dims": _dims_attr(dims)},
            result_types=[TensorType(element_type_of(value.type), shape)],
        )

    def verify_(self) -> None:
        src, dst = shape_of(self.value.type), shape_of(self.result.type)
        if element_type_of(self.result.type) != element_type_of(self.value.type):
            raise VerifyException(
                f"'tile.broadcast' op expected result element type "
                f"{element_type_of(self.value.type)}, but got "
                f"{element_type_of(self.result.type)}"
            )
        if len(src) != len(dst) or any(s not in (1, d) for s, d in zip(src, dst, strict=True)):
            raise VerifyException(f"'tile.broadcast' op cannot broadcast {shape_str(src)} to {shape_str(dst)}")
        _verify_dims(self, self.dims, self.result.type)
