"""Where one program's sequence lives in the storage of the forward and backward kernels, for each
layout of `attn.flash` (dialect/attn_sequences.py): its rows of q and out, its keys, their lengths
and the shift that makes query i position len_k − len_q + i.

Every length read from memory is clamped to the storage, so a wrong `cu_seqlens` or
`cache_seqlens` on the device never makes the kernel read or write outside a tensor (the host
checks them where it can see them without a sync). A page id outside `[0, num_pages)` reads zeros,
or the nearest page when a key block lies in one page: never outside the cache.

Parameters by layout, beside the dense kernel's:
  packed: `cu_seqlens_q_ptr`, `cu_seqlens_k_ptr`, `q_rows` (total_q), `kv_rows` (total_k), `num_seqs` (N);
          `seq_q` and `seq_kv` are the longest query and key lengths. Programs are slots (`packed_slot`).
  cache:  `cache_seqlens_ptr`; `seq_kv` is the cache's capacity S_max.
  paged:  `cache_seqlens_ptr`, `block_table_ptr`, `stride_block_table_b`, `stride_block_table_p`,
          `num_pages`; `seq_kv` is pages_per_seq × PAGE_SIZE (a constexpr).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import i32
from xdsl.ir import Attribute, SSAValue

from attnc.conversion.kernel_builder import KernelBuilder
from attnc.dialect import kernel_params

PAGE = kernel_params.PAGE_SIZE


def layout_params(layout: str) -> list[tuple[str, Attribute]]:
    """The kernel parameters `layout` adds."""
    ptr = KernelBuilder.ptr_type(i32)
    if layout == "packed":
        return [
            ("cu_seqlens_q_ptr", ptr),
            ("cu_seqlens_k_ptr", ptr),
            ("q_rows", i32),
            ("kv_rows", i32),
            ("num_seqs", i32),
        ]
    if layout == "cache":
        return [("cache_seqlens_ptr", ptr)]
    if layout == "paged":
        return [
            ("cache_seqlens_ptr", ptr),
            ("block_table_ptr", ptr),
            (kernel_params.stride("block_table", "b"), i32),
            (kernel_params.stride("block_table", "p"), i32),
            ("num_pages", i32),
        ]
    return []


@dataclass
class SequenceRows:
    """One program's sequence: bases of q and out at its first row, its lengths, the query shift, and
    the row of its first statistic."""

    layout: str
    b: SSAValue
    kv_h: SSAValue
    q_base: SSAValue
    out_base: SSAValue
    q_len: SSAValue
    k_len: SSAValue
    q_shift: SSAValue
    stat_row: SSAValue  # i64
    k_base: SSAValue | None  # None when paged: each key's page is looked up
    v_base: SSAValue | None
    q_start: SSAValue | None = None  # packed: the sequence's first row of q and of k (i32); else None
    k_start: SSAValue | None = None

    def q_rows_base(self, kb: KernelBuilder, t: str, head: SSAValue) -> SSAValue:
        """Tensor `t`, stored like q (q, out, dout, dq), at head `head` and the sequence's first query."""
        if self.layout == "packed":
            return storage_base(kb, t, None, head, self.q_start)
        return storage_base(kb, t, self.b, head, None)

    def kv_rows_base(self, kb: KernelBuilder, t: str) -> SSAValue:
        """Tensor `t`, stored like k (k, v, dk, dv), at the kv head and the sequence's first key (not paged)."""
        assert self.layout != "paged", "a paged cache has no rows of its own"
        if self.layout == "packed":
            return storage_base(kb, t, None, self.kv_h, self.k_start)
        return storage_base(kb, t, self.b, self.kv_h, None)

    def stat_row_of(self, kb: KernelBuilder, h: SSAValue) -> SSAValue:
        """The row (i64) of head `h`'s statistic of the sequence's first query: statistics are stored
        like q without its head dim, contiguous."""
        if self.layout == "packed":
            assert self.q_start is not None
            return kb.add(kb.mul(kb.wide(h), kb.wide(kb.arg("q_rows"))), kb.wide(self.q_start), "stat_row")
        pid_bh = kb.add(kb.mul(self.b, kb.arg("num_heads")), h)
        return kb.mul(kb.wide(pid_bh), kb.wide(kb.arg("seq_q")), "stat_row")

    def q_positions(self, kb: KernelBuilder, offs: SSAValue) -> SSAValue:
        """Positions of query rows `offs` within the sequence, bottom-right aligned (rows past its end read
        as its last; an empty sequence as 0)."""
        return kb.add(self.q_shift, kb.min(offs, kb.max(kb.sub(self.q_len, kb.i32(1)), kb.i32(0))))

    def kv_positions(self, kb: KernelBuilder, cols: SSAValue) -> SSAValue:
        """Positions of keys `cols` within the sequence (keys past its end read as its last; none as 0)."""
        return kb.min(cols, kb.max(kb.sub(self.k_len, kb.i32(1)), kb.i32(0)))

    def pages(self, kb: KernelBuilder, start_n: SSAValue, cols: SSAValue, in_range: SSAValue | None, whole: bool):
        """The pages of the key block at `start_n` (paged layout; K and V share them): one page id, clamped
        into [0, num_pages), when `whole` (PAGE_SIZE a multiple of BLOCK_N: the block lies in one page);
        else one per key (masked by `in_range`) and whether each lies in [0, num_pages)."""
        page_size = kb.constexpr(PAGE)
        table_b = kb.mul(kb.wide(self.b), kb.wide(kb.arg(kernel_params.stride("block_table", "b"))))
        index = kb.div(start_n if whole else cols, page_size)
        slot = kb.add(table_b, kb.mul(kb.wide(index), kb.wide(kb.arg(kernel_params.stride("block_table", "p")))))
        if whole:
            # start_n < k_len <= pages_per_seq · PAGE_SIZE: the block's slot is in the table. A page id
            # outside [0, num_pages) is clamped into it (the host checks ids where it can read them).
            page = kb.load(kb.addptr(kb.arg("block_table_ptr"), slot), None, None, "page_id")
            last = kb.sub(kb.arg("num_pages"), kb.i32(1))
            return kb.min(kb.max(page, kb.i32(0)), last, "page"), None
        page = kb.load(kb.addptr(kb.arg("block_table_ptr"), slot), in_range, 0, "page")
        ok = kb.and_(kb.cmp("sge", page, kb.i32(0)), kb.cmp("slt", page, kb.arg("num_pages")), "page_ok")
        return page, ok

    def kv_ptrs(
        self,
        kb: KernelBuilder,
        t: str,
        cols: SSAValue,
        offs_d: SSAValue,
        in_range: SSAValue | None,
        pages: tuple[SSAValue, SSAValue | None] | None = None,
    ):
        """Pointers to keys (t = "k") or values ("v") at logical positions `cols` ([BLOCK_N]) and head-dim
        offsets `offs_d`, and the mask of those that exist (None: all do); a paged cache's `pages` come
        from `pages()`."""
        within = kb.mul(kb.row(offs_d), kb.arg(kernel_params.stride(t, "d")))
        if self.layout != "paged":
            base = self.k_base if t == "k" else self.v_base
            assert base is not None
            rows = kb.mul(kb.col(cols), kb.arg(kernel_params.stride(t, "s")))
            return kb.addptr(base, kb.add(rows, within), f"{t}_ptrs"), in_range
        assert pages is not None
        page, page_ok = pages
        rows = kb.add(
            kb.add(
                kb.mul(kb.wide(page), kb.wide(kb.arg(kernel_params.stride(t, "b")))),
                kb.mul(kb.wide(self.kv_h), kb.wide(kb.arg(kernel_params.stride(t, "h")))),
            ),
            kb.mul(kb.wide(kb.rem(cols, kb.constexpr(PAGE))), kb.wide(kb.arg(kernel_params.stride(t, "s")))),
        )
        ptrs = kb.addptr(kb.arg(kernel_params.ptr(t)), kb.add(kb.col(rows), within), f"{t}_ptrs")
        ok = page_ok if in_range is None else in_range if page_ok is None else kb.and_(page_ok, in_range)
        return ptrs, None if ok is None else kb.col(ok)


def packed_slot(kb: KernelBuilder, slot: SSAValue, block: str, which: str, reverse: bool) -> tuple[SSAValue, SSAValue]:
    """The sequence and the block within it of program `slot` of a packed grid over the query (`which` =
    "q") or key ("k") rows, in blocks of the constexpr `block`.

    Sequence b owns slots [S_b, S_b+1) with S_b = cu[b] // BLOCK + b: at least one per block of its rows,
    so total // BLOCK + N slots (attn_sequences.packed_slots) cover every sequence and a short sequence costs no
    programs of the longest's length. b is the number of S_j ≤ slot, less one, counted a block of
    sequences at a time. A slot its sequence has no block for gets a block past every sequence's rows (the
    program does nothing), as does a slot a wrong `cu` (read clamped to the rows) points past them. `reverse` hands out the last slots first: a causal sequence's longest rows."""
    size = kb.constexpr(block)
    n = kb.arg("num_seqs")
    cu = kb.arg(f"cu_seqlens_{which}_ptr")
    rows = kb.arg("q_rows" if which == "q" else "kv_rows")
    if reverse:
        slots = kb.add(kb.div(rows, size), n, "slots")
        slot = kb.sub(kb.sub(slots, kb.i32(1)), slot, "slot")
    offs = kb.arange(block)
    chunks = kb.cdiv(kb.add(n, kb.i32(1)), size, "chunks")
    with kb.loop(
        kb.i32(0), chunks, kb.i32(1), {"before": kb.i32(0)}, "sequences starting at or before the slot"
    ) as body:
        index = kb.add(kb.mul(body.index, size), offs, "seq_index")
        exists = kb.cmp("sle", index, n)
        start = _clamp(kb, kb.load(kb.addptr(cu, index), exists, 0), kb.i32(0), rows, "seq_start")
        first = kb.add(kb.div(start, size), index, "first_slot")
        counted = kb.cast(kb.and_(exists, kb.cmp("sle", first, slot)), i32)
        body.yield_({"before": kb.add(body.carried["before"], kb.sum_all(counted), "before")})
    b = _clamp(kb, kb.sub(body.results["before"], kb.i32(1)), kb.i32(0), kb.sub(n, kb.i32(1)), "b")
    start = _clamp(kb, kb.load(kb.addptr(cu, b), None, None), kb.i32(0), rows, "seq_first_row")
    index = kb.sub(slot, kb.add(kb.div(start, size), b, "first_slot"), "block_in_seq")
    past = kb.cdiv(kb.arg("seq_q" if which == "q" else "seq_kv"), size, "block_past")
    # a wrong cu_seqlens on the device may put the index anywhere: only [0, past) reaches the sequence's rows
    inside = kb.and_(kb.cmp("sge", index, kb.i32(0)), kb.cmp("slt", index, past))
    return b, kb.where(inside, index, past, "block_of_slot")


def _clamp(kb: KernelBuilder, x: SSAValue, lo: SSAValue, hi: SSAValue, name: str) -> SSAValue:
    return kb.min(kb.max(x, lo), hi, name)


def storage_base(
    kb: KernelBuilder, t: str, batch: SSAValue | None, head: SSAValue | None, row: SSAValue | None
) -> SSAValue:
    """Pointer to tensor `t` (kernel_params' names) at batch entry `batch` (None: packed), head `head`
    (None: the sequence's base, heads packed into rows), row `row` (None: 0)."""
    terms = [
        kb.mul(kb.wide(x), kb.wide(kb.arg(kernel_params.stride(t, d))))
        for x, d in ((batch, "b"), (head, "h"), (row, "s"))
        if x is not None
    ]
    off = terms[0]
    for term in terms[1:]:
        off = kb.add(off, term)
    return kb.addptr(kb.arg(kernel_params.ptr(t)), off, f"{t}_base")


def locate(
    kb: KernelBuilder, layout: str, pid_bh: SSAValue, b: SSAValue, h: SSAValue | None, kv_h: SSAValue
) -> SequenceRows:
    """The rows of sequence `b` (head `h`, kv head `kv_h`; `pid_bh` = b · num_heads + h) in `layout`'s storage.
    With `h` None (query heads packed into rows), q's and out's bases stop at the sequence."""
    zero = kb.i32(0)
    seq_q, seq_kv = kb.arg("seq_q"), kb.arg("seq_kv")

    def at(t: str, batch: SSAValue | None, head: SSAValue | None, row: SSAValue | None) -> SSAValue:
        return storage_base(kb, t, batch, head, row)

    heads_rows = kb.mul(kb.wide(pid_bh), kb.wide(seq_q))
    if layout == "packed":
        assert h is not None
        total_q, total_k = kb.arg("q_rows"), kb.arg("kv_rows")
        cu_q, cu_k = kb.arg("cu_seqlens_q_ptr"), kb.arg("cu_seqlens_k_ptr")
        next_b = kb.add(b, kb.i32(1))
        q_start = _clamp(kb, kb.load(kb.addptr(cu_q, b), None, None), zero, total_q, "q_start")
        q_end = _clamp(kb, kb.load(kb.addptr(cu_q, next_b), None, None), q_start, total_q, "q_end")
        k_start = _clamp(kb, kb.load(kb.addptr(cu_k, b), None, None), zero, total_k, "k_start")
        k_end = _clamp(kb, kb.load(kb.addptr(cu_k, next_b), None, None), k_start, total_k, "k_end")
        q_len = kb.min(kb.sub(q_end, q_start), seq_q, "q_len")
        k_len = kb.min(kb.sub(k_end, k_start), seq_kv, "k_len")
        q_shift = kb.max(kb.sub(k_len, q_len), zero, "q_shift")
        stat_row = kb.add(kb.mul(kb.wide(h), kb.wide(total_q)), kb.wide(q_start), "stat_row")
        return SequenceRows(
            layout, b, kv_h, at("q", None, h, q_start), at("out", None, h, q_start), q_len, k_len, q_shift,
            stat_row, at("k", None, kv_h, k_start), at("v", None, kv_h, k_start), q_start, k_start,
        )  # fmt: skip
    q_base, out_base = at("q", b, h, None), at("out", b, h, None)
    if layout == "dense":
        return SequenceRows(
            layout, b, kv_h, q_base, out_base, seq_q, seq_kv, zero, heads_rows,
            at("k", b, kv_h, None), at("v", b, kv_h, None),
        )  # fmt: skip
    lens = kb.load(kb.addptr(kb.arg("cache_seqlens_ptr"), b), None, None, "cache_seqlen")
    k_len = _clamp(kb, lens, zero, seq_kv, "k_len")
    q_shift = kb.max(kb.sub(k_len, seq_q), zero, "q_shift")
    if layout == "cache":
        k_base, v_base = at("k", b, kv_h, None), at("v", b, kv_h, None)
    else:
        k_base = v_base = None
    return SequenceRows(layout, b, kv_h, q_base, out_base, seq_q, k_len, q_shift, heads_rows, k_base, v_base)


@dataclass
class QueryRows:
    """The query rows one program owns: BLOCK_M rows of one head, or, with the query heads of a kv
    head packed (GQA packing), rows ordered position-major over the `group` heads."""

    offs: SSAValue  # [BLOCK_M] row ids
    pos: SSAValue  # [BLOCK_M] positions in the sequence, before the shift
    head: SSAValue  # h: a scalar, or [BLOCK_M] when packed
    ok: SSAValue  # [BLOCK_M, 1]
    first: SSAValue  # the first position the block holds
    end: SSAValue  # one past its last (at most q_len)
    packed: bool

    def offsets(self, kb: KernelBuilder, t: str) -> SSAValue:
        """[BLOCK_M, 1] element offsets of the rows in `t` ("q" or "out") from the sequence's base."""
        off = kb.mul(kb.col(self.pos), kb.arg(kernel_params.stride(t, "s")))
        if self.packed:
            off = kb.add(kb.mul(kb.col(self.head), kb.arg(kernel_params.stride(t, "h"))), off)
        return off


def query_rows(
    kb: KernelBuilder, rows: SequenceRows, pid_m: SSAValue, head: SSAValue, block_m: SSAValue, packed: bool
) -> QueryRows:
    """The rows of query block `pid_m`; `head` is h, or the kv head when `packed`."""
    lo = kb.mul(pid_m, block_m, "q_lo")
    offs = kb.add(lo, kb.arange("BLOCK_M"), "offs_m")
    if not packed:
        ok = kb.col(kb.cmp("slt", offs, rows.q_len), "row_ok")
        end = kb.min(kb.add(lo, block_m), rows.q_len, "q_hi")
        return QueryRows(offs, offs, head, ok, lo, end, False)
    group = kb.arg("group")
    pos = kb.div(offs, group, "pos")
    heads = kb.add(kb.mul(head, group), kb.rem(offs, group), "h_of_row")
    ok = kb.col(kb.cmp("slt", pos, rows.q_len), "row_ok")
    first = kb.div(lo, group, "q_first_pos")
    end = kb.min(kb.add(kb.div(kb.sub(kb.add(lo, block_m), kb.i32(1)), group), kb.i32(1)), rows.q_len, "q_end_pos")
    return QueryRows(offs, pos, heads, ok, first, end, True)


__all__ = [
    "PAGE",
    "QueryRows",
    "SequenceRows",
    "layout_params",
    "locate",
    "packed_slot",
    "query_rows",
    "storage_base",
]
