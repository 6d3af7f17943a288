"""attn-tile: choose the tile sizes and launch shape of each `attn.flash` for a target.

Sets `tile = #attn.tile<MxN>` (queries by keys per program), `num_warps` and
`num_stages`. Explicit options win; otherwise the target's defaults, picked by
head dimension, apply. The generated kernel is generic in its block sizes, so
the runtime's autotuner may still try other sizes; these are the defaults.

Over a KV cache (`layout` "cache" or "paged") it sets `pack_gqa` unless the mask reads h:
the query heads of one kv head share a tile's rows, so each key block is read once. Over a
paged cache on CUDA whose key blocks lie in one page each, it adds two stages: the page-id
load takes them before the K/V loads.

For `attn.flash_grad` it sets the same three per backward kernel (`dq_tile`,
`dq_num_warps`, `dq_num_stages`, and `dkdv_*`), which the runtime launches as is.
Each backward kernel holds q, k, v, dO and two products at once, so on a GPU the
forward's tiles overflow shared memory (128×128 at D = 128 asks 266 KB; an H200
has 227 KB): dQ holds 64 query rows and walks 64 keys, dK/dV holds 128 keys and
walks 64 queries (measured on an H200, bench/probe_backward.py), and fp32 or head
dims over 128 take 32×32. On the CPU both keep the forward's values. Explicit
options win here too.

For `attn.recurrent_chunk` (linear attention) it sets the key and value blocks of
the state (`block_k`, `block_v`; the options block-m and block-n override them),
`num_warps` and `num_stages`. The blocks are halved for fp32 on a GPU and never wider
than the head dims padded to a power of two.

Precondition: `attn.flash` ops (run attn-fuse first), or `attn.recurrent_chunk` ops (run attn-chunk first).

Before: `%o, %lse = attn.flash ... {block_mask = "affine", ...}`
After:  `%o, %lse = attn.flash ... {block_mask = "affine", tile = #attn.tile<128x64>, num_warps = 8 : i64, num_stages = 3 : i64, ...}`
        `... = attn.flash_grad ... {dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64,
             dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64, ...}`
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType, UnitAttr, f32, i64
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from attnc.dialect import attn
from attnc.dialect.attn_grad import FlashGradOp
from attnc.dialect.attn_sequences import page_size
from attnc.dialect.kernel_params import padded_head_dim

# (block_m, block_n, num_warps, num_stages) by target, for head dims up to 64 / 128 / 256.
DEFAULTS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "cuda:90": ((128, 128, 8, 3), (128, 128, 8, 3), (128, 64, 8, 2)),
    "cuda:80": ((128, 64, 4, 3), (128, 64, 8, 3), (64, 32, 4, 2)),
    "hip:gfx942": ((128, 64, 4, 1), (128, 64, 4, 1), (64, 32, 4, 1)),
    "hip:gfx90a": ((128, 64, 4, 1), (128, 64, 4, 1), (64, 32, 4, 1)),
    # Triton's interpreter: small tiles keep ragged test shapes multi-block.
    "cpu": ((32, 32, 4, 1), (32, 32, 4, 1), (32, 32, 4, 1)),
}


# (block_k, block_v, num_warps, num_stages) of the linear-attention state blocks, by target.
RECURRENT_DEFAULTS: dict[str, tuple[int, int, int, int]] = {
    "cuda:90": (64, 64, 4, 2),
    "cuda:80": (64, 64, 4, 2),
    "hip:gfx942": (64, 64, 4, 1),
    "hip:gfx90a": (64, 64, 4, 1),
    "cpu": (32, 32, 4, 1),
}


def default_config(target: str, head_dim: int, element_bytes: int = 2) -> tuple[int, int, int, int]:
    """Defaults for 16-bit inputs; fp32 tiles take twice the shared memory, so they halve."""
    if target not in DEFAULTS:
        raise PassFailedException(f"attn-tile: unknown target '{target}'; expected one of {', '.join(DEFAULTS)}")
    by_dim = DEFAULTS[target]
    bm, bn, warps, stages = by_dim[0] if head_dim <= 64 else by_dim[1] if head_dim <= 128 else by_dim[2]
    if element_bytes == 4 and target != "cpu":
        bm, bn, stages = max(bm // 2, 16), max(bn // 2, 16), min(stages, 2)
    return bm, bn, warps, stages


def backward_configs(
    target: str, head_dim: int, element_bytes: int, forward: tuple[int, int, int, int]
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(block_m, block_n, num_warps, num_stages) of the dQ and the dK/dV kernel; `head_dim` is q's."""
    if target == "cpu":
        return forward, forward
    if element_bytes == 4 or head_dim > 128:
        return (32, 32, 4, 1), (32, 32, 4, 1)
    stages = 3 if head_dim <= 64 else 2
    return (64, 64, 4, stages), (64, 128, 8, stages)


# A paged cache's K/V loads wait on their block's page id, a load Triton's pipeliner gives stages of its own:
# with two more, K and V keep the contiguous cache's two buffers in flight (sm_90 TTGIR, triton 3.6 and 3.9;
# bench/RESULTS.md has what it measured).
PAGE_ID_STAGES = 2


def _whole_pages(flash: attn.FlashOp | FlashGradOp, target: str, block_n: int) -> bool:
    """A forward over a paged cache on CUDA whose key blocks lie in one page each (one page id per block; a
    gather of ids per key measured slower with the extra stages)."""
    if not isinstance(flash, attn.FlashOp) or flash.layout is None or flash.layout.data != "paged":
        return False
    kt = flash.k.type
    assert isinstance(kt, TensorType)
    return target.startswith("cuda") and page_size("paged", kt) % block_n == 0


def _packs_query_heads(flash: attn.FlashOp) -> bool:
    """Over a KV cache, the query heads that share a kv head become one tile's rows, so each key block
    is read once per kv head; not when the mask reads h, since a tile's rows then differ in h."""
    if flash.layout is None or flash.layout.data not in ("cache", "paged"):
        return False
    return not flash.mask_mod.blocks[0].args[1].uses


@dataclass(frozen=True)
class AttnTilePass(ModulePass):
    """Chooses tile sizes, warps and pipeline stages per attn.flash for a target (cuda:90, cuda:80, hip:gfx942, hip:gfx90a, cpu)."""

    name = "attn-tile"
    target: str = "cuda:90"
    block_m: int = 0
    block_n: int = 0
    num_warps: int = 0
    num_stages: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.target not in DEFAULTS:
            raise PassFailedException(
                f"attn-tile: unknown target '{self.target}'; expected one of {', '.join(DEFAULTS)}"
            )
        for option, size in (("block-m", self.block_m), ("block-n", self.block_n)):
            if size and (size < 16 or size & (size - 1)):
                raise PassFailedException(f"attn-tile: {option} must be a power of two of at least 16, but got {size}")
        for option, count in (("num-warps", self.num_warps), ("num-stages", self.num_stages)):
            if count < 0:
                raise PassFailedException(f"attn-tile: {option} must be positive, but got {count}")
        for flash in op.walk():
            if isinstance(flash, attn.RecurrentChunkOp):
                bk, bv, warps, stages = RECURRENT_DEFAULTS[self.target]
                dim_k, dim_v = flash.head_dims()  # blocks no wider than the (padded) head dims
                if flash.element_type == f32 and self.target != "cpu":  # fp32 tiles take twice the shared memory
                    bk, bv = max(bk // 2, 16), max(bv // 2, 16)
                flash.attributes["block_k"] = IntegerAttr(min(self.block_m or bk, padded_head_dim(dim_k)), i64)
                flash.attributes["block_v"] = IntegerAttr(min(self.block_n or bv, padded_head_dim(dim_v)), i64)
                flash.attributes["num_warps"] = IntegerAttr(self.num_warps or warps, i64)
                flash.attributes["num_stages"] = IntegerAttr(self.num_stages or stages, i64)
                continue
            if isinstance(flash, attn.RecurrenceOp):
                raise PassFailedException("attn-tile requires a chunked recurrence; run attn-chunk first")
            if isinstance(flash, (attn.QKOp, attn.PVOp)):
                raise PassFailedException("attn-tile requires a fused attention op; run attn-fuse first")
            if not isinstance(flash, attn.FlashOp | FlashGradOp):
                continue
            qt, vt = flash.q.type, flash.v.type
            assert isinstance(qt, TensorType) and isinstance(vt, TensorType)
            head_dim = max(qt.get_shape()[3], vt.get_shape()[3])
            element_bytes = 4 if qt.element_type == f32 else 2
            forward = self._forward(flash, head_dim, element_bytes)
            if isinstance(flash, attn.FlashOp):
                self._set(flash, "", forward)
                if _packs_query_heads(flash):
                    flash.attributes["pack_gqa"] = UnitAttr()
            else:
                dq, dkdv = backward_configs(self.target, qt.get_shape()[3], element_bytes, forward)
                self._set(flash, "dq_", self._explicit(dq))
                self._set(flash, "dkdv_", self._explicit(dkdv))
            if self.target.startswith("cuda") and element_bytes == 2:
                # One MUFU instruction (tanh.approx.f32, relative error 2^-11) in place of exp and a
                # reciprocal: ample for 16-bit weights, and what sigmoid (0.5 + 0.5·tanh(s/2)) and
                # softcap spend per score. f32 inputs keep the exact form.
                flash.attributes["approx_tanh"] = UnitAttr()

    def _forward(
        self, flash: attn.FlashOp | FlashGradOp, head_dim: int, element_bytes: int
    ) -> tuple[int, int, int, int]:
        """The forward's configuration: the options, else the defaults and the page-id stages."""
        bm, bn, warps, stages = self._explicit(default_config(self.target, head_dim, element_bytes))
        if not self.num_stages and _whole_pages(flash, self.target, bn):
            stages += PAGE_ID_STAGES
        return bm, bn, warps, stages

    def _explicit(self, config: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """`config` with the options that are set in its place."""
        bm, bn, warps, stages = config
        return self.block_m or bm, self.block_n or bn, self.num_warps or warps, self.num_stages or stages

    @staticmethod
    def _set(op: attn.FlashOp | FlashGradOp, prefix: str, config: tuple[int, int, int, int]) -> None:
        bm, bn, warps, stages = config
        op.attributes[f"{prefix}tile"] = attn.TileAttr(bm, bn)
        op.attributes[f"{prefix}num_warps"] = IntegerAttr(warps, i64)
        op.attributes[f"{prefix}num_stages"] = IntegerAttr(stages, i64)


__all__ = ["DEFAULTS", "RECURRENT_DEFAULTS", "AttnTilePass", "backward_configs", "default_config"]
