"""Rules for the `tile` dialect, one `triton.language` call per op."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnc.dialect import tile
from attnc.lowering.rules import dtype, literal, rule, shape

if TYPE_CHECKING:
    from attnc.lowering.triton import KernelPrinter


@rule(tile.ReturnOp)
def return_(p: KernelPrinter, op: tile.ReturnOp) -> None:
    """The end of the kernel prints nothing."""


@rule(tile.ConstexprOp)
def constexpr(p: KernelPrinter, op: tile.ConstexprOp) -> None:
    p.bind(op.result, op.param.data, constish=True)


@rule(tile.ProgramIdOp)
def program_id(p: KernelPrinter, op: tile.ProgramIdOp) -> None:
    p.assign(op.result, f"tl.program_id({op.axis.value.data})", "pid")


@rule(tile.NumProgramsOp)
def num_programs(p: KernelPrinter, op: tile.NumProgramsOp) -> None:
    p.assign(op.result, f"tl.num_programs({op.axis.value.data})", "num_pid")


@rule(tile.ArangeOp)
def arange(p: KernelPrinter, op: tile.ArangeOp) -> None:
    p.assign(op.result, f"tl.arange(0, {op.dims.data[0].data})", "offs")


@rule(tile.FullOp)
def full(p: KernelPrinter, op: tile.FullOp) -> None:
    value, element = literal(op.value), dtype(op.result.type)
    if value in ("0", "0.0", "False"):
        text = f"tl.zeros({shape(op.dims)}, dtype={element})"
    else:
        text = f"tl.full({shape(op.dims)}, {value}, {element})"
    p.assign(op.result, text, "full")


@rule(tile.SplatOp)
def splat(p: KernelPrinter, op: tile.SplatOp) -> None:
    if p.elided(op.result):
        p.bind(op.result, p.expr(op.value), constish=p.is_constish(op.value))
        return
    # tl.full takes a scalar tensor or a Python number; tl.broadcast_to only the former.
    text = f"tl.full({shape(op.dims)}, {p.expr(op.value)}, {dtype(op.value.type)})"
    p.assign(op.result, text, "splat")


@rule(tile.ExpandDimsOp)
def expand_dims(p: KernelPrinter, op: tile.ExpandDimsOp) -> None:
    """`x[:, None]`, inline wherever `x` is a name."""
    rank = len(tile.shape_of(op.result.type))
    index = ", ".join("None" if i == op.axis.value.data else ":" for i in range(rank))
    text = f"{p.operand(op.value)}[{index}]"
    if p.expr(op.value).isidentifier():
        p.bind(op.result, text)
    else:
        p.assign(op.result, text, "expanded")


@rule(tile.BroadcastOp)
def broadcast(p: KernelPrinter, op: tile.BroadcastOp) -> None:
    if p.elided(op.result):
        p.bind(op.result, p.expr(op.value))
        return
    text = f"tl.broadcast_to({p.expr(op.value)}, {shape(op.dims)})"
    p.assign(op.result, text, "broadcast")


@rule(tile.AddPtrOp)
def addptr(p: KernelPrinter, op: tile.AddPtrOp) -> None:
    text = p.fill("{} + {}", [p.expr(op.ptr), p.expr(op.offset)])
    p.assign(op.result, text, "ptrs")


@rule(tile.LoadOp)
def load(p: KernelPrinter, op: tile.LoadOp) -> None:
    args = [p.expr(op.ptr)]
    if op.mask is not None:
        args.append(f"mask={p.expr(op.mask)}")
    if op.other is not None:
        args.append(f"other={p.expr(op.other)}")
    elif op.other_value is not None:
        args.append(f"other={literal(op.other_value)}")
    p.assign(op.result, f"tl.load({', '.join(args)})", "x")


@rule(tile.DeviceAssertOp)
def device_assert(p: KernelPrinter, op: tile.DeviceAssertOp) -> None:
    p.line(f"tl.device_assert({p.expr(op.cond)}, {op.message.data!r})")


@rule(tile.ScopeEnterOp)
def scope_enter(p: KernelPrinter, op: tile.ScopeEnterOp) -> None:
    p.line(f"pl.enter_scope({op.scope.data!r})")


@rule(tile.ScopeExitOp)
def scope_exit(p: KernelPrinter, op: tile.ScopeExitOp) -> None:
    p.line(f"pl.exit_scope({op.scope.data!r})")


WRITES = {tile.StoreOp: "tl.store", tile.AtomicAddOp: "tl.atomic_add"}


@rule(*WRITES)
def write(p: KernelPrinter, op: tile.StoreOp | tile.AtomicAddOp) -> None:
    args = [p.expr(op.ptr), p.expr(op.value)]
    if op.mask is not None:
        args.append(f"mask={p.expr(op.mask)}")
    p.line(f"{WRITES[type(op)]}({', '.join(args)})")


@rule(tile.DotOp)
def dot(p: KernelPrinter, op: tile.DotOp) -> None:
    args = [p.expr(op.a), p.expr(op.b)]
    if op.acc is not None:
        args.append(p.expr(op.acc))
    else:
        default = tile.dot_result_element_type(tile.element_type_of(op.a.type))
        if tile.element_type_of(op.result.type) != default:
            args.append(f"out_dtype={dtype(op.result.type)}")
    if op.input_precision is not None:
        args.append(f'input_precision="{op.input_precision.data.value}"')
    p.assign(op.result, f"tl.dot({', '.join(args)})", "dot")


@rule(tile.TransOp)
def trans(p: KernelPrinter, op: tile.TransOp) -> None:
    p.assign(op.result, f"tl.trans({p.expr(op.value)})", "trans")


@rule(tile.ReduceOp)
def reduce(p: KernelPrinter, op: tile.ReduceOp) -> None:
    kind = op.kind.data
    args = [p.expr(op.value), f"axis={op.axis.value.data}"]
    element = tile.element_type_of(op.value.type)
    if tile.element_type_of(op.result.type) != tile.reduce_result_element_type(kind, element):
        args.append(f"dtype={dtype(op.result.type)}")
    p.assign(op.result, f"tl.{kind.value}({', '.join(args)})", kind.value)


@rule(tile.CumsumOp)
def cumsum(p: KernelPrinter, op: tile.CumsumOp) -> None:
    reverse = ", reverse=True" if op.reverse is not None else ""
    p.assign(op.result, f"tl.cumsum({p.expr(op.value)}, axis={op.axis.value.data}{reverse})", "cumsum")


@rule(tile.MultipleOfOp)
def multiple_of(p: KernelPrinter, op: tile.MultipleOfOp) -> None:
    text = f"tl.multiple_of({p.tensor(op.value)}, {op.multiple.value.data})"
    p.assign(op.result, text, "multiple")


@rule(tile.InlineAsmOp)
def inline_asm(p: KernelPrinter, op: tile.InlineAsmOp) -> None:
    text = (
        f'tl.inline_asm_elementwise("{op.asm.data}", "{op.constraints.data}", [{p.expr(op.value)}], '
        f"dtype={dtype(op.result.type)}, is_pure=True, pack=1)"
    )
    p.assign(op.result, text, "asm")
