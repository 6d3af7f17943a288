"""What the chunked linear-attention kernels share: parameters, addressing and the gate's cumulative decay.

Every kernel sees sequences through three run-time arrays, so one kernel serves
padded batches and packed variable-length ones alike: `seq_start_ptr[n]` and
`seq_end_ptr[n]` bound sequence n along the time axis of batch `n * batch_step`
(`batch_step` is 1 for a batch, 0 for a packed sequence), and chunks are numbered
globally in sequence order (`chunk_offset_ptr[n]` is sequence n's first chunk,
`chunk_seq_ptr[c]`/`chunk_idx_ptr[c]` say whose and which chunk c is).

Within a chunk, `G` is the running sum of the log-gate from the chunk's start
(inclusive), so position i of the chunk has decayed by exp(G_i) since the chunk
began, and `G_last` is its value at the chunk's last valid step. The log-gate is floored
first (chunk_nonfinite.py: g = −inf, a reset, would make G_i − G_j NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects import math
from xdsl.dialects.builtin import TensorType, f32, i32
from xdsl.ir import Attribute, Region, SSAValue

from attnc.conversion.chunk_nonfinite import floor_log_decay
from attnc.conversion.kernel_builder import KernelBuilder
from attnc.conversion.region_lowering import lower_region
from attnc.dialect import kernel_params, tile
from attnc.dialect.attn_recurrent import RecurrentChunkOp, int_attr
from attnc.dialect.kernel_params import padded_head_dim

CHUNK = "CHUNK"
BK, BV = "BLOCK_K", "BLOCK_V"
HK, HV = "HEAD_K", "HEAD_V"


@dataclass(frozen=True)
class Shapes:
    """Static facts of one recurrent op that the kernels are specialized on."""

    gate: str
    elem: Attribute
    dim_k: int
    dim_v: int
    chunk: int
    block_k: int
    block_v: int
    has_initial: bool
    q_map: Region | None = field(default=None, compare=False)
    k_map: Region | None = field(default=None, compare=False)

    @property
    def fp32(self) -> bool:
        return self.elem == f32

    @property
    def precision(self) -> str | None:
        return "ieee" if self.fp32 else None


def shapes_of(op: RecurrentChunkOp) -> Shapes:
    qt, vt = op.q.type, op.v.type
    assert isinstance(qt, TensorType) and isinstance(vt, TensorType)
    dim_k, dim_v = qt.get_shape()[3], vt.get_shape()[3]
    block_k = int_attr(op, "block_k") if "block_k" in op.attributes else min(padded_head_dim(dim_k), 64)
    block_v = int_attr(op, "block_v") if "block_v" in op.attributes else min(padded_head_dim(dim_v), 64)
    return Shapes(
        gate=op.gate.data,
        elem=qt.element_type,
        dim_k=dim_k,
        dim_v=dim_v,
        chunk=int_attr(op, "chunk_size"),
        block_k=min(block_k, padded_head_dim(dim_k)),
        block_v=min(block_v, padded_head_dim(dim_v)),
        has_initial=op.initial_state is not None,
        q_map=op.q_map if op.q_map.blocks else None,
        k_map=op.k_map if op.k_map.blocks else None,
    )


def tensor_params(names: list[str], elem: Attribute) -> list[tuple[str, Attribute]]:
    """Pointer and (b, h, s, d) strides of each [B, H, T, D] tensor."""
    params: list[tuple[str, Attribute]] = [(kernel_params.ptr(t), KernelBuilder.ptr_type(elem)) for t in names]
    for t in names:
        params += [(kernel_params.stride(t, d), i32) for d in "bhsd"]
    return params


def gate_params(gate: str) -> list[tuple[str, Attribute]]:
    if gate == "none":
        return []
    if gate == "vector":  # the kernels after the chunk cumsum read G, not g
        return tensor_params(["gcum"], f32)
    strides = {"head": "h", "scalar": "bhs"}[gate]
    return [("g_ptr", KernelBuilder.ptr_type(f32))] + [(kernel_params.stride("g", d), i32) for d in strides]


SEQ_PARAMS: list[tuple[str, Attribute]] = [
    ("seq_start_ptr", KernelBuilder.ptr_type(i32)),
    ("seq_end_ptr", KernelBuilder.ptr_type(i32)),
    ("batch_step", i32),
    ("num_heads", i32),
    ("group", i32),
]


@dataclass
class SequenceBounds:
    """Where one program's sequence lives: batch index, first step and length."""

    batch: SSAValue
    head: SSAValue
    head_qk: SSAValue
    start: SSAValue
    length: SSAValue


def sequence(kb: KernelBuilder, n: SSAValue, h: SSAValue) -> SequenceBounds:
    start = kb.load(kb.addptr(kb.arg("seq_start_ptr"), n), None, None, "bos")
    end = kb.load(kb.addptr(kb.arg("seq_end_ptr"), n), None, None, "eos")
    return SequenceBounds(
        batch=kb.mul(n, kb.arg("batch_step"), "b"),
        head=h,
        head_qk=kb.div(h, kb.arg("group"), "h_qk"),
        start=start,
        length=kb.sub(end, start, "seq_len"),
    )


def chunk_of(kb: KernelBuilder, pid_c: SSAValue, h: SSAValue) -> tuple[SequenceBounds, SSAValue]:
    """The sequence that global chunk `pid_c` belongs to, and the chunk's index in it."""
    n = kb.load(kb.addptr(kb.arg("chunk_seq_ptr"), pid_c), None, None, "n")
    index = kb.load(kb.addptr(kb.arg("chunk_idx_ptr"), pid_c), None, None, "chunk_in_seq")
    return sequence(kb, n, h), index


@dataclass
class StateScan:
    """What a state-scan program (forward state or its gradient) owns: one [BLOCK_K, BLOCK_V] block
    of one sequence's state, for one head, across all of the sequence's chunks."""

    n: SSAValue
    h: SSAValue
    seq: SequenceBounds
    first_chunk: SSAValue
    num_chunks: SSAValue
    offs_k: SSAValue
    offs_v: SSAValue
    k_ok: SSAValue
    v_ok: SSAValue
    state_ok: SSAValue


def state_scan(kb: KernelBuilder, s: Shapes) -> StateScan:
    """The program ids of a state scan (value block, key block, sequence × head) and its block's offsets."""
    kb.comment("which value block, key block, sequence and head this program owns")
    pid_v = kb.program_id(0, "pid_v")
    pid_k = kb.program_id(1, "pid_k")
    pid_nh = kb.program_id(2, "pid_nh")
    n = kb.div(pid_nh, kb.arg("num_heads"), "n")
    h = kb.rem(pid_nh, kb.arg("num_heads"), "h")
    seq = sequence(kb, n, h)
    first_chunk = kb.load(kb.addptr(kb.arg("chunk_offset_ptr"), n), None, None, "first_chunk")
    num_chunks = kb.cdiv(seq.length, kb.constexpr(CHUNK), "num_chunks")
    offs_k = kb.add(kb.mul(pid_k, kb.constexpr(BK)), kb.arange(BK), "offs_k")
    offs_v = kb.add(kb.mul(pid_v, kb.constexpr(BV)), kb.arange(BV), "offs_v")
    k_ok = kb.cmp("slt", offs_k, kb.i32(s.dim_k), "k_ok")
    v_ok = kb.cmp("slt", offs_v, kb.i32(s.dim_v), "v_ok")
    state_ok = kb.and_(kb.col(k_ok), kb.row(v_ok), "state_ok")
    return StateScan(n, h, seq, first_chunk, num_chunks, offs_k, offs_v, k_ok, v_ok, state_ok)


def base(kb: KernelBuilder, t: str, seq: SequenceBounds, qk: bool) -> SSAValue:
    """The address of step 0 of this program's sequence in tensor `t` (q, k, v, o, do ...)."""
    head = seq.head_qk if qk else seq.head
    off = kb.add(
        kb.add(
            kb.mul(kb.wide(seq.batch), kb.wide(kb.arg(kernel_params.stride(t, "b")))),
            kb.mul(kb.wide(head), kb.wide(kb.arg(kernel_params.stride(t, "h")))),
        ),
        kb.mul(kb.wide(seq.start), kb.wide(kb.arg(kernel_params.stride(t, "s")))),
    )
    return kb.addptr(kb.arg(kernel_params.ptr(t)), off, f"{t}_base")


def tile_ptrs(
    kb: KernelBuilder, t: str, ptr: SSAValue, rows: SSAValue, cols: SSAValue, transposed: bool = False
) -> SSAValue:
    """Pointers to tile[rows, cols] of a [T, D] slice of tensor `t` (its transpose, [cols, rows], if
    `transposed`: a product that takes the tile transposed then loads it so, with no layout change)."""
    by_row, by_col = (
        kb.mul(rows, kb.arg(kernel_params.stride(t, "s"))),
        kb.mul(cols, kb.arg(kernel_params.stride(t, "d"))),
    )
    if transposed:
        return kb.addptr(ptr, kb.add(kb.col(by_col), kb.row(by_row)))
    return kb.addptr(ptr, kb.add(kb.col(by_row), kb.row(by_col)))


def tile_mask(kb: KernelBuilder, row_ok: SSAValue, col_ok: SSAValue | None, transposed: bool = False) -> SSAValue:
    if transposed:
        return kb.row(row_ok) if col_ok is None else kb.and_(kb.col(col_ok), kb.row(row_ok))
    return kb.col(row_ok) if col_ok is None else kb.and_(kb.col(row_ok), kb.row(col_ok))


def load_rows(
    kb: KernelBuilder,
    t: str,
    ptr: SSAValue,
    rows: SSAValue,
    row_ok: SSAValue,
    cols: SSAValue,
    col_ok: SSAValue | None,
    name: str,
    transposed: bool = False,
) -> SSAValue:
    """tile[rows, cols] of a [T, D] slice, or its transpose (zero outside the sequence and the head dim)."""
    ptrs = tile_ptrs(kb, t, ptr, rows, cols, transposed)
    return kb.load(ptrs, tile_mask(kb, row_ok, col_ok, transposed), 0.0, name)


def row_mask(kb: KernelBuilder, ok: SSAValue, cols: SSAValue, dim: int) -> SSAValue:
    """The columns of a row to load: those < dim, none when the row is not `ok`.
    (A vector bound, not `cols < dim & ok`: Triton's interpreter refuses a scalar-and-vector mask.)"""
    return kb.cmp("slt", cols, kb.where(ok, kb.i32(dim), kb.i32(0)), "cols_ok")


def load_row(
    kb: KernelBuilder, t: str, ptr: SSAValue, row: SSAValue, ok: SSAValue, cols: SSAValue, dim: int, name: str
) -> SSAValue:
    """One row [cols] of a [T, D] slice (zero where the row is not `ok` or past column `dim`)."""
    offs = kb.add(kb.mul(row, kb.arg(kernel_params.stride(t, "s"))), kb.mul(cols, kb.arg(kernel_params.stride(t, "d"))))
    return kb.load(kb.addptr(ptr, offs), row_mask(kb, ok, cols, dim), 0.0, name)


def feature_map(
    kb: KernelBuilder,
    s: Shapes,
    t: str,
    x: SSAValue,
    row_ok: SSAValue,
    col_ok: SSAValue | None,
    name: str,
    transposed: bool = False,
) -> SSAValue:
    """q_map / k_map applied to a loaded q or k tile (or its transpose); padding stays 0 (a map need not fix 0)."""
    region = s.q_map if t == "q" else s.k_map
    if region is None:
        return x
    kb.comment(f"{t}_map")
    (y,) = lower_region(kb, region, [kb.cast(x, f32)], f"{t}_map")
    return kb.cast(kb.where(tile_mask(kb, row_ok, col_ok, transposed), y, kb.f32(0.0)), s.elem, name)


def load_mapped(
    kb: KernelBuilder,
    s: Shapes,
    t: str,
    ptr: SSAValue,
    rows: SSAValue,
    row_ok: SSAValue,
    cols: SSAValue,
    col_ok: SSAValue | None,
    name: str,
    transposed: bool = False,
) -> SSAValue:
    """A q or k tile (or its transpose) as the recurrence sees it: loaded, then its feature map, if any."""
    x = load_rows(kb, t, ptr, rows, row_ok, cols, col_ok, name, transposed)
    return feature_map(kb, s, t, x, row_ok, col_ok, f"{name}_mapped", transposed)


def store_rows(
    kb: KernelBuilder,
    t: str,
    ptr: SSAValue,
    rows: SSAValue,
    row_ok: SSAValue,
    cols: SSAValue,
    col_ok: SSAValue | None,
    value: SSAValue,
) -> None:
    kb.store(tile_ptrs(kb, t, ptr, rows, cols), value, tile_mask(kb, row_ok, col_ok))


def key_ok(kb: KernelBuilder, s: Shapes, offs_k: SSAValue) -> SSAValue | None:
    """Which of the key columns `offs_k` are in the head (None: all, the head dim being a power of two)."""
    return kb.cmp("slt", offs_k, kb.i32(s.dim_k), "k_ok") if s.dim_k != padded_head_dim(s.dim_k) else None


def state_mask(kb: KernelBuilder, k_ok: SSAValue | None, v_ok: SSAValue | None) -> SSAValue | None:
    """The mask of a [keys, values] state tile, from its key and value masks (None: all in bounds)."""
    if k_ok is None:
        return None if v_ok is None else kb.row(v_ok)
    return kb.col(k_ok) if v_ok is None else kb.and_(kb.col(k_ok), kb.row(v_ok))


def state_ptrs(
    kb: KernelBuilder,
    ptr: SSAValue,
    index: SSAValue,
    head: SSAValue,
    s: Shapes,
    offs_k: SSAValue,
    offs_v: SSAValue,
    name: str,
) -> SSAValue:
    """Pointers to the [keys, values] block of state `index` (a chunk or a sequence) of `head` in a [*, H, K, V] buffer."""
    slot = kb.add(kb.mul(kb.wide(index), kb.wide(kb.arg("num_heads"))), kb.wide(head))
    start = kb.mul(slot, kb.wide(kb.i32(s.dim_k * s.dim_v)), f"{name}_start")
    offs = kb.add(kb.mul(kb.col(offs_k), kb.i32(s.dim_v)), kb.row(offs_v))
    return kb.addptr(kb.addptr(ptr, start), offs, name)


def exp(kb: KernelBuilder, x: SSAValue, name: str | None = None) -> SSAValue:
    return kb.unary(math.ExpOp, x, name)


def cumsum(kb: KernelBuilder, x: SSAValue, name: str | None = None, reverse: bool = False) -> SSAValue:
    """x summed along its rows from the first (from the last, if `reverse`) to each."""
    return kb.emit(tile.CumsumOp(x, 0, reverse), kb.dims_of(x), name)


@dataclass
class Decay:
    """The chunk's cumulative log-gate: G [rows] or [rows, keys] and G_last (scalar or [keys])."""

    cum: SSAValue
    last: SSAValue


def gate_decay(
    kb: KernelBuilder,
    s: Shapes,
    seq: SequenceBounds,
    rows: SSAValue,
    row_ok: SSAValue,
    n_valid: SSAValue,
    rows_dim: str,
    cols: SSAValue | None = None,
    col_ok: SSAValue | None = None,
    last_row: SSAValue | None = None,
) -> Decay | None:
    """G and G_last of one chunk (rows relative to the sequence start), or None without a gate.
    A vector gate's G is loaded from the chunk cumsum's output, G_last from the chunk's `last_row`."""
    if s.gate == "none":
        return None
    if s.gate == "head":
        g = kb.load(
            kb.addptr(kb.arg("g_ptr"), kb.mul(seq.head, kb.arg(kernel_params.stride("g", "h")))), None, None, "g_raw"
        )
        g = floor_log_decay(kb, g, "g_head")
        steps = kb.min(kb.add(kb.arange(rows_dim), kb.i32(1)), n_valid)
        return Decay(kb.mul(kb.cast(steps, f32), g, "G"), kb.mul(kb.cast(n_valid, f32), g, "G_last"))
    if s.gate == "scalar":
        g_base = base(kb, "g", seq, False)
        g = kb.load(kb.addptr(g_base, kb.mul(rows, kb.arg(kernel_params.stride("g", "s")))), row_ok, 0.0, "g_raw")
        g = floor_log_decay(kb, g, "g")
        cum = cumsum(kb, g, "G")
        # G_last is G's last row (rows past the sequence add 0), so that exp(G_last − G) is 1 there exactly
        last = kb.cmp("eq", kb.arange(rows_dim), kb.i32(kb.size((rows_dim,))[0] - 1), "last_row")
        return Decay(cum, kb.sum_all(kb.where(last, cum, kb.f32(0.0)), "G_last"))
    assert cols is not None and last_row is not None
    g_base = base(kb, "gcum", seq, False)
    cum = load_rows(kb, "gcum", g_base, rows, row_ok, cols, col_ok, "G")
    last = load_row(kb, "gcum", g_base, last_row, kb.cmp("sge", last_row, kb.i32(0)), cols, s.dim_k, "G_last")
    return Decay(cum, last)


__all__ = [
    "BK",
    "BV",
    "CHUNK",
    "HK",
    "HV",
    "SEQ_PARAMS",
    "Decay",
    "SequenceBounds",
    "Shapes",
    "StateScan",
    "base",
    "chunk_of",
    "cumsum",
    "exp",
    "feature_map",
    "gate_decay",
    "gate_params",
    "load_mapped",
    "load_row",
    "load_rows",
    "row_mask",
    "sequence",
    "shapes_of",
    "key_ok",
    "state_mask",
    "state_ptrs",
    "state_scan",
    "store_rows",
    "tensor_params",
    "tile_mask",
    "tile_ptrs",
]
