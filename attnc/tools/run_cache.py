"""`attnc run --cache`: decoding over a KV cache, contiguous or paged (`--page-size`), checked against
`attnc.sequences_reference`. Sequence b holds a seeded random number of keys between Sq and the
cache's capacity Skv; the Sq queries are its last positions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import attnc


def cache_inputs(
    k: torch.Tensor, v: torch.Tensor, seq_q: int, page_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The lengths and the cache as the call takes it: k/v as they are, or cut into shuffled pages."""
    gen = torch.Generator().manual_seed(seed + 1)
    batch, heads, capacity, _ = k.shape
    lens = torch.randint(seq_q, capacity + 1, (batch,), generator=gen, dtype=torch.int32)
    lens[0] = capacity  # one sequence fills the cache
    if not page_size:
        return k, v, lens.to(k.device), None
    per_seq = -(-capacity // page_size)
    pad = per_seq * page_size - capacity
    order = torch.randperm(batch * per_seq, generator=gen).reshape(batch, per_seq)

    def paged(t: torch.Tensor) -> torch.Tensor:
        blocks = torch.nn.functional.pad(t, (0, 0, 0, pad)).reshape(batch, heads, per_seq, page_size, -1)
        pages = torch.empty(batch * per_seq, heads, page_size, t.shape[3], dtype=t.dtype, device=t.device)
        pages[order.flatten().to(t.device)] = blocks.transpose(1, 2).flatten(0, 1)
        return pages

    return paged(k), paged(v), lens.to(k.device), order.to(device=k.device, dtype=torch.int32)


def run_cache(
    attn: attnc.Attention,
    variant: Any,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    args: Any,
    report: Callable[[torch.Tensor, torch.Tensor], int],
    timing: Callable[[Callable[[], Any]], str],
) -> int:
    """Runs the variant over the cache, reports its error against the reference; returns the exit status."""
    kc, vc, lens, table = cache_inputs(k, v, q.shape[2], args.page_size, args.seed)
    what = f"pages of {args.page_size}" if args.page_size else "contiguous"
    print(f"  cache   {what}; cache_seqlens {lens.tolist()[:8]}{' ...' if len(lens) > 8 else ''}")

    def call() -> torch.Tensor:
        out = attn(q, kc, vc, scale=args.scale, cache_seqlens=lens, block_table=table, num_splits=args.num_splits)
        assert isinstance(out, torch.Tensor)
        return out

    with torch.no_grad():
        out = call()
        print("result")
        status = 0
        if args.check:
            ref = attnc.sequences_reference(
                q,
                k,
                v,
                cache_seqlens=lens,
                score_mod=variant.score_mod,
                mask_mod=variant.mask_mod,
                scale=args.scale,
                normalizer=variant.normalizer,
            )[0]
            status = report(out, ref)
        print(f"  time per call  {timing(call)}")
    return status


__all__ = ["cache_inputs", "run_cache"]
