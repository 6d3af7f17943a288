"""The forward kernels of a per-channel (vector) gate, GLA's: the chunk's scores once, then the output.

With a vector gate the decay between steps i ≥ j of a chunk is exp(G_ic − G_jc) per key
channel c, so the chunk's scores A_ij = scale · Σ_c q_ic k_jc exp(G_ic − G_jc) cannot be
one product. They are built once per chunk, into a [B, H, T, CHUNK] buffer, by
`<fn>_chunk_scores`, and `<fn>_chunk_output` then is two products, as for a scalar gate:
`o = scale · (q ⊙ exp(G)) h + A v`. G, the chunk-local running log-gate, is summed once, by
`<fn>_chunk_cumsum` (into `gcum`, f32), which runs first; every later kernel loads it.

`<fn>_chunk_scores`: one program per (sub-chunk i of 16 rows, chunk, head).
- For each earlier sub-chunk j, one [16, 16] product, the decay factored through gn, G at
  i's first row: (q_i ⊙ exp(G_i − gn)) (k_j ⊙ exp(gn − G_j))ᵀ. As G never increases, both
  factors are ≤ 1, whatever the gate.
- The diagonal block by the levels of decay_levels.py: one [16, 16] product for each of
  its log2(16) = 4 levels, each pair factored through a reference between its two steps
  (no single reference is safe within a sub-chunk: exp(gn − G_j) would grow with j), and
  Σ_c q_ic k_ic on the diagonal. That is 4 exponentials of a [16, keys] tile, where the
  per-element form (flash-linear-attention's sub-chunk diagonal) takes 16.
The blocks above the diagonal are never written; the output kernel masks them.

The backward (chunk_vector_backward_kernels.py) takes the levels over whole chunks. For the
scores that form measured slower (bench/RESULTS.md): one program per chunk leaves too few
programs to hide its chain of products, so here they run per sub-chunk.
"""

from __future__ import annotations

from xdsl.dialects.builtin import f32, i32
from xdsl.ir import Attribute, SSAValue

from attnc.conversion.chunk_common import (
    BK,
    BV,
    CHUNK,
    HK,
    SEQ_PARAMS,
    Shapes,
    base,
    chunk_of,
    cumsum,
    exp,
    key_ok,
    load_mapped,
    load_row,
    load_rows,
    shapes_of,
    state_mask,
    state_ptrs,
    store_rows,
    tensor_params,
    tile_ptrs,
)
from attnc.conversion.chunk_nonfinite import floor_log_decay, guard, restore
from attnc.conversion.decay_levels import diagonal, level_decay, levels, lower_rows, upper_rows
from attnc.conversion.kernel_builder import KernelBuilder
from attnc.dialect import kernel_params
from attnc.dialect.attn_recurrent import RecurrentChunkOp
from attnc.dialect.kernel_params import padded_head_dim

SUB, SUB_SIZE = "SUB", 16  # the scores kernel's sub-chunks: rows per program


def chunk_program_params(
    s: Shapes,
    tensors: list[str],
    f32_tensors: list[str],
    states: tuple[str, ...] | list[str] = (),
    other: tuple[tuple[str, Attribute], ...] | list[tuple[str, Attribute]] = (),
) -> list[tuple[str, Attribute]]:
    """Parameters of a per-chunk program: [B, H, T, D] tensors in the input's type and in f32,
    [chunks, H, K, V] state buffers (input type), any `other` ones, the sequence tables and the scale."""
    params = tensor_params(tensors, s.elem) + tensor_params(f32_tensors, f32)
    params += [(kernel_params.ptr(t), KernelBuilder.ptr_type(s.elem)) for t in states] + list(other)
    return (
        params
        + SEQ_PARAMS
        + [
            ("chunk_seq_ptr", KernelBuilder.ptr_type(i32)),
            ("chunk_idx_ptr", KernelBuilder.ptr_type(i32)),
            ("scale", f32),
        ]
    )


def build_cumsum_kernel(op: RecurrentChunkOp, name: str):
    """G: g (floored, chunk_nonfinite.py) summed from each chunk's start, per (key block, chunk, head)."""
    s = shapes_of(op)
    params = chunk_program_params(s, [], ["g", "gcum"])
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, BK: s.block_k})
    kb.comment("which key block, chunk and head this program owns")
    pid_k = kb.program_id(0, "pid_k")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    offs_k = kb.add(kb.mul(pid_k, kb.constexpr(BK)), kb.arange(BK), "offs_k")
    k_ok = kb.cmp("slt", offs_k, kb.i32(s.dim_k), "k_ok")
    rows = kb.add(kb.mul(index, kb.constexpr(CHUNK)), kb.arange(CHUNK), "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    g = load_rows(kb, "g", base(kb, "g", seq, False), rows, row_ok, offs_k, k_ok, "g_raw")
    g = floor_log_decay(kb, g, "g")
    store_rows(kb, "gcum", base(kb, "gcum", seq, False), rows, row_ok, offs_k, k_ok, cumsum(kb, g, "G"))
    return kb.finish()


def build_scores_kernel(op: RecurrentChunkOp, name: str):
    """A [B, H, T, CHUNK]: row i of a chunk holds scale · Σ_c q_ic k_jc exp(G_ic − G_jc) for its keys j ≤ i."""
    s = shapes_of(op)
    params = chunk_program_params(s, ["q", "k", "a"], ["gcum"])
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, HK: padded_head_dim(s.dim_k), SUB: SUB_SIZE})
    kb.comment("which sub-chunk, chunk and head this program owns")
    pid_s = kb.program_id(0, "pid_sub")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    offs_k = kb.arange(HK, "offs_k")
    k_ok = key_ok(kb, s, offs_k)
    q_base, k_base, a_base = base(kb, "q", seq, True), base(kb, "k", seq, True), base(kb, "a", seq, False)
    g_base = base(kb, "gcum", seq, False)
    first = kb.add(kb.mul(index, kb.constexpr(CHUNK)), kb.mul(pid_s, kb.constexpr(SUB)), "sub_start")
    lane = kb.arange(SUB, "lane")
    rows = kb.add(first, lane, "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    scale = kb.arg("scale")
    q = kb.cast(load_mapped(kb, s, "q", q_base, rows, row_ok, offs_k, k_ok, "q"), f32)
    g = load_rows(kb, "gcum", g_base, rows, row_ok, offs_k, k_ok, "G")
    gn = load_row(kb, "gcum", g_base, first, kb.cmp("slt", first, seq.length), offs_k, s.dim_k, "G_first")
    q_r = kb.cast(kb.mul(q, exp(kb, kb.sub(g, kb.row(gn)))), s.elem, "q_r")
    chunk_start = kb.mul(index, kb.constexpr(CHUNK), "chunk_start")

    with kb.loop(kb.i32(0), pid_s, kb.i32(1), {}, "earlier sub-chunks: one product each") as body:
        j_first = kb.add(chunk_start, kb.mul(body.index, kb.constexpr(SUB)), "key_start")
        keys = kb.add(j_first, lane, "keys")
        keys_ok = kb.cmp("slt", keys, seq.length, "keys_ok")
        k = kb.cast(load_mapped(kb, s, "k", k_base, keys, keys_ok, offs_k, k_ok, "k"), f32)
        g_k = load_rows(kb, "gcum", g_base, keys, keys_ok, offs_k, k_ok, "G_keys")
        k_r = kb.cast(kb.mul(k, exp(kb, kb.sub(kb.row(gn), g_k))), s.elem, "k_r")
        block = kb.mul(kb.dot(q_r, kb.trans(k_r), None, s.precision), scale, "a_block")
        cols = kb.add(kb.mul(body.index, kb.constexpr(SUB)), lane, "a_cols")
        store_rows(kb, "a", a_base, rows, row_ok, cols, None, kb.cast(block, s.elem))
        body.yield_({})

    kb.comment("the diagonal block: its pairs level by level (decay_levels.py), and i = j")
    k = kb.cast(load_mapped(kb, s, "k", k_base, rows, row_ok, offs_k, k_ok, "k_diag"), f32)
    block = kb.where(diagonal(kb, lane), kb.col(kb.row_reduce("sum", kb.mul(q, k))), kb.f32(0.0), "a_diagonal")
    for level in levels(kb, lane, first, seq.length, SUB_SIZE):
        e = level_decay(kb, level, g, g_base, offs_k, k_ok)
        q_l = kb.cast(upper_rows(kb, level, kb.mul(q, e)), s.elem, f"q_l{level.half}")
        k_l = kb.cast(lower_rows(kb, level, kb.mul(k, e)), s.elem, f"k_l{level.half}")
        pairs = kb.dot(q_l, kb.trans(k_l), None, s.precision)
        block = kb.add(block, kb.where(level.pairs, pairs, kb.f32(0.0)), f"a_level{level.half}")
    cols = kb.add(kb.mul(pid_s, kb.constexpr(SUB)), lane, "a_cols")
    store_rows(kb, "a", a_base, rows, row_ok, cols, None, kb.cast(kb.mul(block, scale), s.elem))
    return kb.finish()


def load_scores(kb: KernelBuilder, seq, rows: SSAValue, row_ok: SSAValue, t: SSAValue) -> SSAValue:
    """The chunk's scores A [CHUNK, CHUNK] from the scores kernel (entries above the diagonal, never
    written, read as 0)."""
    causal = kb.and_(kb.col(row_ok), kb.cmp("sge", kb.col(t), kb.row(t)), "causal")
    return kb.load(tile_ptrs(kb, "a", base(kb, "a", seq, False), rows, t), causal, 0.0, "a")


def build_output_kernel(op: RecurrentChunkOp, name: str):
    """Per (value block, chunk, head): o = scale · (q ⊙ exp(G)) h + A v, A from the scores kernel;
    (q ⊙ exp(G)) h summed over key blocks of BLOCK_K, as the scalar gates' output kernel does."""
    s = shapes_of(op)
    params = chunk_program_params(s, ["q", "v", "o", "a"], ["gcum"], ["h"])
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, BK: s.block_k, BV: s.block_v})
    kb.comment("which value block, chunk and head this program owns")
    pid_v = kb.program_id(0, "pid_v")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    offs_v = kb.add(kb.mul(pid_v, kb.constexpr(BV)), kb.arange(BV), "offs_v")
    v_ok = kb.cmp("slt", offs_v, kb.i32(s.dim_v), "v_ok")
    t = kb.arange(CHUNK, "t")
    rows = kb.add(kb.mul(index, kb.constexpr(CHUNK)), t, "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    q_base, g_base = base(kb, "q", seq, True), base(kb, "gcum", seq, False)
    kb.comment("inter-chunk: the state at the chunk's start")
    with kb.loop(
        kb.i32(0), kb.i32(s.dim_k), kb.constexpr(BK), {"inter": kb.full((CHUNK, BV), 0.0, f32, "inter0")}, "key blocks"
    ) as body:
        offs_k = kb.add(body.index, kb.arange(BK), "offs_k")
        k_ok = key_ok(kb, s, offs_k)
        state_ptr = state_ptrs(kb, kb.arg("h_ptr"), pid_c, h, s, offs_k, offs_v, "h_ptrs")
        state = kb.load(state_ptr, state_mask(kb, k_ok, v_ok), 0.0, "state")
        q = load_mapped(kb, s, "q", q_base, rows, row_ok, offs_k, k_ok, "q")
        g = load_rows(kb, "gcum", g_base, rows, row_ok, offs_k, k_ok, "G")
        q_g = kb.cast(kb.mul(kb.cast(q, f32), exp(kb, g)), s.elem, "q_g")
        body.yield_({"inter": kb.dot(q_g, state, body.carried["inter"], s.precision, "inter")})
    inter = kb.mul(body.results["inter"], kb.arg("scale"), "inter_scaled")
    kb.comment("intra-chunk: the chunk's scores (keys after a row were never written)")
    a = load_scores(kb, seq, rows, row_ok, t)
    v = guard(kb, load_rows(kb, "v", base(kb, "v", seq, False), rows, row_ok, offs_v, v_ok, "v"), t, True, "v")
    out = kb.dot(a, v.value, inter, s.precision, "acc")
    out = restore(kb, v, t, out, "acc_nonfinite")
    store_rows(kb, "o", base(kb, "o", seq, False), rows, row_ok, offs_v, v_ok, kb.cast(out, s.elem))
    return kb.finish()


__all__ = [
    "build_cumsum_kernel",
    "build_output_kernel",
    "build_scores_kernel",
    "chunk_program_params",
    "load_scores",
]
