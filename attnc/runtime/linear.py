"""Linear attention from IR to launches: build `attn.recurrence`, run the pipeline, run the chunk kernels.

The pipeline is attn-chunk, [attn-autodiff (marks the op `backward`),] attn-tile, convert-attn-to-tile and the
Triton emitter; compiled variants are kept in memory by the sha256 of the logical IR,
the target and the options (Triton keeps its binaries on disk). On a GPU each kernel's
launch configuration is tuned on its first call per shape and remembered on disk
(tuning_cache.py), so a later process compiles only the winner. Sequences reach the
kernels as start/end offsets and a global chunk numbering (see chunk_common.py), so a
padded batch and a packed `cu_seqlens` batch launch the same kernels.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from xdsl.dialects import func
from xdsl.dialects.builtin import DYNAMIC_INDEX, FloatAttr, ModuleOp, StringAttr, TensorType, UnitAttr, f32
from xdsl.ir import Block, Region

from attnc.dialect import attn
from attnc.dialect.tile import FuncOp as TileFuncOp
from attnc.frontend.build import ELEMENT_TYPES
from attnc.runtime import config as settings
from attnc.runtime import tuning_cache
from attnc.runtime.compiler import cache_key, make_context, print_ir, triton_type
from attnc.runtime.launch import run_kernel
from attnc.runtime.targets import load_kernel_module

D = DYNAMIC_INDEX


@dataclass(frozen=True)
class LinearSpec:
    """What a compiled linear-attention variant is specialized on."""

    gate: str  # none | head | scalar | vector
    heads_qk: int
    heads: int
    dim_k: int
    dim_v: int
    dtype: str  # float16 | bfloat16 | float32
    scale: float
    chunk_size: int
    has_initial: bool
    varlen: bool
    maps: str = ""  # a key of FEATURE_MAPS when q_map or k_map is traced


# Traced feature-map regions `(x: f32) -> f32` (q_map, k_map; None for none), by LinearSpec.maps.
FEATURE_MAPS: dict[str, tuple[Region | None, Region | None]] = {}


def build_module(spec: LinearSpec) -> ModuleOp:
    """The logical IR: one function holding one `attn.recurrence`."""
    elem = ELEMENT_TYPES[spec.dtype]
    qk_t = TensorType(elem, [D, spec.heads_qk, D, spec.dim_k])
    v_t = TensorType(elem, [D, spec.heads, D, spec.dim_v])
    state_t = TensorType(f32, [D, spec.heads, spec.dim_k, spec.dim_v])
    g_t = {
        "none": None,
        "head": TensorType(f32, [spec.heads]),
        "scalar": TensorType(f32, [D, spec.heads, D]),
        "vector": TensorType(f32, [D, spec.heads, D, spec.dim_k]),
    }[spec.gate]
    arg_types = [qk_t, qk_t, v_t] + ([g_t] if g_t is not None else []) + ([state_t] if spec.has_initial else [])
    block = Block(arg_types=arg_types)
    names = ["q", "k", "v"] + (["g"] if g_t is not None else []) + (["initial_state"] if spec.has_initial else [])
    for arg, name in zip(block.args, names):
        arg.name_hint = name
    args = dict(zip(names, block.args))
    attributes: dict[str, Any] = {"gate": StringAttr(spec.gate), "scale": FloatAttr(spec.scale, f32)}
    if spec.varlen:
        attributes["varlen"] = UnitAttr()
    q_map, k_map = FEATURE_MAPS.get(spec.maps, (None, None))
    op = attn.RecurrenceOp.create(
        operands=[
            args["q"],
            args["k"],
            args["v"],
            *([args["g"]] if "g" in args else []),
            *([args["initial_state"]] if "initial_state" in args else []),
        ],
        result_types=[v_t, state_t],
        attributes=attributes,
        properties={"operandSegmentSizes": _segments(g_t is not None, spec.has_initial)},
        regions=[q_map.clone() if q_map is not None else Region(), k_map.clone() if k_map is not None else Region()],
    )
    op.results[0].name_hint, op.results[1].name_hint = "o", "final_state"
    block.add_ops([op, func.ReturnOp(op.results[0], op.results[1])])
    fn = func.FuncOp("linear_attention", (arg_types, [v_t, state_t]), Region(block))
    module = ModuleOp([fn])
    module.verify()
    return module


def _segments(has_g: bool, has_initial: bool) -> Any:
    from xdsl.dialects.builtin import DenseArrayBase, i32

    return DenseArrayBase.from_list(i32, [1, 1, 1, int(has_g), int(has_initial)])


@dataclass
class CompiledLinear:
    """A linear-attention variant compiled for one target: IR per stage and the loaded kernels."""

    spec: LinearSpec
    target: str
    stages: dict[str, str]
    kernels: Any
    block_k: int
    block_v: int
    num_warps: int
    num_stages: int
    backward: bool
    signatures: dict[str, dict[str, str]]  # kernel → runtime parameter → Triton type ("*bf16", "i32")
    constexprs: dict[str, dict[str, int]]  # kernel → constexpr parameter → value
    key: str  # the sha256 of the logical IR, the target, the options and the compiler's sources

    def kernel(self, which: str) -> Any:
        return getattr(self.kernels, f"linear_attention_{which}")


_MEMORY: dict[str, CompiledLinear] = {}
_BY_SPEC: dict[tuple[LinearSpec, str, bool], CompiledLinear] = {}  # valid for this process's compiler sources
_LOCK = threading.RLock()


def compile_linear(spec: LinearSpec, target: str, backward: bool) -> CompiledLinear:
    """Run the pipeline on the logical IR for `target` ("cpu", "cuda:90", ...) and load the kernels."""
    from attnc.lowering.triton import emit_triton
    from attnc.passes.attn_chunk import AttnChunkPass
    from attnc.passes.attn_tile import AttnTilePass
    from attnc.passes.convert_attn_to_tile import ConvertAttnToTilePass

    fast = _BY_SPEC.get((spec, target, backward))
    if fast is not None:  # the warm path: no IR built, nothing printed
        return fast
    with _LOCK:
        module = build_module(spec)
        logical = print_ir(module)
        key = cache_key(logical, target, {"chunk_size": spec.chunk_size, "backward": backward})
        hit = _MEMORY.get(key)
        if hit is not None:
            _BY_SPEC[(spec, target, backward)] = hit
            return hit
        ctx = make_context()
        stages = {"attn": logical}
        AttnChunkPass(chunk_size=spec.chunk_size).apply(ctx, module)
        if backward:
            from attnc.passes.attn_autodiff import AttnAutodiffPass

            AttnAutodiffPass().apply(ctx, module)
        AttnTilePass(target=target).apply(ctx, module)
        module.verify()
        stages["chunk"] = print_ir(module)
        rec = next(o for o in module.walk() if isinstance(o, attn.RecurrentChunkOp))
        facts = {n: rec.attributes[n].value.data for n in ("block_k", "block_v", "num_warps", "num_stages")}  # type: ignore[union-attr]
        ConvertAttnToTilePass().apply(ctx, module)
        module.verify()
        stages["tile"] = print_ir(module)
        signatures: dict[str, dict[str, str]] = {}
        constexprs: dict[str, dict[str, int]] = {}
        for kernel in module.walk():
            if isinstance(kernel, TileFuncOp):
                kernel_name = kernel.sym_name.data
                names = [n.data for n in kernel.arg_names.data]
                signatures[kernel_name] = {n: triton_type(a.type) for n, a in zip(names, kernel.body.block.args)}
                constexprs[kernel_name] = kernel.constexpr_defaults
        stages["triton"] = emit_triton(module)
        from attnc.runtime.compiler import _kernel_dir

        kernels = load_kernel_module(stages["triton"], f"attnc_linear_{key[:24]}", _kernel_dir())
        compiled = CompiledLinear(
            spec,
            target,
            stages,
            kernels,
            backward=backward,
            signatures=signatures,
            constexprs=constexprs,
            key=key,
            **facts,
        )
        _MEMORY[key] = compiled
        _BY_SPEC[(spec, target, backward)] = compiled
        return compiled


@dataclass
class Sequences:
    """The run-time sequence tables of one call (see chunk_common.py)."""

    count: int  # N: sequences
    batch_step: int
    starts: torch.Tensor
    ends: torch.Tensor
    chunk_offset: torch.Tensor
    chunk_seq: torch.Tensor
    chunk_idx: torch.Tensor
    num_chunks: int
    chunk_count: torch.Tensor  # [N] chunks per sequence
    chunk_first: torch.Tensor  # [chunks] each chunk's first step
    token_chunk: torch.Tensor  # [T] each step's chunk (packed sequences only; else empty)


_SEQ_CACHE: dict[tuple[Any, ...], Sequences] = {}


def sequences(batch: int, length: int, cu_seqlens: torch.Tensor | None, chunk: int, device: torch.device) -> Sequences:
    if cu_seqlens is None:
        key = (batch, length, chunk, str(device))
        hit = _SEQ_CACHE.get(key)
        if hit is not None:
            return hit
        lengths = [length] * batch
        starts_l = [0] * batch
        batch_step = 1
    else:
        bounds = cu_seqlens.tolist()
        starts_l = bounds[:-1]
        lengths = [e - s for s, e in zip(bounds[:-1], bounds[1:])]
        batch_step = 0
    counts = [-(-n // chunk) for n in lengths]
    offsets, total = [], 0
    for c in counts:
        offsets.append(total)
        total += c
    chunk_seq = [n for n, c in enumerate(counts) for _ in range(c)]
    chunk_idx = [i for c in counts for i in range(c)]

    def i32(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.int32, device=device)

    out = Sequences(
        count=len(lengths),
        batch_step=batch_step,
        starts=i32(starts_l),
        ends=i32([s + n for s, n in zip(starts_l, lengths)]),
        chunk_offset=i32(offsets),
        chunk_seq=i32(chunk_seq),
        chunk_idx=i32(chunk_idx),
        num_chunks=total,
        chunk_count=i32(counts),
        chunk_first=i32([starts_l[n] + i * chunk for n, i in zip(chunk_seq, chunk_idx)]),
        token_chunk=i32(
            []
            if cu_seqlens is None
            else [c for c, n in enumerate(chunk_seq) for _ in range(min(chunk, lengths[n] - chunk_idx[c] * chunk))]
        ),
    )
    if cu_seqlens is None:
        _SEQ_CACHE[(batch, length, chunk, str(device))] = out
    return out


def _strides(args: dict[str, Any], name: str, t: torch.Tensor, dims: str) -> None:
    for d, stride in zip(dims, t.stride()):
        args[f"stride_{name}_{d}"] = stride


def _common(compiled: CompiledLinear, seqs: Sequences, g: torch.Tensor | None) -> dict[str, Any]:
    spec = compiled.spec
    args: dict[str, Any] = {
        "seq_start_ptr": seqs.starts,
        "seq_end_ptr": seqs.ends,
        "batch_step": seqs.batch_step,
        "num_heads": spec.heads,
        "group": spec.heads // spec.heads_qk,
        "chunk_offset_ptr": seqs.chunk_offset,
        "chunk_seq_ptr": seqs.chunk_seq,
        "chunk_idx_ptr": seqs.chunk_idx,
        "scale": spec.scale,
        "CHUNK": spec.chunk_size,
        "BLOCK_K": compiled.block_k,
        "BLOCK_V": compiled.block_v,
        "HEAD_K": _pow2(spec.dim_k),
        "HEAD_V": _pow2(spec.dim_v),
        "SUB": 16,  # rows of the vector-gate scores kernel's sub-chunks
    }
    if g is not None:  # a vector gate's kernels read G, the chunk cumsum of g
        name = "gcum" if spec.gate == "vector" else "g"
        args[f"{name}_ptr"] = g
        _strides(args, name, g, {"head": "h", "scalar": "bhs", "vector": "bhsd"}[spec.gate])
    return args


def _pow2(n: int) -> int:
    """What chunk_common.pow2 pads a head dim to: a power of two, at least 16."""
    return max(16, 1 << max(n - 1, 0).bit_length())


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


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
_TUNED: dict[tuple[Any, ...], tuple[int, int, int, int]] = {}


def _launch(
    compiled: CompiledLinear,
    which: str,
    grid: Callable[[int, int], tuple[int, ...]],
    args: dict[str, Any],
    device: torch.device,
    tune_key: tuple[Any, ...],
    reset: Callable[[], Any] | None = None,
) -> None:
    """Run kernel `which`; on a GPU the first call per shape times the candidate configs and keeps the fastest.

    `reset` restores what a launch accumulates into (the atomically added dG), before
    every timed launch and before the real one that follows them."""
    from attnc.runtime.launch import LaunchConfig

    spec = compiled.spec
    default = (compiled.block_k, compiled.block_v, compiled.num_warps, compiled.num_stages)
    config = default
    if device.type == "cuda" and settings.autotune_enabled():
        key = (spec, compiled.target, which, tune_key, compiled.key[:24], _device_name(device))
        tuned = _TUNED.get(key)
        if tuned is None:
            tuned = _stored(key)
            if tuned is None:
                tuned = _tune(compiled, which, grid, args, device, default, reset)
                tuning_cache.remember(_disk_key(key), tuned)
                if reset is not None:
                    reset()
            _TUNED[key] = tuned
        config = tuned
    bk, bv, warps, stages = config
    bk, bv = bk or compiled.block_k, bv or compiled.block_v
    run_args = {**args, "BLOCK_K": bk, "BLOCK_V": bv}
    run_kernel(compiled.kernel(which), grid(bk, bv), run_args, device, LaunchConfig(bk, bv, warps, stages))


def _device_name(device: torch.device) -> str:
    return _gpu_name(device.index if device.index is not None else torch.cuda.current_device())


@functools.cache
def _gpu_name(index: int) -> str:
    """Looked up once per GPU: the name is part of every tuned launch's key."""
    return torch.cuda.get_device_name(index)


def _disk_key(key: tuple[Any, ...]) -> str:
    return "linear|" + "|".join(map(str, key))


def _stored(key: tuple[Any, ...]) -> tuple[int, int, int, int] | None:
    """The winner an earlier process stored for `key` (tuning_cache.py), if any."""
    stored = tuning_cache.lookup(_disk_key(key))
    if stored is None or len(stored) != 4:
        return None
    bk, bv, warps, stages = stored
    return bk, bv, warps, stages


def _tune(
    compiled: CompiledLinear,
    which: str,
    grid: Callable[[int, int], tuple[int, ...]],
    args: dict[str, Any],
    device: torch.device,
    default: tuple[int, int, int, int],
    reset: Callable[[], Any] | None = None,
) -> tuple[int, int, int, int]:
    import triton.testing
    from triton.runtime.errors import OutOfResources

    from attnc.runtime.launch import LaunchConfig

    spec = compiled.spec
    kernel = compiled.kernel(which)
    best, best_ms = default, float("inf")
    tiled_by = _TILED_BY.get(which, "kv")
    tried: set[tuple[int, int, int, int]] = set()
    for bk, bv, warps, stages in CANDIDATES.get(which, ()) or (default,):
        bk = min(bk or compiled.block_k, _pow2(spec.dim_k)) if "k" in tiled_by else compiled.block_k
        bv = min(bv or compiled.block_v, _pow2(spec.dim_v)) if "v" in tiled_by else compiled.block_v
        candidate = (bk, bv, warps, stages)
        if candidate in tried:  # the same kernel: compile and time it once
            continue
        tried.add(candidate)
        run_args = {**args, "BLOCK_K": bk, "BLOCK_V": bv}

        def run(
            run_args: dict[str, Any] = run_args, bk: int = bk, bv: int = bv, warps: int = warps, stages: int = stages
        ) -> None:
            if reset is not None:
                reset()
            run_kernel(kernel, grid(bk, bv), run_args, device, LaunchConfig(bk, bv, warps, stages))

        try:
            measured: Any = triton.testing.do_bench(run, warmup=5, rep=20, return_mode="median")
            ms = float(measured)
        except OutOfResources:  # a config that does not fit this GPU (shared memory) is skipped
            continue
        if ms < best_ms:
            best, best_ms = candidate, ms
    return best


def chunk_states(
    compiled: CompiledLinear,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    h0: torch.Tensor | None,
    seqs: Sequences,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The state at each chunk's start [chunks, H, K, V] (input dtype) and the final states [N, H, K, V]
    (f32). A vector gate comes as G, its chunk cumsum."""
    spec = compiled.spec
    h = torch.empty((seqs.num_chunks, spec.heads, spec.dim_k, spec.dim_v), dtype=k.dtype, device=k.device)
    ht = torch.empty((seqs.count, spec.heads, spec.dim_k, spec.dim_v), dtype=torch.float32, device=k.device)
    args = _common(compiled, seqs, g)
    args.update(k_ptr=k, v_ptr=v, h_ptr=h, ht_ptr=ht)
    if h0 is not None:
        args["h0_ptr"] = h0
    _strides(args, "k", k, "bhsd")
    _strides(args, "v", v, "bhsd")
    if seqs.count:
        count = seqs.count * spec.heads
        _launch(
            compiled,
            "chunk_state",
            lambda bk, bv: (_cdiv(spec.dim_v, bv), _cdiv(spec.dim_k, bk), count),
            args,
            k.device,
            (seqs.count, seqs.num_chunks),
        )
    return h, ht


class Kept(NamedTuple):
    """What a vector gate's forward computes beside the state scan, kept for the backward as
    flash-linear-attention keeps them."""

    gcum: torch.Tensor  # G [B, H, T, K] f32
    scores: torch.Tensor  # A [B, H, T, CHUNK]


def chunk_cumsum(compiled: CompiledLinear, g: torch.Tensor, seqs: Sequences) -> torch.Tensor:
    """A vector gate's G: g summed from each chunk's start [B, H, T, K] (f32)."""
    spec = compiled.spec
    gcum = torch.empty(g.shape, dtype=torch.float32, device=g.device)
    args = _common(compiled, seqs, None)
    args.update(g_ptr=g, gcum_ptr=gcum)
    _strides(args, "g", g, "bhsd")
    _strides(args, "gcum", gcum, "bhsd")
    if seqs.num_chunks:
        chunks = seqs.num_chunks
        grid = lambda bk, bv: (_cdiv(spec.dim_k, bk), chunks, spec.heads)  # noqa: E731
        _launch(compiled, "chunk_cumsum", grid, args, g.device, (seqs.count, chunks))
    return gcum


def chunk_scores(
    compiled: CompiledLinear, q: torch.Tensor, k: torch.Tensor, gcum: torch.Tensor, seqs: Sequences
) -> torch.Tensor:
    """A vector gate's decayed, scaled scores within each chunk A [B, H, T, CHUNK] (input dtype;
    entries above the diagonal are left unwritten)."""
    spec = compiled.spec
    a = torch.empty((q.shape[0], spec.heads, q.shape[2], spec.chunk_size), dtype=q.dtype, device=q.device)
    args = _common(compiled, seqs, None)
    for name, t in (("q", q), ("k", k), ("a", a), ("gcum", gcum)):
        args[f"{name}_ptr"] = t
        _strides(args, name, t, "bhsd")
    if seqs.num_chunks:
        grid = (spec.chunk_size // 16, seqs.num_chunks, spec.heads)  # a program per sub-chunk of 16 rows
        _launch(compiled, "chunk_scores", lambda bk, bv: grid, args, q.device, (seqs.count, seqs.num_chunks))
    return a


def vector_gate(
    compiled: CompiledLinear, q: torch.Tensor, k: torch.Tensor, g: torch.Tensor | None, seqs: Sequences
) -> Kept | None:
    """A vector gate's G and scores (None for the other gates)."""
    if compiled.spec.gate != "vector":
        return None
    assert g is not None
    gcum = chunk_cumsum(compiled, g, seqs)
    return Kept(gcum, chunk_scores(compiled, q, k, gcum, seqs))


def forward(
    compiled: CompiledLinear,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    h0: torch.Tensor | None,
    seqs: Sequences,
) -> tuple[torch.Tensor, torch.Tensor, Kept | None]:
    """o [B, H, T, V], the final states [N, H, K, V] (f32) and, for a vector gate, what the
    backward reuses (Kept)."""
    spec = compiled.spec
    kept = vector_gate(compiled, q, k, g, seqs)
    g = kept.gcum if kept is not None else g
    h, ht = chunk_states(compiled, k, v, g, h0, seqs)
    o = torch.empty((q.shape[0], spec.heads, q.shape[2], spec.dim_v), dtype=v.dtype, device=v.device)
    args = _common(compiled, seqs, g)
    tensors = {"q": q, "k": k, "v": v, "o": o}
    if kept is not None:  # o from the chunk's scores
        tensors = {"q": q, "v": v, "o": o, "a": kept.scores}
    args["h_ptr"] = h
    for name, t in tensors.items():
        args[f"{name}_ptr"] = t
        _strides(args, name, t, "bhsd")
    if seqs.num_chunks:
        chunks = seqs.num_chunks
        _launch(
            compiled,
            "chunk_output",
            lambda bk, bv: (_cdiv(spec.dim_v, bv), chunks, spec.heads),
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
    seqs: Sequences,
    do: torch.Tensor,
    dht: torch.Tensor | None,
    kept: Kept | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """dq, dk (q/k heads), dv, dg (g's shape, f32) and d initial_state (f32). `kept` is what the
    forward returned for a vector gate (G and A), else they are computed again."""
    spec = compiled.spec
    batch, length = q.shape[0], q.shape[2]
    heads, dim_k, dim_v = spec.heads, spec.dim_k, spec.dim_v
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
    _strides(args, "q", q, "bhsd")
    _strides(args, "do", do, "bhsd")
    if seqs.count:
        count = seqs.count * heads
        _launch(
            compiled,
            "chunk_state_grad",
            lambda bk, bv: (_cdiv(dim_v, bv), _cdiv(dim_k, bk), count),
            args,
            device,
            (seqs.count, seqs.num_chunks),
        )
    group = heads // spec.heads_qk
    grad_dtype = torch.float32 if group > 1 else q.dtype  # a shared q/k head sums its group's f32 gradients
    dq = torch.empty((batch, heads, length, dim_k), dtype=grad_dtype, device=device)
    dk = torch.empty_like(dq)
    dv = torch.empty((batch, heads, length, dim_v), dtype=v.dtype, device=device)
    grads = {"q": q, "k": k, "v": v, "do": do, "dq": dq, "dk": dk, "dv": dv}
    if spec.gate == "vector":
        assert gate is not None
        assert kept is not None
        dgate = vector_grads(compiled, grads, kept, h, dh, seqs)
    else:
        dgate = chunk_grads(compiled, grads, gate, h, dh, seqs)
    dg = None if dgate is None else gate_grad(spec.gate, dgate, ht, dht, seqs, spec.chunk_size)
    if group > 1:
        dq = dq.view(batch, spec.heads_qk, group, length, dim_k).sum(2)
        dk = dk.view(batch, spec.heads_qk, group, length, dim_k).sum(2)
    return dq, dk, dv, dg, (dh0 if h0 is not None else None)


def chunk_grads(
    compiled: CompiledLinear,
    tensors: dict[str, torch.Tensor],
    g: torch.Tensor | None,
    h: torch.Tensor,
    dh: torch.Tensor,
    seqs: Sequences,
) -> torch.Tensor | None:
    """dq, dk, dv into `tensors` by the per-chunk gradient kernel; returns dG summed within each chunk."""
    spec = compiled.spec
    q, device = tensors["q"], tensors["q"].device
    args = _common(compiled, seqs, g)
    args.update(h_ptr=h, dh_ptr=dh)
    for name, t in tensors.items():
        args[f"{name}_ptr"] = t
        _strides(args, name, t, "bhsd")
    dgate = None
    if g is not None:
        shape = (q.shape[0], spec.heads, q.shape[2])  # per v head
        dgate = torch.zeros(shape, dtype=torch.float32, device=device)  # column splits add into it
        args["dg_ptr"] = dgate
        _strides(args, "dg", dgate, "bhs")
    if seqs.num_chunks:
        chunks = seqs.num_chunks

        def grid(bk: int, bv: int) -> tuple[int, ...]:
            return (max(_cdiv(spec.dim_k, bk), _cdiv(spec.dim_v, bv)), chunks, spec.heads)

        reset = dgate.zero_ if dgate is not None else None
        _launch(compiled, "chunk_grad", grid, args, device, (seqs.count, chunks), reset)
    return dgate


def vector_grads(
    compiled: CompiledLinear,
    tensors: dict[str, torch.Tensor],
    kept: Kept,
    h: torch.Tensor,
    dh: torch.Tensor,
    seqs: Sequences,
) -> torch.Tensor:
    """A vector gate's dq, dk, dv into `tensors` (see chunk_vector_backward_kernels.py); returns dG
    summed within each chunk [B, H, T, K]."""
    spec = compiled.spec
    q, device = tensors["q"], tensors["q"].device
    batch, length = q.shape[0], q.shape[2]
    f32 = {"dtype": torch.float32, "device": device}
    extra = {
        "a": kept.scores,
        "gcum": kept.gcum,
        "da": torch.empty((batch, spec.heads, length, spec.chunk_size), **f32),
        "dg": torch.empty((batch, spec.heads, length, spec.dim_k), **f32),
    }
    args = _common(compiled, seqs, None)
    args.update(h_ptr=h, dh_ptr=dh)
    for name, t in {**tensors, **extra}.items():
        args[f"{name}_ptr"] = t
        _strides(args, name, t, "bhsd")
    if seqs.num_chunks:
        chunks, heads, key = seqs.num_chunks, spec.heads, (seqs.count, seqs.num_chunks)
        _launch(compiled, "chunk_dv", lambda bk, bv: (1, chunks, heads), args, device, key)
        _launch(compiled, "chunk_dqkg", lambda bk, bv: (_cdiv(spec.dim_k, bk), chunks, heads), args, device, key)
    return extra["dg"]


def gate_grad(
    gate: str, within: torch.Tensor, ht: torch.Tensor, dht: torch.Tensor, seqs: Sequences, chunk: int
) -> torch.Tensor:
    """dg from the kernel's dG summed back to each step within its chunk ([B, H, T] or [B, H, T, K]).

    dg_t = Σ_{s ≥ t in t's sequence} dG_s + ⟨S_T, dS_T⟩: each step gets what its chunk
    gave plus the sums of the sequence's later chunks (a [.., chunks, ..] tensor, chunk
    times smaller) and the final-state term. For "head", dg sums over steps and batch.
    """
    final = ht * dht  # [N, H, K, V]
    final = final.sum(-1) if gate == "vector" else final.sum((-2, -1))  # [N, H, K] or [N, H]
    length = within.shape[2]
    if seqs.batch_step:  # one sequence of length T per batch row
        totals = within[:, :, ::chunk]  # each chunk's sum, at its first step: [B, H, NT(, K)]
        later = totals.flip(2).cumsum(2).flip(2) - totals + final.unsqueeze(2)
        if length % chunk == 0:
            shape = (*within.shape[:2], length // chunk, chunk, *within.shape[3:])
            within.view(shape).add_(later.unsqueeze(3))
        else:
            within.add_(later.repeat_interleave(chunk, dim=2)[:, :, :length])
    elif seqs.num_chunks:
        starts = seqs.chunk_first.long()
        totals = within[0].index_select(1, starts)  # [H, chunks(, K)]
        suffix = totals.flip(1).cumsum(1).flip(1)
        suffix = torch.cat([suffix, torch.zeros_like(suffix[:, :1])], dim=1)
        seq_of = seqs.chunk_seq.long()
        beyond = suffix.index_select(1, seqs.chunk_offset.long()[seq_of] + seqs.chunk_count.long()[seq_of])
        later = suffix[:, :-1] - totals - beyond + final.transpose(0, 1).index_select(1, seq_of)
        within[0].add_(later.index_select(1, seqs.token_chunk.long()))
    if gate == "head":
        return within.sum((0, 2))
    return within


__all__ = [
    "CompiledLinear",
    "Kept",
    "LinearSpec",
    "Sequences",
    "build_module",
    "chunk_states",
    "backward",
    "compile_linear",
    "forward",
    "gate_grad",
    "sequences",
]
