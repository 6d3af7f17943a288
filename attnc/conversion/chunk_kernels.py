"""The forward tile kernels of an `attn.recurrent_chunk` op: chunk states, then outputs.

- `<fn>_chunk_state`: one program per (value block, key block, sequence·head) walks
  the sequence's chunks in order, storing the state at each chunk's start (`h`),
  then `h ← exp(G_last) ⊙ h + (k ⊙ exp(G_last − G))ᵀ v`; it starts from the initial
  state (or zero) and stores the final one. A per-channel (vector) gate's G comes
  from the chunk cumsum kernel (chunk_vector_kernels.py); k and G are then loaded
  transposed, [keys, rows], the way the product takes kᵀ, so weighting k costs no
  layout change.
- `<fn>_chunk_output`: one program per (value block, chunk, head):
  `o = scale · ((q ⊙ exp(G)) h + (q kᵀ ⊙ D) v)` with D the causal decay mask
  `exp(G_i − G_j)` for i ≥ j (a select: 0 above the diagonal whatever q kᵀ holds, and v
  guarded, chunk_nonfinite.py); q h and q kᵀ are summed over key blocks of BLOCK_K. A
  vector gate's D depends on the key channel; its scores and output kernels are in
  chunk_vector_kernels.py.
"""

from __future__ import annotations

from xdsl.dialects.builtin import f32, i32
from xdsl.ir import Attribute

from attnc.conversion.chunk_common import (
    BK,
    BV,
    CHUNK,
    SEQ_PARAMS,
    Shapes,
    base,
    chunk_of,
    exp,
    gate_decay,
    gate_params,
    key_ok,
    load_mapped,
    load_row,
    load_rows,
    shapes_of,
    state_mask,
    state_ptrs,
    state_scan,
    store_rows,
    tensor_params,
)
from attnc.conversion.chunk_nonfinite import guard, restore
from attnc.conversion.kernel_builder import KernelBuilder
from attnc.dialect.attn_recurrent import RecurrentChunkOp


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
        v = load_rows(kb, "v", v_base, rows, row_ok, offs_v, v_ok, "v")
        if s.gate == "vector":
            kb.comment("kᵀ and Gᵀ loaded transposed, as the product takes them (no layout change)")
            k_t = load_mapped(kb, s, "k", k_base, rows, row_ok, offs_k, k_ok, "k_t", transposed=True)
            g_base = base(kb, "gcum", seq, False)
            g_t = load_rows(kb, "gcum", g_base, rows, row_ok, offs_k, k_ok, "G_t", transposed=True)
            last_row = kb.sub(kb.add(kb.mul(body.index, kb.constexpr(CHUNK)), n_valid), kb.i32(1), "last_row")
            last_ok = kb.cmp("sge", last_row, kb.i32(0))
            g_last = kb.col(load_row(kb, "gcum", g_base, last_row, last_ok, offs_k, s.dim_k, "G_last"))
            k_w = kb.cast(kb.mul(kb.cast(k_t, f32), exp(kb, kb.sub(g_last, g_t))), s.elem, "k_w")
            state = kb.mul(state, exp(kb, g_last))
            state = kb.dot(k_w, v, state, s.precision, "state")
        else:
            k = load_mapped(kb, s, "k", k_base, rows, row_ok, offs_k, k_ok, "k")
            decay = gate_decay(kb, s, seq, rows, row_ok, n_valid, CHUNK)
            if decay is None:
                state = kb.dot(kb.trans(k), v, state, s.precision, "state")
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


def build_output_kernel(op: RecurrentChunkOp, name: str):
    """Per chunk: the inter-chunk part from the stored state plus the intra-chunk parallel part.

    Both products contract over the keys, so the kernel walks them in blocks of BLOCK_K
    (q, kᵀ and the state rows of each block), letting the pipeliner overlap a block's loads
    with the previous block's products, as flash-linear-attention's output kernel does."""
    s = shapes_of(op)
    kb = KernelBuilder(name, output_params(s), {CHUNK: s.chunk, BK: s.block_k, BV: s.block_v})
    kb.comment("which value block, chunk and head this program owns")
    pid_v = kb.program_id(0, "pid_v")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    offs_v = kb.add(kb.mul(pid_v, kb.constexpr(BV)), kb.arange(BV), "offs_v")
    v_ok = kb.cmp("slt", offs_v, kb.i32(s.dim_v), "v_ok")
    q_base, k_base, v_base, o_base = (
        base(kb, "q", seq, True),
        base(kb, "k", seq, True),
        base(kb, "v", seq, False),
        base(kb, "o", seq, False),
    )
    chunk_start = kb.mul(index, kb.constexpr(CHUNK), "chunk_start")
    n_valid = kb.min(kb.sub(seq.length, chunk_start), kb.constexpr(CHUNK), "n_valid")
    rows = kb.add(chunk_start, kb.arange(CHUNK), "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    carried = {
        "inter": kb.full((CHUNK, BV), 0.0, f32, "inter0"),
        "scores": kb.full((CHUNK, CHUNK), 0.0, f32, "scores0"),
    }
    with kb.loop(kb.i32(0), kb.i32(s.dim_k), kb.constexpr(BK), carried, "key blocks") as body:
        offs_k = kb.add(body.index, kb.arange(BK), "offs_k")
        k_ok = key_ok(kb, s, offs_k)
        q = load_mapped(kb, s, "q", q_base, rows, row_ok, offs_k, k_ok, "q")
        k_t = load_mapped(kb, s, "k", k_base, rows, row_ok, offs_k, k_ok, "k_t", transposed=True)
        state_ptr = state_ptrs(kb, kb.arg("h_ptr"), pid_c, h, s, offs_k, offs_v, "h_ptrs")
        state = kb.load(state_ptr, state_mask(kb, k_ok, v_ok), 0.0, "state")
        kb.comment("inter-chunk: the state at the chunk's start; intra-chunk: q kᵀ")
        inter = kb.dot(q, state, body.carried["inter"], s.precision, "inter")
        scores = kb.dot(q, k_t, body.carried["scores"], s.precision, "scores")
        body.yield_({"inter": inter, "scores": scores})
    inter, scores = body.results["inter"], body.results["scores"]
    decay = gate_decay(kb, s, seq, rows, row_ok, n_valid, CHUNK)
    kb.comment("the intra-chunk part: causal and decay-weighted")
    t = kb.arange(CHUNK, "t")
    causal = kb.cmp("sge", kb.col(t), kb.row(t), "causal")
    if decay is not None:
        inter = kb.mul(inter, exp(kb, decay.cum), "inter_decayed")
        scores = kb.mul(scores, exp(kb, kb.sub(kb.col(decay.cum), kb.row(decay.cum))), "scores_decayed")
    weights = kb.where(causal, scores, kb.f32(0.0), "weights")
    v = guard(kb, load_rows(kb, "v", v_base, rows, row_ok, offs_v, v_ok, "v"), t, True, "v")
    out = kb.dot(kb.cast(weights, s.elem), v.value, inter, s.precision, "acc")
    out = restore(kb, v, t, out, "acc_nonfinite")
    out = kb.mul(out, kb.arg("scale"), "out")
    store_rows(kb, "o", o_base, rows, row_ok, offs_v, v_ok, kb.cast(out, s.elem))
    return kb.finish()


__all__ = [
    "build_output_kernel",
    "build_state_kernel",
    "output_params",
]
