"""The first run of whole blocks of a sequence, for the kernels that walk a sequence's blocks without a
block table (the serving forward, the sequence backward).

A block is whole when the mask keeps all of its tile and the tile lies inside the sequence's lengths:
it needs no mask, and a loop over a run of such blocks has no branch, so Triton pipelines its loads.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.ir import SSAValue

from attnc.conversion.kernel_builder import KernelBuilder

Classify = Callable[[SSAValue], tuple[SSAValue, SSAValue]]


def first_whole_run(
    kb: KernelBuilder, lo: SSAValue, hi: SSAValue, size: str, classify: Classify, start: str
) -> tuple[SSAValue, SSAValue]:
    """[run_lo, run_hi): the first run of consecutive blocks in [lo, hi) that `classify(start)` (any kept,
    whole) finds whole (empty at hi when there is none), found by a scalar pass over the blocks. Blocks
    are `size` (a constexpr) long; `start` names each block's first row."""
    none = kb.i32(-1)
    with kb.loop(lo, hi, kb.i32(1), {"run_lo": none, "run_hi": none}, "find the first run of whole blocks") as body:
        _, whole = classify(kb.mul(body.index, kb.constexpr(size), start))
        starts = kb.and_(whole, kb.cmp("slt", body.carried["run_lo"], kb.i32(0)), "starts")
        extends = kb.and_(whole, kb.cmp("eq", body.carried["run_hi"], body.index), "extends")
        next_block = kb.add(body.index, kb.i32(1))
        body.yield_({
            "run_lo": kb.where(starts, body.index, body.carried["run_lo"]),
            "run_hi": kb.where(kb.or_(starts, extends), next_block, body.carried["run_hi"]),
        })  # fmt: skip
    found = kb.cmp("sge", body.results["run_lo"], kb.i32(0), "run_found")
    return kb.where(found, body.results["run_lo"], hi, "run_lo"), kb.where(found, body.results["run_hi"], hi, "run_hi")


__all__ = ["Classify", "first_whole_run"]
