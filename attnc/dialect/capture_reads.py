"""Where the regions of an `attn.flash` read its captured tensors, as index expressions over b, h, q_idx
and kv_idx that the runtime bounds at a call's shape (interval arithmetic) before any kernel runs.

Each read is `{"capture": i, "name": ..., "region": ..., "indices": [expr, ...]}`, one expression per
dimension, in JSON: `{"arg": "q_idx"}`, `{"const": 3}`, `{"op": "add" | "sub" | "mul" | "div" | "rem" |
"mod" | "min" | "max" | "select", "args": [...]}`, or `{"unknown": "<op>"}` for an index computed from
data (another tensor's value), which this check cannot bound. `mod` is Python's `%` as the frontend
writes it, x − (x // y)·y, recognised whole so that its range stays tight.
"""

from __future__ import annotations

from typing import Any

from xdsl.dialects import arith
from xdsl.dialects import tensor as tensor_dialect
from xdsl.dialects.builtin import IntegerAttr
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue

from attnc.dialect.attn import FlashOp

Expr = dict[str, Any]

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


def capture_reads(flash: FlashOp) -> list[dict[str, Any]]:
    """Every `tensor.extract` of a captured tensor in `flash`'s regions, with its index expressions."""
    num_state = len(flash.state.data)
    layouts: list[tuple[str, Region, dict[int, str], int]] = [
        ("score_mod", flash.score_mod, {1: "b", 2: "h", 3: "q_idx", 4: "kv_idx"}, 5),
        ("mask_mod", flash.mask_mod, {0: "b", 1: "h", 2: "q_idx", 3: "kv_idx"}, 4),
        ("update", flash.update, {1: "b", 2: "h"}, 3 + num_state),
        ("finalize", flash.finalize, {1: "b", 2: "h"}, 3 + num_state),
    ]
    reads: list[dict[str, Any]] = []
    for region_name, region, index_args, first_capture in layouts:
        if not region.blocks:
            continue
        block = region.blocks[0]
        for op in block.walk():
            if not isinstance(op, tensor_dialect.ExtractOp):
                continue
            source = op.tensor
            if not isinstance(source, BlockArgument) or source.block is not block or source.index < first_capture:
                continue
            reads.append(
                {
                    "capture": source.index - first_capture,
                    "name": source.name_hint or f"capture {source.index - first_capture}",
                    "region": region_name,
                    "indices": [_expr(i, block, index_args) for i in op.indices],
                }
            )
    return reads


def _expr(value: SSAValue, block: Block, index_args: dict[int, str]) -> Expr:
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
        return _expr(op.operands[0], block, index_args)
    modulus = _python_mod(op)
    if modulus is not None:
        return {"op": "mod", "args": [_expr(v, block, index_args) for v in modulus]}
    kind = _BINARY.get(type(op))
    if kind is not None:
        return {"op": kind, "args": [_expr(o, block, index_args) for o in op.operands]}
    if isinstance(op, arith.SelectOp):
        return {
            "op": "select",
            "args": [_expr(op.operands[1], block, index_args), _expr(op.operands[2], block, index_args)],
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


__all__ = ["capture_reads"]
