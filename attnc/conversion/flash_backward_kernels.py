"""The backward tile kernels of an `attn.flash_grad` op, FlashAttention-2 style.

Both recompute the weights. Softmax: P = exp(s' − lse) from the saved logsumexp,
where s' is the score after score_mod, and dS' = P ⊙ (dP − δ) with dP = dO·Vᵀ and
δ = rowsum(dO ⊙ O). Elementwise normalizers: P = c·f(s') from the weights region,
c per row 1 or 1/stat (the `lse` parameter then carries that statistic), and
dS' = c·dP. The derived `score_mod_grad` region turns dS' into dS and into the
adjoints of captured tensors.

- `<fn>_bwd_dkdv`: one program per key block and (batch, kv head); walks the query
  blocks that see it (the transposed block table), for every query head of its GQA
  group, accumulating dK and dV in registers: deterministic, no atomics.
- `<fn>_bwd_dq`: one program per query block and (batch, head), walking key blocks
  as the forward does; accumulates dQ, and adds captured-tensor adjoints with
  `tile.atomic_add` (their order is not fixed). With a `stat_grad` region (captures
  the normalizer's finalize reads, a sink's logit) it ends with a per-row epilogue:
  the region evaluated on each row's lse with grad = −δ, its adjoints added likewise.

Empty tiles are never visited and full tiles skip the mask, as in the forward.
For softmax the dQ kernel, launched first, computes δ = rowsum(dO ⊙ O) − dlse for its rows (dlse:
the gradient reaching the logsumexp, zeros when there is none) and stores it for the
dK/dV kernel. dQ, dK and dV are written once each, in the inputs' dtype; captured
tensors' gradients accumulate in f32, a site attn-guard-captures listed only where its
indices are inside the tensor. Kernel parameters follow the forward's naming, plus `out`,
`dout`, `lse`, `dlse`, `delta`, `dq`/`dk`/`dv` and `capgrad{i}_ptr`.
"""

from __future__ import annotations

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import ArrayAttr, DenseArrayBase, IntegerAttr, IntegerType, TensorType, f32, i32
from xdsl.ir import Attribute, SSAValue

from attnc.conversion.flash_kernels import (
    BM,
    BN,
    DIM,
    DIM_V,
    add_capture_params,
    capture_values,
    table_params,
)
from attnc.conversion.kernel_builder import Capture, KernelBuilder, Value
from attnc.conversion.region_lowering import LOG2E, lower_region
from attnc.dialect import kernel_params
from attnc.dialect.capture_reads import guarded_sizes
from attnc.dialect.kernel_params import padded_head_dim


def grad_types(grad) -> tuple[TensorType, TensorType, Attribute, int, int, list[TensorType]]:
    """q's and v's types, the element type, the head dims of q/k and v, and the captures' types."""
    qt, vt = grad.q.type, grad.v.type
    assert isinstance(qt, TensorType) and isinstance(vt, TensorType)
    caps = [c.type for c in grad.captures]
    assert all(isinstance(c, TensorType) for c in caps)
    return qt, vt, qt.element_type, qt.get_shape()[3], vt.get_shape()[3], caps  # type: ignore[return-value]


def backward_params(grad, tail: list[tuple[str, Attribute]]) -> list[tuple[str, Attribute]]:
    """Both backward kernels' parameters, `tail` (the block table or the layout's metadata) last."""
    _, _, elem, _, _, caps = grad_types(grad)
    params: list[tuple[str, Attribute]] = []
    for t in ("q", "k", "v", "out", "dout"):
        params.append((kernel_params.ptr(t), KernelBuilder.ptr_type(elem)))
    for t in ("lse", "dlse", "delta"):
        params.append((kernel_params.ptr(t), KernelBuilder.ptr_type(f32)))
    for t in ("dq", "dk", "dv"):
        params.append((kernel_params.ptr(t), KernelBuilder.ptr_type(elem)))
    add_capture_params(params, caps, guarded_sizes_of(grad))
    for i, cap in enumerate(caps):
        params.append((kernel_params.capture_grad_ptr(i), KernelBuilder.ptr_type(f32)))
        params.extend((kernel_params.capture_grad_stride(i, j), i32) for j in range(cap.get_num_dims()))
    for t in ("q", "k", "v", "out", "dout", "dq", "dk", "dv"):
        params += [(kernel_params.stride(t, d), i32) for d in ("b", "h", "s", "d")]
    params += [("seq_q", i32), ("seq_kv", i32), ("num_heads", i32), ("group", i32), ("scale", f32)]
    return params + tail


def backward_builder(grad, kernel: str, name: str, tail: list[tuple[str, Attribute]]) -> KernelBuilder:
    """The builder of the "dq" or "dkdv" kernel, with attn-tile's blocks and the padded head dims."""
    launch = grad.launch(kernel)
    assert launch is not None
    _, _, _, head_dim, head_dim_v, _ = grad_types(grad)
    constexprs = {
        BM: launch[0],
        BN: launch[1],
        DIM: padded_head_dim(head_dim),
        DIM_V: padded_head_dim(head_dim_v),
    }
    return KernelBuilder(name, backward_params(grad, tail), constexprs, "approx_tanh" in grad.attributes)


def guarded_sizes_of(grad) -> list[tuple[int, int]]:
    """(capture, dimension) of every guarded read of the regions and every guarded gradient scatter."""
    reads = guarded_sizes([grad.score_mod, grad.mask_mod, grad.score_mod_grad, grad.stat_grad])
    scatters = {
        (site.value.data, int(d))
        for sites, guards in ((grad.capture_sites, grad.capture_site_guards), (grad.stat_sites, grad.stat_site_guards))
        if sites is not None and guards is not None
        for site, dims in zip(sites.data, guards.data)
        for d in dims.get_values()
    }
    return sorted(set(reads) | scatters)


class BackwardTiles:
    """Shared pieces of both backward kernels: pointers, 2-d loads, the recomputed probabilities."""

    def __init__(self, kb: KernelBuilder, grad, b: SSAValue, head_dim: int, head_dim_v: int):
        self.kb, self.grad, self.b = kb, grad, b
        self.softmax = grad.probabilities.data == "softmax"
        self.seq_q, self.seq_kv = kb.arg("seq_q"), kb.arg("seq_kv")
        self.offs_d = kb.arange(DIM, "offs_d")
        self.offs_dv = kb.arange(DIM_V, "offs_dv")
        self.d_ok = (
            kb.row(kb.cmp("slt", self.offs_d, kb.i32(head_dim)), "d_ok")
            if head_dim != padded_head_dim(head_dim)
            else None
        )
        self.dv_ok = (
            kb.row(kb.cmp("slt", self.offs_dv, kb.i32(head_dim_v)), "dv_ok")
            if head_dim_v != padded_head_dim(head_dim_v)
            else None
        )

    def base(self, t: str, head: SSAValue) -> SSAValue:
        kb = self.kb
        off = kb.add(
            kb.mul(kb.wide(self.b), kb.wide(kb.arg(kernel_params.stride(t, "b")))),
            kb.mul(kb.wide(head), kb.wide(kb.arg(kernel_params.stride(t, "h")))),
        )
        return kb.addptr(kb.arg(kernel_params.ptr(t)), off, f"{t}_base")

    def ptrs(self, base: SSAValue, t: str, rows: SSAValue, cols: SSAValue, name: str) -> SSAValue:
        kb = self.kb
        offsets = kb.add(
            kb.mul(kb.col(rows), kb.arg(kernel_params.stride(t, "s"))),
            kb.mul(kb.row(cols), kb.arg(kernel_params.stride(t, "d"))),
        )
        return kb.addptr(base, offsets, name)

    def mask(self, rows_ok: SSAValue | None, cols_ok: SSAValue | None) -> SSAValue | None:
        if rows_ok is None:
            return cols_ok
        if cols_ok is None:
            return rows_ok
        return self.kb.and_(rows_ok, cols_ok)

    def load(self, base, t, rows, rows_ok, value_dims: bool, name) -> SSAValue:
        cols, cols_ok = (self.offs_dv, self.dv_ok) if value_dims else (self.offs_d, self.d_ok)
        mask = self.mask(rows_ok, cols_ok)
        return self.kb.load(
            self.ptrs(base, t, rows, cols, f"{name}_ptrs"), mask, 0.0 if mask is not None else None, name
        )

    def store(self, base, t, rows, rows_ok, value_dims: bool, value) -> None:
        cols, cols_ok = (self.offs_dv, self.dv_ok) if value_dims else (self.offs_d, self.d_ok)
        self.kb.store(self.ptrs(base, t, rows, cols, f"{t}_ptrs"), value, self.mask(rows_ok, cols_ok))

    def delta(self, dout: SSAValue, out: SSAValue, rows: SSAValue, rows_in: SSAValue) -> SSAValue | None:
        """Softmax: δ = rowsum(dO ⊙ O) − dlse of rows `rows`, stored for the dK/dV kernel; None otherwise."""
        if not self.softmax:
            return None
        kb = self.kb
        kb.comment("delta = rowsum(dO * O) - dlse, stored for the dK/dV kernel")
        dlse = kb.load(kb.addptr(kb.arg("dlse_ptr"), rows), rows_in, 0.0, "dlse")
        dot_rows = kb.row_reduce("sum", kb.mul(kb.cast(dout, f32), kb.cast(out, f32)), "dout_dot_out")
        delta = kb.sub(dot_rows, dlse, "delta")
        kb.store(kb.addptr(kb.arg("delta_ptr"), rows), delta, rows_in)
        return delta

    def stat_grads(
        self, h: SSAValue, stat: SSAValue | None, delta: SSAValue | None, rows_in: SSAValue, captures: list
    ) -> None:
        """With a `stat_grad` region: the captures' adjoints through each row's statistic, added once per row."""
        kb, grad = self.kb, self.grad
        if not grad.stat_grad.blocks:
            return
        assert stat is not None and delta is not None
        kb.comment("captured tensors the statistic reads: dL/dlse = dlse - rowsum(dO * O) = -delta per row")
        dlse_total = kb.sub(kb.f32(0.0), delta, "dlse_total")
        sites = lower_region(kb, grad.stat_grad, [self.b, h, stat, *captures, dlse_total], "stat_grad")
        self.add_site_grads(grad.stat_sites, grad.stat_site_guards, sites, rows_in, stat, captures, drop_nan=True)

    def load_stat(self, offsets: SSAValue, rows_in: SSAValue | None) -> SSAValue | None:
        """The saved statistic of each query row (the logsumexp for softmax), or None without one; `rows_in`
        None: every row exists."""
        if self.grad.stat is None:
            return None
        kb = self.kb
        return kb.load(kb.addptr(kb.arg("lse_ptr"), offsets), rows_in, float("inf"), "lse" if self.softmax else "stat")

    def row_stat(self, stat: SSAValue | None) -> SSAValue | None:
        """What each query row needs of the saved statistic: lse·log2 e (softmax), 1/stat (elementwise
        weights scaled by the inverse of a statistic), or nothing."""
        kb = self.kb
        if stat is None:
            return None
        if self.softmax:
            return kb.mul(stat, kb.f32(LOG2E), "lse_log2")
        return kb.binary(arith.DivfOp, kb.f32(1.0), stat, "row_scale")

    def probabilities(self, qk, h, q_idx, kv_idx, row, keep, captures):
        """The weights, zero where masked, and the scores s = qk·scale.

        softmax: P = exp(t − lse) = 2^(t·log2 e − lse·log2 e) with t = score_mod(s);
        elementwise: P = c·f(t), the weights region evaluated, c the row's scale (or 1)."""
        kb = self.kb
        score = kb.mul(qk, kb.arg("scale"), "score")
        if _has_body(self.grad.score_mod):
            kb.comment("score_mod, recomputed" if self.softmax else "score_mod and normalizer, recomputed")
        (modified,) = lower_region(kb, self.grad.score_mod, [score, self.b, h, q_idx, kv_idx, *captures], "score_mod")
        modified = kb.to_dims(modified, kb.dims_of(score))  # a mod that ignores an index yields fewer dims
        if self.softmax:
            kb.comment("probabilities from the saved logsumexp, in base 2: one multiply-add per score")
            p = kb.unary(math.Exp2Op, kb.sub(kb.mul(modified, kb.f32(LOG2E)), row), "p")
        else:
            p = modified if row is None else kb.mul(modified, row, "p")
        if keep is not None:
            p = kb.where(keep, p, kb.f32(0.0), "p")
        return score, p

    def weights_grad(self, p: SSAValue, dp: SSAValue, delta: SSAValue | None, row: SSAValue | None) -> SSAValue:
        """The gradient reaching the weights region: P ⊙ (dP − δ) for softmax, c·dP for elementwise."""
        kb = self.kb
        if self.softmax:
            assert delta is not None
            return kb.mul(p, kb.sub(dp, delta), "ds_mod")
        return dp if row is None else kb.mul(dp, row, "ds_mod")

    def score_grads(self, score, h, q_idx, kv_idx, ds_mod, keep, rows_ok, captures, add_capture_grads: bool):
        """dS from dS' through the derived region; optionally adds the captured tensors' adjoints."""
        kb = self.kb
        if _has_body(self.grad.score_mod_grad):
            kb.comment("score_mod, differentiated")
        ds, *sites = lower_region(
            kb, self.grad.score_mod_grad, [score, self.b, h, q_idx, kv_idx, *captures, ds_mod], "score_mod_grad"
        )
        ds = kb.to_dims(ds, kb.dims_of(score))
        if keep is not None:
            ds = kb.where(keep, ds, kb.f32(0.0), "ds")
        if add_capture_grads:
            live = rows_ok if keep is None else kb.and_(keep, rows_ok)
            grad = self.grad
            self.add_site_grads(grad.capture_sites, grad.capture_site_guards, sites, live, ds, captures)
        return ds

    def add_site_grads(
        self,
        capture_sites: ArrayAttr[IntegerAttr],
        site_guards: ArrayAttr[DenseArrayBase[IntegerType]] | None,
        values: list[SSAValue],
        live: SSAValue,
        like: SSAValue,
        captures: list[Value],
        drop_nan: bool = False,
    ) -> None:
        """Adds each site's adjoints into its capture's gradient where `live`: `values` holds, per site,
        the adjoint and the indices read (a derived region's yield); `like` has the adjoints' shape.
        A site's dimensions in `site_guards` add only where their index is in range (sizes from
        `captures`). `drop_nan`: a NaN adjoint adds 0 (a −∞ sink logit gives −∞ − (−∞) in its weight)."""
        kb = self.kb
        caps = list(self.grad.captures)
        cursor = 0
        for k, site in enumerate(capture_sites.data):
            index = site.value.data
            rank = caps[index].type.get_num_dims()
            g, indices = values[cursor], values[cursor + 1 : cursor + 1 + rank]
            cursor += 1 + rank
            handle = captures[index]
            assert isinstance(handle, Capture)
            guard = [int(d) for d in site_guards.data[k].get_values()] if site_guards is not None else []
            in_range = kb.in_range(handle, indices, guard, caps[index].name_hint or f"capture{index}")
            site_live = live if in_range is None else kb.and_(live, in_range)
            offset = None
            for j, idx in enumerate(indices):
                term = kb.mul(kb.wide(idx), kb.wide(kb.arg(kernel_params.capture_grad_stride(index, j))))
                offset = term if offset is None else kb.add(offset, term)
            contribution = kb.where(site_live, g, kb.f32(0.0))
            if drop_nan:
                contribution = kb.where(kb.cmpf("oeq", contribution, contribution), contribution, kb.f32(0.0))
            if offset is None or not kb.dims_of(offset):
                # One element for the whole block (slopes[h], a 0-d scale): sum first, one atomic.
                ptr = (
                    kb.arg(kernel_params.capture_grad_ptr(index))
                    if offset is None
                    else kb.addptr(kb.arg(kernel_params.capture_grad_ptr(index)), offset)
                )
                kb.atomic_add(ptr, kb.sum_all(contribution, f"dcap{index}"), in_range)
                continue
            dims = kb.dims_of(like)
            ptrs = kb.addptr(
                kb.arg(kernel_params.capture_grad_ptr(index)), kb.to_dims(offset, dims), f"capgrad{index}_ptrs"
            )
            kb.atomic_add(ptrs, contribution, site_live)


def _has_body(region) -> bool:
    """Whether a region does more than yield (an identity score_mod has nothing to comment on)."""
    return len(list(region.blocks[0].ops)) > 1


def build_dq_kernel(grad, name: str):
    """dQ per query block; the captured tensors' adjoints too."""
    _, _, elem, head_dim, head_dim_v, caps = grad_types(grad)
    fp32 = elem == f32
    kb = backward_builder(grad, "dq", name, table_params("num_kv_blocks"))
    kb.comment("which query block, batch and head this program owns")
    pid_m = kb.program_id(0, "pid_m")
    pid_bh = kb.program_id(1, "pid_bh")
    b = kb.div(pid_bh, kb.arg("num_heads"), "b")
    h = kb.rem(pid_bh, kb.arg("num_heads"), "h")
    kv_h = kb.div(h, kb.arg("group"), "kv_h")
    t = BackwardTiles(kb, grad, b, head_dim, head_dim_v)
    offs_m = kb.add(kb.mul(pid_m, kb.constexpr(BM)), kb.arange(BM), "offs_m")
    offs_n = kb.arange(BN, "offs_n")
    row_ok = kb.col(kb.cmp("slt", offs_m, t.seq_q), "row_ok")
    q = t.load(t.base("q", h), "q", offs_m, row_ok, False, "q")
    dout = t.load(t.base("dout", h), "dout", offs_m, row_ok, True, "dout")
    out = t.load(t.base("out", h), "out", offs_m, row_ok, True, "out")
    rows = kb.add(kb.mul(kb.wide(pid_bh), kb.wide(t.seq_q)), kb.wide(offs_m), "stat_rows")
    rows_in = kb.cmp("slt", offs_m, t.seq_q)
    stat = t.load_stat(rows, rows_in)
    row = t.row_stat(stat)
    delta = t.delta(dout, out, rows, rows_in)
    q_idx = kb.col(kb.min(offs_m, kb.sub(t.seq_q, kb.i32(1))), "q_idx")
    captures = capture_values(kb, caps, guarded_sizes_of(grad))
    k_base, v_base = t.base("k", kv_h), t.base("v", kv_h)
    table_row = kb.add(
        kb.add(kb.mul(b, kb.arg("table_stride_b")), kb.mul(h, kb.arg("table_stride_h"))), pid_m, "table_row"
    )
    idx_offset = kb.mul(kb.wide(table_row), kb.wide(kb.arg("num_kv_blocks")), "idx_offset")
    dq = kb.full((BM, DIM), 0.0, f32, "dq")
    for which, masked in (("full", False), ("part", True)):
        count = kb.load(kb.addptr(kb.arg(f"{which}_num_ptr"), table_row), None, None, f"num_{which}")
        idx_base = kb.addptr(kb.arg(f"{which}_idx_ptr"), idx_offset, f"{which}_idx")
        with kb.loop(kb.i32(0), count, kb.i32(1), {"dq": dq}, f"{which} key blocks") as body:
            kv_block = kb.load(kb.addptr(idx_base, body.index), None, None, "kv_block")
            cols = kb.add(kb.mul(kv_block, kb.constexpr(BN)), offs_n, "cols")
            kv_ok = kb.col(kb.cmp("slt", cols, t.seq_kv), "kv_ok") if masked else None
            k = t.load(k_base, "k", cols, kv_ok, False, "k")
            v = t.load(v_base, "v", cols, kv_ok, True, "v")
            qk = kb.dot(q, kb.trans(k), None, "ieee" if fp32 else None, "qk")
            keep = None
            if masked:
                kv_idx = kb.row(kb.min(cols, kb.sub(t.seq_kv, kb.i32(1))), "kv_idx")
                (keep,) = lower_region(kb, grad.mask_mod, [b, h, q_idx, kv_idx, *captures], "mask_mod")
                keep = kb.and_(keep, kb.row(kb.cmp("slt", cols, t.seq_kv)), "keep")
            else:
                kv_idx = kb.row(cols, "kv_idx")
            score, p = t.probabilities(qk, h, q_idx, kv_idx, row, keep, captures)
            dp = kb.dot(dout, kb.trans(v), None, "ieee" if fp32 else None, "dp")
            ds_mod = t.weights_grad(p, dp, delta, row)
            ds = t.score_grads(score, h, q_idx, kv_idx, ds_mod, keep, row_ok, captures, add_capture_grads=True)
            new_dq = kb.dot(kb.cast(ds, elem), k, body.carried["dq"], "ieee" if fp32 else None, "dq")
            body.yield_({"dq": new_dq})
        dq = body.results["dq"]
    t.stat_grads(h, stat, delta, rows_in, captures)
    t.store(t.base("dq", h), "dq", offs_m, row_ok, False, kb.cast(kb.mul(dq, kb.arg("scale")), elem))
    return kb.finish()


def build_dkdv_kernel(grad, name: str):
    """dK and dV per key block, summed over the query heads of its group."""
    _, _, elem, head_dim, head_dim_v, caps = grad_types(grad)
    fp32 = elem == f32
    kb = backward_builder(grad, "dkdv", name, table_params("num_q_blocks"))
    kb.comment("which key block, batch and kv head this program owns")
    pid_n = kb.program_id(0, "pid_n")
    pid_bh = kb.program_id(1, "pid_bh")
    kv_heads = kb.div(kb.arg("num_heads"), kb.arg("group"), "kv_heads")
    b = kb.div(pid_bh, kv_heads, "b")
    kv_h = kb.rem(pid_bh, kv_heads, "kv_h")
    t = BackwardTiles(kb, grad, b, head_dim, head_dim_v)
    offs_n = kb.add(kb.mul(pid_n, kb.constexpr(BN)), kb.arange(BN), "offs_n")
    offs_m = kb.arange(BM, "offs_m")
    col_ok = kb.col(kb.cmp("slt", offs_n, t.seq_kv), "col_ok")
    k = t.load(t.base("k", kv_h), "k", offs_n, col_ok, False, "k")
    v = t.load(t.base("v", kv_h), "v", offs_n, col_ok, True, "v")
    # Scores are computed transposed, [BLOCK_N, BLOCK_M] (keys × queries), so that Pᵀ and dSᵀ
    # feed dV and dK straight from registers, with no transpose through shared memory.
    kv_idx = kb.col(kb.min(offs_n, kb.sub(t.seq_kv, kb.i32(1))), "kv_idx")
    captures = capture_values(kb, caps, guarded_sizes_of(grad))
    carried = {"dk": kb.full((BN, DIM), 0.0, f32, "dk"), "dv": kb.full((BN, DIM_V), 0.0, f32, "dv")}
    with kb.loop(kb.i32(0), kb.arg("group"), kb.i32(1), carried, "query heads of this kv head") as heads:
        h = kb.add(kb.mul(kv_h, kb.arg("group")), heads.index, "h")
        q_base, dout_base = t.base("q", h), t.base("dout", h)
        table_row = kb.add(
            kb.add(kb.mul(b, kb.arg("table_stride_b")), kb.mul(h, kb.arg("table_stride_h"))), pid_n, "table_row"
        )
        idx_offset = kb.mul(kb.wide(table_row), kb.wide(kb.arg("num_q_blocks")), "idx_offset")
        acc = dict(heads.carried)
        for which, masked in (("full", False), ("part", True)):
            count = kb.load(kb.addptr(kb.arg(f"{which}_num_ptr"), table_row), None, None, f"num_{which}")
            idx_base = kb.addptr(kb.arg(f"{which}_idx_ptr"), idx_offset, f"{which}_idx")
            with kb.loop(kb.i32(0), count, kb.i32(1), acc, f"{which} query blocks") as body:
                q_block = kb.load(kb.addptr(idx_base, body.index), None, None, "q_block")
                rows = kb.add(kb.mul(q_block, kb.constexpr(BM)), offs_m, "rows")
                rows_in = kb.cmp("slt", rows, t.seq_q)
                q = t.load(q_base, "q", rows, kb.col(rows_in), False, "q")
                dout = t.load(dout_base, "dout", rows, kb.col(rows_in), True, "dout")
                stat_rows = kb.add(
                    kb.mul(kb.wide(kb.add(kb.mul(b, kb.arg("num_heads")), h)), kb.wide(t.seq_q)), kb.wide(rows)
                )
                row = t.row_stat(t.load_stat(stat_rows, rows_in))
                delta = kb.load(kb.addptr(kb.arg("delta_ptr"), stat_rows), rows_in, 0.0, "delta") if t.softmax else None
                q_idx = kb.row(kb.min(rows, kb.sub(t.seq_q, kb.i32(1))), "q_idx")
                qk = kb.dot(k, kb.trans(q), None, "ieee" if fp32 else None, "qk_t")
                keep = None
                if masked:
                    (keep,) = lower_region(kb, grad.mask_mod, [b, h, q_idx, kv_idx, *captures], "mask_mod")
                    keep = kb.and_(kb.and_(keep, col_ok), kb.row(rows_in), "keep")
                score, p = t.probabilities(qk, h, q_idx, kv_idx, row, keep, captures)
                dv = kb.dot(kb.cast(p, elem), dout, body.carried["dv"], "ieee" if fp32 else None, "dv")
                dp = kb.dot(v, kb.trans(dout), None, "ieee" if fp32 else None, "dp_t")
                ds_mod = t.weights_grad(p, dp, delta, row)
                ds = t.score_grads(score, h, q_idx, kv_idx, ds_mod, keep, None, captures, add_capture_grads=False)
                dk = kb.dot(kb.cast(ds, elem), q, body.carried["dk"], "ieee" if fp32 else None, "dk")
                body.yield_({"dk": dk, "dv": dv})
            acc = body.results
        heads.yield_(acc)
    dk_base, dv_base = t.base("dk", kv_h), t.base("dv", kv_h)
    t.store(dk_base, "dk", offs_n, col_ok, False, kb.cast(kb.mul(heads.results["dk"], kb.arg("scale")), elem))
    t.store(dv_base, "dv", offs_n, col_ok, True, kb.cast(heads.results["dv"], elem))
    return kb.finish()


__all__ = [
    "BackwardTiles",
    "backward_builder",
    "backward_params",
    "build_dkdv_kernel",
    "build_dq_kernel",
    "grad_types",
]
