"""attn-chunk: cut each `attn.recurrence` into chunks, giving `attn.recurrent_chunk`.

The chunked form computes, per chunk of `chunk-size` steps, the output as an
intra-chunk parallel product plus the contribution of the state at the chunk's
start, and carries the state across chunks by a scan (flash-linear-attention's
chunk algorithm). Operands, results and attributes carry over; `chunk_size` is added.

Precondition: `attn.recurrence` ops (what `attnc.linear_attention` builds).

Before:
```mlir
%o, %s = attn.recurrence %q, %k, %v gate(%g : tensor<?x4x?xf32>) {gate = "scalar", scale = 0.125 : f32} : ...
```
After (`attn-chunk{chunk-size=64}`):
```mlir
%o, %s = attn.recurrent_chunk %q, %k, %v gate(%g : tensor<?x4x?xf32>) {gate = "scalar", scale = 0.125 : f32, chunk_size = 64 : i64} : ...
```
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.utils.bitwise_casts import is_power_of_two
from xdsl.utils.exceptions import PassFailedException

from attnc.dialect.attn_recurrent import RecurrenceOp, RecurrentChunkOp


@dataclass(frozen=True)
class ChunkRecurrence(RewritePattern):
    chunk_size: int

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: RecurrenceOp, rewriter: PatternRewriter) -> None:
        chunked = RecurrentChunkOp.create(
            operands=list(op.operands),
            result_types=[r.type for r in op.results],
            properties=dict(op.properties),
            attributes={**op.attributes, "chunk_size": IntegerAttr(self.chunk_size, i64)},
            regions=[rewriter.move_region_contents_to_new_regions(r) for r in op.regions],
        )
        for new, old in zip(chunked.results, op.results):
            new.name_hint = old.name_hint
        rewriter.replace(op, chunked)


@dataclass(frozen=True)
class AttnChunkPass(ModulePass):
    """Rewrites attn.recurrence into attn.recurrent_chunk with a chunk size (a power of two, at least 16)."""

    name = "attn-chunk"
    chunk_size: int = 64

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        c = self.chunk_size
        if c < 16 or not is_power_of_two(c):
            raise PassFailedException(f"attn-chunk: chunk-size must be a power of two of at least 16, but got {c}")
        PatternRewriteWalker(ChunkRecurrence(c), apply_recursively=False).rewrite_module(op)


__all__ = ["AttnChunkPass"]
