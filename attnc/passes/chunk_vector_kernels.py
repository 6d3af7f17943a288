"""The forward kernels of a per-channel (vector) gate, GLA's: the chunk's scores once, then the output.

With a vector gate the decay between steps i ≥ j of a chunk is exp(G_ic − G_jc) per key
channel c, so the chunk's scores A_ij = scale · Σ_c q_ic k_jc exp(G_ic − G_jc) cannot be
one product. They are built once per chunk, into a [B, H, T, CHUNK] buffer, by
`<fn>_chunk_scores`, and `<fn>_chunk_output` then is two products, as for a scalar gate:
`o = scale · (q ⊙ exp(G)) h + A v`. G, the chunk-local running log-gate, is summed once by
`<fn>_chunk_cumsum` (into `gcum`, f32), which runs first; every later kernel loads it.

`<fn>_chunk_scores`: one program per (chunk, head) builds A from log2(CHUNK) products of
the chunk's rows, one per level of decay_levels.py, plus the diagonal; the products run
over blocks of BLOCK_K key channels.
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
    load_rows,
    pow2,
    shapes_of,
    state_ptrs,
    store_rows,
    tensor_params,
)
from attnc.passes.decay_levels import diagonal, level_decay, levels, lower_rows, upper_rows
from attnc.passes.tile_builder import KernelBuilder


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
    """A [B, H, T, CHUNK]: row i of a chunk holds scale · Σ_c q_ic k_jc exp(G_ic − G_jc) for its keys j ≤ i
    (0 above the diagonal), level by level (decay_levels.py), one block of key channels at a time."""
    s = shapes_of(op)
    params = chunk_program_params(s, ["q", "k", "a"], ["gcum"])
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, BK: s.block_k})
    kb.comment("which chunk and head this program owns")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    chunk_start = kb.mul(index, kb.constexpr(CHUNK), "chunk_start")
    t = kb.arange(CHUNK, "t")
    rows = kb.add(chunk_start, t, "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    q_base, k_base, g_base = base(kb, "q", seq, True), base(kb, "k", seq, True), base(kb, "gcum", seq, False)
    structure = levels(kb, t, chunk_start, seq.length, s.chunk)
    eye = diagonal(kb, t)
    with kb.loop(
        kb.i32(0),
        kb.i32(s.dim_k),
        kb.constexpr(BK),
        {"a": kb.full((CHUNK, CHUNK), 0.0, f32)},
        "blocks of key channels",
    ) as body:
        cols = kb.add(body.index, kb.arange(BK), "cols")
        cols_ok = kb.cmp("slt", cols, kb.i32(s.dim_k), "cols_ok")
        q = kb.cast(load_mapped(kb, s, "q", q_base, rows, row_ok, cols, cols_ok, "q"), f32)
        k = kb.cast(load_mapped(kb, s, "k", k_base, rows, row_ok, cols, cols_ok, "k"), f32)
        g = load_rows(kb, "gcum", g_base, rows, row_ok, cols, cols_ok, "G")
        a = kb.add(body.carried["a"], kb.where(eye, kb.col(kb.row_reduce("sum", kb.mul(q, k))), kb.f32(0.0)))
        for level in structure:
            e = level_decay(kb, level, g, g_base, cols, cols_ok)
            q_r = upper_rows(kb, level, kb.mul(q, e))
            k_r = lower_rows(kb, level, kb.mul(k, e))
            part = kb.dot(q_r, kb.trans(k_r), None, s.precision, f"pairs{level.half}_scores")
            a = kb.add(a, kb.where(level.pairs, part, kb.f32(0.0)))
        body.yield_({"a": a})
    scores = kb.cast(kb.mul(body.results["a"], kb.arg("scale")), s.elem, "a_scaled")
    store_rows(kb, "a", base(kb, "a", seq, False), rows, row_ok, t, None, scores)
    return kb.finish()


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
    a_offs = kb.add(kb.mul(kb.col(rows), kb.arg("stride_a_s")), kb.mul(kb.row(t), kb.arg("stride_a_d")))
    causal = kb.and_(kb.col(row_ok), kb.cmp("sge", kb.col(t), kb.row(t)), "causal")
    a = kb.load(kb.addptr(base(kb, "a", seq, False), a_offs), causal, 0.0, "a")
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
]
