"""Decode time by split count (`num_splits`), contiguous and paged, to tune decode_splits.py.

    ATTNC_AUTOTUNE=0 python bench/probe_splits.py   # H200: bf16, Hq=32, Hkv=8, D=128

Prints one JSON line per (shape, layout, splits): ms and GB/s of K and V read once; splits 0 is the
heuristic's own choice.
"""

from __future__ import annotations

import json

import torch
import triton.testing
from bench_decode import HKV, HQ, D, pages

import attnc

SHAPES = [(1, 1, 131072), (1, 8, 32768), (16, 8, 16384), (1, 64, 4096), (1, 1, 32768)]  # (q, B, kv)
SPLITS = [0, 1, 8, 16, 32, 64, 96, 128]


def main() -> None:
    for sq, batch, kv in SHAPES:
        torch.manual_seed(0)
        q = torch.randn(batch, HQ, sq, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(batch, HKV, kv, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(batch, HKV, kv, D, device="cuda", dtype=torch.bfloat16)
        lens = torch.full((batch,), kv, device="cuda", dtype=torch.int32)
        attn = attnc.attention(mask_mod=(lambda b, h, qi, ki: qi >= ki) if sq > 1 else None)
        gb = 2 * batch * HKV * kv * D * 2 / 1e9
        for page in (0, 16, 256):
            kp, vp, table = pages(k, v, page) if page else (k, v, None)
            for splits in SPLITS:

                def fn(kp=kp, vp=vp, table=table, splits=splits) -> torch.Tensor:
                    return attn(q, kp, vp, cache_seqlens=lens, block_table=table, num_splits=splits)

                fn()
                ms = float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
                row = {"q": sq, "batch": batch, "kv": kv, "page": page, "splits": splits, "ms": round(ms, 4)}
                print(json.dumps({**row, "gbs": round(gb / ms * 1e3)}), flush=True)


if __name__ == "__main__":
    main()
