"""The backward tile kernels of an `attn.recurrent_chunk` op (with `backward` set).

With h_c the state at chunk c's start (recomputed by the forward's chunk-state
kernel) and dh_c the gradient of the loss with respect to the state at chunk c's
*end*:

- `<fn>_chunk_state_grad`: one program per (value block, key block, sequence·head)
  walks the chunks in reverse: store dh_c, then
  `dh ← exp(G_last) ⊙ dh + scale · (q ⊙ exp(G))ᵀ do`, starting from the final
  state's gradient; what is left at the start is the initial state's gradient.
- `<fn>_chunk_grad` (gates none, head and scalar): one program per (column split, chunk,
  head): each recomputes the chunk's scores from whole rows and writes BLOCK_K columns
  of dq, dk and BLOCK_V of dv. With A = scale·(q kᵀ ⊙ D) and dA = scale·(do vᵀ ⊙ D):
  `dq = scale·exp(G) ⊙ (do hᵀ) + dA k`, `dk = exp(G_last − G) ⊙ (v dhᵀ) + dAᵀ q`,
  `dv = Aᵀ do + (k ⊙ exp(G_last − G)) dh` (dA k and dAᵀ q with k and q guarded,
  chunk_nonfinite.py). dq and dk are per v head (the runtime sums a
  q/k head's group, so they are f32 when q/k heads are shared; otherwise all three are
  in the input's type). With a gate it also adds, in f32, dG = q·dq − k·dk per step
  summed from the chunk's end back to each step (the column splits add their parts
  atomically into a zeroed buffer). A vector gate has kernels of its own
  (chunk_vector_backward_kernels.py).

The gate's gradient: with G the running log-gate, dG_t = q_t·dq_t − k_t·dk_t
(+ ⟨S_T, dS_T⟩ at a sequence's last step), and dg is its reverse cumulative sum per
sequence; the kernel sums within the chunk, the runtime adds the later chunks' sums
and the final-state term. Being a sum over later steps, it takes a NaN or ±inf in any
later dq or dk back to every earlier step, where the recurrence's dg_t = exp(g_t)⟨S_{t-1},
dS_t⟩ may be finite.
"""

from __future__ import annotations

from xdsl.dialects.builtin import TensorType, f32
from xdsl.ir import Attribute, Region, SSAValue

from attnc.autodiff.regions import differentiate_score_mod
from attnc.conversion.chunk_common import (
    BK,
    BV,
    CHUNK,
    HK,
    HV,
    SEQ_PARAMS,
    Shapes,
    base,
    chunk_of,
    cumsum,
    exp,
    feature_map,
    gate_decay,
    gate_params,
    load_mapped,
    load_rows,
    shapes_of,
    state_ptrs,
    state_scan,
    store_rows,
    tensor_params,
)
from attnc.conversion.chunk_nonfinite import guard, restore
from attnc.conversion.kernel_builder import KernelBuilder
from attnc.conversion.region_lowering import lower_region
from attnc.dialect import kernel_params
from attnc.dialect.attn_recurrent import RecurrentChunkOp
from attnc.dialect.kernel_params import padded_head_dim


def build_state_grad_kernel(op: RecurrentChunkOp, name: str):
    """The reverse scan: the state's gradient at every chunk end, and at the start."""
    s = shapes_of(op)
    params: list[tuple[str, Attribute]] = tensor_params(["q", "do"], s.elem)
    params += gate_params(s.gate)
    params += [
        ("dh_ptr", KernelBuilder.ptr_type(s.elem)),
        ("dht_ptr", KernelBuilder.ptr_type(f32)),
        ("dh0_ptr", KernelBuilder.ptr_type(f32)),
    ]
    params += SEQ_PARAMS + [("chunk_offset_ptr", KernelBuilder.ptr_type(KernelBuilder.i32_type)), ("scale", f32)]
    kb = KernelBuilder(name, params, {CHUNK: s.chunk, BK: s.block_k, BV: s.block_v})

    scan = state_scan(kb, s)
    n, h, seq, first_chunk, num_chunks = scan.n, scan.h, scan.seq, scan.first_chunk, scan.num_chunks
    offs_k, offs_v, k_ok, v_ok, state_ok = scan.offs_k, scan.offs_v, scan.k_ok, scan.v_ok, scan.state_ok
    q_base, do_base = base(kb, "q", seq, True), base(kb, "do", seq, False)
    offs_t = kb.arange(CHUNK, "offs_t")
    scale = kb.arg("scale")

    kb.comment("the final state's gradient")
    dht = kb.load(state_ptrs(kb, kb.arg("dht_ptr"), n, h, s, offs_k, offs_v, "dht_ptrs"), state_ok, 0.0, "dht")
    with kb.loop(kb.i32(0), num_chunks, kb.i32(1), {"dstate": dht}, "chunks, last first") as body:
        dstate = body.carried["dstate"]
        index = kb.sub(kb.sub(num_chunks, kb.i32(1)), body.index, "index")
        chunk = kb.add(first_chunk, index, "chunk")
        kb.comment("the gradient at this chunk's end, for the gradient kernel")
        kb.store(
            state_ptrs(kb, kb.arg("dh_ptr"), chunk, h, s, offs_k, offs_v, "dh_ptrs"), kb.cast(dstate, s.elem), state_ok
        )
        rows = kb.add(kb.mul(index, kb.constexpr(CHUNK)), offs_t, "rows")
        row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
        n_valid = kb.min(kb.sub(seq.length, kb.mul(index, kb.constexpr(CHUNK))), kb.constexpr(CHUNK), "n_valid")
        q = load_mapped(kb, s, "q", q_base, rows, row_ok, offs_k, k_ok, "q")
        do = load_rows(kb, "do", do_base, rows, row_ok, offs_v, v_ok, "do")
        last_row = kb.sub(kb.add(kb.mul(index, kb.constexpr(CHUNK)), n_valid), kb.i32(1), "last_row")
        decay = gate_decay(kb, s, seq, rows, row_ok, n_valid, CHUNK, offs_k, k_ok, last_row)
        q_w = kb.mul(kb.cast(q, f32), scale)
        if decay is not None:
            q_w = kb.mul(q_w, exp(kb, decay.cum))
            dstate = kb.mul(dstate, exp(kb, decay.last))
        q_w = kb.cast(q_w, s.elem, "q_w")
        dstate = kb.dot(kb.trans(q_w), do, dstate, s.precision, "dstate")
        body.yield_({"dstate": dstate})
    kb.comment("the initial state's gradient")
    kb.store(state_ptrs(kb, kb.arg("dh0_ptr"), n, h, s, offs_k, offs_v, "dh0_ptrs"), body.results["dstate"], state_ok)
    return kb.finish()


def build_grad_kernel(op: RecurrentChunkOp, name: str):
    """Per chunk: dq, dk (per v head), dv and, with a gate, dG."""
    s = shapes_of(op)
    shared = shares_qk_heads(op)
    maps = map_grads(op)
    params: list[tuple[str, Attribute]] = tensor_params(["q", "k", "v", "do"], s.elem)
    params += tensor_params(["dq", "dk"], f32 if shared else s.elem)
    params += tensor_params(["dv"], s.elem)
    params += gate_params(s.gate)
    if s.gate != "none":
        params += [("dg_ptr", KernelBuilder.ptr_type(f32))]
        params += [(kernel_params.stride("dg", d), KernelBuilder.i32_type) for d in "bhs"]
    params += [("h_ptr", KernelBuilder.ptr_type(s.elem)), ("dh_ptr", KernelBuilder.ptr_type(s.elem))]
    params += SEQ_PARAMS + [
        ("chunk_seq_ptr", KernelBuilder.ptr_type(KernelBuilder.i32_type)),
        ("chunk_idx_ptr", KernelBuilder.ptr_type(KernelBuilder.i32_type)),
        ("scale", f32),
    ]
    constexprs = {
        CHUNK: s.chunk,
        HK: padded_head_dim(s.dim_k),
        HV: padded_head_dim(s.dim_v),
        BK: s.block_k,
        BV: s.block_v,
    }
    kb = KernelBuilder(name, params, constexprs)
    kb.comment("which column split, chunk and head this program owns")
    pid_split = kb.program_id(0, "pid_split")
    pid_c = kb.program_id(1, "pid_c")
    h = kb.program_id(2, "h")
    seq, index = chunk_of(kb, pid_c, h)
    offs_k = kb.arange(HK, "offs_k")
    offs_v = kb.arange(HV, "offs_v")
    k_ok = kb.cmp("slt", offs_k, kb.i32(s.dim_k), "k_ok") if s.dim_k != padded_head_dim(s.dim_k) else None
    v_ok = kb.cmp("slt", offs_v, kb.i32(s.dim_v), "v_ok") if s.dim_v != padded_head_dim(s.dim_v) else None
    bases = {t: base(kb, t, seq, t in ("q", "k")) for t in ("q", "k", "v", "do")}
    bases.update({t: base(kb, t, seq, False) for t in ("dq", "dk", "dv")})
    chunk_start = kb.mul(index, kb.constexpr(CHUNK), "chunk_start")
    n_valid = kb.min(kb.sub(seq.length, chunk_start), kb.constexpr(CHUNK), "n_valid")
    scale = kb.arg("scale")
    rows = kb.add(chunk_start, kb.arange(CHUNK), "rows")
    row_ok = kb.cmp("slt", rows, seq.length, "row_ok")
    kb.comment("whole q, k, v, dO rows: the chunk's scores and their gradient need every column")
    q = load_mapped(kb, s, "q", bases["q"], rows, row_ok, offs_k, k_ok, "q")
    k = load_mapped(kb, s, "k", bases["k"], rows, row_ok, offs_k, k_ok, "k")
    v = load_rows(kb, "v", bases["v"], rows, row_ok, offs_v, v_ok, "v")
    do = load_rows(kb, "do", bases["do"], rows, row_ok, offs_v, v_ok, "do")
    decay = gate_decay(kb, s, seq, rows, row_ok, n_valid, CHUNK)
    t = kb.arange(CHUNK, "t")
    causal = kb.cmp("sge", kb.col(t), kb.row(t), "causal")
    weight = scale if decay is None else kb.mul(exp(kb, kb.sub(kb.col(decay.cum), kb.row(decay.cum))), scale, "decay")
    a = kb.where(causal, kb.mul(kb.dot(q, kb.trans(k), None, s.precision), weight), kb.f32(0.0), "a")
    da = kb.where(causal, kb.mul(kb.dot(do, kb.trans(v), None, s.precision), weight), kb.f32(0.0), "da")
    da_e = kb.cast(da, s.elem, "da_e")

    kb.comment("this program's key columns (of dq, dk) and value columns (of dv)")
    cols_k = kb.add(kb.mul(pid_split, kb.constexpr(BK)), kb.arange(BK), "cols_k")
    cols_v = kb.add(kb.mul(pid_split, kb.constexpr(BV)), kb.arange(BV), "cols_v")
    cols_k_ok = kb.cmp("slt", cols_k, kb.i32(s.dim_k), "cols_k_ok")
    cols_v_ok = kb.cmp("slt", cols_v, kb.i32(s.dim_v), "cols_v_ok")
    q_raw = load_rows(kb, "q", bases["q"], rows, row_ok, cols_k, cols_k_ok, "q_cols_raw")
    k_raw = load_rows(kb, "k", bases["k"], rows, row_ok, cols_k, cols_k_ok, "k_cols_raw")
    q_cols = feature_map(kb, s, "q", q_raw, row_ok, cols_k_ok, "q_cols")
    k_cols = feature_map(kb, s, "k", k_raw, row_ok, cols_k_ok, "k_cols")
    do_cols = load_rows(kb, "do", bases["do"], rows, row_ok, cols_v, cols_v_ok, "do_cols")
    rows_mask = kb.col(cols_k_ok) if v_ok is None else kb.and_(kb.col(cols_k_ok), kb.row(v_ok))
    cols_mask = kb.row(cols_v_ok) if k_ok is None else kb.and_(kb.col(k_ok), kb.row(cols_v_ok))
    state = kb.load(state_ptrs(kb, kb.arg("h_ptr"), pid_c, h, s, cols_k, offs_v, "h_ptrs"), rows_mask, 0.0, "state")
    dstate = kb.load(state_ptrs(kb, kb.arg("dh_ptr"), pid_c, h, s, cols_k, offs_v, "dh_ptrs"), rows_mask, 0.0, "dstate")
    dstate_v = kb.load(
        state_ptrs(kb, kb.arg("dh_ptr"), pid_c, h, s, offs_k, cols_v, "dh_cols_ptrs"), cols_mask, 0.0, "dstate_cols"
    )

    kb.comment("dq: the state at the chunk's start, then the intra-chunk part")
    dq = kb.mul(kb.dot(do, kb.trans(state), None, s.precision), scale, "dq_inter")
    if decay is not None:
        dq = kb.mul(dq, exp(kb, decay.cum), "dq_inter")
    k_guarded = guard(kb, k_cols, t, True, "k_cols")
    dq = kb.dot(da_e, k_guarded.value, dq, s.precision, "dq")
    dq = restore(kb, k_guarded, t, dq, "dq_nonfinite")
    kb.comment("dk and dv: the gradient at the chunk's end, then the intra-chunk part")
    dk = kb.dot(v, kb.trans(dstate), None, s.precision, "dk_inter")
    k_w = k
    if decay is not None:
        w = exp(kb, kb.sub(decay.last, decay.cum), "to_end")
        dk = kb.mul(dk, w, "dk_inter")
        k_w = kb.cast(kb.mul(kb.cast(k, f32), w), s.elem, "k_w")
    q_guarded = guard(kb, q_cols, t, False, "q_cols")
    dk = kb.dot(kb.trans(da_e), q_guarded.value, dk, s.precision, "dk")
    dk = restore(kb, q_guarded, t, dk, "dk_nonfinite")
    dv = kb.dot(k_w, dstate_v, None, s.precision, "dv_inter")
    dv = kb.dot(kb.trans(kb.cast(a, s.elem)), do_cols, dv, s.precision, "dv")
    store_rows(
        kb,
        "dq",
        bases["dq"],
        rows,
        row_ok,
        cols_k,
        cols_k_ok,
        kb.cast(map_grad(kb, maps, "q", q_raw, dq), _out(s, shared)),
    )
    store_rows(
        kb,
        "dk",
        bases["dk"],
        rows,
        row_ok,
        cols_k,
        cols_k_ok,
        kb.cast(map_grad(kb, maps, "k", k_raw, dk), _out(s, shared)),
    )
    store_rows(kb, "dv", bases["dv"], rows, row_ok, cols_v, cols_v_ok, kb.cast(dv, s.elem))
    if decay is not None:
        kb.comment("dG = q·dq − k·dk over this program's key columns, summed from the chunk's end back to each step")
        dgate = kb.row_reduce(
            "sum", kb.sub(kb.mul(kb.cast(q_cols, f32), dq), kb.mul(kb.cast(k_cols, f32), dk)), "dgate"
        )
        dgate = cumsum(kb, dgate, "dgate_from_end", reverse=True)
        kb.atomic_add(
            kb.addptr(base(kb, "dg", seq, False), kb.mul(rows, kb.arg(kernel_params.stride("dg", "s")))), dgate, row_ok
        )
    return kb.finish()


def shares_qk_heads(op: RecurrentChunkOp) -> bool:
    """Whether a q/k head serves several v heads (then dq, dk are summed by the runtime, so kept in f32)."""
    qt, vt = op.q.type, op.v.type
    assert isinstance(qt, TensorType) and isinstance(vt, TensorType)
    return qt.get_shape()[1] != vt.get_shape()[1]


def map_grads(op: RecurrentChunkOp) -> dict[str, Region]:
    """The derivative regions `(x, grad) -> grad · map'(x)` of q_map and k_map."""
    return {t: differentiate_score_mod(r) for t, r in (("q", op.q_map), ("k", op.k_map)) if r.blocks}


def map_grad(kb: KernelBuilder, maps: dict[str, Region], t: str, raw: SSAValue, grad: SSAValue) -> SSAValue:
    """The gradient of the raw q or k from that of the mapped one (the chain rule through the feature map)."""
    region = maps.get(t)
    if region is None:
        return grad
    kb.comment(f"through {t}_map")
    (d,) = lower_region(kb, region, [kb.cast(raw, f32), grad], f"{t}_map derivative")
    return d


def _out(s: Shapes, shared: bool) -> Attribute:
    return f32 if shared else s.elem


__all__ = ["build_grad_kernel", "build_state_grad_kernel", "map_grad", "map_grads", "shares_qk_heads"]
