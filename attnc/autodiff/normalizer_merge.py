"""How two partial runs of a normalizer over disjoint key ranges of one row merge: what `attn-split`
puts in `attn.flash`'s `merge` region, read from what the update region computes (never from a name).

A row's keys split in two give two (accumulator, state) pairs. The merge region takes
(state_a..., state_b...) and yields (scale_a, scale_b, state...), and the accumulator merges as
acc = acc_a·scale_a + acc_b·scale_b; finalize then runs once on the merged pair. Two forms are known:

- **online softmax** (softmax_form.py; softmax, sinks and any normalizer whose update is op for op
  softmax's, in base e or 2): m = max(m_a, m_b), scale_x = exp_b(m_x − m) (m guarded to 0 on a row
  no split saw), l = l_a·scale_a + l_b·scale_b.
- **additive**: alpha is the constant 1, each state starts at 0 and each new state is the old one plus
  a term that reads no state (sigmoid and ReLU have no state; retention sums |s|): scales 1, states
  added.

Anything else has no merge here, and its attention runs unsplit.
"""

from __future__ import annotations

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, f32
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue

from attnc.autodiff.softmax_form import LN2, online_softmax_update
from attnc.dialect import attn


def merge_region(op: attn.FlashOp) -> Region | None:
    """The merge region of `op`'s normalizer (module docstring), or None when its form is not known."""
    names = [s.data for s in op.state.data]
    form = online_softmax_update(op)
    if form is not None:
        return _softmax_merge(names, form.running_max, form.running_sum, form.kappa)
    if _is_additive(op):
        return _additive_merge(names)
    return None


def _block(names: list[str]) -> tuple[Block, list[BlockArgument], list[BlockArgument]]:
    block = Block(arg_types=[f32] * (2 * len(names)))
    a, b = list(block.args[: len(names)]), list(block.args[len(names) :])
    for arg, name in zip(block.args, [f"{n}_a" for n in names] + [f"{n}_b" for n in names]):
        arg.name_hint = name
    return block, a, b


def _add(block: Block, op: Operation, name: str | None = None) -> SSAValue:
    block.add_op(op)
    result = op.results[0]
    if name:
        result.name_hint = name
    return result


def _constant(block: Block, value: float) -> SSAValue:
    return _add(block, arith.ConstantOp(FloatAttr(value, f32)))


def _softmax_merge(names: list[str], mi: int, li: int, kappa: float) -> Region:
    block, a, b = _block(names)
    m = _add(block, arith.MaxnumfOp(a[mi], b[mi]), "m")
    empty = _add(block, arith.CmpfOp(m, _constant(block, float("-inf")), "oeq"))
    m_safe = _add(block, arith.SelectOp(empty, _constant(block, 0.0), m), "m_safe")
    exp = math.Exp2Op if abs(kappa - LN2) < 1e-6 else math.ExpOp
    scale_a = _add(block, exp(_add(block, arith.SubfOp(a[mi], m_safe))), "scale_a")
    scale_b = _add(block, exp(_add(block, arith.SubfOp(b[mi], m_safe))), "scale_b")
    l_a = _add(block, arith.MulfOp(a[li], scale_a))
    l_b = _add(block, arith.MulfOp(b[li], scale_b))
    total = _add(block, arith.AddfOp(l_a, l_b), "l")
    merged = [m if i == mi else total for i in range(len(names))]
    block.add_op(attn.YieldOp(scale_a, scale_b, *merged))
    return Region(block)


def _additive_merge(names: list[str]) -> Region:
    block, a, b = _block(names)
    one = _constant(block, 1.0)
    merged = [_add(block, arith.AddfOp(x, y), name) for x, y, name in zip(a, b, names)]
    block.add_op(attn.YieldOp(one, one, *merged))
    return Region(block)


def _is_additive(op: attn.FlashOp) -> bool:
    block = op.update.blocks[0]
    states = list(block.args[3 : 3 + len(op.state.data)])
    terminator = block.last_op
    assert isinstance(terminator, attn.YieldOp)
    _, alpha, *new = terminator.values
    owner = alpha.owner
    if not (isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr) and owner.value.value.data == 1):
        return False
    if any(init.value.data != 0.0 for init in op.init.data):  # each split starts from it: it would count n times
        return False
    for state, value in zip(states, new):
        add = value.owner
        if not isinstance(add, arith.AddfOp) or state not in add.operands:
            return False
        term = add.operands[1] if add.operands[0] is state else add.operands[0]
        if any(_reads(term, s) for s in states):
            return False
    return True


def _reads(value: SSAValue, arg: SSAValue) -> bool:
    """Whether `value` is computed from `arg`."""
    seen: set[SSAValue] = set()
    work = [value]
    while work:
        v = work.pop()
        if v is arg:
            return True
        if v in seen:
            continue
        seen.add(v)
        if isinstance(v.owner, Operation):
            work.extend(v.owner.operands)
    return False


__all__ = ["merge_region"]
