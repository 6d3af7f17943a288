"""The backward kernels of a per-channel (vector) gate, GLA's, after the state scans.

The forward's state scan (h) is rerun first (G and A are the forward's, kept), and the
reverse scan gives dh, the state's gradient at each chunk's end. Then, with
dA = scale · (dO vᵀ) masked to i ≥ j:

- `<fn>_chunk_dv`, per (chunk, head): stores dA (f32) and
  `dv = Aᵀ dO + (k ⊙ exp(G_last − G)) dh`.
- `<fn>_chunk_dqkg`, per (key block, chunk, head): the intra-chunk parts
  `dq_ic = Σ_{j ≤ i} dA_ij k_jc exp(G_ic − G_jc)` and `dk_jc = Σ_{i ≥ j} dA_ij q_ic exp(G_ic − G_jc)`
  by the levels of decay_levels.py (one product each way per level, k and q guarded as
  chunk_nonfinite.py says), plus the inter-chunk
  parts `dq += scale · exp(G) ⊙ (dO hᵀ)`, `dk += exp(G_last − G) ⊙ (v dhᵀ)`; stores dq and dk
  (through the feature maps' derivatives) and dG = q ⊙ dq − k ⊙ dk summed from the
  chunk's end back to each step; the runtime adds the later chunks' sums (`gate_grad`).
"""

from __future__ import annotations

from xdsl.dialects.builtin import f32
from xdsl.ir import SSAValue

from attnc.conversion.chunk_backward_kernels import map_grad, map_grads, shares_qk_heads
from attnc.conversion.chunk_common import (
    BK,
    CHUNK,
    HK,
    HV,
    Shapes,
    base,
    chunk_of,
    cumsum,
    exp,
    feature_map,
    key_ok,
    load_mapped,
    load_row,
    load_rows,
    shapes_of,
    state_mask,
    state_ptrs,
    store_rows,
    tensor_params,
)
from attnc.conversion.chunk_nonfinite import guard, restore
from attnc.conversion.chunk_vector_kernels import chunk_program_params, load_scores
from attnc.conversion.decay_levels import diagonal, level_decay, levels, lower_rows, upper_rows
from attnc.conversion.kernel_builder import KernelBuilder
from attnc.dialect.attn_recurrent import RecurrentChunkOp
from attnc.dialect.kernel_params import padded_head_dim


def _program(kb: KernelBuilder, what: str):
    """The program ids (axis 0 = `what`, then chunk and head), the chunk's sequence and its first step."""
    kb.comment(f"which {what}chunk and head this program owns")
    pid = kb.program_id(0, "pid")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    return pid, pid_c, h, seq, kb.mul(index, kb.constexpr(CHUNK), "chunk_start")


def _g_last(kb: KernelBuilder, s: Shapes, g_base: SSAValue, seq, chunk_start: SSAValue, cols: SSAValue) -> SSAValue:
    """G at the chunk's last step, [cols]."""
    last = kb.sub(kb.min(kb.add(chunk_start, kb.constexpr(CHUNK)), seq.length), kb.i32(1), "last_row")
    return load_row(kb, "gcum", g_base, last, kb.cmp("sge", last, kb.i32(0)), cols, s.dim_k, "G_last")


def build_dv_kernel(op: RecurrentChunkOp, name: str):
    """Per chunk: dA = scale · (dO vᵀ) for i ≥ j (stored, f32) and dv = Aᵀ dO + (k ⊙ exp(G_last − G)) dh."""
    s = shapes_of(op)
    params = chunk_program_params(s, ["k", "v", "do", "a", "dv"], ["gcum", "da"], ["dh"])
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, HK: padded_head_dim(s.dim_k), HV: padded_head_dim(s.dim_v)})
    _, pid_c, h, seq, chunk_start = _program(kb, "")
    offs_k, offs_v, t = kb.arange(HK, "offs_k"), kb.arange(HV, "offs_v"), kb.arange(CHUNK, "t")
    k_ok = key_ok(kb, s, offs_k)
    v_ok = kb.cmp("slt", offs_v, kb.i32(s.dim_v), "v_ok") if s.dim_v != padded_head_dim(s.dim_v) else None
    rows = kb.add(chunk_start, t, "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    do = load_rows(kb, "do", base(kb, "do", seq, False), rows, row_ok, offs_v, v_ok, "do")
    v = load_rows(kb, "v", base(kb, "v", seq, False), rows, row_ok, offs_v, v_ok, "v")
    kb.comment("dA: the gradient of the chunk's scores")
    causal = kb.cmp("sge", kb.col(t), kb.row(t), "causal")
    da = kb.where(causal, kb.mul(kb.dot(do, kb.trans(v), None, s.precision), kb.arg("scale")), kb.f32(0.0), "da")
    store_rows(kb, "da", base(kb, "da", seq, False), rows, row_ok, t, None, da)
    a = load_scores(kb, seq, rows, row_ok, t)
    g_base = base(kb, "gcum", seq, False)
    g = load_rows(kb, "gcum", g_base, rows, row_ok, offs_k, k_ok, "G")
    g_last = _g_last(kb, s, g_base, seq, chunk_start, offs_k)
    k = kb.cast(load_mapped(kb, s, "k", base(kb, "k", seq, True), rows, row_ok, offs_k, k_ok, "k"), f32)
    k_w = kb.cast(kb.mul(k, exp(kb, kb.sub(kb.row(g_last), g))), s.elem, "k_w")
    dh_ptrs = state_ptrs(kb, kb.arg("dh_ptr"), pid_c, h, s, offs_k, offs_v, "dh_ptrs")
    dh = kb.load(dh_ptrs, state_mask(kb, k_ok, v_ok), 0.0, "dh")
    kb.comment("dv: through the chunk's end state, then through its scores")
    dv = kb.dot(k_w, dh, None, s.precision, "dv_inter")
    dv = kb.dot(kb.trans(a), do, dv, s.precision, "dv")
    store_rows(kb, "dv", base(kb, "dv", seq, False), rows, row_ok, offs_v, v_ok, kb.cast(dv, s.elem))
    return kb.finish()


def build_dqkg_kernel(op: RecurrentChunkOp, name: str):
    """Per key block: dq, dk with their inter-chunk parts, and dG summed from the chunk's end."""
    s = shapes_of(op)
    shared = shares_qk_heads(op)
    maps = map_grads(op)
    out = f32 if shared else s.elem
    params = chunk_program_params(
        s, ["q", "k", "v", "do"], ["gcum", "da", "dg"], ["h", "dh"], tensor_params(["dq", "dk"], out)
    )
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, BK: s.block_k, HV: padded_head_dim(s.dim_v)})
    pid_k, pid_c, h, seq, chunk_start = _program(kb, "key block, ")
    cols = kb.add(kb.mul(pid_k, kb.constexpr(BK)), kb.arange(BK), "cols_k")
    cols_ok = kb.cmp("slt", cols, kb.i32(s.dim_k), "cols_ok")
    offs_v = kb.arange(HV, "offs_v")
    v_ok = kb.cmp("slt", offs_v, kb.i32(s.dim_v), "v_ok") if s.dim_v != padded_head_dim(s.dim_v) else None
    rows = kb.add(chunk_start, kb.arange(CHUNK), "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    q_raw = load_rows(kb, "q", base(kb, "q", seq, True), rows, row_ok, cols, cols_ok, "q_raw")
    k_raw = load_rows(kb, "k", base(kb, "k", seq, True), rows, row_ok, cols, cols_ok, "k_raw")
    q = kb.cast(feature_map(kb, s, "q", q_raw, row_ok, cols_ok, "q"), f32)
    k = kb.cast(feature_map(kb, s, "k", k_raw, row_ok, cols_ok, "k"), f32)
    g_base = base(kb, "gcum", seq, False)
    g = load_rows(kb, "gcum", g_base, rows, row_ok, cols, cols_ok, "G")
    g_last = _g_last(kb, s, g_base, seq, chunk_start, cols)
    do = load_rows(kb, "do", base(kb, "do", seq, False), rows, row_ok, offs_v, v_ok, "do")
    v = load_rows(kb, "v", base(kb, "v", seq, False), rows, row_ok, offs_v, v_ok, "v")
    mask = kb.col(cols_ok) if v_ok is None else kb.and_(kb.col(cols_ok), kb.row(v_ok))
    state = kb.load(state_ptrs(kb, kb.arg("h_ptr"), pid_c, h, s, cols, offs_v, "h_ptrs"), mask, 0.0, "state")
    dstate = kb.load(state_ptrs(kb, kb.arg("dh_ptr"), pid_c, h, s, cols, offs_v, "dh_ptrs"), mask, 0.0, "dstate")
    kb.comment("dq and dk within the chunk: the diagonal of dA, then its pairs level by level")
    t = kb.arange(CHUNK, "t")
    da = load_rows(kb, "da", base(kb, "da", seq, False), rows, row_ok, t, None, "da")
    da_ii = kb.col(kb.row_reduce("sum", kb.where(diagonal(kb, t), da, kb.f32(0.0))), "da_diagonal")
    dq, dk = kb.mul(da_ii, k, "dq_intra"), kb.mul(da_ii, q, "dk_intra")
    k_guarded, q_guarded = guard(kb, k, t, True, "k"), guard(kb, q, t, False, "q")
    for level in levels(kb, t, chunk_start, seq.length, s.chunk):
        e = level_decay(kb, level, g, g_base, cols, cols_ok)
        da_level = kb.cast(kb.where(level.pairs, da, kb.f32(0.0)), s.elem, f"da_pairs{level.half}")
        k_r = kb.cast(lower_rows(kb, level, kb.mul(k_guarded.value, e)), s.elem, f"k_r{level.half}")
        to_q = kb.dot(da_level, k_r, None, s.precision)
        dq = kb.add(dq, kb.mul(upper_rows(kb, level, e), to_q), "dq_intra")
        q_r = kb.cast(upper_rows(kb, level, kb.mul(q_guarded.value, e)), s.elem, f"q_r{level.half}")
        to_k = kb.dot(kb.trans(da_level), q_r, None, s.precision)
        dk = kb.add(dk, kb.mul(lower_rows(kb, level, e), to_k), "dk_intra")
    dq = restore(kb, k_guarded, t, dq, "dq_nonfinite")
    dk = restore(kb, q_guarded, t, dk, "dk_nonfinite")
    kb.comment("dq and dk: the states at the chunk's start and end")
    dq_inter = kb.mul(kb.dot(do, kb.trans(state), None, s.precision), kb.mul(exp(kb, g), kb.arg("scale")))
    dq = kb.add(dq, dq_inter, "dq")
    dk_inter = kb.mul(kb.dot(v, kb.trans(dstate), None, s.precision), exp(kb, kb.sub(kb.row(g_last), g)))
    dk = kb.add(dk, dk_inter, "dk")
    kb.comment("dG = q·dq − k·dk per step and channel, summed from the chunk's end back to each step")
    dgate = kb.sub(kb.mul(q, dq), kb.mul(k, dk), "dgate")
    from_end = cumsum(kb, dgate, "dgate_from_end", reverse=True)
    store_rows(kb, "dg", base(kb, "dg", seq, False), rows, row_ok, cols, cols_ok, from_end)
    dq = map_grad(kb, maps, "q", q_raw, dq)
    dk = map_grad(kb, maps, "k", k_raw, dk)
    store_rows(kb, "dq", base(kb, "dq", seq, False), rows, row_ok, cols, cols_ok, kb.cast(dq, out))
    store_rows(kb, "dk", base(kb, "dk", seq, False), rows, row_ok, cols, cols_ok, kb.cast(dk, out))
    return kb.finish()


__all__ = ["build_dqkg_kernel", "build_dv_kernel"]
