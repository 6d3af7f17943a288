"""NaN and ±inf in the chunk kernels: they reach what the recurrence makes them reach, nothing else.

In S_t = exp(g_t) ⊙ S_{t-1} + k_tᵀ v_t, o_t = scale · q_t S_t, a NaN or ±inf in q, k, v or g at
step t reaches o only at steps ≥ t of its own sequence and head (from q, only step t); once in
the state it stays (0 · inf is NaN). In the backward it runs the other way: dk_j, dv_j depend
on q, do and g at steps ≥ j (through dS_j), dq_i on k, v and g at steps ≤ i (through S_i).

The chunk kernels keep that in three ways:

- Causal masks are selects: a masked entry is 0 whatever the product under it.
- A product over a chunk's steps with a masked matrix, A V with A_ij = 0 for j > i, still
  gives 0 · inf = NaN in the rows before a non-finite v_j. `guard` tests the operand tile once
  (x − x is 0 exactly where x is finite); only a tile holding a non-finite value takes the
  branch that zeroes those entries for the product and finds, per column, its first
  non-finite row (or, for the backward's products over later steps, Aᵀ q, its last).
  `restore` then sets to NaN the rows they reach, where the math gives NaN or ±inf. (That
  branch's reduction also keeps it a branch: LLVM turned one of selects alone into selects
  on every element.)
- g = −inf is a full reset: exp(g) = 0 zeroes the state. Its running sums would give
  G_i − G_j = −inf − (−inf) = NaN, so log-decays are floored at LOG_DECAY_FLOOR, whose exp is
  already 0 in f32: the reset stays exact and every difference of running sums finite.

Two places reach further than the recurrence. A NaN or +inf g_t is in the running sum G of
the rest of its chunk, so exp(G_i − G_j) is NaN also for steps j ≥ t there, and so are those
steps' dk and dv. And dg, a sum over later steps (chunk_backward_kernels.py), takes a NaN or
±inf in any later dq or dk back to every earlier step of its sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import arith
from xdsl.dialects.builtin import f32, i32
from xdsl.ir import SSAValue

from attnc.conversion.kernel_builder import KernelBuilder
from attnc.dialect import tile

LOG_DECAY_FLOOR = -104.0  # exp(-104) ≈ 7e-46 rounds to 0 in f32


def floor_log_decay(kb: KernelBuilder, g: SSAValue, name: str) -> SSAValue:
    """g floored at LOG_DECAY_FLOOR (a NaN stays NaN)."""
    return kb.binary(arith.MaximumfOp, g, kb.f32(LOG_DECAY_FLOOR), name)


def nonfinite_entries(kb: KernelBuilder, check: SSAValue, name: str) -> SSAValue:
    """Where a tile x is NaN or ±inf, from its `check` x − x (NaN there, elsewhere 0)."""
    return kb.cmpf("une", kb.cast(check, f32), kb.f32(0.0), name)


def column_reduce(kb: KernelBuilder, x: SSAValue, kind: str, name: str) -> SSAValue:
    """x [rows, cols] reduced over its rows: [cols]."""
    return kb.emit(tile.ReduceOp(x, kind, 0), kb.dims_of(x)[1:], name)


@dataclass
class Guarded:
    """A product's operand over a chunk's steps: whether it holds a NaN or ±inf, what the product
    takes (those entries zeroed, when it has any) and, per column, the row of its first (`later`:
    the product's rows from it on see them) or last (rows up to it see them) non-finite entry."""

    nonfinite: SSAValue
    value: SSAValue
    bound: SSAValue
    later: bool


def guard(kb: KernelBuilder, x: SSAValue, t: SSAValue, later: bool, name: str) -> Guarded:
    """Test the tile x (rows t) for NaN and ±inf once; only then zero those entries for the product
    and find, per column, the first non-finite row (`later`: the product reaches rows ≥ it) or the last."""
    kb.comment(f"{name} − {name} is 0 where {name} is finite, NaN where it is not")
    check = kb.sub(x, x, f"{name}_check")
    # rows first: a thread holds whole columns of a loaded tile, so that sum takes no shuffles
    columns = column_reduce(kb, check, "sum", f"{name}_check_columns")
    total = kb.cast(kb.emit(tile.ReduceOp(columns, "sum", 0), (), f"{name}_check_sum"), f32)
    nonfinite = kb.cmpf("une", total, kb.f32(0.0), f"{name}_nonfinite")
    finite_name, bound_name = f"{name}_finite", f"{name}_first_bad" if later else f"{name}_last_bad"
    nowhere = kb.full(kb.dims_of(x)[1:], kb.size(kb.dims_of(t))[0] if later else -1, i32, "no_bad_row")
    kept = {finite_name: x, bound_name: nowhere}
    with kb.branch(nonfinite, kept, f"{name} holds NaN or ±inf: zero them for the product") as body:
        bad = nonfinite_entries(kb, check, f"{name}_bad")
        zeroed = kb.cast(kb.where(bad, kb.f32(0.0), kb.cast(x, f32)), tile.element_type_of(x.type))
        rows = kb.where(bad, kb.col(t), nowhere)
        bound = column_reduce(kb, rows, "min" if later else "max", bound_name)
        body.yield_({finite_name: zeroed, bound_name: bound})
    return Guarded(nonfinite, body.results[finite_name], body.results[bound_name], later)


def restore(kb: KernelBuilder, operand: Guarded, t: SSAValue, acc: SSAValue, name: str) -> SSAValue:
    """`acc` (rows t, the operand's columns) with NaN wherever the operand's non-finite entries reach."""
    with kb.branch(operand.nonfinite, {name: acc}, "the rows its NaN and ±inf reach") as body:
        reached = kb.cmp("sge" if operand.later else "sle", kb.col(t), kb.row(operand.bound))
        body.yield_({name: kb.where(reached, kb.f32(float("nan")), acc)})
    return body.results[name]


__all__ = ["LOG_DECAY_FLOOR", "Guarded", "column_reduce", "floor_log_decay", "guard", "nonfinite_entries", "restore"]
