"""attn-block-mask: classify the mask of each `attn.flash` per tile.

A tile of queries [q_lo, q_hi) by keys [kv_lo, kv_hi) is empty (no score kept),
full (every score kept) or partial. Empty tiles are never visited; full tiles
skip the mask. The pass sets `block_mask`:

- "none": the mask keeps everything (no mask_mod);
- "affine": the mask is built from integer arithmetic on the indices (causal,
  sliding window, prefix-LM, chunked, and their combinations). The pass derives
  the `classify` region symbolically, by interval arithmetic over the tile: each
  index becomes the range it takes in the tile, each comparison a pair (may be
  true, must be true). The region yields (any kept, all kept) for a tile and
  costs a few scalar ops per tile, never one per element;
- "runtime": anything else (the mask reads captured tensors or floats); its
  block table is computed on the device at run time by evaluating the mask.

Precondition: `attn.flash` ops (run attn-fuse first).

Before:
```mlir
%o, %lse = attn.flash ... mask_mod {
^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
  %c = arith.cmpi sge, %q_idx, %kv_idx : index
  attn.yield %c : i1
} ... classify {
} {...}
```
After:
```mlir
%o, %lse = attn.flash ... classify {
^bb0(%b: index, %h: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
  ...                                   // any = q_hi - 1 >= kv_lo, all = q_lo >= kv_hi - 1
  attn.yield %any, %all : i1, i1
} {block_mask = "affine", ...}
```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr, IntegerType, ModuleOp, StringAttr, i1
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from attnc.dialect import attn


class NotAffine(Exception):
    """The mask uses something interval arithmetic does not cover."""


@dataclass
class Range:
    """An integer value's range over a tile: lo <= value <= hi. `const` when it is one known number."""

    lo: SSAValue
    hi: SSAValue
    const: int | None = None


@dataclass
class Truth:
    """A predicate over a tile: `may` (true somewhere), `must` (true everywhere)."""

    may: SSAValue
    must: SSAValue


class _ClassifierBuilder:
    """Evaluates a mask_mod region over tile ranges, appending the interval ops to `block`.

    `values` maps each value of the region evaluated so far to its Range (integers) or
    Truth (i1).
    """

    def __init__(self, block: Block):
        self.block = block
        self.consts: dict[tuple[int, IntegerType | IndexType], SSAValue] = {}
        self.values: dict[SSAValue, Range | Truth] = {}

    def range_of(self, v: SSAValue) -> Range:
        r = self.values.get(v)
        if not isinstance(r, Range):
            raise NotAffine(f"value of type {v.type} is not an integer range")
        return r

    def truth_of(self, v: SSAValue) -> Truth:
        t = self.values.get(v)
        if not isinstance(t, Truth):
            raise NotAffine(f"value of type {v.type} is not a predicate")
        return t

    def emit(self, op: Operation, name: str | None = None) -> SSAValue:
        self.block.add_op(op)
        result = op.results[0]
        if name:
            result.name_hint = name
        return result

    def const(self, value: int, ty: IntegerType | IndexType) -> SSAValue:
        key = (value, ty)
        if key not in self.consts:
            self.consts[key] = self.emit(arith.ConstantOp(IntegerAttr(value, ty)))
        return self.consts[key]

    def bool_const(self, value: bool) -> SSAValue:
        return self.const(int(value), i1)

    def not_(self, x: SSAValue) -> SSAValue:
        return self.emit(arith.XOrIOp(x, self.bool_const(True)))

    def and_(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.AndIOp(a, b))

    def or_(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.OrIOp(a, b))

    def cmp(self, pred: str, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.CmpiOp(a, b, pred))

    def min_(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.MinSIOp(a, b))

    def max_(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.MaxSIOp(a, b))

    # Comparisons of two ranges.
    def less(self, a: Range, b: Range, strict: bool) -> Truth:
        pred = "slt" if strict else "sle"
        return Truth(may=self.cmp(pred, a.lo, b.hi), must=self.cmp(pred, a.hi, b.lo))

    def equal(self, a: Range, b: Range) -> Truth:
        may = self.and_(self.cmp("sle", a.lo, b.hi), self.cmp("sle", b.lo, a.hi))
        a_point = self.cmp("eq", a.lo, a.hi)
        b_point = self.cmp("eq", b.lo, b.hi)
        must = self.and_(self.and_(a_point, b_point), self.cmp("eq", a.lo, b.lo))
        return Truth(may=may, must=must)

    def compare(self, predicate: int, a: Range, b: Range) -> Truth:
        name = arith.CMPI_COMPARISON_OPERATIONS[predicate]
        if name == "eq":
            return self.equal(a, b)
        if name == "ne":
            eq = self.equal(a, b)
            return Truth(may=self.not_(eq.must), must=self.not_(eq.may))
        if name == "slt":
            return self.less(a, b, strict=True)
        if name == "sle":
            return self.less(a, b, strict=False)
        if name == "sgt":
            return self.less(b, a, strict=True)
        if name == "sge":
            return self.less(b, a, strict=False)
        raise NotAffine(f"unsigned comparison '{name}'")


def _const_value(op: arith.ConstantOp) -> int | None:
    value = op.value
    if isinstance(value, IntegerAttr):
        return value.value.data
    return None


# ===-------------------------------------------------------------------=== #
# Transfer functions: one per op family, from the operands' Ranges and Truths to
# the result's, emitting the interval ops through the builder.
# ===-------------------------------------------------------------------=== #

_Transfer = Callable[[_ClassifierBuilder, Any], Range | Truth]
_TRANSFER: dict[type[Operation], _Transfer] = {}


def _transfer(*op_types: type[Operation]) -> Callable[[_Transfer], _Transfer]:
    """Register the decorated function as the transfer function of each of `op_types`."""

    def register(fn: _Transfer) -> _Transfer:
        for op_type in op_types:
            _TRANSFER[op_type] = fn
        return fn

    return register


def _not_affine(op: Operation) -> NotAffine:
    return NotAffine(f"'{op.name}'")


@_transfer(arith.ConstantOp)
def _constant(b: _ClassifierBuilder, op: arith.ConstantOp) -> Range | Truth:
    ty = op.result.type
    if ty == i1:
        c = b.bool_const(bool(_const_value(op)))
        return Truth(c, c)
    if not isinstance(ty, IndexType | IntegerType):
        raise _not_affine(op)
    n = _const_value(op)
    if n is None:
        raise NotAffine("non-scalar integer constant")
    c = b.const(n, ty)
    return Range(c, c, n)


@_transfer(arith.AddiOp)
def _addi(b: _ClassifierBuilder, op: arith.AddiOp) -> Range:
    x, y = b.range_of(op.lhs), b.range_of(op.rhs)
    const = x.const + y.const if x.const is not None and y.const is not None else None
    return Range(b.emit(arith.AddiOp(x.lo, y.lo)), b.emit(arith.AddiOp(x.hi, y.hi)), const)


@_transfer(arith.SubiOp)
def _subi(b: _ClassifierBuilder, op: arith.SubiOp) -> Range:
    x, y = b.range_of(op.lhs), b.range_of(op.rhs)
    const = x.const - y.const if x.const is not None and y.const is not None else None
    return Range(b.emit(arith.SubiOp(x.lo, y.hi)), b.emit(arith.SubiOp(x.hi, y.lo)), const)


@_transfer(arith.MuliOp)
def _muli(b: _ClassifierBuilder, op: arith.MuliOp) -> Range:
    x, y = b.range_of(op.lhs), b.range_of(op.rhs)
    products = [b.emit(arith.MuliOp(u, w)) for u in (x.lo, x.hi) for w in (y.lo, y.hi)]
    lo = b.min_(b.min_(products[0], products[1]), b.min_(products[2], products[3]))
    hi = b.max_(b.max_(products[0], products[1]), b.max_(products[2], products[3]))
    return Range(lo, hi)


@_transfer(arith.FloorDivSIOp)
def _floordivsi(b: _ClassifierBuilder, op: arith.FloorDivSIOp) -> Range:
    x, y = b.range_of(op.lhs), b.range_of(op.rhs)
    if y.const is None or y.const <= 0:
        raise NotAffine("floor division by something other than a positive constant")
    return Range(b.emit(arith.FloorDivSIOp(x.lo, y.lo)), b.emit(arith.FloorDivSIOp(x.hi, y.lo)))


@_transfer(arith.MinSIOp, arith.MaxSIOp)
def _min_max(b: _ClassifierBuilder, op: arith.MinSIOp | arith.MaxSIOp) -> Range:
    x, y = b.range_of(op.lhs), b.range_of(op.rhs)
    kind = type(op)
    return Range(b.emit(kind(x.lo, y.lo)), b.emit(kind(x.hi, y.hi)))


@_transfer(arith.IndexCastOp)
def _index_cast(b: _ClassifierBuilder, op: arith.IndexCastOp) -> Range:
    x, ty = b.range_of(op.input), op.result.type
    return Range(b.emit(arith.IndexCastOp(x.lo, ty)), b.emit(arith.IndexCastOp(x.hi, ty)), x.const)


@_transfer(arith.ExtSIOp)
def _extsi(b: _ClassifierBuilder, op: arith.ExtSIOp) -> Range:
    x, ty = b.range_of(op.input), op.result.type
    return Range(b.emit(arith.ExtSIOp(x.lo, ty)), b.emit(arith.ExtSIOp(x.hi, ty)), x.const)


@_transfer(arith.CmpiOp)
def _cmpi(b: _ClassifierBuilder, op: arith.CmpiOp) -> Truth:
    return b.compare(op.predicate.value.data, b.range_of(op.lhs), b.range_of(op.rhs))


@_transfer(arith.AndIOp, arith.OrIOp, arith.XOrIOp)
def _logic(b: _ClassifierBuilder, op: arith.AndIOp | arith.OrIOp | arith.XOrIOp) -> Truth:
    if op.result.type != i1:
        raise _not_affine(op)
    x, y = b.truth_of(op.lhs), b.truth_of(op.rhs)
    if isinstance(op, arith.AndIOp):
        return Truth(b.and_(x.may, y.may), b.and_(x.must, y.must))
    if isinstance(op, arith.OrIOp):
        return Truth(b.or_(x.may, y.may), b.or_(x.must, y.must))
    may = b.or_(b.and_(x.may, b.not_(y.must)), b.and_(b.not_(x.must), y.may))
    must = b.or_(b.and_(x.must, b.not_(y.may)), b.and_(b.not_(x.may), y.must))
    return Truth(may, must)


@_transfer(arith.SelectOp)
def _select(b: _ClassifierBuilder, op: arith.SelectOp) -> Range | Truth:
    if op.result.type == i1:
        c, x, y = b.truth_of(op.cond), b.truth_of(op.lhs), b.truth_of(op.rhs)
        may = b.or_(b.and_(c.may, x.may), b.and_(b.not_(c.must), y.may))
        must = b.or_(b.and_(x.must, y.must), b.or_(b.and_(c.must, x.must), b.and_(b.not_(c.may), y.must)))
        return Truth(may, must)
    x, y = b.range_of(op.lhs), b.range_of(op.rhs)
    b.truth_of(op.cond)
    return Range(b.min_(x.lo, y.lo), b.max_(x.hi, y.hi))


def _interpret(mask: Region, builder: _ClassifierBuilder, args: list[Range]) -> Truth:
    """What the mask yields over the tile whose index ranges are `args`."""
    block = mask.blocks[0]
    builder.values.update(zip(block.args, args))
    for arg in block.args[len(args) :]:
        if arg.uses:
            raise NotAffine("the mask reads a captured tensor")
    for op in block.ops:
        if isinstance(op, attn.YieldOp):
            return builder.truth_of(op.values[0])
        fn = _TRANSFER.get(type(op))
        if fn is None:
            raise _not_affine(op)
        builder.values[op.results[0]] = fn(builder, op)
    raise NotAffine("mask_mod region has no attn.yield")


def is_keep_all(mask: Region) -> bool:
    """True when the mask region yields the constant true."""
    last = mask.blocks[0].last_op
    assert isinstance(last, attn.YieldOp)
    owner = last.values[0].owner
    # xDSL stores an i1 true as -1; any non-zero value is true.
    return isinstance(owner, arith.ConstantOp) and owner.result.type == i1 and bool(_const_value(owner))


def derive_classifier(mask: Region) -> Region | None:
    """The classify region for an affine mask, or None when the mask is not affine."""
    block = Block(arg_types=[IndexType()] * 6)
    for arg, name in zip(block.args, ["b", "h", "q_lo", "q_hi", "kv_lo", "kv_hi"]):
        arg.name_hint = name
    b_arg, h_arg, q_lo, q_hi, kv_lo, kv_hi = block.args
    builder = _ClassifierBuilder(block)
    one = builder.const(1, IndexType())
    q_last = builder.emit(arith.SubiOp(q_hi, one), "q_last")
    kv_last = builder.emit(arith.SubiOp(kv_hi, one), "kv_last")
    ranges = [Range(b_arg, b_arg), Range(h_arg, h_arg), Range(q_lo, q_last), Range(kv_lo, kv_last)]
    try:
        result = _interpret(mask, builder, ranges)
    except NotAffine:
        return None
    result.may.name_hint = "any"
    result.must.name_hint = "all"
    block.add_op(attn.YieldOp(result.may, result.must))
    return Region(block)


@dataclass(frozen=True)
class AttnBlockMaskPass(ModulePass):
    """Classifies each attn.flash mask per tile: none, affine (symbolic classify region) or runtime."""

    name = "attn-block-mask"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for flash in op.walk():
            if not isinstance(flash, attn.FlashOp):
                continue
            if flash.block_mask is not None:
                continue
            if is_keep_all(flash.mask_mod):
                flash.attributes["block_mask"] = StringAttr("none")
                continue
            classifier = derive_classifier(flash.mask_mod)
            if classifier is None:
                flash.attributes["block_mask"] = StringAttr("runtime")
                continue
            flash.attributes["block_mask"] = StringAttr("affine")
            classifier.move_blocks(flash.classify)
        for other in op.walk():
            if isinstance(other, (attn.QKOp, attn.MaskModOp, attn.PVOp)):
                raise PassFailedException("attn-block-mask requires fused attention ops; run attn-fuse first")


__all__ = ["AttnBlockMaskPass", "derive_classifier", "is_keep_all"]
