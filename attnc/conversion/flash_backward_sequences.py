"""The backward tile kernels of an `attn.flash_grad` over packed sequences or a KV cache (`layout`).

The math is flash_backward_kernels.py's; what differs is where the rows are and which blocks are
visited. Each program finds its sequence with `sequence_rows.locate`, as the forward does (clamped
lengths, queries at positions len_k − len_q + i), and there is no block table. As in the forward's
sequence loop, the walked blocks that are whole (inside the sequence, and all of their tile with the
program's own block kept by the mask: the full blocks without a mask_mod, the first run an affine mask's
`classify` region keeps whole, found by a scalar pass) run unmasked and unbranched, so their loads pipeline; the
others run masked by the sequence's bounds and the mask, and an affine mask's empty ones are skipped
(`scf.if` around the block's work). A runtime mask runs every block masked.

- `<fn>_bwd_dq`: one program per query block of a (sequence, head), grid (N·Hq, cdiv(max_seqlen_q,
  BLOCK_M)) over a cache, (total_q // BLOCK_M + N, Hq) slots when packed (sequence_rows.packed_slot);
  walks the key blocks of its sequence, adds the captured tensors' adjoints and stores
  δ = rowsum(dO ⊙ O) − dlse of its rows, as the dense kernel does.
- `<fn>_bwd_dkdv`: one program per key block of a (sequence, kv head), grid (N·Hkv, cdiv(max_seqlen_k,
  BLOCK_N)), or (total_k // BLOCK_N + N, Hkv) slots when packed; for each query head of its group it
  walks the query blocks of its sequence. A block past the sequence's keys visits nothing and stores nothing: the runtime
  hands in zeroed dK and dV, so keys no sequence owns (a cache's tail) get gradient 0.

Parameters are the dense kernels' with the layout's metadata (sequence_rows.layout_params) in place
of the block table. A paged cache has no backward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.dialects.builtin import f32
from xdsl.ir import SSAValue

from attnc.conversion.flash_backward_kernels import BackwardTiles, backward_builder, grad_types, guarded_sizes_of
from attnc.conversion.flash_kernels import BM, BN, DIM, DIM_V, capture_values
from attnc.conversion.kernel_builder import KernelBuilder
from attnc.conversion.region_lowering import lower_region
from attnc.conversion.sequence_rows import SequenceRows, layout_params, locate, packed_slot
from attnc.conversion.whole_runs import Classify, first_whole_run

Visit = Callable[[dict[str, SSAValue], SSAValue, bool], dict[str, SSAValue]]
Bounds = Callable[[SSAValue], list[SSAValue]]


@dataclass(frozen=True)
class Walk:
    """The blocks one program walks along a dimension of its sequence."""

    what: str  # the loops' comment: "key blocks", "query blocks"
    size: str  # the walked blocks' constexpr size
    length: SSAValue  # the sequence's length along the walked dimension
    count: SSAValue  # blocks to walk: 0 when the program's own block is past the sequence
    tile_of: Bounds  # positions (q_first, q_end, kv_lo, kv_end) of the tile at a walked block's start


def _blocks(
    kb: KernelBuilder, grad, walk: Walk, carried: dict[str, SSAValue], visit: Visit, b: SSAValue, h: SSAValue
) -> dict[str, SSAValue]:
    """`visit(carried, start, masked)` on the walked blocks, starting at 0, size, …

    A walked block is whole when it lies inside the sequence and the mask keeps its whole tile with the
    program's own block; it runs with `masked` False: no mask_mod, no bound on the walked rows. The own
    block may be partial: its rows past the sequence, loaded once as zeros, only reach results of their own
    rows, which are never stored (dQ adds capture adjoints under row_ok). Without a mask_mod the whole
    blocks are the full ones, a prefix; with an affine mask a scalar pass over the classify region finds
    their first run. That run has no branch, so its loads pipeline; the other blocks run masked, and those
    an affine mask empties are skipped. A runtime mask runs every block masked."""
    kind = grad.block_mask.data if grad.block_mask is not None else "runtime"
    zero, one, size = kb.i32(0), kb.i32(1), kb.constexpr(walk.size)
    if kind == "runtime":
        with kb.loop(zero, walk.count, one, carried, f"{walk.what} of the sequence") as body:
            body.yield_(visit(body.carried, kb.mul(body.index, size, "start"), True))
        return body.results
    if kind == "none":
        run_lo, run_hi = zero, kb.min(kb.div(walk.length, size), walk.count, "run_hi")
    else:
        run_lo, run_hi = first_whole_run(kb, zero, walk.count, walk.size, _classify(kb, grad, walk, b, h), "start")
    # the run of whole blocks: no mask, no branch
    with kb.loop(run_lo, run_hi, one, carried, f"{walk.what} kept whole") as body:
        body.yield_(visit(body.carried, kb.mul(body.index, size, "start"), False))
    if kind == "none":  # the last block, when partial
        with kb.loop(run_hi, walk.count, one, body.results, f"{walk.what} the sequence cuts") as masked:
            masked.yield_(visit(masked.carried, kb.mul(masked.index, size, "start"), True))
        return masked.results
    # the others, before the run and after it, masked; a block the mask empties is skipped
    count = kb.add(run_lo, kb.sub(walk.count, run_hi), "blocks_masked")
    with kb.loop(zero, count, one, body.results, f"{walk.what} the mask cuts or empties") as masked:
        after = kb.add(run_hi, kb.sub(masked.index, run_lo))
        start = kb.mul(kb.where(kb.cmp("slt", masked.index, run_lo), masked.index, after), size, "start")
        any_kept, _ = lower_region(kb, grad.classify, [b, h, *walk.tile_of(start)], "classify")
        with kb.branch(any_kept, masked.carried, "skip a block the mask empties") as inner:
            inner.yield_(visit(inner.carried, start, True))
        masked.yield_(inner.results)
    return masked.results


def _classify(kb: KernelBuilder, grad, walk: Walk, b: SSAValue, h: SSAValue) -> Classify:
    """(any kept, whole) of the walked block at `start`: whole when it is full and the mask keeps all of its
    tile with the program's block."""

    def classify(start: SSAValue) -> tuple[SSAValue, SSAValue]:
        any_kept, all_kept = lower_region(kb, grad.classify, [b, h, *walk.tile_of(start)], "classify")
        full = kb.cmp("sle", kb.add(start, kb.constexpr(walk.size)), walk.length, "full")
        return any_kept, kb.and_(all_kept, full, "kept_whole")

    return classify


def _query_tile(kb: KernelBuilder, rows: SequenceRows, q_lo: SSAValue) -> list[SSAValue]:
    """The positions [first, end) of the query block starting at row `q_lo`."""
    q_first = kb.add(rows.q_shift, q_lo, "q_first")
    q_end = kb.add(rows.q_shift, kb.min(kb.add(q_lo, kb.constexpr(BM)), rows.q_len), "q_end")
    return [q_first, q_end]


def _key_tile(kb: KernelBuilder, rows: SequenceRows, kv_lo: SSAValue) -> list[SSAValue]:
    """The positions [kv_lo, end) of the key block starting at `kv_lo`."""
    return [kv_lo, kb.min(kb.add(kv_lo, kb.constexpr(BN)), rows.k_len, "kv_end")]


def _layout(grad) -> str:
    assert grad.layout is not None and grad.layout.data in ("packed", "cache"), "dense and paged have other kernels"
    return grad.layout.data


def build_dq_sequences_kernel(grad, name: str):
    """dQ per query block of a (sequence, head); the captured tensors' adjoints too."""
    layout = _layout(grad)
    _, _, elem, head_dim, head_dim_v, caps = grad_types(grad)
    precision = "ieee" if elem == f32 else None
    kb = backward_builder(grad, "dq", name, layout_params(layout))
    kb.comment("which query block, sequence and head this program owns")
    if layout == "packed":  # slots of query blocks on axis 0 (it holds 2^31 - 1), heads on axis 1
        h = kb.program_id(1, "h")
        b, pid_m = packed_slot(kb, kb.program_id(0, "slot"), BM, "q", reverse=True)
        pid_bh = kb.add(kb.mul(b, kb.arg("num_heads")), h, "pid_bh")
    else:  # (sequence, head) programs on grid axis 0, which holds 2^31 - 1 (axis 1 holds 65535)
        pid_m = kb.program_id(1, "pid_m")
        pid_bh = kb.program_id(0, "pid_bh")
        b = kb.div(pid_bh, kb.arg("num_heads"), "b")
        h = kb.rem(pid_bh, kb.arg("num_heads"), "h")
    kv_h = kb.div(h, kb.arg("group"), "kv_h")
    rows = locate(kb, layout, pid_bh, b, h, kv_h)
    t = BackwardTiles(kb, grad, b, head_dim, head_dim_v)
    q_lo = kb.mul(pid_m, kb.constexpr(BM), "q_lo")
    offs_m = kb.add(q_lo, kb.arange(BM), "offs_m")
    offs_n = kb.arange(BN, "offs_n")
    rows_in = kb.cmp("slt", offs_m, rows.q_len, "rows_in")
    row_ok = kb.col(rows_in, "row_ok")
    q = t.load(rows.q_base, "q", offs_m, row_ok, False, "q")
    dout = t.load(rows.q_rows_base(kb, "dout", h), "dout", offs_m, row_ok, True, "dout")
    out = t.load(rows.out_base, "out", offs_m, row_ok, True, "out")
    stat_rows = kb.add(rows.stat_row, kb.wide(offs_m), "stat_rows")
    stat = t.load_stat(stat_rows, rows_in)
    row = t.row_stat(stat)
    delta = t.delta(dout, out, stat_rows, rows_in)
    q_idx = kb.col(rows.q_positions(kb, offs_m), "q_idx")
    captures = capture_values(kb, caps, guarded_sizes_of(grad))
    k_base, v_base = rows.k_base, rows.v_base
    assert k_base is not None and v_base is not None

    def visit(carried: dict[str, SSAValue], start_n: SSAValue, masked: bool) -> dict[str, SSAValue]:
        cols = kb.add(start_n, offs_n, "cols")
        in_range = kb.cmp("slt", cols, rows.k_len, "in_range") if masked else None
        kv_ok = kb.col(in_range) if in_range is not None else None
        k = t.load(k_base, "k", cols, kv_ok, False, "k")
        v = t.load(v_base, "v", cols, kv_ok, True, "v")
        qk = kb.dot(q, kb.trans(k), None, precision, "qk")
        kv_idx = kb.row(rows.kv_positions(kb, cols) if masked else cols, "kv_idx")
        keep = None
        if in_range is not None:
            kb.comment("mask_mod and the sequence bound")
            (keep,) = lower_region(kb, grad.mask_mod, [b, h, q_idx, kv_idx, *captures], "mask_mod")
            keep = kb.and_(keep, kb.row(in_range), "keep")
        score, p = t.probabilities(qk, h, q_idx, kv_idx, row, keep, captures)
        dp = kb.dot(dout, kb.trans(v), None, precision, "dp")
        ds_mod = t.weights_grad(p, dp, delta, row)
        ds = t.score_grads(score, h, q_idx, kv_idx, ds_mod, keep, row_ok, captures, add_capture_grads=True)
        return {"dq": kb.dot(kb.cast(ds, elem), k, carried["dq"], precision, "dq")}

    blocks = kb.cdiv(rows.k_len, kb.constexpr(BN), "kv_blocks")
    count = kb.where(kb.cmp("slt", q_lo, rows.q_len), blocks, kb.i32(0), "num_blocks")
    query_tile = _query_tile(kb, rows, q_lo)
    init = {"dq": kb.full((BM, DIM), 0.0, f32, "dq")}

    def tile_of(start_n: SSAValue) -> list[SSAValue]:
        return [*query_tile, *_key_tile(kb, rows, start_n)]

    walk = Walk("key blocks", BN, rows.k_len, count, tile_of)
    dq = _blocks(kb, grad, walk, init, visit, b, h)["dq"]
    t.stat_grads(h, stat, delta, rows_in, captures)
    dq_base = rows.q_rows_base(kb, "dq", h)
    t.store(dq_base, "dq", offs_m, row_ok, False, kb.cast(kb.mul(dq, kb.arg("scale")), elem))
    return kb.finish()


def build_dkdv_sequences_kernel(grad, name: str):
    """dK and dV per key block of a (sequence, kv head), summed over the query heads of its group."""
    layout = _layout(grad)
    _, _, elem, head_dim, head_dim_v, caps = grad_types(grad)
    precision = "ieee" if elem == f32 else None
    kb = backward_builder(grad, "dkdv", name, layout_params(layout))
    kb.comment("which key block, sequence and kv head this program owns")
    group = kb.arg("group")
    if layout == "packed":  # slots of key blocks on axis 0, kv heads on axis 1
        kv_h = kb.program_id(1, "kv_h")
        b, pid_n = packed_slot(kb, kb.program_id(0, "slot"), BN, "k", reverse=False)
    else:
        pid_n = kb.program_id(1, "pid_n")
        pid_bh = kb.program_id(0, "pid_bh")
        kv_heads = kb.div(kb.arg("num_heads"), group, "kv_heads")
        b = kb.div(pid_bh, kv_heads, "b")
        kv_h = kb.rem(pid_bh, kv_heads, "kv_h")
    first_h = kb.mul(kv_h, group, "first_h")
    rows = locate(kb, layout, kb.add(kb.mul(b, kb.arg("num_heads")), first_h), b, first_h, kv_h)
    t = BackwardTiles(kb, grad, b, head_dim, head_dim_v)
    kv_lo = kb.mul(pid_n, kb.constexpr(BN), "kv_lo")
    offs_n = kb.add(kv_lo, kb.arange(BN), "offs_n")
    offs_m = kb.arange(BM, "offs_m")
    col_ok = kb.col(kb.cmp("slt", offs_n, rows.k_len), "col_ok")
    k = t.load(rows.kv_rows_base(kb, "k"), "k", offs_n, col_ok, False, "k")
    v = t.load(rows.kv_rows_base(kb, "v"), "v", offs_n, col_ok, True, "v")
    # Scores transposed, [BLOCK_N, BLOCK_M], as in the dense kernel: Pᵀ and dSᵀ feed dV and dK from registers.
    kv_idx = kb.col(rows.kv_positions(kb, offs_n), "kv_idx")
    captures = capture_values(kb, caps, guarded_sizes_of(grad))
    blocks = kb.cdiv(rows.q_len, kb.constexpr(BM), "q_blocks")
    count = kb.where(kb.cmp("slt", kv_lo, rows.k_len), blocks, kb.i32(0), "num_blocks")
    key_tile = _key_tile(kb, rows, kv_lo)
    carried = {"dk": kb.full((BN, DIM), 0.0, f32, "dk"), "dv": kb.full((BN, DIM_V), 0.0, f32, "dv")}
    with kb.loop(kb.i32(0), group, kb.i32(1), carried, "query heads of this kv head") as heads:
        h = kb.add(first_h, heads.index, "h")
        q_base, dout_base = rows.q_rows_base(kb, "q", h), rows.q_rows_base(kb, "dout", h)
        stat_row = rows.stat_row_of(kb, h)

        def visit(acc: dict[str, SSAValue], start_m: SSAValue, masked: bool) -> dict[str, SSAValue]:
            offs_q = kb.add(start_m, offs_m, "offs_q")
            rows_in = kb.cmp("slt", offs_q, rows.q_len, "rows_in") if masked else None
            q_ok = kb.col(rows_in) if rows_in is not None else None
            q = t.load(q_base, "q", offs_q, q_ok, False, "q")
            dout = t.load(dout_base, "dout", offs_q, q_ok, True, "dout")
            stat_rows = kb.add(stat_row, kb.wide(offs_q), "stat_rows")
            row = t.row_stat(t.load_stat(stat_rows, rows_in))
            delta = kb.load(kb.addptr(kb.arg("delta_ptr"), stat_rows), rows_in, 0.0, "delta") if t.softmax else None
            positions = rows.q_positions(kb, offs_q) if masked else kb.add(rows.q_shift, offs_q)
            q_idx = kb.row(positions, "q_idx")
            qk = kb.dot(k, kb.trans(q), None, precision, "qk_t")
            keep = None
            if rows_in is not None:
                kb.comment("mask_mod and the sequence bounds")
                (keep,) = lower_region(kb, grad.mask_mod, [b, h, q_idx, kv_idx, *captures], "mask_mod")
                keep = kb.and_(kb.and_(keep, col_ok), kb.row(rows_in), "keep")
            score, p = t.probabilities(qk, h, q_idx, kv_idx, row, keep, captures)
            dv = kb.dot(kb.cast(p, elem), dout, acc["dv"], precision, "dv")
            dp = kb.dot(v, kb.trans(dout), None, precision, "dp_t")
            ds_mod = t.weights_grad(p, dp, delta, row)
            ds = t.score_grads(score, h, q_idx, kv_idx, ds_mod, keep, None, captures, add_capture_grads=False)
            return {"dk": kb.dot(kb.cast(ds, elem), q, acc["dk"], precision, "dk"), "dv": dv}

        def tile_of(start_m: SSAValue) -> list[SSAValue]:
            return [*_query_tile(kb, rows, start_m), *key_tile]

        walk = Walk("query blocks", BM, rows.q_len, count, tile_of)
        heads.yield_(_blocks(kb, grad, walk, dict(heads.carried), visit, b, h))
    dk = kb.cast(kb.mul(heads.results["dk"], kb.arg("scale")), elem)
    t.store(rows.kv_rows_base(kb, "dk"), "dk", offs_n, col_ok, False, dk)
    t.store(rows.kv_rows_base(kb, "dv"), "dv", offs_n, col_ok, True, kb.cast(heads.results["dv"], elem))
    return kb.finish()


__all__ = ["build_dkdv_sequences_kernel", "build_dq_sequences_kernel"]
