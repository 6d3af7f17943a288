"""From logical attn IR to loaded Triton kernels, cached in memory and on disk.

The cache key is the sha256 of attnc's version, the logical IR, the pass options
and the target. On disk (`$ATTNC_CACHE_DIR/kernels/`) each entry is the generated
kernel module plus a JSON file with the IR of every stage and what the launcher
needs; both are written atomically. Triton keeps its own binary cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, scf, tensor
from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer

from attnc.dialect import attn
from attnc.dialect.attn_grad import FlashGradOp
from attnc.dialect.tile import FuncOp as TileFuncOp
from attnc.dialect.tile import PtrType, Tile
from attnc.passes.attn_block_mask import AttnBlockMaskPass
from attnc.passes.attn_fuse import AttnFusePass
from attnc.passes.attn_tile import AttnTilePass
from attnc.passes.convert_attn_to_tile import ConvertAttnToTilePass
from attnc.runtime import config
from attnc.runtime.targets import load_kernel_module

VERSION = "0.1.0"


def make_context() -> Context:
    """A context with every dialect attnc's IR uses."""
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, math.Math, scf.Scf, tensor.Tensor, attn.Attn, Tile):
        ctx.load_dialect(dialect)
    return ctx


def print_ir(module: ModuleOp) -> str:
    import io

    out = io.StringIO()
    Printer(stream=out).print_op(module)
    return out.getvalue() + "\n"


_TRITON_TYPES = {"f16": "fp16", "bf16": "bf16", "f32": "fp32", "f64": "fp64", "i1": "i1", "i32": "i32", "i64": "i64"}


def triton_type(ty: Any) -> str:
    """A kernel parameter's type as Triton's signatures spell it: `*bf16`, `i32`, `fp32`."""
    if isinstance(ty, PtrType):
        return "*" + _TRITON_TYPES[str(ty.pointee)]
    return _TRITON_TYPES[str(ty)]


@dataclass(frozen=True)
class KernelInfo:
    """What the launcher needs to know about a compiled variant."""

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


@dataclass
class CompiledVariant:
    """A variant compiled for one target: its IR at each stage and its loaded kernels."""

    info: KernelInfo
    stages: dict[str, str]  # "attn", "flash", "tile", "triton"
    kernels: Any  # the loaded Python module holding the @triton.jit functions

    @property
    def forward(self) -> Any:
        return getattr(self.kernels, self.info.forward)

    @property
    def block_table(self) -> Any:
        return getattr(self.kernels, self.info.block_table)


_MEMORY: dict[str, CompiledVariant] = {}


@functools.cache
def compiler_fingerprint() -> str:
    """attnc's version and a hash of its own sources, so that a changed pass never reuses a stale kernel."""
    digest = hashlib.sha256(VERSION.encode())
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(logical_ir: str, target: str, options: dict[str, Any]) -> str:
    text = json.dumps(
        {"compiler": compiler_fingerprint(), "ir": logical_ir, "target": target, "options": options}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _kernel_dir() -> Path:
    return config.cache_dir() / "kernels"


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _region_uses(flash: attn.FlashOp, index: int) -> bool:
    """Whether the mask (or its classifier) reads block argument `index` (0: b, 1: h)."""
    regions = [flash.mask_mod]
    if flash.classify.blocks:
        regions = [flash.classify]
    return any(bool(r.blocks[0].args[index].uses) for r in regions)


def run_pipeline(
    module: ModuleOp,
    target: str,
    tile_options: dict[str, int],
    backward: bool = False,
    grad_captures: tuple[int, ...] | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Runs attn-fuse, attn-block-mask, [attn-autodiff,] attn-tile, convert-attn-to-tile and emits Triton.

    `grad_captures`: the captured tensors that get gradients with `backward` (None: all).

    Returns the IR after each stage and the facts the launcher needs.
    """
    from attnc.lowering.triton import emit_triton

    ctx = make_context()
    stages = {"attn": print_ir(module)}
    AttnFusePass().apply(ctx, module)
    AttnBlockMaskPass().apply(ctx, module)
    if backward:
        from attnc.passes.attn_autodiff import AttnAutodiffPass

        AttnAutodiffPass(strict=True, captures=grad_captures).apply(ctx, module)
    AttnTilePass(target=target, **tile_options).apply(ctx, module)
    module.verify()
    stages["flash"] = print_ir(module)
    flash = next(op for op in module.walk() if isinstance(op, attn.FlashOp))
    fn = flash.parent_op()
    assert isinstance(fn, func.FuncOp)
    name = fn.sym_name.data
    tile = flash.tile
    assert tile is not None and flash.block_mask is not None
    facts = {
        "forward": f"{name}_fwd",
        "block_table": f"{name}_block_table",
        "backward_dq": f"{name}_bwd_dq" if backward else "",
        "backward_dkdv": f"{name}_bwd_dkdv" if backward else "",
        **_grad_facts(module, flash),
        "block_mask": flash.block_mask.data,
        "table_uses_b": _region_uses(flash, 0),
        "table_uses_h": _region_uses(flash, 1),
        "block_m": tile.block_m.data,
        "block_n": tile.block_n.data,
        "num_warps": flash.attributes["num_warps"].value.data,  # type: ignore[union-attr]
        "num_stages": flash.attributes["num_stages"].value.data,  # type: ignore[union-attr]
        "num_captures": len(flash.captures),
        "num_stats": len(flash.stats),
        "scale": flash.scale.value.data,
    }
    ConvertAttnToTilePass().apply(ctx, module)
    module.verify()
    stages["tile"] = print_ir(module)
    facts["signatures"], facts["constexprs"] = {}, {}
    for kernel in module.walk():
        if isinstance(kernel, TileFuncOp):
            kernel_name = kernel.sym_name.data
            names = [n.data for n in kernel.arg_names.data]
            types = [arg.type for arg in kernel.body.block.args]
            facts["signatures"][kernel_name] = {n: triton_type(t) for n, t in zip(names, types)}
            facts["constexprs"][kernel_name] = kernel.constexpr_defaults
    stages["triton"] = emit_triton(module)
    return stages, facts


def _grad_facts(module: ModuleOp, flash: attn.FlashOp) -> dict[str, Any]:
    """How the backward recomputes the weights, which forward statistic it reads, and how its kernels launch."""
    grad = next((op for op in module.walk() if isinstance(op, FlashGradOp)), None)
    if grad is None:
        return {"grad_probabilities": "", "grad_stat": -1, "dq_config": [], "dkdv_config": []}
    stat = grad.stat
    dq, dkdv = grad.launch("dq"), grad.launch("dkdv")
    assert dq is not None and dkdv is not None
    return {
        "grad_probabilities": grad.probabilities.data,
        "grad_stat": -1 if stat is None else [r for r in flash.stats].index(stat),  # type: ignore[arg-type]
        "dq_config": list(dq),
        "dkdv_config": list(dkdv),
    }


_COMPILE_LOCK = threading.RLock()


def compile_module(
    module: ModuleOp,
    target: str,
    tile_options: dict[str, int] | None = None,
    backward: bool = False,
    grad_captures: tuple[int, ...] | None = None,
) -> CompiledVariant:
    """Compile a logical attn module for `target`, with caching; one compile at a time per process."""
    with _COMPILE_LOCK:
        return _compile_module(module, target, tile_options, backward, grad_captures)


def _compile_module(
    module: ModuleOp,
    target: str,
    tile_options: dict[str, int] | None = None,
    backward: bool = False,
    grad_captures: tuple[int, ...] | None = None,
) -> CompiledVariant:
    """Compile a logical attn module for `target` ("cpu", "cuda:90", "hip:gfx942", ...), with caching.

    With `backward`, attn-autodiff derives the gradient and the kernels include dQ and dK/dV;
    `grad_captures` names the captured tensors that get gradients (None: all).
    """
    tile_options = dict(tile_options or {})
    logical = print_ir(module)
    key = cache_key(logical, target, {**tile_options, "backward": backward, "grad_captures": grad_captures})
    hit = _MEMORY.get(key)
    if hit is not None:
        return hit
    module_name = f"attnc_{key[:24]}"
    meta_path = _kernel_dir() / f"{module_name}.json"
    payload: dict[str, Any] | None = None
    if meta_path.is_file():
        try:
            payload = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            payload = None
    if payload is None or payload.get("info", {}).get("key") != key:
        stages, facts = run_pipeline(module, target, tile_options, backward, grad_captures)
        info = KernelInfo(key=key, module_name=module_name, target=target, **facts)
        payload = {"info": asdict(info), "stages": stages}
        _write_json_atomically(meta_path, payload)
    info = KernelInfo(**payload["info"])
    stages = payload["stages"]
    if config.debug_dump():
        for stage, text in stages.items():
            print(f"// ----- attnc stage: {stage}\n{text}")
    kernels = load_kernel_module(stages["triton"], module_name, _kernel_dir())
    compiled = CompiledVariant(info, stages, kernels)
    _MEMORY[key] = compiled
    return compiled
