"""The forward kernels of a per-channel (vector) gate, GLA's: the chunk's scores once, then the output.

With a vector gate the decay between steps i ≥ j of a chunk is exp(G_ic − G_jc) per key
channel c, so the chunk's scores A_ij = scale · Σ_c q_ic k_jc exp(G_ic − G_jc) cannot be
one product. They are built once per chunk, into a [B, H, T, CHUNK] buffer, by
`<fn>_chunk_scores`, and `<fn>_chunk_output` then is two products, as for a scalar gate:
`o = scale · (q ⊙ exp(G)) h + A v`. G, the chunk-local running log-gate, is summed once by
`<fn>_chunk_cumsum` (into `gcum`, f32), which runs first; every later kernel loads it.

`<fn>_chunk_scores`: one program per (sub-chunk i of 16 rows, chunk, head).
- For each earlier sub-chunk j, one [16, 16] product, the decay factored through gn, G at
  i's first row: (q_i ⊙ exp(G_i − gn)) (k_j ⊙ exp(gn − G_j))ᵀ. As G never increases, both
  factors are ≤ 1, whatever the gate.
- The diagonal block, per element, one key row at a time: no factoring is safe within a
  sub-chunk (exp(gn − G_j) would grow with j).
The blocks above the diagonal are never written; the output kernel masks them.

The backward (chunk_vector_backward_kernels.py) computes the same decayed pairs by the levels
of decay_levels.py instead, whose products are over whole chunks; measured on an H200, that
form was slower for the scores alone (1.09 against 0.78 ms for GLA's benchmark shape), as one
program per chunk leaves too few programs to hide its chain of products.
"""

from __future__ import annotations

from xdsl.dialects.builtin import f32, i32
from xdsl.ir import Attribute, SSAValue

from attnc.dialect.attn_recurrent import RecurrentChunkOp
from attnc.passes.chunk_common import (
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
    load_mapped,
    load_row,
    load_rows,
    pow2,
    row_mask,
    shapes_of,
    state_ptrs,
    store_rows,
    tensor_params,
    tile_ptrs,
)
from attnc.passes.tile_builder import KernelBuilder

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
    params += [(f"{t}_ptr", KernelBuilder.ptr_type(s.elem)) for t in states] + list(other)
    return (
        params
        + SEQ_PARAMS
        + [
            ("chunk_seq_ptr", KernelBuilder.ptr_type(i32)),
            ("chunk_idx_ptr", KernelBuilder.ptr_type(i32)),
            ("scale", f32),
        ]
    )


def key_ok(kb: KernelBuilder, s: Shapes, offs_k: SSAValue) -> SSAValue | None:
    return kb.cmp("slt", offs_k, kb.i32(s.dim_k), "k_ok") if s.dim_k != pow2(s.dim_k) else None


def load_mapped_row(
    kb: KernelBuilder, s: Shapes, t: str, ptr: SSAValue, row: SSAValue, ok: SSAValue, cols: SSAValue, name: str
) -> SSAValue:
    """One q or k row as the recurrence sees it (its feature map applied, padding 0), in f32."""
    x = kb.cast(load_row(kb, t, ptr, row, ok, cols, s.dim_k, name), f32)
    region = s.q_map if t == "q" else s.k_map
    if region is None:
        return x
    from attnc.passes.region_lowering import lower_region

    (y,) = lower_region(kb, region, [x], f"{t}_map")
    mapped = kb.where(row_mask(kb, ok, cols, s.dim_k), y, kb.f32(0.0))
    return kb.cast(kb.cast(mapped, s.elem), f32, f"{name}_mapped")


def build_cumsum_kernel(op: RecurrentChunkOp, name: str):
    """G: g summed from each chunk's start, per (key block, chunk, head)."""
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
    g = load_rows(kb, "g", base(kb, "g", seq, False), rows, row_ok, offs_k, k_ok, "g")
    store_rows(kb, "gcum", base(kb, "gcum", seq, False), rows, row_ok, offs_k, k_ok, cumsum(kb, g, "G"))
    return kb.finish()


def build_scores_kernel(op: RecurrentChunkOp, name: str):
    """A [B, H, T, CHUNK]: row i of a chunk holds scale · Σ_c q_ic k_jc exp(G_ic − G_jc) for its keys j ≤ i."""
    s = shapes_of(op)
    params = chunk_program_params(s, ["q", "k", "a"], ["gcum"])
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, HK: pow2(s.dim_k), SUB: SUB_SIZE})
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

    with kb.loop(kb.i32(0), kb.constexpr(SUB), kb.i32(1), {}, "the diagonal block, one key row at a time") as body:
        key = kb.add(first, body.index, "key")
        ok = kb.cmp("slt", key, seq.length, "key_ok")
        k_j = load_mapped_row(kb, s, "k", k_base, key, ok, offs_k, "k_j")
        g_j = load_row(kb, "gcum", g_base, key, ok, offs_k, s.dim_k, "G_j")
        column = kb.row_reduce("sum", kb.mul(kb.mul(q, kb.row(k_j)), exp(kb, kb.sub(g, kb.row(g_j)))))
        column = kb.where(kb.cmp("sge", lane, body.index), kb.mul(column, scale), kb.f32(0.0), "a_column")
        kb.comment("stored as it is (a column in the sum's layout: no layout conversion per key)")
        col = kb.add(kb.mul(pid_s, kb.constexpr(SUB)), body.index, "a_col")
        offs = kb.add(kb.mul(rows, kb.arg("stride_a_s")), kb.mul(col, kb.arg("stride_a_d")))
        kb.store(kb.addptr(a_base, offs), kb.cast(column, s.elem), row_ok)
        body.yield_({})
    return kb.finish()


def load_scores(kb: KernelBuilder, seq, rows: SSAValue, row_ok: SSAValue, t: SSAValue) -> SSAValue:
    """The chunk's scores A [CHUNK, CHUNK] from the scores kernel (entries above the diagonal, never
    written, read as 0)."""
    causal = kb.and_(kb.col(row_ok), kb.cmp("sge", kb.col(t), kb.row(t)), "causal")
    return kb.load(tile_ptrs(kb, "a", base(kb, "a", seq, False), rows, t), causal, 0.0, "a")


def build_output_kernel(op: RecurrentChunkOp, name: str):
    """Per (value block, chunk, head): o = scale · (q ⊙ exp(G)) h + A v, A from the scores kernel."""
    s = shapes_of(op)
    params = chunk_program_params(s, ["q", "v", "o", "a"], ["gcum"], ["h"])
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, BV: s.block_v, HK: pow2(s.dim_k)})
    kb.comment("which value block, chunk and head this program owns")
    pid_v = kb.program_id(0, "pid_v")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    offs_k = kb.arange(HK, "offs_k")
    offs_v = kb.add(kb.mul(pid_v, kb.constexpr(BV)), kb.arange(BV), "offs_v")
    k_ok = key_ok(kb, s, offs_k)
    v_ok = kb.cmp("slt", offs_v, kb.i32(s.dim_v), "v_ok")
    t = kb.arange(CHUNK, "t")
    rows = kb.add(kb.mul(index, kb.constexpr(CHUNK)), t, "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    state_mask = kb.row(v_ok) if k_ok is None else kb.and_(kb.col(k_ok), kb.row(v_ok))
    state = kb.load(state_ptrs(kb, kb.arg("h_ptr"), pid_c, h, s, offs_k, offs_v, "h_ptrs"), state_mask, 0.0, "state")
    q = load_mapped(kb, s, "q", base(kb, "q", seq, True), rows, row_ok, offs_k, k_ok, "q")
    g = load_rows(kb, "gcum", base(kb, "gcum", seq, False), rows, row_ok, offs_k, k_ok, "G")
    q_g = kb.cast(kb.mul(kb.cast(q, f32), exp(kb, g)), s.elem, "q_g")
    kb.comment("inter-chunk: the state at the chunk's start")
    inter = kb.mul(kb.dot(q_g, kb.cast(state, s.elem), None, s.precision), kb.arg("scale"), "inter")
    kb.comment("intra-chunk: the chunk's scores (keys after a row were never written)")
    a = load_scores(kb, seq, rows, row_ok, t)
    v = load_rows(kb, "v", base(kb, "v", seq, False), rows, row_ok, offs_v, v_ok, "v")
    out = kb.dot(a, v, inter, s.precision, "acc")
    store_rows(kb, "o", base(kb, "o", seq, False), rows, row_ok, offs_v, v_ok, kb.cast(out, s.elem))
    return kb.finish()


__all__ = [
    "build_cumsum_kernel",
    "build_output_kernel",
    "build_scores_kernel",
    "chunk_program_params",
    "key_ok",
    "load_scores",
]
