"""Attention over packed, cached or paged sequences as a PyTorch custom op, so `torch.compile(fullgraph=True)`
sees one opaque node per call (forward only, for now).

`attnc::attention_sequences(variant, q, k, v, meta, layout, max_seqlen_q, max_seqlen_k, num_splits, captures,
scale)`
returns (out, stats); `meta` holds the layout's tensors in the order dialect/attn_sequences.py lists
them; a max_seqlen of -1 stands for None and NaN scale for the default.
"""

from __future__ import annotations

import math

import torch

from attnc.runtime.attention import program
from attnc.runtime.sequences import sequences


def _optional(n: int) -> int | None:
    return None if n < 0 else n


@torch.library.custom_op("attnc::attention_sequences", mutates_args=())
def attention_sequences_op(
    variant: str,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    meta: list[torch.Tensor],
    layout: str,
    max_seqlen_q: int,
    max_seqlen_k: int,
    num_splits: int,
    captures: list[torch.Tensor],
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    if layout == "packed":
        seqs = sequences(q, k, v, meta[0], meta[1], _optional(max_seqlen_q), _optional(max_seqlen_k))
    else:
        table = meta[1] if layout == "paged" else None
        seqs = sequences(q, k, v, cache_seqlens=meta[0], block_table=table, num_splits=num_splits)
    out, stats = program(variant).forward(q, k, v, None if math.isnan(scale) else scale, seqs, given=captures)
    return out, stats[0] if stats else q.new_empty((0,), dtype=torch.float32)


@attention_sequences_op.register_fake
def _(variant, q, k, v, meta, layout, max_seqlen_q, max_seqlen_k, num_splits, captures, scale):
    out = q.new_empty((q.shape[0], q.shape[1], q.shape[2], v.shape[3]))
    if program(variant).num_stats == 0:
        return out, q.new_empty((0,), dtype=torch.float32)
    return out, q.new_empty(q.shape[:3], dtype=torch.float32)


__all__ = ["attention_sequences_op"]
