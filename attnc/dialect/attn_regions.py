"""What every attn op with regions shares: the tile attribute, `attn.yield`, and the checks of a
region's block arguments and of what it yields (score_mod and mask_mod signatures among them).

The op families (attn.py, attn_grad.py) import these; the `Attn` dialect is assembled in attn.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import DYNAMIC_INDEX, IndexType, IntAttr, TensorType, f32, i1
from xdsl.ir import Attribute, Block, Operation, ParametrizedAttribute, Region, SSAValue
from xdsl.irdl import IRDLOperation, irdl_attr_definition, irdl_op_definition, traits_def, var_operand_def
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import IsTerminator, Pure
from xdsl.utils.bitwise_casts import is_power_of_two
from xdsl.utils.exceptions import VerifyException


@irdl_attr_definition
class TileAttr(ParametrizedAttribute):
    """Tile sizes chosen by `attn-tile`: rows of queries by columns of keys.

    ```mlir
    #attn.tile<128x64>
    ```
    """

    name = "attn.tile"
    block_m: IntAttr
    block_n: IntAttr

    def __init__(self, block_m: int, block_n: int):
        super().__init__(IntAttr(block_m), IntAttr(block_n))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            m = parser.parse_integer(allow_boolean=False, allow_negative=False)
            if parser.parse_optional_punctuation(",") is None:
                # `128x64` lexes as the integer 128 followed by the identifier `x64`.
                ident = parser.parse_identifier()
                if not ident.startswith("x") or not ident[1:].isdigit():
                    parser.raise_error("expected tile sizes written as <MxN>")
                n = int(ident[1:])
            else:
                n = parser.parse_integer(allow_boolean=False, allow_negative=False)
        return (IntAttr(m), IntAttr(n))

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.block_m.data}x{self.block_n.data}>")

    def verify(self) -> None:
        for size in (self.block_m.data, self.block_n.data):
            if size < 16 or not is_power_of_two(size):
                raise VerifyException(f"tile sizes must be powers of two of at least 16, got {size}")


def tensor_type(value: SSAValue | Attribute, what: str, op: Operation, rank: int | None = None) -> TensorType:
    ty = value.type if isinstance(value, SSAValue) else value
    if not isinstance(ty, TensorType):
        raise VerifyException(f"'{op.name}' op expected {what} to be a tensor, but got {ty}")
    if rank is not None and ty.get_num_dims() != rank:
        raise VerifyException(f"'{op.name}' op expected {what} of rank {rank}, but got rank {ty.get_num_dims()}")
    return ty


def dims_match(a: int, b: int) -> bool:
    return a == DYNAMIC_INDEX or b == DYNAMIC_INDEX or a == b


def check_block_args(op: Operation, region: Region, region_name: str, expected: Sequence[Attribute]) -> Block:
    if not region.blocks:
        raise VerifyException(f"'{op.name}' op expected a {region_name} region with one block")
    block = region.blocks[0]
    got = [arg.type for arg in block.args]
    if len(got) != len(expected) or any(g != e for g, e in zip(got, expected)):
        want = ", ".join(str(t) for t in expected)
        have = ", ".join(str(t) for t in got)
        raise VerifyException(f"'{op.name}' op expected {region_name} region arguments ({want}), but got ({have})")
    return block


def check_yield(op: Operation, block: Block, region_name: str, expected: Sequence[Attribute]) -> YieldOp:
    last = block.last_op
    if not isinstance(last, YieldOp):
        raise VerifyException(f"'{op.name}' op expected the {region_name} region to end with attn.yield")
    got = [v.type for v in last.values]
    if len(got) != len(expected) or any(g != e for g, e in zip(got, expected)):
        want = ", ".join(str(t) for t in expected)
        have = ", ".join(str(t) for t in got)
        raise VerifyException(f"'{op.name}' op expected the {region_name} region to yield ({want}), but got ({have})")
    return last


INDEX_ARGS = 4  # b, h, q_idx, kv_idx


def score_mod_arg_types(captures: Sequence[SSAValue]) -> list[Attribute]:
    return [f32, *[IndexType()] * INDEX_ARGS, *[c.type for c in captures]]


def mask_mod_arg_types(captures: Sequence[SSAValue]) -> list[Attribute]:
    return [*[IndexType()] * INDEX_ARGS, *[c.type for c in captures]]


def verify_score_mod(op: Operation, region: Region, captures: Sequence[SSAValue]) -> None:
    block = check_block_args(op, region, "score_mod", score_mod_arg_types(captures))
    check_yield(op, block, "score_mod", [f32])


def verify_mask_mod(op: Operation, region: Region, captures: Sequence[SSAValue]) -> None:
    block = check_block_args(op, region, "mask_mod", mask_mod_arg_types(captures))
    check_yield(op, block, "mask_mod", [i1])


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminates every attn region.

    ```mlir
    attn.yield %r : f32
    ```
    """

    name = "attn.yield"
    values = var_operand_def()
    traits = traits_def(IsTerminator(), Pure())
    assembly_format = "attr-dict ($values^ `:` type($values))?"

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[list(values)])


__all__ = [
    "INDEX_ARGS",
    "TileAttr",
    "YieldOp",
    "check_block_args",
    "check_yield",
    "dims_match",
    "mask_mod_arg_types",
    "score_mod_arg_types",
    "tensor_type",
    "verify_mask_mod",
    "verify_score_mod",
]
