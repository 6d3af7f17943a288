"""A masked P·V keeps NaN and ±inf in the rows that weigh them, and only there.

In a key block the mask cuts, p_ij = 0 for the keys row i does not see, but the product
Σ_j p_ij v_j still gives 0 · inf = NaN in row i when v_j is NaN or ±inf: a value of a later
position would reach earlier rows of a causal mask. `guard_values` tests the V tile once
(v − v is 0 exactly where v is finite); only a tile holding a non-finite value takes the
branch that zeroes those entries for the product and finds the rows that weigh such a key
(p_ij ≠ 0: retention's weights may be negative), whose accumulator `restore_rows` then sets to NaN, where the math gives NaN or ±inf.
"""

from __future__ import annotations

from xdsl.dialects.builtin import f32, i32
from xdsl.ir import SSAValue

from attnc.conversion.kernel_builder import KernelBuilder
from attnc.dialect import tile


def guard_values(
    kb: KernelBuilder, v: SSAValue, p: SSAValue, rows: str, cut: SSAValue | None = None
) -> tuple[SSAValue, SSAValue]:
    """(v with its non-finite entries zeroed, [rows] 1.0 where a row weighs a non-finite value, else 0.0);
    v [BLOCK_N, DV] unchanged and no rows when it is all finite, or when `cut` (a scalar: the mask hides
    some key of the block) is given and false, without testing the tile."""
    if cut is None:
        return _guard(kb, v, p, rows)
    kept = {"v_finite": v, "weighs_nonfinite": kb.full((rows,), 0.0, f32, "weighs_nonfinite")}
    with kb.branch(cut, kept, "the mask cuts the block: a value it hides may be NaN or ±inf") as body:
        guarded, reached = _guard(kb, v, p, rows)
        body.yield_({"v_finite": guarded, "weighs_nonfinite": reached})
    return body.results["v_finite"], body.results["weighs_nonfinite"]


def _guard(kb: KernelBuilder, v: SSAValue, p: SSAValue, rows: str) -> tuple[SSAValue, SSAValue]:
    check = kb.cast(kb.sub(v, v), f32, "v_check")
    nonfinite = kb.cmpf("une", kb.sum_all(check), kb.f32(0.0), "v_nonfinite")
    kept = {"v_finite": v, "weighs_nonfinite": kb.full((rows,), 0.0, f32, "weighs_nonfinite")}
    with kb.branch(nonfinite, kept, "v holds NaN or ±inf: zero them for the product") as body:
        bad = kb.cmpf("une", check, kb.f32(0.0), "v_bad")
        zeroed = kb.cast(kb.where(bad, kb.f32(0.0), kb.cast(v, f32)), tile.element_type_of(v.type), "v_zeroed")
        bad_key = kb.cmp("sgt", kb.row_reduce("max", kb.cast(bad, i32)), kb.i32(0), "bad_key")
        weighs = kb.and_(kb.cmpf("une", p, kb.f32(0.0)), kb.row(bad_key), "weighs")
        reached = kb.cast(kb.row_reduce("max", kb.cast(weighs, i32)), f32, "reached")
        body.yield_({"v_finite": zeroed, "weighs_nonfinite": reached})
    return body.results["v_finite"], body.results["weighs_nonfinite"]


def restore_rows(kb: KernelBuilder, acc: SSAValue, reached: SSAValue) -> SSAValue:
    """The accumulator with NaN in the rows `guard_values` found."""
    return kb.where(kb.col(kb.cmpf("ogt", reached, kb.f32(0.0))), kb.f32(float("nan")), acc, "acc")


__all__ = ["guard_values", "restore_rows"]
