"""A chunk's per-channel decay as a few products: the pairs of steps, level by level.

With a vector gate, the intra-chunk scores are A_ij = Σ_c q_ic k_jc exp(G_ic − G_jc) for
i ≥ j. No single product gives them: the decay differs per channel, and factoring it as
exp(G_i − r) · exp(r − G_j) is only safe (both factors ≤ 1, as G never increases) when
the reference r lies between the two steps, j < r ≤ i.

Every pair i > j of a chunk of 2^n rows has one such reference at one level: cut the
chunk into blocks of 2b rows (b = CHUNK/2, …, 2, 1); the pairs with i in the upper half
of a block and j in its lower half take r = G at the block's middle row. So

    A = Σ_b  M_b ⊙ ((q ⊙ E_b) (k ⊙ E_b)ᵀ)  +  diag(Σ_c q_ic k_ic),

where E_b = exp(G − r) on upper-half rows and exp(r − G) on lower-half ones (each ≤ 1;
q's lower rows and k's upper rows are zeroed) and M_b keeps the same-block, upper×lower
pairs. log2(CHUNK) products with M = CHUNK rows and log2(CHUNK) exponentials of a
[CHUNK, keys] tile replace the per-element loop over each 16-row sub-chunk's keys
(flash-linear-attention's sub-chunk diagonal: 16 exponentials of a [16, keys] tile per
sub-chunk). Entries a level does not keep may be anything finite; exponents are clamped
at 0 so nothing overflows (an inf there would turn the products' zeros into NaN).

The backward's dq/dk kernel uses the levels: dq += E_b^up ⊙ ((M_b ⊙ dA) (k ⊙ E_b^low)) and
dk += E_b^low ⊙ ((M_b ⊙ dA)ᵀ (q ⊙ E_b^up)), plus the diagonal. The forward's scores kernel
takes the levels within each 16-row sub-chunk only (chunk_vector_kernels.py says why).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import arith
from xdsl.ir import SSAValue

from attnc.conversion.chunk_common import exp, load_rows
from attnc.conversion.kernel_builder import KernelBuilder


@dataclass
class Level:
    """One level: blocks of 2·half rows."""

    half: int
    upper: SSAValue  # [CHUNK, 1]: the row is in its block's upper half
    pairs: SSAValue  # [CHUNK, CHUNK]: (i, j) in one block, i upper, j lower
    ref_rows: SSAValue  # [CHUNK]: each row's block middle, relative to the sequence start
    ref_ok: SSAValue  # [CHUNK]


def levels(kb: KernelBuilder, t: SSAValue, chunk_start: SSAValue, length: SSAValue, chunk: int) -> list[Level]:
    """The levels of a chunk of `chunk` rows (a power of two); `t` is arange(CHUNK)."""
    out = []
    half = chunk // 2
    while half >= 1:
        block = kb.div(t, kb.i32(2 * half))
        upper = kb.cmp("sge", kb.rem(t, kb.i32(2 * half)), kb.i32(half))
        same = kb.cmp("eq", kb.col(block), kb.row(block))
        pairs = kb.and_(kb.and_(same, kb.col(upper)), kb.row(kb.not_(upper)), f"pairs{half}")
        ref = kb.add(chunk_start, kb.add(kb.mul(block, kb.i32(2 * half)), kb.i32(half)), f"ref_rows{half}")
        out.append(Level(half, kb.col(upper), pairs, ref, kb.cmp("slt", ref, length)))
        half //= 2
    return out


def level_decay(
    kb: KernelBuilder,
    level: Level,
    g: SSAValue,
    g_base: SSAValue,
    cols: SSAValue,
    cols_ok: SSAValue | None,
) -> SSAValue:
    """E_b: exp(G − r) on upper-half rows, exp(r − G) on lower-half ones ([CHUNK, cols], ≤ 1)."""
    ref = load_rows(kb, "gcum", g_base, level.ref_rows, level.ref_ok, cols, cols_ok, f"G_ref{level.half}")
    x = kb.where(level.upper, kb.sub(g, ref), kb.sub(ref, g))
    return exp(kb, kb.binary(arith.MinnumfOp, x, kb.f32(0.0)), f"E{level.half}")


def upper_rows(kb: KernelBuilder, level: Level, x: SSAValue) -> SSAValue:
    return kb.where(level.upper, x, kb.f32(0.0))


def lower_rows(kb: KernelBuilder, level: Level, x: SSAValue) -> SSAValue:
    return kb.where(level.upper, kb.f32(0.0), x)


def diagonal(kb: KernelBuilder, t: SSAValue) -> SSAValue:
    return kb.cmp("eq", kb.col(t), kb.row(t), "diagonal")


__all__ = ["Level", "diagonal", "level_decay", "levels", "lower_rows", "upper_rows"]
