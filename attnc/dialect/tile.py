"""The `tile` dialect: a tile program whose ops map one to one onto `triton.language`.

Values are scalars (`i1`, `i32`, `i64`, `f16`, `bf16`, `f32`, `!tile.ptr<T>`) or ranked
tensors of them. Tensor shapes in types are nominal (the default tile size); the kernel
itself names its block sizes, so every op that creates a shape carries the symbolic dims
as strings (`["BLOCK_M", "BLOCK_N"]`, or literals such as `"1"`). Elementwise math,
comparisons and conversions are `arith`/`math` ops, control flow is `scf`.
"""

from __future__ import annotations

import keyword
import math
import struct
from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I32,
    AnyFloat,
    ArrayAttr,
    BFloat16Type,
    DictionaryAttr,
    Float16Type,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    f32,
    i1,
    i32,
    i64,
)
from xdsl.dialects.utils import EnumAttribute
from xdsl.ir import (
    Attribute,
    Block,
    Dialect,
    Operation,
    ParametrizedAttribute,
    Region,
    SpacedOpaqueSyntaxAttribute,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    AnyAttr,
    AttrSizedOperandSegments,
    IRDLOperation,
    VarConstraint,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    MemoryReadEffect,
    MemoryWriteEffect,
    Pure,
    SymbolOpInterface,
)
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
            raise VerifyException(
                f"'tile.ptr' expected an integer or float pointee, but got {self.pointee}"
            )


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


def _shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _axes_str(n: int) -> str:
    """`0 or 1`, `0, 1 or 2`: the valid axes of a rank-`n` value."""
    axes = [str(a) for a in range(n)]
    if len(axes) == 1:
        return axes[0]
    return ", ".join(axes[:-1]) + " or " + axes[-1]


def _is_scalar(type: Attribute) -> bool:
    return isinstance(type, IntegerType | IndexType | AnyFloat | PtrType)


def _enclosing_func(op: Operation) -> FuncOp | None:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, FuncOp):
        parent = parent.parent_op()
    return parent


def _verify_dims(op: Operation, dims: ArrayAttr[StringAttr], type: Attribute) -> None:
    """Check that `dims` names one block size per dim of `type`.

    A dim is either a decimal literal equal to the nominal size, or the name of a
    constexpr of the enclosing `tile.func`.
    """
    shape = shape_of(type)
    if len(dims.data) != len(shape):
        raise VerifyException(
            f"'{op.name}' op expected {len(shape)} dims for {type}, but got {len(dims.data)}"
        )
    func = _enclosing_func(op)
    for dim, size in zip(dims.data, shape, strict=True):
        name = dim.data
        if name.isdecimal():
            if int(name) != size:
                raise VerifyException(
                    f"'{op.name}' op expected dim \"{name}\" to equal the nominal size "
                    f"{size}"
                )
        elif not name.isidentifier():
            raise VerifyException(
                f"'{op.name}' op expected dim \"{name}\" to be a constexpr name or a "
                "decimal literal"
            )
        elif func is not None and name not in func.constexprs.data:
            raise VerifyException(
                f"'{op.name}' op expected dim \"{name}\" to be a constexpr of "
                f"@{func.sym_name.data}"
            )


def _dims_attr(dims: Sequence[str]) -> ArrayAttr[StringAttr]:
    return ArrayAttr([StringAttr(d) for d in dims])


def _verify_pointer(op: Operation, role: str, type: Attribute) -> PtrType:
    pointee = element_type_of(type)
    if not isinstance(pointee, PtrType):
        raise VerifyException(
            f"'{op.name}' op expected a pointer {role}, but got {type}"
        )
    return pointee


def _verify_mask(op: Operation, mask: SSAValue | None, ptr_type: Attribute) -> None:
    if mask is None:
        return
    expected = with_shape(i1, shape_of(ptr_type))
    if mask.type != expected:
        raise VerifyException(
            f"'{op.name}' op expected mask of type {expected}, but got {mask.type}"
        )


def scalar_attr(value: float | bool, type: Attribute) -> FloatAttr | IntegerAttr:
    """`value` as an attribute of scalar `type` (float for float types, else integer)."""
    if isinstance(type, AnyFloat):
        return FloatAttr(float(value), type)
    if type == i1:
        return IntegerAttr(-1 if value else 0, i1)
    assert isinstance(type, IntegerType | IndexType), (
        f"expected a scalar type, got {type}"
    )
    return IntegerAttr(int(value), type)


def _round_to(value: float, type: Attribute) -> float:
    """`value` rounded to the precision of float `type` (to nearest even)."""
    if isinstance(type, Float16Type):
        return struct.unpack("<e", struct.pack("<e", value))[0]
    if isinstance(type, Float32Type):
        return struct.unpack("<f", struct.pack("<f", value))[0]
    if isinstance(type, BFloat16Type):
        (bits,) = struct.unpack("<I", struct.pack("<f", value))
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        return struct.unpack("<f", struct.pack("<I", bits))[0]
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


def _print_scalar(printer: Printer, attr: Attribute) -> None:
    """Print a scalar attribute without its type: `-inf`, `0.5`, `1`, `true`."""
    if isinstance(attr, FloatAttr):
        value = attr.value.data
        if math.isnan(value):
            printer.print_string("nan")
        elif math.isinf(value):
            printer.print_string("inf" if value > 0 else "-inf")
        else:
            printer.print_string(float_text(value, attr.type))
    elif isinstance(attr, IntegerAttr) and attr.type == i1:
        printer.print_string("true" if attr.value.data else "false")
    elif isinstance(attr, IntegerAttr):
        printer.print_string(str(attr.value.data))
    else:
        printer.print_attribute(attr)


def _parse_scalar(parser: Parser) -> float | int | bool:
    """Parse what `_print_scalar` prints."""
    negative = parser.parse_optional_punctuation("-") is not None
    if parser.parse_optional_keyword("inf") is not None:
        return -math.inf if negative else math.inf
    if not negative and parser.parse_optional_keyword("nan") is not None:
        return math.nan
    if not negative and (boolean := parser.parse_optional_boolean()) is not None:
        return boolean
    value = parser.parse_number()
    return -value if negative else value


def _scalar_value(attr: Attribute) -> float | int | bool:
    if isinstance(attr, FloatAttr):
        return attr.value.data
    assert isinstance(attr, IntegerAttr)
    if attr.type == i1:
        return bool(attr.value.data)
    return attr.value.data


def _verify_scalar_attr(
    op: Operation, role: str, attr: Attribute, type: Attribute
) -> None:
    if not isinstance(attr, FloatAttr | IntegerAttr) or attr.type != type:
        raise VerifyException(
            f"'{op.name}' op expected {role} of type {type}, but got {attr}"
        )


# ===-------------------------------------------------------------------=== #
# The kernel
# ===-------------------------------------------------------------------=== #


@irdl_op_definition
class FuncOp(IRDLOperation):
    """A `@triton.jit` kernel.

    The entry block's arguments are the runtime parameters, named by `arg_names` (in
    the custom syntax: by their SSA names); `constexprs` maps each `tl.constexpr`
    parameter, in order, to its default.

    ```mlir
    tile.func @vadd(%x_ptr: !tile.ptr<f32>, %n: i32) constexprs {BLOCK = 1024} {
      ...
      tile.return
    }
    ```
    """

    name = "tile.func"
    sym_name = prop_def(StringAttr)
    arg_names = prop_def(ArrayAttr[StringAttr])
    constexprs = prop_def(DictionaryAttr)
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), SymbolOpInterface())

    def __init__(
        self,
        sym_name: str,
        arg_names: Sequence[str],
        arg_types: Sequence[Attribute],
        constexprs: Mapping[str, int] | None = None,
        body: Region | None = None,
    ):
        if body is None:
            body = Region(Block(arg_types=arg_types))
        for arg, arg_name in zip(body.block.args, arg_names, strict=True):
            arg.name_hint = arg_name
        super().__init__(
            properties={
                "sym_name": StringAttr(sym_name),
                "arg_names": ArrayAttr([StringAttr(n) for n in arg_names]),
                "constexprs": DictionaryAttr(
                    {k: IntegerAttr(v, i64) for k, v in (constexprs or {}).items()}
                ),
            },
            regions=[body],
        )

    @property
    def constexpr_defaults(self) -> dict[str, int]:
        """The constexpr parameters in order, with their defaults."""
        return {
            name: attr.value.data
            for name, attr in self.constexprs.data.items()
            if isinstance(attr, IntegerAttr)
        }

    def verify_(self) -> None:
        args = self.body.block.args
        names = [n.data for n in self.arg_names.data]
        if len(names) != len(args):
            raise VerifyException(
                f"'tile.func' op expected {len(args)} arg_names, but got {len(names)}"
            )
        seen: set[str] = set()
        for name in [*names, *self.constexprs.data]:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise VerifyException(
                    f"'tile.func' op expected parameter names to be Python identifiers, "
                    f'but got "{name}"'
                )
            if name in seen:
                raise VerifyException(
                    f"'tile.func' op expected unique parameter names, "
                    f'but "{name}" repeats'
                )
            seen.add(name)
        for name, attr in self.constexprs.data.items():
            if not isinstance(attr, IntegerAttr):
                raise VerifyException(
                    f"'tile.func' op expected constexpr {name} to default to an integer, "
                    f"but got {attr}"
                )
        for arg in args:
            if not _is_scalar(arg.type):
                raise VerifyException(
                    f"'tile.func' op expected scalar parameters, but got {arg.type}"
                )
        last = self.body.block.last_op
        if not isinstance(last, ReturnOp):
            raise VerifyException(
                "'tile.func' op expected the body to end with tile.return"
            )

    @classmethod
    def parse(cls, parser: Parser) -> FuncOp:
        sym_name = parser.parse_symbol_name().data
        args = parser.parse_comma_separated_list(
            parser.Delimiter.PAREN, lambda: parser.parse_argument(expect_type=True)
        )
        constexprs: dict[str, int] = {}
        if parser.parse_optional_keyword("constexprs") is not None:

            def parse_constexpr() -> None:
                pos = parser.pos
                name = parser.parse_identifier(" for a constexpr name")
                if name in constexprs:
                    parser.raise_error(
                        f'constexpr "{name}" is defined twice', pos, parser.pos
                    )
                parser.parse_punctuation("=")
                constexprs[name] = parser.parse_integer(allow_boolean=False)

            parser.parse_comma_separated_list(parser.Delimiter.BRACES, parse_constexpr)
        extra = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region(args)
        block_args = body.block.args if body.blocks else ()
        arg_names = [a.name_hint or "" for a in block_args]
        if extra is not None and "arg_names" in extra.data:
            names_attr = extra.data["arg_names"]
            assert isinstance(names_attr, ArrayAttr)
            arg_names = [n.data for n in names_attr.data if isinstance(n, StringAttr)]
        op = cls(sym_name, arg_names, [a.type for a in args], constexprs, body)
        if extra is not None:
            op.attributes |= {k: v for k, v in extra.data.items() if k != "arg_names"}
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string("(")
        printed: list[str] = []
        for i, arg in enumerate(self.body.block.args):
            if i:
                printer.print_string(", ")
            printed.append(printer.print_ssa_value(arg))
            printer.print_string(": ")
            printer.print_attribute(arg.type)
        printer.print_string(")")
        if self.constexprs.data:
            printer.print_string(" constexprs {")
            printer.print_list(
                self.constexprs.data.items(),
                lambda kv: printer.print_string(f"{kv[0]} = {_scalar_value(kv[1])}"),
            )
            printer.print_string("}")
        attributes = dict(self.attributes)
        names = [n.data for n in self.arg_names.data]
        if names != printed:
            attributes["arg_names"] = self.arg_names
        if attributes:
            printer.print_string(" attributes ")
            printer.print_attr_dict(attributes)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)


@irdl_op_definition
class ReturnOp(IRDLOperation):
    """Ends a kernel; prints nothing.

    ```mlir
    tile.return
    ```
    """

    name = "tile.return"
    traits = traits_def(IsTerminator(), HasParent(FuncOp))
    assembly_format = "attr-dict"

    def __init__(self):
        super().__init__()


@irdl_op_definition
class ConstexprOp(IRDLOperation):
    """The value of a constexpr parameter of the enclosing kernel; prints its name.

    ```mlir
    %block_m = tile.constexpr "BLOCK_M" : i32
    ```
    """

    name = "tile.constexpr"
    param = prop_def(StringAttr)
    result = result_def()
    traits = traits_def(Pure())
    assembly_format = "$param attr-dict `:` type($result)"

    def __init__(self, param: str, result_type: Attribute = i32):
        super().__init__(
            properties={"param": StringAttr(param)}, result_types=[result_type]
        )

    def verify_(self) -> None:
        if not isinstance(self.result.type, IntegerType | IndexType | AnyFloat):
            raise VerifyException(
                f"'tile.constexpr' op expected an integer or float result, but got "
                f"{self.result.type}"
            )
        func = _enclosing_func(self)
        if func is not None and self.param.data not in func.constexprs.data:
            raise VerifyException(
                f"'tile.constexpr' op expected \"{self.param.data}\" to be a constexpr of "
                f"@{func.sym_name.data}"
            )


class _AxisOp(IRDLOperation):
    axis = prop_def(IntegerAttr[I32])
    result = result_def(i32)
    traits = traits_def(Pure())
    assembly_format = "$axis attr-dict"

    def __init__(self, axis: int):
        super().__init__(
            properties={"axis": IntegerAttr(axis, i32)}, result_types=[i32]
        )

    def verify_(self) -> None:
        axis = self.axis.value.data
        if axis not in (0, 1, 2):
            raise VerifyException(
                f"'{self.name}' op expected axis 0, 1 or 2, but got {axis}"
            )


@irdl_op_definition
class ProgramIdOp(_AxisOp):
    """`tl.program_id(axis)`.

    ```mlir
    %pid = tile.program_id 0
    ```
    """

    name = "tile.program_id"


@irdl_op_definition
class NumProgramsOp(_AxisOp):
    """`tl.num_programs(axis)`.

    ```mlir
    %n = tile.num_programs 1
    ```
    """

    name = "tile.num_programs"


# ===-------------------------------------------------------------------=== #
# Making tiles
# ===-------------------------------------------------------------------=== #


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
            raise VerifyException(
                f"'tile.arange' op expected a result of type tensor<Nxi32>, but got {type}"
            )
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
        _verify_scalar_attr(
            self, "value", self.value, element_type_of(self.result.type)
        )

    @classmethod
    def parse(cls, parser: Parser) -> FullOp:
        dims = parser.parse_attribute()
        value = _parse_scalar(parser)
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        type = parser.parse_type()
        if not isinstance(dims, ArrayAttr) or not all(
            isinstance(d, StringAttr) for d in dims.data
        ):
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
        _print_scalar(printer, self.value)
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

    def __init__(
        self, value: SSAValue | Operation, dims: Sequence[str], shape: Sequence[int]
    ):
        value = SSAValue.get(value)
        super().__init__(
            operands=[value],
            properties={"dims": _dims_attr(dims)},
            result_types=[TensorType(value.type, shape)],
        )

    def verify_(self) -> None:
        if not _is_scalar(self.value.type):
            raise VerifyException(
                f"'tile.splat' op expected a scalar operand, but got {self.value.type}"
            )
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
            raise VerifyException(
                f"'tile.expand_dims' op expected axis {_axes_str(len(shape) + 1)}, but got "
                f"{axis}"
            )
        shape.insert(axis, 1)
        expected = TensorType(element_type_of(self.value.type), shape)
        if self.result.type != expected:
            raise VerifyException(
                f"'tile.expand_dims' op expected result type {expected}, but got "
                f"{self.result.type}"
            )


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

    def __init__(
        self, value: SSAValue | Operation, dims: Sequence[str], shape: Sequence[int]
    ):
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
        if len(src) != len(dst) or any(
            s not in (1, d) for s, d in zip(src, dst, strict=True)
        ):
            raise VerifyException(
                f"'tile.broadcast' op cannot broadcast {_shape_str(src)} to {_shape_str(dst)}"
            )
        _verify_dims(self, self.dims, self.result.type)


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
    assembly_format = (
        "$ptr `,` $offset attr-dict `:` type($ptr) `,` type($offset) `->` type($result)"
    )

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
            raise VerifyException(
                f"'tile.addptr' op expected an integer offset, but got {self.offset.type}"
            )
        shape = _broadcast_shapes(shape_of(self.ptr.type), shape_of(self.offset.type))
        if shape is None:
            raise VerifyException(
                f"'tile.addptr' op cannot broadcast {_shape_str(shape_of(self.ptr.type))} "
                f"with {_shape_str(shape_of(self.offset.type))}"
            )
        expected = with_shape(pointer, shape)
        if self.result.type != expected:
            raise VerifyException(
                f"'tile.addptr' op expected result type {expected}, but got {self.result.type}"
            )


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
            raise VerifyException(
                f"'tile.load' op expected result type {expected}, but got {self.result.type}"
            )
        _verify_mask(self, self.mask, self.ptr.type)
        if self.other is not None and self.other_value is not None:
            raise VerifyException(
                "'tile.load' op expected other as a value or a constant, not both"
            )
        if self.other is not None and self.other.type != expected:
            raise VerifyException(
                f"'tile.load' op expected other of type {expected}, but got {self.other.type}"
            )
        if self.other_value is not None:
            _verify_scalar_attr(self, "other", self.other_value, pointer.pointee)
        if self.mask is None and (
            self.other is not None or self.other_value is not None
        ):
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
                other_value = _parse_scalar(parser)
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
            properties["other_value"] = scalar_attr(
                other_value, element_type_of(result_type)
            )
        op = cls.build(
            operands=operands, result_types=[result_type], properties=properties
        )
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
            _print_scalar(printer, self.other_value)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.ptr.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)


@irdl_op_definition
class StoreOp(IRDLOperation):
    """`tl.store(ptrs, value, mask=mask)`.

    ```mlir
    tile.store %ptrs, %y mask %in_bounds : tensor<128x!tile.ptr<f32>>, tensor<128xf32>
    ```
    """

    name = "tile.store"
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
            raise VerifyException(
                f"'tile.store' op expected value of type {expected}, but got {self.value.type}"
            )
        _verify_mask(self, self.mask, self.ptr.type)

    @classmethod
    def parse(cls, parser: Parser) -> StoreOp:
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
            None
            if mask is None
            else parser.resolve_operand(mask, with_shape(i1, shape_of(ptr_type))),
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
            properties["input_precision"] = InputPrecisionAttr(
                InputPrecision(input_precision)
            )
        super().__init__(
            operands=[a, b, [SSAValue.get(acc)] if acc is not None else []],
            properties=properties,
            result_types=[result_type],
        )

    def verify_(self) -> None:
        a, b = shape_of(self.a.type), shape_of(self.b.type)
        for shape in (a, b):
            if len(shape) != 2:
                raise VerifyException(
                    f"'tile.dot' op expected operands of rank 2, but got {len(shape)}"
                )
        if a[1] != b[0]:
            raise VerifyException(
                f"'tile.dot' op expected a MxK times a KxN tile, but got {_shape_str(a)} "
                f"times {_shape_str(b)}"
            )
        a_element, b_element = (
            element_type_of(self.a.type),
            element_type_of(self.b.type),
        )
        if a_element != b_element:
            raise VerifyException(
                f"'tile.dot' op expected operands of one element type, but got {a_element} "
                f"and {b_element}"
            )
        shape = shape_of(self.result.type)
        if shape != (a[0], b[1]):
            raise VerifyException(
                f"'tile.dot' op expected a result of shape {_shape_str((a[0], b[1]))}, but "
                f"got {_shape_str(shape)}"
            )


def reduce_result_element_type(kind: ReduceKind, element_type: Attribute) -> Attribute:
    """Triton's result type: max/min widen to f32/i32 below 32 bits, sum widens ints."""
    width = (
        element_type.bitwidth
        if isinstance(element_type, IntegerType | AnyFloat)
        else 32
    )
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
    assembly_format = (
        "$kind $value `axis` $axis attr-dict `:` type($value) `->` type($result)"
    )

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
            result_element_type = reduce_result_element_type(
                kind, element_type_of(value.type)
            )
        super().__init__(
            operands=[value],
            properties={"kind": ReduceKindAttr(kind), "axis": IntegerAttr(axis, i32)},
            result_types=[with_shape(result_element_type, shape)],
        )

    def verify_(self) -> None:
        shape = list(shape_of(self.value.type))
        axis = self.axis.value.data
        if not 0 <= axis < len(shape):
            raise VerifyException(
                f"'tile.reduce' op expected axis {_axes_str(len(shape))}, but got {axis}"
            )
        del shape[axis]
        element = element_type_of(self.value.type)
        kind = self.kind.data
        result_element = element_type_of(self.result.type)
        allowed = {reduce_result_element_type(kind, element)}
        if kind == ReduceKind.SUM and isinstance(element, AnyFloat):
            allowed.add(f32)
        if result_element not in allowed or shape_of(self.result.type) != tuple(shape):
            expected = with_shape(reduce_result_element_type(kind, element), shape)
            raise VerifyException(
                f"'tile.reduce' op expected result type {expected}, but got {self.result.type}"
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
            raise VerifyException(
                f"'tile.trans' op expected an operand of rank 2, but got {len(shape)}"
            )
        expected = TensorType(element_type_of(self.value.type), shape[::-1])
        if self.result.type != expected:
            raise VerifyException(
                f"'tile.trans' op expected result type {expected}, but got {self.result.type}"
            )


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
            raise VerifyException(
                f"'tile.multiple_of' op expected an integer operand, but got {self.value.type}"
            )
        if self.multiple.value.data <= 0:
            raise VerifyException(
                f"'tile.multiple_of' op expected a positive multiple, but got "
                f"{self.multiple.value.data}"
            )


# ===-------------------------------------------------------------------=== #
# Comparisons, select and casts on tensors
#
# xDSL 0.74's arith.cmpi/cmpf always produce a scalar i1, arith.select takes a scalar
# condition, and its integer casts take scalars only; these ops are their tensor forms.
# ===-------------------------------------------------------------------=== #


class CmpIPredicate(StrEnum):
    EQ = "eq"
    NE = "ne"
    SLT = "slt"
    SLE = "sle"
    SGT = "sgt"
    SGE = "sge"
    ULT = "ult"
    ULE = "ule"
    UGT = "ugt"
    UGE = "uge"


class CmpFPredicate(StrEnum):
    OEQ = "oeq"
    OGT = "ogt"
    OGE = "oge"
    OLT = "olt"
    OLE = "ole"
    ONE = "one"
    ORD = "ord"
    UEQ = "ueq"
    UGT = "ugt"
    UGE = "uge"
    ULT = "ult"
    ULE = "ule"
    UNE = "une"
    UNO = "uno"


class _CmpOp(IRDLOperation):
    predicate = prop_def(StringAttr)
    lhs = operand_def()
    rhs = operand_def()
    result = result_def()
    traits = traits_def(Pure())
    PREDICATES: ClassVar[type[StrEnum]]
    KIND: ClassVar[str]

    def __init__(
        self, lhs: SSAValue | Operation, rhs: SSAValue | Operation, predicate: str
    ):
        lhs, rhs = SSAValue.get(lhs), SSAValue.get(rhs)
        super().__init__(
            operands=[lhs, rhs],
            properties={"predicate": StringAttr(self.PREDICATES(predicate))},
            result_types=[with_shape(i1, shape_of(lhs.type))],
        )

    def _verify_element(self, element: Attribute) -> bool:
        raise NotImplementedError

    def verify_(self) -> None:
        if self.predicate.data not in {p.value for p in self.PREDICATES}:
            raise VerifyException(
                f"'{self.name}' op expected a predicate of "
                f"{', '.join(p.value for p in self.PREDICATES)}, but got {self.predicate.data}"
            )
        if self.lhs.type != self.rhs.type:
            raise VerifyException(
                f"'{self.name}' op expected operands of one type, but got {self.lhs.type} "
                f"and {self.rhs.type}"
            )
        if not self._verify_element(element_type_of(self.lhs.type)):
            raise VerifyException(
                f"'{self.name}' op expected {self.KIND} operands, but got {self.lhs.type}"
            )
        expected = with_shape(i1, shape_of(self.lhs.type))
        if self.result.type != expected:
            raise VerifyException(
                f"'{self.name}' op expected result type {expected}, but got {self.result.type}"
            )

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
    """`a < b` and friends on integer tiles; predicates as in `arith.cmpi`.

    ```mlir
    %in_bounds = tile.cmpi slt, %offs, %n_v : tensor<128xi32>
    ```
    """

    name = "tile.cmpi"
    PREDICATES: ClassVar[type[StrEnum]] = CmpIPredicate
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
    PREDICATES: ClassVar[type[StrEnum]] = CmpFPredicate
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
        super().__init__(
            operands=[cond, true_value, false_value], result_types=[true_value.type]
        )

    def verify_(self) -> None:
        expected = with_shape(i1, shape_of(self.result.type))
        if self.cond.type != expected:
            raise VerifyException(
                f"'tile.select' op expected a condition of type {expected}, but got "
                f"{self.cond.type}"
            )

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
                f"{_shape_str(shape_of(self.value.type))}, but got "
                f"{_shape_str(shape_of(self.result.type))}"
            )
        for type in (self.value.type, self.result.type):
            if not isinstance(
                element_type_of(type), IntegerType | IndexType | AnyFloat
            ):
                raise VerifyException(
                    f"'tile.cast' op expected integer or float types, but got {type}"
                )


Tile = Dialect(
    "tile",
    [
        FuncOp,
        ReturnOp,
        ConstexprOp,
        ProgramIdOp,
        NumProgramsOp,
        ArangeOp,
        FullOp,
        SplatOp,
        ExpandDimsOp,
        BroadcastOp,
        AddPtrOp,
        LoadOp,
        StoreOp,
        DotOp,
        ReduceOp,
        TransOp,
        MultipleOfOp,
        CmpIOp,
        CmpFOp,
        SelectOp,
        CastOp,
    ],
    [PtrType, ReduceKindAttr, InputPrecisionAttr],
)
