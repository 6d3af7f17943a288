"""attn-split: let decoding split each sequence's keys across programs (flash-decoding).

Over a KV cache (`layout = "cache"` or `"paged"`) few query rows leave most of a GPU idle, so the
runtime may split every sequence's key blocks into `num_splits` ranges, each run by its own
program, which stores its partial accumulator and normalizer state instead of finalizing; a
combine kernel merges the ranges and finalizes once. This pass makes that possible: it adds the
`merge` region, derived from what the normalizer's update computes (autodiff/normalizer_merge.py:
online softmax merges by its running max, additive normalizers by summing); a normalizer that
defines its own `merge` has it already (attn-fuse carries it). A normalizer of another form gets
no merge region and its attention runs unsplit. How many splits a call uses is
the runtime's choice, from the SM count, the number of (sequence, kv head) programs and the key
length, or the caller's `num_splits=`.

Precondition: `attn.flash` ops (run attn-fuse first).

Before: `%o, %lse = attn.flash ... sequences(%lens : tensor<?xi32>) ... classify {...} {layout = "cache", ...}`
After:  `%o, %lse = attn.flash ... classify {...} merge {
           ^bb0(%m_a: f32, %l_a: f32, %m_b: f32, %l_b: f32): ... attn.yield %scale_a, %scale_b, %m, %l : ...
         } {layout = "cache", ...}`
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from attnc.autodiff.normalizer_merge import merge_region
from attnc.dialect import attn


@dataclass(frozen=True)
class AttnSplitPass(ModulePass):
    """Adds the merge region that lets attention over a KV cache split its keys across programs."""

    name = "attn-split"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for flash in op.walk():
            if isinstance(flash, (attn.QKOp, attn.PVOp)):
                raise PassFailedException("attn-split requires a fused attention op; run attn-fuse first")
            if not isinstance(flash, attn.FlashOp) or flash.merge.blocks:
                continue
            if flash.layout is None or flash.layout.data not in ("cache", "paged"):
                continue
            region = merge_region(flash)
            if region is not None:
                flash.merge.add_block(region.detach_block(0))


__all__ = ["AttnSplitPass"]
