"""Rules for `scf`: `for` loops with iter args, and `if`.

An iter arg, its loop result and, where safe, its init and yielded values print under
one Python name, assigned before the loop and reassigned at the end of the body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.dialects import scf

from attnc.lowering.rules import rule

if TYPE_CHECKING:
    from attnc.lowering.triton import KernelPrinter


@rule(scf.ForOp)
def for_(p: KernelPrinter, op: scf.ForOp) -> None:
    body = op.body.block
    names = [p.name_of(result, "acc") for result in op.results]
    p.assign_all(names, op.iter_args)
    induction = body.args[0]
    index = p.fresh(induction.name_hint or "i")
    bounds = [p.expr(op.lb), p.expr(op.ub), p.expr(op.step)]
    if bounds[2] == "1":
        bounds.pop()
        if bounds[0] == "0":
            bounds.pop(0)
    p.line(f"for {index} in range({', '.join(bounds)}):")
    p.bind(induction, index)
    for arg, name in zip(body.args[1:], names, strict=True):
        p.bind(arg, name)
    with p.indented():
        start = p.line_count
        p.emit_block(body)
        yielded = body.last_op
        assert isinstance(yielded, scf.YieldOp)
        p.assign_all(names, yielded.operands)
        if p.line_count == start:
            p.line("pass")
    for result, name in zip(op.results, names, strict=True):
        p.bind(result, name)


@rule(scf.IfOp)
def if_(p: KernelPrinter, op: scf.IfOp) -> None:
    names = [p.name_of(result, "r") for result in op.results]
    p.line(f"if {p.expr(op.cond)}:")
    for region, keyword in ((op.true_region, None), (op.false_region, "else:")):
        if not region.blocks:
            continue
        block = region.block
        if keyword is not None:
            if not names and all(isinstance(o, scf.YieldOp) for o in block.ops):
                continue
            p.line(keyword)
        with p.indented():
            start = p.line_count
            p.emit_block(block)
            yielded = block.last_op
            if isinstance(yielded, scf.YieldOp):
                p.assign_all(names, yielded.operands)
            if p.line_count == start:
                p.line("pass")
    for result, name in zip(op.results, names, strict=True):
        p.bind(result, name)
