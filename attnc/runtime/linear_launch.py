"""Launching linear attention's chunk kernels: the forward (state scan, output) and the backward.

Each launch goes through `_launch`, which takes the kernel's constexprs from the compiled
IR and, on a GPU, its tuned launch configuration (tune.py). A vector gate's chunk cumsum
G and scores A are computed once in the forward and saved for the backward
(`VectorGateSaved`), as flash-linear-attention keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from attnc.dialect import kernel_params
from attnc.dialect.kernel_params import padded_head_dim
from attnc.runtime import tune
from attnc.runtime.compiler import CompiledLinear
from attnc.runtime.launch import LaunchConfig, cdiv, run_kernel, set_strides
from attnc.runtime.linear_gate_grad import gate_grad
from attnc.runtime.linear_sequences import SequenceTable


def _common(compiled: CompiledLinear, seqs: SequenceTable, g: torch.Tensor | None) -> dict[str, Any]:
    """The arguments every chunk kernel shares; constexprs come from the kernel's own defaults (`_launch`)."""
    info = compiled.info
    args: dict[str, Any] = {
        "seq_start_ptr": seqs.starts,
        "seq_end_ptr": seqs.ends,
        "batch_step": seqs.batch_step,
        "num_heads": info.heads,
        "group": info.heads // info.heads_qk,
        "chunk_offset_ptr": seqs.chunk_offset,
        "chunk_seq_ptr": seqs.chunk_seq,
        "chunk_idx_ptr": seqs.chunk_idx,
        "scale": info.scale,
    }
    if g is not None:  # a vector gate's kernels read G, the chunk cumsum of g
        name = "gcum" if info.gate == "vector" else "g"
        args[kernel_params.ptr(name)] = g
        set_strides(args, name, g, {"head": "h", "scalar": "bhs", "vector": "bhsd"}[info.gate])
    return args


# Launch configurations tried on a GPU's first call, per kernel: (block_k, block_v, num_warps, num_stages).
# The state scans tile the state; the output kernels tile values over programs and walk keys in
# blocks of block_k; the gradient kernel splits the columns of dq, dk (block_k) and dv (block_v)
# over programs. A vector gate's cumsum and dq/dk/dG kernels split keys; its scores (per sub-chunk)
# and dv kernels hold whole rows (no blocks).
# bench/probe_configs.py times wider grids; these hold what won there (H200, K=V=128) and nearby.
_STATE_SCAN_CANDIDATES = (
    (64, 64, 4, 2),
    (64, 64, 4, 3),
    (128, 64, 8, 2),
    (64, 128, 8, 2),
    (64, 128, 4, 2),
    (64, 128, 4, 3),
    (64, 128, 8, 3),
    (128, 128, 8, 3),
    (128, 128, 4, 3),
    (64, 32, 4, 2),
    (32, 64, 4, 2),
)
_SCORES_CANDIDATES = ((0, 0, 2, 3), (0, 0, 2, 2), (0, 0, 1, 2), (0, 0, 4, 3), (0, 0, 4, 2), (0, 0, 2, 1))
CANDIDATES: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "chunk_state": _STATE_SCAN_CANDIDATES,
    "chunk_state_grad": _STATE_SCAN_CANDIDATES,
    "chunk_output": (
        (64, 128, 4, 3),
        (64, 128, 8, 3),
        (64, 128, 4, 2),
        (32, 128, 4, 3),
        (32, 128, 4, 4),
        (64, 64, 4, 2),
        (64, 64, 4, 3),
        (128, 64, 4, 2),
    ),
    "chunk_grad": (
        (128, 128, 8, 2),
        (64, 64, 4, 2),
        (64, 64, 8, 2),
        (128, 128, 4, 2),
        (64, 64, 4, 3),
        (128, 128, 8, 1),
    ),
    "chunk_scores": _SCORES_CANDIDATES,  # warps and stages only
    "chunk_cumsum": ((64, 0, 4, 1), (128, 0, 4, 1), (64, 0, 2, 1), (32, 0, 2, 1)),
    "chunk_dv": ((0, 0, 4, 2), (0, 0, 8, 2), (0, 0, 4, 1), (0, 0, 8, 1)),
    "chunk_dqkg": ((64, 0, 4, 2), (64, 0, 8, 2), (32, 0, 4, 2), (128, 0, 8, 2), (32, 0, 2, 2)),
}
# Which of BLOCK_K / BLOCK_V a kernel is tiled by (the others' candidates are the same kernel).
_TILED_BY = {
    "chunk_cumsum": "k",
    "chunk_dqkg": "k",
    "chunk_scores": "",
    "chunk_dv": "",
}


def _launch(
    compiled: CompiledLinear,
    which: str,
    grid: Callable[[int, int], tuple[int, ...]],
    args: dict[str, Any],
    device: torch.device,
    shape: tuple[int, ...],
    reset: Callable[[], Any] | None = None,
) -> None:
    """Run kernel `which`; on a GPU the first call per shape times the candidate configs and keeps the fastest
    (tune.py). `reset` restores what a launch accumulates into (the atomically added dG)."""
    info = compiled.info
    kernel = compiled.kernel(which)
    defaults = info.constexprs[f"linear_attention_{which}"]

    def launch(config: tuple[int, ...]) -> None:
        bk, bv, warps, stages = config
        run_args = {**defaults, **args, "BLOCK_K": bk, "BLOCK_V": bv}
        run_kernel(kernel, grid(bk, bv), run_args, device, LaunchConfig(bk, bv, warps, stages))

    config: tuple[int, ...] | None = (info.block_k, info.block_v, info.num_warps, info.num_stages)
    if device.type == "cuda":
        memo = (info.key, which, shape, device)
        config = _TUNED.get(memo)  # the warm path: no key string, no candidate list
        if config is None:
            key = tune.tuning_key("linear", info.key, which, shape, device)
            default = (info.block_k, info.block_v, info.num_warps, info.num_stages)
            config = _TUNED[memo] = tune.tuned(key, default, lambda: _candidates(compiled, which), launch, reset)
    launch(config)


# Tuned configurations by (compiled kernels, kernel, shape, device), for this process.
_TUNED: dict[tuple[Any, ...], tuple[int, ...]] = {}


def _candidates(compiled: CompiledLinear, which: str) -> list[tuple[int, ...]]:
    """The kernel's candidates with blocks clamped to the padded head dims."""
    info = compiled.info
    tiled_by = _TILED_BY.get(which, "kv")
    found: list[tuple[int, ...]] = []
    for bk, bv, warps, stages in CANDIDATES.get(which, ()):
        bk = min(bk or info.block_k, padded_head_dim(info.dim_k)) if "k" in tiled_by else info.block_k
        bv = min(bv or info.block_v, padded_head_dim(info.dim_v)) if "v" in tiled_by else info.block_v
        found.append((bk, bv, warps, stages))
    return list(dict.fromkeys(found))


def chunk_states(
    compiled: CompiledLinear,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    h0: torch.Tensor | None,
    seqs: SequenceTable,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The state at each chunk's start [chunks, H, K, V] (input dtype) and the final states [N, H, K, V]
    (f32). A vector gate comes as G, its chunk cumsum."""
    info = compiled.info
    h = torch.empty((seqs.num_chunks, info.heads, info.dim_k, info.dim_v), dtype=k.dtype, device=k.device)
    ht = torch.empty((seqs.count, info.heads, info.dim_k, info.dim_v), dtype=torch.float32, device=k.device)
    args = _common(compiled, seqs, g)
    args.update(k_ptr=k, v_ptr=v, h_ptr=h, ht_ptr=ht)
    if h0 is not None:
        args["h0_ptr"] = h0
    set_strides(args, "k", k, "bhsd")
    set_strides(args, "v", v, "bhsd")
    if seqs.count:
        count = seqs.count * info.heads
        _launch(
            compiled,
            "chunk_state",
            lambda bk, bv: (cdiv(info.dim_v, bv), cdiv(info.dim_k, bk), count),
            args,
            k.device,
            (seqs.count, seqs.num_chunks),
        )
    return h, ht


class VectorGateSaved(NamedTuple):
    """What a vector gate's forward computes beside the state scan, kept for the backward as
    flash-linear-attention keeps them."""

    gcum: torch.Tensor  # G [B, H, T, K] f32
    scores: torch.Tensor  # A [B, H, T, CHUNK]


def chunk_cumsum(compiled: CompiledLinear, g: torch.Tensor, seqs: SequenceTable) -> torch.Tensor:
    """A vector gate's G: g summed from each chunk's start [B, H, T, K] (f32)."""
    info = compiled.info
    gcum = torch.empty(g.shape, dtype=torch.float32, device=g.device)
    args = _common(compiled, seqs, None)
    args.update(g_ptr=g, gcum_ptr=gcum)
    set_strides(args, "g", g, "bhsd")
    set_strides(args, "gcum", gcum, "bhsd")
    if seqs.num_chunks:
        chunks = seqs.num_chunks
        grid = lambda bk, bv: (cdiv(info.dim_k, bk), chunks, info.heads)  # noqa: E731
        _launch(compiled, "chunk_cumsum", grid, args, g.device, (seqs.count, chunks))
    return gcum


def chunk_scores(
    compiled: CompiledLinear, q: torch.Tensor, k: torch.Tensor, gcum: torch.Tensor, seqs: SequenceTable
) -> torch.Tensor:
    """A vector gate's decayed, scaled scores within each chunk A [B, H, T, CHUNK] (input dtype;
    entries above the diagonal are left unwritten)."""
    info = compiled.info
    a = torch.empty((q.shape[0], info.heads, q.shape[2], info.chunk_size), dtype=q.dtype, device=q.device)
    args = _common(compiled, seqs, None)
    for name, t in (("q", q), ("k", k), ("a", a), ("gcum", gcum)):
        args[kernel_params.ptr(name)] = t
        set_strides(args, name, t, "bhsd")
    if seqs.num_chunks:
        rows = info.constexprs["linear_attention_chunk_scores"]["SUB"]
        grid = (info.chunk_size // rows, seqs.num_chunks, info.heads)  # a program per sub-chunk of rows
        _launch(compiled, "chunk_scores", lambda bk, bv: grid, args, q.device, (seqs.count, seqs.num_chunks))
    return a


def vector_gate(
    compiled: CompiledLinear, q: torch.Tensor, k: torch.Tensor, g: torch.Tensor | None, seqs: SequenceTable
) -> VectorGateSaved | None:
    """A vector gate's G and scores (None for the other gates)."""
    if compiled.info.gate != "vector":
        return None
    assert g is not None
    gcum = chunk_cumsum(compiled, g, seqs)
    return VectorGateSaved(gcum, chunk_scores(compiled, q, k, gcum, seqs))


def forward(
    compiled: CompiledLinear,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    h0: torch.Tensor | None,
    seqs: SequenceTable,
) -> tuple[torch.Tensor, torch.Tensor, VectorGateSaved | None]:
    """o [B, H, T, V], the final states [N, H, K, V] (f32) and, for a vector gate, what the
    backward reuses (VectorGateSaved)."""
    info = compiled.info
    kept = vector_gate(compiled, q, k, g, seqs)
    g = kept.gcum if kept is not None else g
    h, ht = chunk_states(compiled, k, v, g, h0, seqs)
    o = torch.empty((q.shape[0], info.heads, q.shape[2], info.dim_v), dtype=v.dtype, device=v.device)
    args = _common(compiled, seqs, g)
    tensors = {"q": q, "k": k, "v": v, "o": o}
    if kept is not None:  # o from the chunk's scores
        tensors = {"q": q, "v": v, "o": o, "a": kept.scores}
    args["h_ptr"] = h
    for name, t in tensors.items():
        args[kernel_params.ptr(name)] = t
        set_strides(args, name, t, "bhsd")
    if seqs.num_chunks:
        chunks = seqs.num_chunks
        _launch(
            compiled,
            "chunk_output",
            lambda bk, bv: (cdiv(info.dim_v, bv), chunks, info.heads),
            args,
            q.device,
            (seqs.count, chunks),
        )
    return o, ht, kept


def backward(
    compiled: CompiledLinear,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    h0: torch.Tensor | None,
    seqs: SequenceTable,
    do: torch.Tensor,
    dht: torch.Tensor | None,
    kept: VectorGateSaved | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """dq, dk (q/k heads), dv, dg (g's shape, f32) and d initial_state (f32). `kept` is what the
    forward returned for a vector gate (G and A), else they are computed again."""
    info = compiled.info
    batch, length = q.shape[0], q.shape[2]
    heads, dim_k, dim_v = info.heads, info.dim_k, info.dim_v
    device = q.device
    if kept is None:
        kept = vector_gate(compiled, q, k, g, seqs)
    gate = kept.gcum if kept is not None else g
    h, ht = chunk_states(compiled, k, v, gate, h0, seqs)
    if dht is None:
        dht = torch.zeros((seqs.count, heads, dim_k, dim_v), dtype=torch.float32, device=device)
    dh = torch.empty((seqs.num_chunks, heads, dim_k, dim_v), dtype=k.dtype, device=device)
    dh0 = torch.empty((seqs.count, heads, dim_k, dim_v), dtype=torch.float32, device=device)
    args = _common(compiled, seqs, gate)
    args.update(q_ptr=q, do_ptr=do, dh_ptr=dh, dht_ptr=dht.contiguous(), dh0_ptr=dh0)
    set_strides(args, "q", q, "bhsd")
    set_strides(args, "do", do, "bhsd")
    if seqs.count:
        count = seqs.count * heads
        _launch(
            compiled,
            "chunk_state_grad",
            lambda bk, bv: (cdiv(dim_v, bv), cdiv(dim_k, bk), count),
            args,
            device,
            (seqs.count, seqs.num_chunks),
        )
    group = heads // info.heads_qk
    grad_dtype = torch.float32 if group > 1 else q.dtype  # a shared q/k head sums its group's f32 gradients
    dq = torch.empty((batch, heads, length, dim_k), dtype=grad_dtype, device=device)
    dk = torch.empty_like(dq)
    dv = torch.empty((batch, heads, length, dim_v), dtype=v.dtype, device=device)
    grads = {"q": q, "k": k, "v": v, "do": do, "dq": dq, "dk": dk, "dv": dv}
    if info.gate == "vector":
        assert gate is not None
        assert kept is not None
        dgate = vector_grads(compiled, grads, kept, h, dh, seqs)
    else:
        dgate = chunk_grads(compiled, grads, gate, h, dh, seqs)
    dg = None if dgate is None else gate_grad(info.gate, dgate, ht, dht, seqs, info.chunk_size)
    if group > 1:
        dq = dq.view(batch, info.heads_qk, group, length, dim_k).sum(2)
        dk = dk.view(batch, info.heads_qk, group, length, dim_k).sum(2)
    return dq, dk, dv, dg, (dh0 if h0 is not None else None)


def chunk_grads(
    compiled: CompiledLinear,
    tensors: dict[str, torch.Tensor],
    g: torch.Tensor | None,
    h: torch.Tensor,
    dh: torch.Tensor,
    seqs: SequenceTable,
) -> torch.Tensor | None:
    """dq, dk, dv into `tensors` by the per-chunk gradient kernel; returns dG summed within each chunk."""
    info = compiled.info
    q, device = tensors["q"], tensors["q"].device
    args = _common(compiled, seqs, g)
    args.update(h_ptr=h, dh_ptr=dh)
    for name, t in tensors.items():
        args[kernel_params.ptr(name)] = t
        set_strides(args, name, t, "bhsd")
    dgate = None
    if g is not None:
        shape = (q.shape[0], info.heads, q.shape[2])  # per v head
        dgate = torch.zeros(shape, dtype=torch.float32, device=device)  # column splits add into it
        args["dg_ptr"] = dgate
        set_strides(args, "dg", dgate, "bhs")
    if seqs.num_chunks:
        chunks = seqs.num_chunks

        def grid(bk: int, bv: int) -> tuple[int, ...]:
            return (max(cdiv(info.dim_k, bk), cdiv(info.dim_v, bv)), chunks, info.heads)

        reset = dgate.zero_ if dgate is not None else None
        _launch(compiled, "chunk_grad", grid, args, device, (seqs.count, chunks), reset)
    return dgate


def vector_grads(
    compiled: CompiledLinear,
    tensors: dict[str, torch.Tensor],
    kept: VectorGateSaved,
    h: torch.Tensor,
    dh: torch.Tensor,
    seqs: SequenceTable,
) -> torch.Tensor:
    """A vector gate's dq, dk, dv into `tensors` (see chunk_vector_backward_kernels.py); returns dG
    summed within each chunk [B, H, T, K]."""
    info = compiled.info
    q, device = tensors["q"], tensors["q"].device
    batch, length = q.shape[0], q.shape[2]
    f32 = {"dtype": torch.float32, "device": device}
    extra = {
        "a": kept.scores,
        "gcum": kept.gcum,
        "da": torch.empty((batch, info.heads, length, info.chunk_size), **f32),
        "dg": torch.empty((batch, info.heads, length, info.dim_k), **f32),
    }
    args = _common(compiled, seqs, None)
    args.update(h_ptr=h, dh_ptr=dh)
    for name, t in {**tensors, **extra}.items():
        args[kernel_params.ptr(name)] = t
        set_strides(args, name, t, "bhsd")
    if seqs.num_chunks:
        chunks, heads, key = seqs.num_chunks, info.heads, (seqs.count, seqs.num_chunks)
        _launch(compiled, "chunk_dv", lambda bk, bv: (1, chunks, heads), args, device, key)
        _launch(compiled, "chunk_dqkg", lambda bk, bv: (cdiv(info.dim_k, bk), chunks, heads), args, device, key)
    return extra["dg"]


__all__ = ["CANDIDATES", "VectorGateSaved", "backward", "forward"]
