"""The combine kernel of split decoding: merges the partial accumulators and states that the split
forward (flash_kernels.py, `split=True`) left per key range, with the `merge` region attn-split
derived, then finalizes each row once, as the unsplit forward would.

One program per BLOCK_M rows of the flattened (batch, head, query) rows. Parameters: the split
forward's `part_acc_ptr`, `part_state{i}_ptr`, `part_rows`, `num_splits`; `out_ptr` with its strides,
`stat{i}_ptr`, `seq_q`, `num_heads`, captured tensors (finalize may read them: a sink's logit).
"""

from __future__ import annotations

from xdsl.dialects.builtin import FloatAttr, TensorType, f32, i32
from xdsl.ir import Attribute, SSAValue

from attnc.conversion.flash_kernels import BM, DIM_V, add_capture_params, capture_values, partial_params
from attnc.conversion.kernel_builder import KernelBuilder
from attnc.conversion.region_lowering import lower_region
from attnc.dialect import attn, kernel_params
from attnc.dialect.capture_reads import guarded_sizes
from attnc.dialect.kernel_params import padded_head_dim

COMBINE_ROWS = 16  # rows per program: decoding has few, and a row costs num_splits · Dv loads


def build_combine_kernel(flash: attn.FlashOp, name: str, block_m: int):
    """Merge the splits of each row, finalize, store out and the row statistics."""
    vt = flash.v.type
    assert isinstance(vt, TensorType)
    elem, head_dim_v = vt.element_type, vt.get_shape()[3]
    cap_types = [c.type for c in flash.captures]
    assert all(isinstance(t, TensorType) for t in cap_types)
    state_names = [s.data for s in flash.state.data]
    params: list[tuple[str, Attribute]] = [("out_ptr", KernelBuilder.ptr_type(elem))]
    params += [(kernel_params.stat_ptr(i), KernelBuilder.ptr_type(f32)) for i in range(len(flash.stats))]
    params += partial_params(len(state_names))
    sizes = guarded_sizes([flash.finalize])
    add_capture_params(params, cap_types, sizes)  # type: ignore[arg-type]
    params += [(kernel_params.stride("out", d), i32) for d in ("b", "h", "s", "d")]
    params += [("seq_q", i32), ("num_heads", i32)]
    kb = KernelBuilder(name, params, {BM: block_m, DIM_V: padded_head_dim(head_dim_v)})

    kb.comment("the rows this program combines: (batch, head, query) flattened")
    rows = kb.add(kb.mul(kb.program_id(0, "pid"), kb.constexpr(BM)), kb.arange(BM), "rows")
    row_ok = kb.cmp("slt", rows, kb.arg("part_rows"), "row_ok")
    # rows past the end index as the last row, so no captured tensor is read outside
    last = kb.min(rows, kb.sub(kb.arg("part_rows"), kb.i32(1)), "row")
    bh = kb.div(last, kb.arg("seq_q"), "bh")
    pos = kb.rem(last, kb.arg("seq_q"), "pos")
    b = kb.div(bh, kb.arg("num_heads"), "b")
    h = kb.rem(bh, kb.arg("num_heads"), "h")
    offs_dv = kb.arange(DIM_V, "offs_dv")
    acc_ok = kb.and_(kb.col(row_ok), kb.row(kb.cmp("slt", offs_dv, kb.i32(head_dim_v))), "acc_ok")
    captures = capture_values(kb, cap_types, sizes)  # type: ignore[arg-type]

    carried: dict[str, SSAValue] = {"acc": kb.full((BM, DIM_V), 0.0, f32, "acc")}
    for s, value in zip(state_names, flash.init.data):
        assert isinstance(value, FloatAttr)
        carried[s] = kb.full((BM,), value.value.data, f32, s)
    zero = kb.i32(0)
    carried["split_rows"] = kb.wide(rows)  # rows of split i: i · part_rows + rows, carried as i64
    with kb.loop(zero, kb.arg("num_splits"), kb.i32(1), carried, "merge the splits") as body:
        split_rows = body.carried["split_rows"]
        acc_ptrs = kb.addptr(
            kb.arg("part_acc_ptr"),
            kb.add(kb.mul(kb.col(split_rows), kb.wide(kb.i32(head_dim_v))), kb.wide(kb.row(offs_dv))),
        )
        part_acc = kb.load(acc_ptrs, acc_ok, 0.0, "part_acc")
        parts = [
            kb.load(kb.addptr(kb.arg(f"part_state{i}_ptr"), split_rows), row_ok, 0.0, f"part_{s}")
            for i, s in enumerate(state_names)
        ]
        scale_a, scale_b, *merged = lower_region(
            kb, flash.merge, [*[body.carried[s] for s in state_names], *parts], "merge"
        )
        acc = kb.add(kb.mul(body.carried["acc"], _per_row(kb, scale_a)), kb.mul(part_acc, _per_row(kb, scale_b)), "acc")
        following = kb.add(split_rows, kb.wide(kb.arg("part_rows")), "following")
        body.yield_({"acc": acc, **dict(zip(state_names, merged)), "split_rows": following})
    state = body.results

    kb.comment(f"normalizer finalize ({flash.normalizer.data})")
    normalized, *stats = lower_region(
        kb, flash.finalize, [state["acc"], b, h, *[state[s] for s in state_names], *captures], "finalize"
    )
    out = kb.cast(kb.to_dims(normalized, (BM, DIM_V)), elem, "out")
    out_off = kb.add(
        kb.add(
            kb.mul(kb.wide(kb.col(b)), kb.wide(kb.arg(kernel_params.stride("out", "b")))),
            kb.mul(kb.wide(kb.col(h)), kb.wide(kb.arg(kernel_params.stride("out", "h")))),
        ),
        kb.mul(kb.wide(kb.col(pos)), kb.wide(kb.arg(kernel_params.stride("out", "s")))),
    )
    out_ptrs = kb.addptr(
        kb.arg("out_ptr"),
        kb.add(out_off, kb.wide(kb.mul(kb.row(offs_dv), kb.arg(kernel_params.stride("out", "d"))))),
        "out_ptrs",
    )
    kb.store(out_ptrs, out, acc_ok)
    for i, stat in enumerate(stats):
        kb.store(kb.addptr(kb.arg(kernel_params.stat_ptr(i)), rows), kb.to_dims(stat, (BM,)), row_ok)
    return kb.finish()


def _per_row(kb: KernelBuilder, x: SSAValue) -> SSAValue:
    """A per-row factor [BLOCK_M] as a column, to scale a [BLOCK_M, HEAD_DIM_V] tile; a scalar as it is."""
    return kb.col(x) if kb.dims_of(x) == (BM,) else x


__all__ = ["COMBINE_ROWS", "build_combine_kernel"]
