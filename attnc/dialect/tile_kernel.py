"""The kernel in the `tile` dialect: `tile.func`, its terminator, its constexpr parameters
and the program grid.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import (
    I32,
    AnyFloat,
    ArrayAttr,
    DictionaryAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    UnitAttr,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_attr_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    Pure,
    SymbolOpInterface,
)
from xdsl.utils.exceptions import VerifyException

from attnc.dialect.tile_types import element_type_of, is_scalar, scalar_value

# ===-------------------------------------------------------------------=== #
# The kernel
# ===-------------------------------------------------------------------=== #


def enclosing_func(op: Operation) -> FuncOp | None:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, FuncOp):
        parent = parent.parent_op()
    return parent


@irdl_op_definition
class FuncOp(IRDLOperation):
    """A `@triton.jit` kernel.

    The entry block's arguments are the runtime parameters, named by `arg_names` (in
    the custom syntax: by their SSA names); `constexprs` maps each `tl.constexpr`
    parameter, in order, to its default. `debug` compiles it with Triton's debug option
    (`@triton.jit(debug=True)`), which keeps its `tile.device_assert`s.

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
    debug = opt_attr_def(UnitAttr)
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
                "constexprs": DictionaryAttr({k: IntegerAttr(v, i64) for k, v in (constexprs or {}).items()}),
            },
            regions=[body],
        )

    @property
    def constexpr_defaults(self) -> dict[str, int]:
        """The constexpr parameters in order, with their defaults."""
        return {name: attr.value.data for name, attr in self.constexprs.data.items() if isinstance(attr, IntegerAttr)}

    def verify_(self) -> None:
        args = self.body.block.args
        names = [n.data for n in self.arg_names.data]
        if len(names) != len(args):
            raise VerifyException(f"'tile.func' op expected {len(args)} arg_names, but got {len(names)}")
        seen: set[str] = set()
        for name in [*names, *self.constexprs.data]:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise VerifyException(
                    f"'tile.func' op expected parameter names to be Python identifiers, but got \"{name}\""
                )
            if name in seen:
                raise VerifyException(f"'tile.func' op expected unique parameter names, but \"{name}\" repeats")
            seen.add(name)
        for name, attr in self.constexprs.data.items():
            if not isinstance(attr, IntegerAttr):
                raise VerifyException(
                    f"'tile.func' op expected constexpr {name} to default to an integer, but got {attr}"
                )
        for arg in args:
            if not is_scalar(arg.type):
                raise VerifyException(f"'tile.func' op expected scalar parameters, but got {arg.type}")
        last = self.body.block.last_op
        if not isinstance(last, ReturnOp):
            raise VerifyException("'tile.func' op expected the body to end with tile.return")

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
                    parser.raise_error(f'constexpr "{name}" is defined twice', pos, parser.pos)
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
                lambda kv: printer.print_string(f"{kv[0]} = {scalar_value(kv[1])}"),
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
        super().__init__(properties={"param": StringAttr(param)}, result_types=[result_type])

    def verify_(self) -> None:
        if not isinstance(self.result.type, IntegerType | IndexType | AnyFloat):
            raise VerifyException(
                f"'tile.constexpr' op expected an integer or float result, but got {self.result.type}"
            )
        func = enclosing_func(self)
        if func is not None and self.param.data not in func.constexprs.data:
            raise VerifyException(
                f"'tile.constexpr' op expected \"{self.param.data}\" to be a constexpr of @{func.sym_name.data}"
            )


class _AxisOp(IRDLOperation):
    axis = prop_def(IntegerAttr[I32])
    result = result_def(i32)
    traits = traits_def(Pure())
    assembly_format = "$axis attr-dict"

    def __init__(self, axis: int):
        super().__init__(properties={"axis": IntegerAttr(axis, i32)}, result_types=[i32])

    def verify_(self) -> None:
        axis = self.axis.value.data
        if axis not in (0, 1, 2):
            raise VerifyException(f"'{self.name}' op expected axis 0, 1 or 2, but got {axis}")


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


@irdl_op_definition
class DeviceAssertOp(IRDLOperation):
    """`tl.device_assert(cond, "message")`: the kernel stops with `message` where `cond` is false.

    Triton keeps it only in a kernel compiled with its debug option, so the enclosing
    `tile.func` must have `debug`.

    ```mlir
    tile.device_assert %in_range, "captured tensor 'bias' read out of range" : tensor<64x1xi1>
    ```
    """

    name = "tile.device_assert"
    cond = operand_def()
    message = prop_def(StringAttr)
    assembly_format = "$cond `,` $message attr-dict `:` type($cond)"

    def __init__(self, cond: SSAValue | Operation, message: str):
        super().__init__(operands=[cond], properties={"message": StringAttr(message)})

    def verify_(self) -> None:
        if element_type_of(self.cond.type) != i1:
            raise VerifyException(f"'tile.device_assert' op expected an i1 condition, but got {self.cond.type}")
        func = enclosing_func(self)
        if func is not None and func.debug is None:
            raise VerifyException(
                f"'tile.device_assert' op expected @{func.sym_name.data} to be compiled with debug, "
                "or Triton drops the assertion"
            )
