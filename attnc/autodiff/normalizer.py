"""Which backward a normalizer has: what `attn-autodiff` reads off an `attn.flash`'s regions.

Two forms cover the built-ins and the user normalizers whose math allows it, each
recognised from what the regions compute (a normalizer's name is only for messages):

- **softmax**: the update is online softmax's and the finalize returns
  Σ_j exp(t_j − lse)·v_j with lse = log(Σ_j exp(t_j) + E(captured values)) its first
  statistic (softmax_form.py proves both). Then P = exp(t − lse) from the saved
  logsumexp and dT = P ⊙ (dP − rowsum(dO ⊙ O)). A sink is such an E: it takes weight
  but has no value; its own gradient comes from lse (`attn.flash_grad`'s `stat_grad`).
- **elementwise**: the update's probabilities are a function of the score alone
  (no running state, no row reduction) and it yields alpha = 1; the finalize returns
  the accumulator, or the accumulator divided by one of its statistics, which the
  backward holds constant (RetNet's rule for its denominator). Then P = c·f(t) per
  element, and dT = c·f'(t)·dP is the chain rule on f∘score_mod: sigmoid, ReLU,
  retention, and any stateless user normalizer.

Anything else (an update whose probabilities read the running state, other than
softmax's) needs a user-given backward; the error says which part.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import arith
from xdsl.dialects.builtin import ArrayAttr, FloatAttr
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue
from xdsl.utils.exceptions import PassFailedException

from attnc.autodiff.softmax_form import online_softmax_update, softmax_finalize_problem
from attnc.dialect import attn


@dataclass
class NormalizerBackward:
    """`probabilities`: "softmax" or "elementwise"; `stat`: which of the forward's statistics the
    backward reads (None: none); `weights`: the region the backward recomputes per score, t for
    softmax, f(t) for elementwise."""

    probabilities: str
    stat: int | None
    weights: Region


def _is_constant(value: SSAValue, number: float) -> bool:
    owner = value.owner
    return (
        isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr) and owner.value.value.data == number
    )


def _depends_on(value: SSAValue, roots: set[SSAValue]) -> bool:
    if value in roots:
        return True
    owner = value.owner
    return isinstance(owner, Operation) and any(_depends_on(o, roots) for o in owner.operands)


def _fail(name: str, part: str) -> PassFailedException:
    return PassFailedException(
        f"attn-autodiff cannot derive the backward of normalizer '{name}': {part}; "
        "such a normalizer needs a user-given backward"
    )


def _row_scale_stat(op: attn.FlashOp) -> int | None:
    """None when finalize returns acc; k when it returns acc / stat_k (or acc · (1 / stat_k))."""
    block = op.finalize.blocks[0]
    acc = block.args[0]
    terminator = block.last_op
    assert isinstance(terminator, attn.YieldOp)
    out, stats = terminator.values[0], list(terminator.values[1:])
    if out is acc:
        return None
    owner = out.owner
    divisor: SSAValue | None = None
    if isinstance(owner, arith.DivfOp) and owner.lhs is acc:
        divisor = owner.rhs
    elif isinstance(owner, arith.MulfOp) and acc in (owner.lhs, owner.rhs):
        factor = owner.rhs if owner.lhs is acc else owner.lhs
        inverse = factor.owner
        if isinstance(inverse, arith.DivfOp) and _is_constant(inverse.lhs, 1.0):
            divisor = inverse.rhs
    if divisor is None or divisor not in stats:
        raise _fail(
            op.normalizer.data,
            "its finalize must return the accumulator, or the accumulator divided by one of its statistics",
        )
    index = stats.index(divisor)
    held = op.attributes.get("held_constant")
    if not isinstance(held, ArrayAttr) or index not in [a.value.data for a in held.data]:  # type: ignore[union-attr]
        raise _fail(
            op.normalizer.data,
            f"its finalize divides by statistic {index}, which depends on the scores; declare it in "
            "`held_constant` to hold it constant in backward, as RetNet does",
        )
    if index != 0:
        raise _fail(op.normalizer.data, "the statistic its finalize divides by must be its first (the one kept)")
    return index


def _compose(score_mod: Region, update: Region, num_state: int) -> Region:
    """f∘score_mod: score_mod's block arguments, its ops, then the update ops that p needs, yielding p."""
    old = score_mod.blocks[0]
    new = Block(arg_types=[a.type for a in old.args])
    mapper: dict[SSAValue, SSAValue] = {}
    for old_arg, new_arg in zip(old.args, new.args):
        new_arg.name_hint = old_arg.name_hint
        mapper[old_arg] = new_arg
    score_yield = old.last_op
    assert isinstance(score_yield, attn.YieldOp)
    for op in old.ops:
        if op is not score_yield:
            new.add_op(op.clone(value_mapper=mapper))
    upd = update.blocks[0]
    # update arguments: score, b, h, *state, *captures; score_mod's: score, b, h, q_idx, kv_idx, *captures.
    captures_at = 3 + num_state
    mapper[upd.args[0]] = mapper[score_yield.values[0]]
    mapper[upd.args[1]], mapper[upd.args[2]] = new.args[1], new.args[2]
    for old_arg, new_arg in zip(upd.args[captures_at:], new.args[1 + attn.INDEX_ARGS :]):
        mapper[old_arg] = new_arg
    update_yield = upd.last_op
    assert isinstance(update_yield, attn.YieldOp)
    p = update_yield.values[0]
    needed = [op for op in upd.ops if op is not update_yield and _depends_on_any_result(p, op)]
    for op in needed:
        new.add_op(op.clone(value_mapper=mapper))
    new.add_op(attn.YieldOp(mapper.get(p, p)))
    return Region(new)


def _depends_on_any_result(value: SSAValue, op: Operation) -> bool:
    return _depends_on(value, set(op.results))


def normalizer_backward(op: attn.FlashOp) -> NormalizerBackward:
    """The backward form of `op`'s normalizer, or a PassFailedException naming what stops it."""
    name = op.normalizer.data
    softmax = online_softmax_update(op)
    if softmax is not None:
        problem = softmax_finalize_problem(op, softmax)
        if problem is not None:
            raise _fail(name, f"its update is online softmax's, but {problem}")
        return NormalizerBackward("softmax", 0, op.score_mod.clone())
    upd = op.update.blocks[0]
    num_state = len(op.state.data)
    state_args: set[SSAValue] = set(upd.args[3 : 3 + num_state])
    terminator = upd.last_op
    assert isinstance(terminator, attn.YieldOp)
    p, alpha = terminator.values[0], terminator.values[1]
    if _depends_on(p, state_args):
        raise _fail(name, "its update's probabilities read the running state")
    if any(isinstance(o, attn.RowMaxOp | attn.RowSumOp) and _depends_on_any_result(p, o) for o in upd.ops):
        raise _fail(name, "its update's probabilities use a row reduction")
    if not _is_constant(alpha, 1.0):
        raise _fail(name, "its update rescales the accumulator (alpha is not 1)")
    if isinstance(p, BlockArgument) and p.index != 0:
        raise _fail(name, "its update's probabilities are not computed from the score")
    stat = _row_scale_stat(op)
    return NormalizerBackward("elementwise", stat, _compose(op.score_mod, op.update, num_state))


__all__ = ["NormalizerBackward", "normalizer_backward"]
