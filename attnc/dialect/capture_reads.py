"""Where the regions of an `attn.flash` (and of its `attn.flash_grad`) read captured tensors, as index
expressions over b, h, q_idx and kv_idx that the runtime bounds at a call's shape (interval arithmetic,
index_intervals.py) before any kernel runs, and which of them attn-guard-captures has the kernels mask.

Each read is `{"capture": i, "name": ..., "region": ..., "indices": [expr, ...], "guarded": [dim, ...]}`,
one expression per dimension, in JSON: `{"arg": "q_idx"}`, `{"const": 3}`, `{"op": "add" | "sub" | "mul" |
"div" | "rem" | "mod" | "min" | "max" | "select", "args": [...]}`, or `{"unknown": "<op>"}` for an index
computed from data (another tensor's value), which no check before the call can bound. `mod` is Python's
`%` as the frontend writes it, x − (x // y)·y, recognised whole so that its range stays tight.

A `tensor.extract` of a captured tensor carries the guard as discardable attributes:
`attn.guard = array<i64: ...>` lists the dimensions the kernels mask (their loads read 0 outside the
tensor), and `attn.guard_report` asks the kernels to assert instead (`tl.device_assert`, debug builds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from xdsl.dialects import arith
from xdsl.dialects import tensor as tensor_dialect
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, TensorType
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue

from attnc.dialect.attn import FlashGradOp, FlashOp
from attnc.dialect.index_intervals import Expr

GUARD = "attn.guard"
GUARD_REPORT = "attn.guard_report"

_BINARY = {
    arith.AddiOp: "add",
    arith.SubiOp: "sub",
    arith.MuliOp: "mul",
    arith.DivSIOp: "div",
    arith.FloorDivSIOp: "div",
    arith.RemSIOp: "rem",
    arith.MinSIOp: "min",
    arith.MaxSIOp: "max",
}
_CASTS = (arith.IndexCastOp, arith.ExtSIOp, arith.TruncIOp)
_SCORE = {1: "b", 2: "h", 3: "q_idx", 4: "kv_idx"}
_MASK = {0: "b", 1: "h", 2: "q_idx", 3: "kv_idx"}
_ROW = {1: "b", 2: "h"}


def index_layouts(op: FlashOp | FlashGradOp) -> list[tuple[str, Region, dict[int, str]]]:
    """Each region of `op` that may read captured tensors, with its index arguments by position."""
    if isinstance(op, FlashOp):
        return [
            ("score_mod", op.score_mod, _SCORE),
            ("mask_mod", op.mask_mod, _MASK),
            ("update", op.update, _ROW),
            ("finalize", op.finalize, _ROW),
        ]
    return [
        ("score_mod", op.score_mod, _SCORE),
        ("mask_mod", op.mask_mod, _MASK),
        ("score_mod_grad", op.score_mod_grad, _SCORE),
        ("stat_grad", op.stat_grad, {0: "b", 1: "h"}),
    ]


def capture_extracts(region: Region) -> Iterator[tuple[tensor_dialect.ExtractOp, int]]:
    """Each `tensor.extract` of a captured tensor (a tensor argument of the region) and which capture."""
    if not region.blocks:
        return
    block = region.blocks[0]
    first = next((a.index for a in block.args if isinstance(a.type, TensorType)), len(block.args))
    for op in block.walk():
        if not isinstance(op, tensor_dialect.ExtractOp):
            continue
        source = op.tensor
        if isinstance(source, BlockArgument) and source.block is block and source.index >= first:
            yield op, source.index - first


def guarded_dims(op: Operation) -> tuple[int, ...]:
    """The dimensions `op`'s `attn.guard` lists (none without one)."""
    attr = op.attributes.get(GUARD)
    return tuple(int(d) for d in attr.get_values()) if isinstance(attr, DenseArrayBase) else ()


def guarded_sizes(regions: Iterable[Region]) -> list[tuple[int, int]]:
    """(capture, dimension) of every guarded read in `regions`: the sizes a kernel lowering them needs."""
    return sorted({(i, d) for r in regions for op, i in capture_extracts(r) for d in guarded_dims(op)})


def capture_reads(op: FlashOp | FlashGradOp) -> list[dict[str, Any]]:
    """Every read of a captured tensor in `op`'s regions, with its index expressions and guarded dimensions."""
    reads: list[dict[str, Any]] = []
    for region_name, region, index_args in index_layouts(op):
        for extract, capture in capture_extracts(region):
            source = extract.tensor
            block = region.blocks[0]
            reads.append(
                {
                    "capture": capture,
                    "name": source.name_hint or f"capture {capture}",
                    "region": region_name,
                    "indices": [index_expr(i, block, index_args) for i in extract.indices],
                    "guarded": list(guarded_dims(extract)),
                }
            )
    return reads


def index_expr(value: SSAValue, block: Block, index_args: dict[int, str]) -> Expr:
    """`value` as an index expression over `block`'s index arguments (positions → names)."""
    if isinstance(value, BlockArgument):
        if value.block is block and value.index in index_args:
            return {"arg": index_args[value.index]}
        return {"unknown": "a block argument"}
    op = value.owner
    if not isinstance(op, Operation):
        return {"unknown": "a block"}
    if isinstance(op, arith.ConstantOp) and isinstance(op.value, IntegerAttr):
        return {"const": op.value.value.data}
    if isinstance(op, _CASTS):
        return index_expr(op.operands[0], block, index_args)
    modulus = _python_mod(op)
    if modulus is not None:
        return {"op": "mod", "args": [index_expr(v, block, index_args) for v in modulus]}
    kind = _BINARY.get(type(op))
    if kind is not None:
        return {"op": kind, "args": [index_expr(o, block, index_args) for o in op.operands]}
    if isinstance(op, arith.SelectOp):
        return {
            "op": "select",
            "args": [index_expr(op.operands[1], block, index_args), index_expr(op.operands[2], block, index_args)],
        }
    return {"unknown": op.name}


def _python_mod(op: object) -> tuple[SSAValue, SSAValue] | None:
    """(x, y) when `op` is x − floordiv(x, y)·y."""
    if not isinstance(op, arith.SubiOp):
        return None
    product = op.rhs.owner
    if not isinstance(product, arith.MuliOp):
        return None
    quotient = product.lhs.owner
    if not isinstance(quotient, arith.FloorDivSIOp) or quotient.lhs is not op.lhs or quotient.rhs is not product.rhs:
        return None
    return op.lhs, product.rhs


__all__ = [
    "GUARD",
    "GUARD_REPORT",
    "capture_extracts",
    "capture_reads",
    "guarded_dims",
    "guarded_sizes",
    "index_expr",
    "index_layouts",
]
