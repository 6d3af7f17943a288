"""The two tile kernels of an `attn.flash` op: the block table and the flash forward.

Kernel parameters are named as dialect/kernel_params.py describes; the runtime fills
them in by name. The forward takes `q_ptr`, `stride_q_b` ... for q, k, v and out;
`stat{i}_ptr` for each row statistic; `cap{i}_ptr` and `cap{i}_stride{j}` for captured
tensors, and `cap{i}_size{j}` for each dimension a guarded read (attn-guard-captures)
masks; `seq_q`, `seq_kv`, `num_heads`, `group` (query heads per kv head), `scale`;
the block table as `full_num_ptr`, `full_idx_ptr`, `part_num_ptr`, `part_idx_ptr`,
`table_stride_b`, `table_stride_h`, `num_kv_blocks`. The block-table kernel writes
each tile's class to `class_ptr`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import FloatAttr, TensorType, f32, i32
from xdsl.ir import Attribute, SSAValue

from attnc.conversion.kernel_builder import KernelBuilder, Value
from attnc.conversion.masked_values import guard_values, restore_rows
from attnc.conversion.region_lowering import lower_region
from attnc.conversion.sequence_rows import (
    PAGE,
    QueryRows,
    SequenceRows,
    layout_params,
    locate,
    packed_slot,
    query_rows,
)
from attnc.conversion.whole_runs import first_whole_run
from attnc.dialect import attn, kernel_params, tile
from attnc.dialect.attn_sequences import page_size
from attnc.dialect.capture_reads import guarded_sizes
from attnc.dialect.kernel_params import padded_head_dim

BM, BN = "BLOCK_M", "BLOCK_N"
DIM, DIM_V = "HEAD_DIM", "HEAD_DIM_V"


def table_params(row_length: str) -> list[tuple[str, Attribute]]:
    """The block table's parameters: per-row counts and index lists of full and partial blocks."""
    return [
        ("full_num_ptr", KernelBuilder.ptr_type(i32)),
        ("full_idx_ptr", KernelBuilder.ptr_type(i32)),
        ("part_num_ptr", KernelBuilder.ptr_type(i32)),
        ("part_idx_ptr", KernelBuilder.ptr_type(i32)),
        ("table_stride_b", i32),
        ("table_stride_h", i32),
        (row_length, i32),
    ]


def _captures(flash: attn.FlashOp) -> list[TensorType]:
    types = []
    for c in flash.captures:
        assert isinstance(c.type, TensorType)
        types.append(c.type)
    return types


def add_capture_params(
    params: list[tuple[str, Attribute]], kb_types: list[TensorType], sizes: Sequence[tuple[int, int]] = ()
) -> None:
    """Each captured tensor's pointer and strides, then the size of each (capture, dimension) in `sizes`."""
    for i, ty in enumerate(kb_types):
        params.append((kernel_params.capture_ptr(i), KernelBuilder.ptr_type(ty.element_type)))
        params.extend((kernel_params.capture_stride(i, j), i32) for j in range(ty.get_num_dims()))
    params.extend((kernel_params.capture_size(i, j), i32) for i, j in sizes)


def capture_values(kb: KernelBuilder, types: list[TensorType], sizes: Sequence[tuple[int, int]] = ()) -> list[Value]:
    """Captured tensors as (pointer, strides, guarded sizes) handles for `tensor.extract` lowering."""
    return [
        kb.capture(
            kernel_params.capture_ptr(i),
            [kb.arg(kernel_params.capture_stride(i, j)) for j in range(ty.get_num_dims())],
            {j: kb.arg(kernel_params.capture_size(i, j)) for c, j in sizes if c == i},
        )
        for i, ty in enumerate(types)
    ]


def build_block_table_kernel(flash: attn.FlashOp, name: str):
    """One program per (query block, key block, batch-head): writes the tile's class 0/1/2."""
    tile = flash.tile
    assert tile is not None and flash.block_mask is not None
    kind = flash.block_mask.data
    cap_types = _captures(flash) if kind == "runtime" else []
    sizes = guarded_sizes([flash.mask_mod]) if kind == "runtime" else []
    params: list[tuple[str, Attribute]] = [("class_ptr", KernelBuilder.ptr_type(i32))]
    add_capture_params(params, cap_types, sizes)
    params += [("seq_q", i32), ("seq_kv", i32), ("num_heads", i32), ("table_heads", i32)]
    kb = KernelBuilder(name, params, {BM: tile.block_m.data, BN: tile.block_n.data})

    pid_m = kb.program_id(0, "pid_m")
    pid_n = kb.program_id(1, "pid_n")
    pid_bh = kb.program_id(2, "pid_bh")
    b = kb.div(pid_bh, kb.arg("table_heads"), "b")
    h = kb.rem(pid_bh, kb.arg("table_heads"), "h")
    seq_q, seq_kv = kb.arg("seq_q"), kb.arg("seq_kv")
    q_lo = kb.mul(pid_m, kb.constexpr(BM), "q_lo")
    q_hi = kb.min(kb.add(q_lo, kb.constexpr(BM)), seq_q, "q_hi")
    kv_lo = kb.mul(pid_n, kb.constexpr(BN), "kv_lo")
    kv_end = kb.add(kv_lo, kb.constexpr(BN), "kv_end")
    kv_hi = kb.min(kv_end, seq_kv, "kv_hi")
    in_bounds = kb.cmp("sle", kv_end, seq_kv, "kv_in_bounds")

    if kind == "runtime":
        kb.comment("runtime mask: evaluate mask_mod on every element of the tile")
        offs_m = kb.add(q_lo, kb.arange(BM), "offs_m")
        offs_n = kb.add(kv_lo, kb.arange(BN), "offs_n")
        row_ok = kb.col(kb.cmp("slt", offs_m, seq_q), "row_ok")
        col_ok = kb.row(kb.cmp("slt", offs_n, seq_kv), "col_ok")
        q_idx = kb.col(kb.min(offs_m, kb.sub(seq_q, kb.i32(1))), "q_idx")
        kv_idx = kb.row(kb.min(offs_n, kb.sub(seq_kv, kb.i32(1))), "kv_idx")
        captures = capture_values(kb, cap_types, sizes)
        (keep,) = lower_region(kb, flash.mask_mod, [b, h, q_idx, kv_idx, *captures], "mask_mod")
        live = kb.and_(kb.and_(keep, row_ok), col_ok, "live")
        any_kept = kb.reduce_any(live, "any")
        dead_row_or_kept = kb.or_(keep, kb.not_(row_ok), "kept_or_outside")
        all_kept = kb.and_(kb.reduce_all(dead_row_or_kept), in_bounds, "all")
    else:
        kb.comment("affine mask: the symbolic classify region, a few scalar ops per tile")
        if kind == "affine":
            any_kept, all_kept = lower_region(kb, flash.classify, [b, h, q_lo, q_hi, kv_lo, kv_hi], "classify")
        else:
            any_kept = kb.cmp("slt", kv_lo, seq_kv, "any")
            all_kept = in_bounds
        all_kept = kb.and_(all_kept, in_bounds, "all")
        any_kept = kb.and_(any_kept, kb.cmp("slt", kv_lo, seq_kv), "any")

    cls = kb.add(kb.cast(any_kept, i32), kb.cast(all_kept, i32), "cls")
    num_m = kb.cdiv(seq_q, kb.constexpr(BM), "num_m")
    num_n = kb.cdiv(seq_kv, kb.constexpr(BN), "num_n")
    row = kb.add(kb.mul(pid_bh, num_m), pid_m, "row")
    offset = kb.add(kb.mul(row, num_n), pid_n, "offset")
    kb.store(kb.addptr(kb.arg("class_ptr"), offset), cls)
    return kb.finish()


def build_forward_kernel(flash: attn.FlashOp, name: str, split: bool = False):
    """The flash forward: full key blocks unmasked, then partial ones masked; finalize; store.

    Packed, cached and paged sequences (`layout`) visit each of their key blocks once, masked, and skip
    those the affine mask's classify region finds empty; they have no block table. With `pack_gqa`,
    one program owns a kv head and its rows are the queries of the heads that share it. `split`
    builds the split forward of a flash with a `merge` region: program axis 2 picks one of
    `num_splits` ranges of the sequence's key blocks, and the program stores its partial
    accumulator and state (`part_acc_ptr`, `part_state{i}_ptr`, rows of `part_rows`) for the
    combine kernel (flash_combine_kernel.py) instead of finalizing.
    """
    tile = flash.tile
    assert tile is not None
    qt, kt, vt = flash.q.type, flash.k.type, flash.v.type
    assert isinstance(qt, TensorType) and isinstance(kt, TensorType) and isinstance(vt, TensorType)
    layout = flash.layout.data if flash.layout is not None else "dense"
    packed = "pack_gqa" in flash.attributes
    elem = qt.element_type
    head_dim, head_dim_v = qt.get_shape()[3], vt.get_shape()[3]
    cap_types = _captures(flash)
    state_names = [s.data for s in flash.state.data]
    sizes = guarded_sizes([flash.score_mod, flash.mask_mod, flash.update, flash.finalize])

    params = _forward_params(flash, elem, layout, cap_types, split, sizes)
    constexprs = {
        BM: tile.block_m.data,
        BN: tile.block_n.data,
        DIM: padded_head_dim(head_dim),
        DIM_V: padded_head_dim(head_dim_v),
    }
    if layout == "paged":
        constexprs[PAGE] = page_size(layout, kt)
    kb = KernelBuilder(name, params, constexprs, "approx_tanh" in flash.attributes, "instrument" in flash.attributes)
    mask_d = head_dim != padded_head_dim(head_dim)
    fp32 = elem == f32

    kb.comment("which query block, batch and head this program owns")
    b, pid_m, rows, qrows = _program_rows(kb, layout, packed)
    h = qrows.head  # a scalar, or per row [BLOCK_M] when packed: the regions broadcast it

    offs_n = kb.arange(BN, "offs_n")
    offs_d = kb.arange(DIM, "offs_d")
    offs_dv = kb.arange(DIM_V, "offs_dv")
    d_ok = kb.row(kb.cmp("slt", offs_d, kb.i32(head_dim)), "d_ok") if mask_d else None
    dv_ok = (
        kb.row(kb.cmp("slt", offs_dv, kb.i32(head_dim_v)), "dv_ok")
        if head_dim_v != padded_head_dim(head_dim_v)
        else None
    )

    q, q_idx = _load_queries(kb, rows, qrows, offs_d, d_ok)
    captures = capture_values(kb, cap_types, sizes)

    init: dict[str, SSAValue] = {"acc": kb.full((BM, DIM_V), 0.0, f32, "acc")}
    for s, value in zip(state_names, flash.init.data):
        assert isinstance(value, FloatAttr)
        init[s] = kb.full((BM,), value.value.data, f32, s)

    cuts_keys = flash.block_mask is not None and flash.block_mask.data != "none"  # a mask_mod, not only lengths
    # a key block lies in one page: one page id per block (the runtime launches the tile's BLOCK_N)
    whole_pages = layout == "paged" and constexprs[PAGE] % tile.block_n.data == 0

    def attend(
        carried: dict[str, SSAValue], start_n: SSAValue, masked: bool, kept_whole: SSAValue | None = None
    ) -> dict[str, SSAValue]:
        """One key block from `start_n`: scores, score_mod, [mask], normalizer update, the PV product.
        `kept_whole` (a scalar, where the mask is affine): the mask and the lengths keep the whole block."""
        cols = kb.add(start_n, offs_n, "cols")
        col_ok = kb.row(kb.cmp("slt", cols, rows.k_len), "col_ok") if masked else None
        in_range = kb.cmp("slt", cols, rows.k_len, "in_range") if masked else None
        pages = rows.pages(kb, start_n, cols, in_range, whole_pages) if layout == "paged" else None
        k_ptrs, kv_ok = rows.kv_ptrs(kb, "k", cols, offs_d, in_range, pages)
        if kv_ok is not None and kb.dims_of(kv_ok) == (BN,):
            kv_ok = kb.col(kv_ok, "kv_ok")
        k_mask = _and_optional(kb, kv_ok, d_ok)
        with kb.stage("load_k"):
            k = kb.load(k_ptrs, k_mask, 0.0 if k_mask is not None else None, "k")
        with kb.stage("qk"):
            qk = kb.dot(q, kb.trans(k), None, "ieee" if fp32 else None, "qk")
            score = kb.mul(qk, kb.arg("scale"), "score")
        if masked:
            last_col = kb.sub(rows.k_len, kb.i32(1))
            if layout != "dense":  # an empty sequence still indexes at 0
                last_col = kb.max(last_col, kb.i32(0))
            kv_idx = kb.row(kb.min(cols, last_col), "kv_idx")
        else:
            kv_idx = kb.row(cols, "kv_idx")
        kb.comment("score_mod")
        unmodified = score
        with kb.stage("score_mod"):
            (score,) = lower_region(kb, flash.score_mod, [score, b, h, q_idx, kv_idx, *captures], "score_mod")
        # A score_mod that ignores the score or an index (`h * 0.5`) yields fewer dims: a whole tile again.
        score = kb.to_dims(score, kb.dims_of(unmodified))
        if score is not unmodified:
            score.name_hint = "modified"
        keep = None
        if masked:
            kb.comment("mask_mod and the sequence bound")
            with kb.stage("mask"):
                (keep,) = lower_region(kb, flash.mask_mod, [b, h, q_idx, kv_idx, *captures], "mask_mod")
                assert col_ok is not None
                keep = kb.and_(keep, col_ok, "keep")
                assert isinstance(flash.masked_score, FloatAttr)
                score = kb.where(keep, score, kb.f32(flash.masked_score.value.data), "score")
        kb.comment(f"normalizer update ({flash.normalizer.data})")
        with kb.stage("update"):
            p, alpha, *new_state = lower_region(
                kb, flash.update, [score, b, h, *[carried[s] for s in state_names], *captures], "update"
            )
            if keep is not None:
                p = kb.where(keep, p, kb.f32(0.0), "p")
        v_ptrs, v_ok = rows.kv_ptrs(kb, "v", cols, offs_dv, in_range, pages)
        if v_ok is not None and kb.dims_of(v_ok) == (BN,):
            v_ok = kb.col(v_ok, "kv_ok")
        v_mask = _and_optional(kb, v_ok, dv_ok)
        with kb.stage("load_v"):
            v = kb.load(v_ptrs, v_mask, 0.0 if v_mask is not None else None, "v")
        with kb.stage("pv"):
            acc = _accumulate(
                kb, carried["acc"], alpha, p, v, keep if cuts_keys else None, kept_whole, layout != "dense"
            )
        return {"acc": acc, **dict(zip(state_names, new_state))}

    split_id = kb.program_id(2, "split") if split else None
    if layout == "dense":
        state = _table_loops(kb, b, h, pid_m, init, attend)
    else:
        state = _sequence_loop(kb, flash, rows, qrows, b, h, init, attend, split_id)

    if split_id is not None:
        with kb.stage("epilogue"):
            _store_partials(kb, flash, qrows, b, split_id, state, offs_dv, dv_ok, head_dim_v)
        return kb.finish()
    with kb.stage("epilogue"):
        kb.comment(f"normalizer finalize ({flash.normalizer.data})")
        normalized, *stats = lower_region(
            kb, flash.finalize, [state["acc"], b, h, *[state[s] for s in state_names], *captures], "finalize"
        )
        out = kb.cast(kb.to_dims(normalized, (BM, DIM_V)), elem, "out")
        out_ptrs = kb.addptr(
            rows.out_base,
            kb.add(qrows.offsets(kb, "out"), kb.mul(kb.row(offs_dv), kb.arg(kernel_params.stride("out", "d")))),
            "out_ptrs",
        )
        kb.store(out_ptrs, out, kb.and_(qrows.ok, dv_ok) if dv_ok is not None else qrows.ok)
        stat_rows = _stat_rows(kb, rows, qrows, b)
        rows_in_bounds = kb.cmp("slt", qrows.pos, rows.q_len, "rows_in_bounds")
        for i, stat in enumerate(stats):
            kb.store(kb.addptr(kb.arg(kernel_params.stat_ptr(i)), stat_rows), stat, rows_in_bounds)
    return kb.finish()


def _program_rows(kb: KernelBuilder, layout: str, pack_gqa: bool) -> tuple[SSAValue, SSAValue, SequenceRows, QueryRows]:
    """The sequence (or batch entry) b, the query block, its sequence's rows and the query rows of this
    forward program."""
    if layout == "packed":  # slots of query blocks on axis 0 (it holds 2^31 - 1), heads on axis 1
        assert not pack_gqa, "attn-tile packs query heads over a KV cache only"
        h = kb.program_id(1, "h")
        b, pid_m = packed_slot(kb, kb.program_id(0, "slot"), BM, "q", reverse=True)
        pid_bh = kb.add(kb.mul(b, kb.arg("num_heads")), h, "pid_bh")
    else:  # serving grids put the (sequence, head) programs on axis 0, which holds 2^31 - 1 (axis 1 holds 65535)
        pid_m = kb.program_id(0 if layout == "dense" else 1, "pid_m")
        pid_bh = kb.program_id(1 if layout == "dense" else 0, "pid_bh")
        heads = kb.div(kb.arg("num_heads"), kb.arg("group"), "kv_heads") if pack_gqa else kb.arg("num_heads")
        b = kb.div(pid_bh, heads, "b")
        h = kb.rem(pid_bh, heads, "kv_h" if pack_gqa else "h")
    if pack_gqa:  # h is the kv head
        rows = locate(kb, layout, pid_bh, b, None, h)
        return b, pid_m, rows, query_rows(kb, rows, pid_m, h, kb.constexpr(BM), True)
    kv_h = kb.div(h, kb.arg("group"), "kv_h")
    rows = locate(kb, layout, pid_bh, b, h, kv_h)
    return b, pid_m, rows, query_rows(kb, rows, pid_m, h, kb.constexpr(BM), False)


def _accumulate(
    kb: KernelBuilder,
    acc: SSAValue,
    alpha: SSAValue,
    p: SSAValue,
    v: SSAValue,
    keep: SSAValue | None,
    kept_whole: SSAValue | None,
    every_block_masked: bool,
) -> SSAValue:
    """acc · alpha + p v. Where a mask_mod's `keep` may hide keys, a key it hides never turns 0 · inf into
    NaN; when `every_block_masked` (a sequence's blocks all run masked), only blocks the mask cuts test
    their values: those not `kept_whole` (an affine mask's classify), else those where `keep` drops any."""
    elem = tile.element_type_of(v.type)
    reached = None
    if keep is not None:
        cut = None
        if every_block_masked:
            cut = kb.not_(kept_whole) if kept_whole is not None else kb.reduce_any(kb.not_(keep), "cut")
        v, reached = guard_values(kb, v, p, BM, cut)
    acc = kb.mul(acc, alpha, "acc")
    acc = kb.dot(kb.cast(p, elem), v, acc, "ieee" if elem == f32 else None, "acc")
    return acc if reached is None else restore_rows(kb, acc, reached)


def _forward_params(
    flash: attn.FlashOp,
    elem: Attribute,
    layout: str,
    cap_types: list[TensorType],
    split: bool,
    sizes: Sequence[tuple[int, int]],
) -> list[tuple[str, Attribute]]:
    params: list[tuple[str, Attribute]] = []
    for t in ("q", "k", "v", "out"):
        params.append((kernel_params.ptr(t), KernelBuilder.ptr_type(elem)))
    params += [(kernel_params.stat_ptr(i), KernelBuilder.ptr_type(f32)) for i in range(len(flash.stats))]
    add_capture_params(params, cap_types, sizes)
    for t in ("q", "k", "v", "out"):
        params += [(kernel_params.stride(t, d), i32) for d in ("b", "h", "s", "d")]
    params += [("seq_q", i32), ("seq_kv", i32), ("num_heads", i32), ("group", i32), ("scale", f32)]
    params += table_params("num_kv_blocks") if layout == "dense" else layout_params(layout)
    if split:
        params += partial_params(len(flash.state.data))
    return params


def partial_params(num_state: int) -> list[tuple[str, Attribute]]:
    """Where split programs leave their partial accumulators and states, and how many splits there are."""
    return [
        ("part_acc_ptr", KernelBuilder.ptr_type(f32)),
        *[(f"part_state{i}_ptr", KernelBuilder.ptr_type(f32)) for i in range(num_state)],
        ("part_rows", i32),
        ("num_splits", i32),
    ]


def _stat_rows(kb: KernelBuilder, rows: SequenceRows, qrows: QueryRows, b: SSAValue) -> SSAValue:
    """[BLOCK_M] i64 indices of the rows' statistics (stored [batch, heads, rows])."""
    if not qrows.packed:
        return kb.add(rows.stat_row, kb.wide(qrows.offs), "stat_rows")
    bh = kb.add(kb.mul(b, kb.arg("num_heads")), qrows.head)
    return kb.add(kb.mul(kb.wide(bh), kb.wide(kb.arg("seq_q"))), kb.wide(qrows.pos), "stat_rows")


def _store_partials(
    kb: KernelBuilder,
    flash: attn.FlashOp,
    qrows: QueryRows,
    b: SSAValue,
    split_id: SSAValue,
    state: dict[str, SSAValue],
    offs_dv: SSAValue,
    dv_ok: SSAValue | None,
    head_dim_v: int,
) -> None:
    """The split's accumulator and state, unfinalized, at rows (split · part_rows + (b·H + h)·Sq + pos)."""
    kb.comment("store the split's partial accumulator and state for the combine")
    head = qrows.head
    bh = kb.add(kb.mul(b, kb.arg("num_heads")), head)
    row = kb.add(kb.mul(bh, kb.arg("seq_q")), qrows.pos)
    split_row = kb.add(kb.mul(kb.wide(split_id), kb.wide(kb.arg("part_rows"))), kb.wide(row), "part_row")
    acc_ptrs = kb.addptr(
        kb.arg("part_acc_ptr"), kb.add(kb.mul(kb.col(split_row), kb.wide(kb.i32(head_dim_v))), kb.wide(kb.row(offs_dv)))
    )
    kb.store(acc_ptrs, state["acc"], kb.and_(qrows.ok, dv_ok) if dv_ok is not None else qrows.ok)
    in_bounds = kb.cmp("slt", qrows.pos, kb.arg("seq_q"))
    for i, name in enumerate(s.data for s in flash.state.data):
        kb.store(kb.addptr(kb.arg(f"part_state{i}_ptr"), split_row), state[name], in_bounds)


def _load_queries(
    kb: KernelBuilder,
    rows: SequenceRows,
    qrows: QueryRows,
    offs_d: SSAValue,
    d_ok: SSAValue | None,
) -> tuple[SSAValue, SSAValue]:
    """The program's query tile and its rows' positions (q_idx, [BLOCK_M, 1])."""
    q_ptrs = kb.addptr(
        rows.q_base,
        kb.add(qrows.offsets(kb, "q"), kb.mul(kb.row(offs_d), kb.arg(kernel_params.stride("q", "d")))),
        "q_ptrs",
    )
    q = kb.load(q_ptrs, kb.and_(qrows.ok, d_ok) if d_ok is not None else qrows.ok, 0.0, "q")
    if rows.layout == "dense":
        return q, kb.col(kb.min(qrows.pos, kb.sub(rows.q_len, kb.i32(1))), "q_idx")
    last_row = kb.max(kb.sub(rows.q_len, kb.i32(1)), kb.i32(0))
    return q, kb.col(kb.add(rows.q_shift, kb.min(qrows.pos, last_row)), "q_idx")


Attend = Callable[..., dict[str, SSAValue]]


def _table_loops(
    kb: KernelBuilder, b: SSAValue, h: SSAValue, pid_m: SSAValue, init: dict[str, SSAValue], attend: Attend
) -> dict[str, SSAValue]:
    """The block table's full key blocks unmasked, then its partial ones masked."""
    table_row = kb.add(
        kb.add(kb.mul(b, kb.arg("table_stride_b")), kb.mul(h, kb.arg("table_stride_h"))), pid_m, "table_row"
    )
    idx_offset = kb.mul(kb.wide(table_row), kb.wide(kb.arg("num_kv_blocks")), "idx_offset")

    def kv_loop(which: str, masked: bool, carried: dict[str, SSAValue]) -> dict[str, SSAValue]:
        count = kb.load(kb.addptr(kb.arg(f"{which}_num_ptr"), table_row), None, None, f"num_{which}")
        idx_base = kb.addptr(kb.arg(f"{which}_idx_ptr"), idx_offset, f"{which}_idx")
        # The next block index is loaded one iteration ahead and carried, so the K/V
        # addresses never wait on a load of the same iteration and the loads pipeline.
        zero = kb.i32(0)
        first = kb.load(idx_base, kb.cmp("slt", zero, count), 0, "first_block")
        with kb.loop(zero, count, kb.i32(1), {**carried, "kv_block": first}, f"{which} key blocks") as body:
            kv_block = body.carried["kv_block"]
            following = kb.add(body.index, kb.i32(1), "following")
            next_block = kb.load(kb.addptr(idx_base, following), kb.cmp("slt", following, count), 0, "next_block")
            start_n = kb.mul(kv_block, kb.constexpr(BN), "start_n")
            body.yield_({**attend(body.carried, start_n, masked), "kv_block": next_block})
        return {name: value for name, value in body.results.items() if name != "kv_block"}

    return kv_loop("part", True, kv_loop("full", False, init))


def _sequence_loop(
    kb: KernelBuilder,
    flash: attn.FlashOp,
    rows: SequenceRows,
    qrows: QueryRows,
    b: SSAValue,
    h: SSAValue,
    init: dict[str, SSAValue],
    attend: Attend,
    split_id: SSAValue | None,
) -> dict[str, SSAValue]:
    """The sequence's key blocks (a split's range of them), masked; an affine mask's empty blocks are skipped."""
    zero = kb.i32(0)
    blocks = kb.cdiv(rows.k_len, kb.constexpr(BN), "kv_blocks")
    lo, hi = zero, blocks
    if split_id is not None:
        per_split = kb.cdiv(blocks, kb.arg("num_splits"), "per_split")
        lo = kb.mul(split_id, per_split, "first_block")
        hi = kb.min(kb.add(lo, per_split), blocks, "end_block")
    hi = kb.where(kb.cmp("slt", qrows.first, rows.q_len), hi, lo, "end_block")
    if flash.block_mask is None or flash.block_mask.data != "affine":
        with kb.loop(lo, hi, kb.i32(1), init, "key blocks of the sequence") as body:
            body.yield_(attend(body.carried, kb.mul(body.index, kb.constexpr(BN), "start_n"), True))
        return body.results
    q_first = kb.add(rows.q_shift, qrows.first, "q_first")
    q_end = kb.add(rows.q_shift, qrows.end, "q_end")

    def classify(start_n: SSAValue) -> tuple[SSAValue, SSAValue]:
        """(any kept, the whole block kept) for the key block at `start_n`."""
        kv_end = kb.min(kb.add(start_n, kb.constexpr(BN)), rows.k_len, "kv_end")
        any_kept, all_kept = lower_region(kb, flash.classify, [b, h, q_first, q_end, start_n, kv_end], "classify")
        return any_kept, kb.and_(all_kept, kb.cmp("eq", kb.sub(kv_end, start_n), kb.constexpr(BN)), "kept_whole")

    run_lo, run_hi = first_whole_run(kb, lo, hi, BN, classify, "start_n")
    # the run of whole blocks: no mask, no branch (the loads pipeline)
    with kb.loop(run_lo, run_hi, kb.i32(1), init, "key blocks the mask keeps whole") as body:
        body.yield_(attend(body.carried, kb.mul(body.index, kb.constexpr(BN), "start_n"), False))
    # the others, before the run and after it, masked; a block the mask empties is skipped
    before = kb.sub(run_lo, lo, "blocks_before")
    count = kb.add(before, kb.sub(hi, run_hi), "blocks_masked")
    with kb.loop(zero, count, kb.i32(1), body.results, "key blocks the mask cuts or empties") as masked:
        index = kb.where(
            kb.cmp("slt", masked.index, before), kb.add(lo, masked.index), kb.add(run_hi, kb.sub(masked.index, before))
        )
        start_n = kb.mul(index, kb.constexpr(BN), "start_n")
        any_kept, whole = classify(start_n)
        with kb.branch(any_kept, masked.carried, "skip a block the mask empties") as inner:
            inner.yield_(attend(inner.carried, start_n, True, whole))
        masked.yield_(inner.results)
    return masked.results


def _and_optional(kb: KernelBuilder, a: SSAValue | None, b: SSAValue | None) -> SSAValue | None:
    if a is None:
        return b
    if b is None:
        return a
    return kb.and_(a, b)
