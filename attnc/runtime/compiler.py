"""From a logical attn module to loaded Triton kernels: run a named pipeline (pipeline.py),
read what the launcher needs off the IR, print Triton and load it.

Both families compile here: softmax-style attention (`compile_attention`, `KernelInfo`)
and linear attention (`compile_linear`, `LinearInfo`). Results are kept in memory and on
disk (cache.py), keyed by the logical IR, the pipeline with its options and the target.
One compile runs at a time per process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType

from attnc import pipeline
from attnc.dialect import attn
from attnc.dialect.attn_grad import FlashGradOp
from attnc.dialect.attn_recurrent import int_attr
from attnc.dialect.capture_reads import capture_reads
from attnc.dialect.tile import FuncOp as TileFuncOp
from attnc.dialect.tile import PtrType
from attnc.lowering.triton import emit_triton
from attnc.runtime import cache, config

_TRITON_TYPES = {"f16": "fp16", "bf16": "bf16", "f32": "fp32", "f64": "fp64", "i1": "i1", "i32": "i32", "i64": "i64"}


def triton_type(ty: Any) -> str:
    """A kernel parameter's type as Triton's signatures spell it: `*bf16`, `i32`, `fp32`."""
    if isinstance(ty, PtrType):
        return "*" + _TRITON_TYPES[str(ty.pointee)]
    return _TRITON_TYPES[str(ty)]


@dataclass(frozen=True)
class KernelInfo:
    """What the launcher needs to know about a compiled softmax-style variant."""

    key: str
    module_name: str
    forward: str
    block_table: str
    backward_dq: str  # "" when compiled without the backward
    backward_dkdv: str
    grad_probabilities: str  # "softmax" | "elementwise"; "" without the backward
    grad_stat: int  # which forward statistic the backward reads; -1: none
    dq_config: list[int]  # the dQ kernel's block_m, block_n, num_warps, num_stages; [] without the backward
    dkdv_config: list[int]  # the dK/dV kernel's, likewise
    block_mask: str  # "none" | "affine" | "runtime"
    split_forward: str  # the split forward and its combine (attn-split's merge region); "" when unsplittable
    combine: str
    pack_gqa: bool  # one program per kv head, its query heads packed into the rows
    num_state: int  # the normalizer's running state values per row
    table_uses_b: bool
    table_uses_h: bool
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int
    num_captures: int
    num_stats: int
    scale: float
    target: str
    signatures: dict[str, dict[str, str]]  # kernel → runtime parameter → Triton type ("*bf16", "i32")
    constexprs: dict[str, dict[str, int]]  # kernel → constexpr parameter → default
    capture_reads: list[dict[str, Any]]  # where the regions (forward and backward) index captured tensors


@dataclass
class CompiledVariant:
    """A softmax-style variant compiled for one target: its IR at each stage and its loaded kernels."""

    info: KernelInfo
    stages: dict[str, str]  # "attn", "flash", "tile", "triton"
    kernels: Any  # the loaded Python module holding the @triton.jit functions

    @property
    def forward(self) -> Any:
        return getattr(self.kernels, self.info.forward)

    @property
    def block_table(self) -> Any:
        return getattr(self.kernels, self.info.block_table)


@dataclass(frozen=True)
class LinearInfo:
    """What the launcher needs to know about a compiled linear-attention variant, read off its IR."""

    key: str
    module_name: str
    target: str
    gate: str  # none | head | scalar | vector
    heads_qk: int
    heads: int
    dim_k: int
    dim_v: int
    scale: float
    chunk_size: int
    block_k: int
    block_v: int
    num_warps: int
    num_stages: int
    backward: bool
    signatures: dict[str, dict[str, str]]
    constexprs: dict[str, dict[str, int]]


@dataclass
class CompiledLinear:
    """A linear-attention variant compiled for one target: IR per stage and the loaded kernels."""

    info: LinearInfo
    stages: dict[str, str]  # "attn", "chunk", "tile", "triton"
    kernels: Any

    def kernel(self, which: str) -> Any:
        return getattr(self.kernels, f"linear_attention_{which}")


_MEMORY: dict[str, Any] = {}
_COMPILE_LOCK = threading.RLock()


def _cache_key(module: ModuleOp, target: str, chosen: pipeline.Pipeline) -> str:
    return cache.cache_key(str(module), target, {"pipeline": chosen.name, "passes": chosen.spec()})


def _compiled_payload(
    module: ModuleOp,
    key: str,
    chosen: pipeline.Pipeline,
    read_facts: Callable[[ModuleOp], dict[str, Any]],
    info: type[KernelInfo | LinearInfo],
) -> dict[str, Any]:
    """{"key", "facts", "stages"} from the disk cache, or by running the pipeline on `module` and storing it.

    A stored entry counts only if it has the shape `info` needs; anything else is compiled again and
    overwritten."""
    meta_path = cache.kernel_dir() / f"attnc_{key[:24]}.json"
    payload = cache.read_json(meta_path)
    if payload is not None and _well_formed(payload, key, info):
        return payload
    facts: dict[str, Any] = {}
    stages = chosen.run(module, observe={"attn-tile": lambda op: facts.update(read_facts(op))})
    facts.update(_kernel_signatures(module))
    stages["triton"] = emit_triton(module)
    payload = {"key": key, "facts": facts, "stages": stages}
    try:
        cache.write_atomically(meta_path, json.dumps(payload))
    except OSError:  # a directory where the file should be: this process keeps the entry in memory
        pass
    return payload


def _well_formed(payload: dict[str, Any], key: str, info: type[KernelInfo | LinearInfo]) -> bool:
    """Whether a stored entry is this key's, with every fact `info` takes and the IR of every stage."""
    facts, stages = payload.get("facts"), payload.get("stages")
    wanted = {f.name for f in fields(info)} - {"key", "module_name", "target"}
    return (
        payload.get("key") == key
        and isinstance(facts, dict)
        and set(facts) == wanted
        and isinstance(stages, dict)
        and all(isinstance(text, str) for text in stages.values())
        and "triton" in stages
    )


def _kernel_signatures(module: ModuleOp) -> dict[str, Any]:
    signatures: dict[str, dict[str, str]] = {}
    constexprs: dict[str, dict[str, int]] = {}
    for kernel in module.walk():
        if isinstance(kernel, TileFuncOp):
            name = kernel.sym_name.data
            names = [n.data for n in kernel.arg_names.data]
            signatures[name] = {n: triton_type(a.type) for n, a in zip(names, kernel.body.block.args)}
            constexprs[name] = kernel.constexpr_defaults
    return {"signatures": signatures, "constexprs": constexprs}


def _load(module_name: str, stages: dict[str, str]) -> ModuleType:
    if config.debug_dump():
        for stage, text in stages.items():
            print(f"// ----- attnc stage: {stage}\n{text}")
    return cache.load_kernel_module(stages["triton"], module_name, cache.kernel_dir())


def compile_attention(
    module: ModuleOp,
    target: str,
    backward: bool = False,
    grad_captures: tuple[int, ...] | None = None,
    tile: dict[str, int] | None = None,
    debug: bool = False,
) -> CompiledVariant:
    """Compile a logical softmax-style module for `target` ("cpu", "cuda:90", "hip:gfx942", ...).

    With `backward`, attn-autodiff derives the gradient and the kernels include dQ and dK/dV;
    `grad_captures` names the captured tensors that get gradients (None: all). With `debug`, a guarded
    captured-tensor read out of range stops the kernel with an assertion instead of reading 0.
    """
    if backward:
        chosen = pipeline.softmax_backward(target, grad_captures, tile, debug)
    else:
        chosen = pipeline.softmax(target, tile, debug)
    compiled = _compile(module, target, chosen, _attention_facts, KernelInfo, CompiledVariant)
    assert isinstance(compiled, CompiledVariant)
    return compiled


def _compile(
    module: ModuleOp,
    target: str,
    chosen: pipeline.Pipeline,
    read_facts: Callable[[ModuleOp], dict[str, Any]],
    info_type: type[KernelInfo | LinearInfo],
    compiled_type: type[CompiledVariant | CompiledLinear],
) -> CompiledVariant | CompiledLinear:
    """From memory, the disk cache or the pipeline; one compile at a time per process."""
    with _COMPILE_LOCK:
        key = _cache_key(module, target, chosen)
        hit = _MEMORY.get(key)
        if isinstance(hit, compiled_type):
            return hit
        payload = _compiled_payload(module, key, chosen, read_facts, info_type)
        module_name = f"attnc_{key[:24]}"
        info = info_type(key=key, module_name=module_name, target=target, **payload["facts"])
        compiled = compiled_type(info, payload["stages"], _load(module_name, payload["stages"]))  # type: ignore[arg-type]
        _MEMORY[key] = compiled
        return compiled


def _region_uses(flash: attn.FlashOp, index: int) -> bool:
    """Whether the mask (or its classifier) reads block argument `index` (0: b, 1: h)."""
    regions = [flash.classify] if flash.classify.blocks else [flash.mask_mod]
    return any(bool(r.blocks[0].args[index].uses) for r in regions)


def _splits(flash: attn.FlashOp) -> bool:
    """Whether convert-attn-to-tile built the split forward and the combine."""
    return bool(flash.merge.blocks) and flash.layout is not None and flash.layout.data in ("cache", "paged")


def _attention_facts(module: ModuleOp) -> dict[str, Any]:
    """Read off the tiled attn.flash (and attn.flash_grad) after attn-tile."""
    flash = next(op for op in module.walk() if isinstance(op, attn.FlashOp))
    fn = flash.parent_op()
    assert isinstance(fn, func.FuncOp)
    name = fn.sym_name.data
    grad = next((op for op in module.walk() if isinstance(op, FlashGradOp)), None)
    tile = flash.tile
    assert tile is not None and flash.block_mask is not None
    stat = grad.stat if grad is not None else None
    return {
        "forward": f"{name}_fwd",
        "block_table": f"{name}_block_table" if flash.layout is None else "",
        "backward_dq": f"{name}_bwd_dq" if grad is not None else "",
        "backward_dkdv": f"{name}_bwd_dkdv" if grad is not None else "",
        "grad_probabilities": grad.probabilities.data if grad is not None else "",
        "grad_stat": -1 if stat is None else list(flash.stats).index(stat),  # type: ignore[arg-type]
        "dq_config": list(grad.launch("dq") or ()) if grad is not None else [],
        "dkdv_config": list(grad.launch("dkdv") or ()) if grad is not None else [],
        "block_mask": flash.block_mask.data,
        "split_forward": f"{name}_fwd_split" if _splits(flash) else "",
        "combine": f"{name}_combine" if _splits(flash) else "",
        "pack_gqa": "pack_gqa" in flash.attributes,
        "num_state": len(flash.state.data),
        "table_uses_b": _region_uses(flash, 0),
        "table_uses_h": _region_uses(flash, 1),
        "block_m": tile.block_m.data,
        "block_n": tile.block_n.data,
        "num_warps": int_attr(flash, "num_warps"),
        "num_stages": int_attr(flash, "num_stages"),
        "num_captures": len(flash.captures),
        "num_stats": len(flash.stats),
        "scale": flash.scale.value.data,
        "capture_reads": capture_reads(flash) + (capture_reads(grad) if grad is not None else []),
    }


def compile_linear(module: ModuleOp, target: str, chunk_size: int, backward: bool) -> CompiledLinear:
    """Compile a logical linear-attention module (one `attn.recurrence`) for `target`."""
    chosen = pipeline.linear_backward(target, chunk_size) if backward else pipeline.linear(target, chunk_size)
    compiled = _compile(module, target, chosen, _linear_facts, LinearInfo, CompiledLinear)
    assert isinstance(compiled, CompiledLinear)
    return compiled


def _linear_facts(module: ModuleOp) -> dict[str, Any]:
    """Read off the tiled attn.recurrent_chunk after attn-tile."""
    rec = next(op for op in module.walk() if isinstance(op, attn.RecurrentChunkOp))
    qt, vt = rec.q.type, rec.v.type
    assert isinstance(qt, TensorType) and isinstance(vt, TensorType)
    return {
        "gate": rec.gate.data,
        "heads_qk": qt.get_shape()[1],
        "heads": vt.get_shape()[1],
        "dim_k": qt.get_shape()[3],
        "dim_v": vt.get_shape()[3],
        "scale": rec.scale.value.data,
        "chunk_size": int_attr(rec, "chunk_size"),
        "backward": rec.backward is not None,
        **{n: int_attr(rec, n) for n in ("block_k", "block_v", "num_warps", "num_stages")},
    }


__all__ = [
    "CompiledLinear",
    "CompiledVariant",
    "KernelInfo",
    "LinearInfo",
    "compile_attention",
    "compile_linear",
    "triton_type",
]
