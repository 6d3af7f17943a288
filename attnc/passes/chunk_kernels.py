"""The forward tile kernels of an `attn.recurrent_chunk` op: chunk states, then outputs.

- `<fn>_chunk_state`: one program per (value block, key block, sequence·head) walks
  the sequence's chunks in order, storing the state at each chunk's start (`h`),
  then `h ← exp(G_last) ⊙ h + (k ⊙ exp(G_last − G))ᵀ v`; it starts from the initial
  state (or zero) and stores the final one.
- `<fn>_chunk_output`: one program per (value block, chunk, head):
  `o = scale · ((q ⊙ exp(G)) h + (q kᵀ ⊙ D) v)` with D the causal decay mask
  `exp(G_i − G_j)` for i ≥ j. For a per-channel (vector) gate, D depends on the key
  channel, so the chunk's keys are cut into sub-chunks b of 16 and the scores built as
  [CHUNK, 16] column blocks A_b: the rows after b score it in one product, the decay
  factored through b's last step (both factors ≤ 1, so nothing overflows), and every
  sub-chunk's own (diagonal) block is done per element in one loop over key rows;
  then o accumulates A_b v_b. Every product keeps all CHUNK rows (M = 64 on Hopper:
  warpgroup MMAs).

The gradient kernels (chunk_backward_kernels.py) use the narrow form of the same
sub-chunk scheme: one product per pair of sub-chunks, the decay factored through the
last step of the earlier one.
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
    SUB,
    SUB_SIZE,
    Sequence,
    Shapes,
    base,
    cumsum,
    exp,
    gate_decay,
    gate_params,
    load_mapped,
    load_rows,
    pow2,
    reduce_sum,
    sequence,
    shapes_of,
    state_ptrs,
    state_scan,
    store_rows,
    tensor_params,
)
from attnc.passes.tile_builder import KernelBuilder


def _ok(kb: KernelBuilder, offs: SSAValue, dim: int, padded: int, name: str) -> SSAValue | None:
    return kb.cmp("slt", offs, kb.i32(dim), name) if dim != padded else None


def build_state_kernel(op: RecurrentChunkOp, name: str):
    """The inter-chunk scan: the state at every chunk start, and the final state."""
    s = shapes_of(op)
    params: list[tuple[str, Attribute]] = tensor_params(["k", "v"], s.elem)
    params += gate_params(s.gate)
    params += [("h_ptr", KernelBuilder.ptr_type(s.elem)), ("ht_ptr", KernelBuilder.ptr_type(f32))]
    if s.has_initial:
        params.append(("h0_ptr", KernelBuilder.ptr_type(f32)))
    params += SEQ_PARAMS + [("chunk_offset_ptr", KernelBuilder.ptr_type(i32))]
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, BK: s.block_k, BV: s.block_v})

    scan = state_scan(kb, s)
    n, h, seq, first_chunk, num_chunks = scan.n, scan.h, scan.seq, scan.first_chunk, scan.num_chunks
    offs_k, offs_v, k_ok, v_ok, state_ok = scan.offs_k, scan.offs_v, scan.k_ok, scan.v_ok, scan.state_ok
    k_base, v_base = base(kb, "k", seq, True), base(kb, "v", seq, False)
    offs_t = kb.arange(CHUNK, "offs_t")

    if s.has_initial:
        kb.comment("the initial state of this sequence")
        h0 = kb.load(state_ptrs(kb, kb.arg("h0_ptr"), n, h, s, offs_k, offs_v, "h0_ptrs"), state_ok, 0.0, "h0")
    else:
        h0 = kb.full((BK, BV), 0.0, f32, "h0")

    with kb.loop(kb.i32(0), num_chunks, kb.i32(1), {"state": h0}, "chunks, in order") as body:
        state = body.carried["state"]
        chunk = kb.add(first_chunk, body.index, "chunk")
        kb.comment("the state at this chunk's start, for the output kernel")
        kb.store(
            state_ptrs(kb, kb.arg("h_ptr"), chunk, h, s, offs_k, offs_v, "h_ptrs"), kb.cast(state, s.elem), state_ok
        )
        rows = kb.add(kb.mul(body.index, kb.constexpr(CHUNK)), offs_t, "rows")
        row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
        n_valid = kb.min(kb.sub(seq.length, kb.mul(body.index, kb.constexpr(CHUNK))), kb.constexpr(CHUNK), "n_valid")
        k = load_mapped(kb, s, "k", k_base, rows, row_ok, offs_k, k_ok, "k")
        v = load_rows(kb, "v", v_base, rows, row_ok, offs_v, v_ok, "v")
        decay = gate_decay(kb, s, seq, rows, row_ok, n_valid, CHUNK, offs_k, k_ok)
        if decay is None:
            state = kb.dot(kb.trans(k), v, state, s.precision, "state")
        elif s.gate == "vector":
            k_w = kb.cast(kb.mul(kb.cast(k, f32), exp(kb, kb.sub(kb.row(decay.last), decay.cum))), s.elem, "k_w")
            state = kb.mul(state, exp(kb, decay.last))
            state = kb.dot(kb.trans(k_w), v, state, s.precision, "state")
        else:
            v_w = kb.cast(kb.mul(kb.cast(v, f32), exp(kb, kb.sub(decay.last, decay.cum))), s.elem, "v_w")
            state = kb.mul(state, exp(kb, decay.last))
            state = kb.dot(kb.trans(k), v_w, state, s.precision, "state")
        body.yield_({"state": state})
    kb.comment("the final state of this sequence")
    kb.store(state_ptrs(kb, kb.arg("ht_ptr"), n, h, s, offs_k, offs_v, "ht_ptrs"), body.results["state"], state_ok)
    return kb.finish()


def output_params(s: Shapes) -> list[tuple[str, Attribute]]:
    params: list[tuple[str, Attribute]] = tensor_params(["q", "k", "v", "o"], s.elem)
    params += gate_params(s.gate)
    params += [("h_ptr", KernelBuilder.ptr_type(s.elem))]
    params += SEQ_PARAMS + [
        ("chunk_seq_ptr", KernelBuilder.ptr_type(i32)),
        ("chunk_idx_ptr", KernelBuilder.ptr_type(i32)),
        ("scale", f32),
    ]
    return params


def chunk_of(kb: KernelBuilder, pid_c: SSAValue, h: SSAValue) -> tuple[Sequence, SSAValue]:
    """The sequence that global chunk `pid_c` belongs to, and the chunk's index in it."""
    n = kb.load(kb.addptr(kb.arg("chunk_seq_ptr"), pid_c), None, None, "n")
    index = kb.load(kb.addptr(kb.arg("chunk_idx_ptr"), pid_c), None, None, "chunk_in_seq")
    return sequence(kb, n, h), index


def build_output_kernel(op: RecurrentChunkOp, name: str):
    """Per chunk: the inter-chunk part from the stored state plus the intra-chunk parallel part."""
    s = shapes_of(op)
    kb = KernelBuilder(name, output_params(s), {CHUNK: s.chunk, BV: s.block_v, HK: pow2(s.dim_k), SUB: SUB_SIZE})
    kb.comment("which value block, chunk and head this program owns")
    pid_v = kb.program_id(0, "pid_v")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    offs_k = kb.arange(HK, "offs_k")
    offs_v = kb.add(kb.mul(pid_v, kb.constexpr(BV)), kb.arange(BV), "offs_v")
    k_ok = _ok(kb, offs_k, s.dim_k, pow2(s.dim_k), "k_ok")
    v_ok = kb.cmp("slt", offs_v, kb.i32(s.dim_v), "v_ok")
    q_base, k_base, v_base, o_base = (
        base(kb, "q", seq, True),
        base(kb, "k", seq, True),
        base(kb, "v", seq, False),
        base(kb, "o", seq, False),
    )
    chunk_start = kb.mul(index, kb.constexpr(CHUNK), "chunk_start")
    n_valid = kb.min(kb.sub(seq.length, chunk_start), kb.constexpr(CHUNK), "n_valid")
    state_ok = kb.col(k_ok) if k_ok is not None else None
    state_mask = kb.and_(state_ok, kb.row(v_ok)) if state_ok is not None else kb.row(v_ok)
    state = kb.load(state_ptrs(kb, kb.arg("h_ptr"), pid_c, h, s, offs_k, offs_v, "h_ptrs"), state_mask, 0.0, "state")
    scale = kb.arg("scale")

    if s.gate == "vector":
        _vector_output(
            kb, s, seq, chunk_start, state, offs_k, k_ok, offs_v, v_ok, (q_base, k_base, v_base, o_base), scale
        )
        return kb.finish()

    rows = kb.add(chunk_start, kb.arange(CHUNK), "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    q = load_mapped(kb, s, "q", q_base, rows, row_ok, offs_k, k_ok, "q")
    k = load_mapped(kb, s, "k", k_base, rows, row_ok, offs_k, k_ok, "k")
    v = load_rows(kb, "v", v_base, rows, row_ok, offs_v, v_ok, "v")
    decay = gate_decay(kb, s, seq, rows, row_ok, n_valid, CHUNK)
    kb.comment("inter-chunk: the state at the chunk's start")
    inter = kb.dot(q, kb.cast(state, s.elem), None, s.precision, "inter")
    kb.comment("intra-chunk: causal, decay-weighted q kᵀ")
    scores = kb.dot(q, kb.trans(k), None, s.precision, "scores")
    t = kb.arange(CHUNK, "t")
    causal = kb.cmp("sge", kb.col(t), kb.row(t), "causal")
    if decay is None:
        weights = kb.where(causal, scores, kb.f32(0.0), "weights")
    else:
        inter = kb.mul(inter, exp(kb, decay.cum), "inter")
        diff = kb.where(causal, kb.sub(kb.col(decay.cum), kb.row(decay.cum)), kb.f32(float("-inf")), "log_decay")
        weights = kb.mul(scores, exp(kb, diff), "weights")
    out = kb.dot(kb.cast(weights, s.elem), v, inter, s.precision, "acc")
    out = kb.mul(out, scale, "out")
    store_rows(kb, "o", o_base, rows, row_ok, offs_v, v_ok, kb.cast(out, s.elem))
    return kb.finish()


def vector_sub_decay(
    kb: KernelBuilder,
    seq: Sequence,
    g_all: SSAValue,
    offs_t: SSAValue,
    a: int,
    g_base: SSAValue,
    rows: SSAValue,
    row_ok: SSAValue,
    offs_k: SSAValue,
    k_ok: SSAValue | None,
) -> tuple[SSAValue, SSAValue]:
    """G of sub-chunk a ([SUB, HEAD_K], from the chunk's start) and G at its last row ([HEAD_K])."""
    before = kb.cmp("slt", offs_t, kb.i32(a * SUB_SIZE))
    prefix = reduce_sum(kb, kb.where(kb.col(before), g_all, kb.f32(0.0)), 0, f"prefix{a}")
    g = load_rows(kb, "g", g_base, rows, row_ok, offs_k, k_ok, f"g{a}")
    cum = kb.add(cumsum(kb, g), kb.row(prefix), f"G{a}")
    last = kb.add(prefix, reduce_sum(kb, g, 0), f"G{a}_last")
    return cum, last


def _vector_output(kb, s: Shapes, seq, chunk_start, state, offs_k, k_ok, offs_v, v_ok, bases, scale) -> None:
    """The whole chunk's rows at once, so every large product has M = CHUNK:
    o = scale · ((q ⊙ exp(G)) h + Σ_b A_b v_b) over the chunk's sub-chunks b of key rows,
    A_b [CHUNK, SUB] the (causal, decayed) scores of every row against b's rows. Rows after b
    score b in one product, the decay factored through b's last step (both factors ≤ 1);
    b's own rows come from `diagonal_blocks`, which does every sub-chunk's diagonal at once."""
    q_base, k_base, v_base, o_base = bases
    n_sub = s.chunk // SUB_SIZE
    g_base = base(kb, "g", seq, False)
    offs_t = kb.arange(CHUNK, "offs_t")
    all_rows = kb.add(chunk_start, offs_t, "chunk_rows")
    all_ok = kb.cmp("slt", all_rows, seq.length, "chunk_row_ok")
    g_all = load_rows(kb, "g", g_base, all_rows, all_ok, offs_k, k_ok, "g_chunk")
    cum_all = cumsum(kb, g_all, "G_chunk")
    q_all = kb.cast(load_mapped(kb, s, "q", q_base, all_rows, all_ok, offs_k, k_ok, "q_chunk"), f32)
    kb.comment("inter-chunk part, all of the chunk's rows in one product")
    acc = kb.dot(
        kb.cast(kb.mul(q_all, exp(kb, cum_all)), s.elem), kb.cast(state, s.elem, "state_e"), None, s.precision, "acc"
    )
    block = kb.div(offs_t, kb.i32(SUB_SIZE), "sub_of_row")
    kb.comment("G just before each row's sub-chunk")
    prefix = kb.full((CHUNK, HK), 0.0, f32, "G_before_sub")
    scores: list[SSAValue] = []
    for b in range(n_sub):
        rows = kb.add(kb.add(chunk_start, kb.i32(b * SUB_SIZE)), kb.arange(SUB), f"rows{b}")
        row_ok = kb.cmp("slt", rows, seq.length, f"row_ok{b}")
        if b + 1 == n_sub:
            scores.append(kb.full((CHUNK, SUB), 0.0, f32))
            break
        kb.comment(f"the rows after sub-chunk {b} against it, through its last step")
        later = kb.col(kb.cmp("sgt", block, kb.i32(b)))
        last = reduce_sum(kb, kb.where(later, kb.f32(0.0), g_all), 0, f"G{b}_last")  # G at b's last row
        prefix = kb.where(later, kb.row(last), prefix)
        q_r = kb.where(
            later, kb.mul(q_all, exp(kb, kb.where(later, kb.sub(cum_all, kb.row(last)), kb.f32(0.0)))), kb.f32(0.0)
        )
        g_b = load_rows(kb, "g", g_base, rows, row_ok, offs_k, k_ok, f"g{b}")
        k_b = kb.cast(load_mapped(kb, s, "k", k_base, rows, row_ok, offs_k, k_ok, f"k{b}"), f32)
        k_r = kb.mul(k_b, exp(kb, kb.sub(kb.row(reduce_sum(kb, g_b, 0)), cumsum(kb, g_b))))
        scores.append(kb.dot(kb.cast(q_r, s.elem), kb.trans(kb.cast(k_r, s.elem)), None, s.precision, f"A{b}"))
    diagonal = diagonal_blocks(kb, s, seq, q_all, kb.sub(cum_all, prefix), chunk_start, (k_base, g_base), offs_k, k_ok)
    for b in range(n_sub):
        rows = kb.add(kb.add(chunk_start, kb.i32(b * SUB_SIZE)), kb.arange(SUB), f"v_rows{b}")
        row_ok = kb.cmp("slt", rows, seq.length, f"v_row_ok{b}")
        v_b = load_rows(kb, "v", v_base, rows, row_ok, offs_v, v_ok, f"v{b}")
        weights = kb.where(kb.col(kb.cmp("eq", block, kb.i32(b))), diagonal, scores[b], f"A{b}_full")
        acc = kb.dot(kb.cast(weights, s.elem), v_b, acc, s.precision, "acc")
    store_rows(kb, "o", o_base, all_rows, all_ok, offs_v, v_ok, kb.cast(kb.mul(acc, scale), s.elem))


def diagonal_blocks(kb: KernelBuilder, s: Shapes, seq, q, cum, chunk_start, bases, offs_k, k_ok) -> SSAValue:
    """Every sub-chunk's diagonal block at once: [CHUNK, SUB], row i holding
    Σ_c q_ic k_jc exp(G_ic − G_jc) for the keys j = i's sub-chunk start + 0 … 15 (0 for j > i).

    `cum` is G from the start of each row's sub-chunk. One key row of every sub-chunk per
    step, loaded from memory (broadcast along the sub-chunk's rows), its G carried."""
    k_base, g_base = bases
    offs_t = kb.arange(CHUNK)
    lane = kb.rem(offs_t, kb.i32(SUB_SIZE), "row_in_sub")
    first = kb.add(chunk_start, kb.sub(offs_t, lane), "sub_start_row")
    t = kb.arange(SUB)
    with kb.loop(
        kb.i32(0),
        kb.constexpr(SUB),
        kb.i32(1),
        {"w": kb.full((CHUNK, SUB), 0.0, f32), "g_key": kb.full((CHUNK, HK), 0.0, f32)},
        "diagonal sub-chunks, one key row of each at a time",
    ) as body:
        j = body.index
        rows = kb.add(first, j, "key_rows")
        ok = kb.cmp("slt", rows, seq.length, "key_ok")
        g_key = kb.add(body.carried["g_key"], load_rows(kb, "g", g_base, rows, ok, offs_k, k_ok, "g_key_row"))
        k_j = kb.cast(load_mapped(kb, s, "k", k_base, rows, ok, offs_k, k_ok, "k_key_row"), f32)
        after = kb.col(kb.cmp("sge", lane, j))
        decay = exp(kb, kb.where(after, kb.sub(cum, g_key), kb.f32(float("-inf"))))
        values = kb.row_reduce("sum", kb.mul(kb.mul(q, k_j), decay))
        w = kb.where(kb.row(kb.cmp("eq", t, j)), kb.col(values), body.carried["w"])
        body.yield_({"w": w, "g_key": g_key})
    return body.results["w"]


def _key_row(kb: KernelBuilder, t: SSAValue, j: SSAValue, x: SSAValue) -> SSAValue:
    """Row j of a [SUB, HEAD_K] tile, as [HEAD_K] (a masked sum: registers cannot be indexed)."""
    return reduce_sum(kb, kb.where(kb.col(kb.cmp("eq", t, j)), x, kb.f32(0.0)), 0)


def _decay_from(kb: KernelBuilder, t: SSAValue, j: SSAValue, cum: SSAValue) -> SSAValue:
    """exp(G_ic − G_jc) for rows i ≥ j, else 0: [SUB, HEAD_K]."""
    after = kb.col(kb.cmp("sge", t, j))
    g_j = _key_row(kb, t, j, cum)
    return exp(kb, kb.where(after, kb.sub(cum, kb.row(g_j)), kb.f32(float("-inf"))))


def diagonal_weights(kb: KernelBuilder, q: SSAValue, k: SSAValue, cum: SSAValue) -> SSAValue:
    """Σ_c q_ic k_jc exp(G_ic − G_jc) for i ≥ j within one sub-chunk, one key row j at a time.

    Per element, as the decay differs per channel; a loop over j keeps the working
    set at one [SUB, HEAD_K] tile instead of a [SUB, SUB, HEAD_K] one.
    """
    t = kb.arange(SUB)
    qf, kf = kb.cast(q, f32), kb.cast(k, f32)
    with kb.loop(
        kb.i32(0),
        kb.constexpr(SUB),
        kb.i32(1),
        {"w": kb.full((SUB, SUB), 0.0, f32)},
        "diagonal sub-chunk, one key row at a time",
    ) as body:
        j = body.index
        k_j = _key_row(kb, t, j, kf)
        column = kb.row_reduce("sum", kb.mul(kb.mul(qf, kb.row(k_j)), _decay_from(kb, t, j, cum)))
        w = kb.where(kb.row(kb.cmp("eq", t, j)), kb.col(column), body.carried["w"])
        body.yield_({"w": w})
    return body.results["w"]


def diagonal_dq(kb: KernelBuilder, da: SSAValue, k: SSAValue, cum: SSAValue, dq: SSAValue) -> SSAValue:
    """dq_ic += Σ_{j ≤ i} dA_ij k_jc exp(G_ic − G_jc) within one sub-chunk, one key row j at a time."""
    t = kb.arange(SUB)
    kf = kb.cast(k, f32)
    with kb.loop(
        kb.i32(0), kb.constexpr(SUB), kb.i32(1), {"dq": dq}, "diagonal sub-chunk, one key row at a time"
    ) as body:
        j = body.index
        da_j = kb.row_reduce("sum", kb.where(kb.row(kb.cmp("eq", t, j)), da, kb.f32(0.0)))
        part = kb.mul(kb.mul(kb.col(da_j), kb.row(_key_row(kb, t, j, kf))), _decay_from(kb, t, j, cum))
        body.yield_({"dq": kb.add(body.carried["dq"], part)})
    return body.results["dq"]


def diagonal_dk(kb: KernelBuilder, da: SSAValue, q: SSAValue, cum: SSAValue, dk: SSAValue) -> SSAValue:
    """dk_jc += Σ_{i ≥ j} dA_ij q_ic exp(G_ic − G_jc) within one sub-chunk, one key row j at a time."""
    t = kb.arange(SUB)
    qf = kb.cast(q, f32)
    with kb.loop(
        kb.i32(0), kb.constexpr(SUB), kb.i32(1), {"dk": dk}, "diagonal sub-chunk, one key row at a time"
    ) as body:
        j = body.index
        da_j = kb.row_reduce("sum", kb.where(kb.row(kb.cmp("eq", t, j)), da, kb.f32(0.0)))
        row = reduce_sum(kb, kb.mul(kb.mul(kb.col(da_j), qf), _decay_from(kb, t, j, cum)), 0)
        body.yield_({"dk": kb.add(body.carried["dk"], kb.where(kb.col(kb.cmp("eq", t, j)), kb.row(row), kb.f32(0.0)))})
    return body.results["dk"]


__all__ = [
    "build_output_kernel",
    "build_state_kernel",
    "chunk_of",
    "diagonal_dk",
    "diagonal_dq",
    "diagonal_weights",
    "diagonal_blocks",
    "output_params",
    "vector_sub_decay",
]
