"""Where a warm decode call's host time goes: its mean over 2000 calls, then cProfile's top entries.

ATTNC_AUTOTUNE=0 python bench/probe_host.py [--paged] [--splits N]   # B=1, Hq=32, Hkv=8, 256 keys, D=128
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

import attnc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paged", action="store_true")
    ap.add_argument("--splits", type=int, default=0)
    args = ap.parse_args()
    q = torch.randn(1, 32, 1, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 8, 256, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    lens = torch.full((1,), 256, device="cuda", dtype=torch.int32)
    table = None
    if args.paged:
        k, v = (t[0].reshape(8, 16, 16, 128).permute(1, 0, 2, 3).contiguous() for t in (k, v))  # 16 pages of 16
        table = torch.arange(16, device="cuda", dtype=torch.int32)[None]
    attn = attnc.attention()

    def call() -> torch.Tensor:
        return attn(q, k, v, cache_seqlens=lens, block_table=table, num_splits=args.splits)

    with torch.no_grad():
        for _ in range(50):
            call()
        torch.cuda.synchronize()
        n = 2000
        start = time.perf_counter()
        for _ in range(n):
            call()
        elapsed = time.perf_counter() - start
        torch.cuda.synchronize()
        print(f"warm decode call: {elapsed / n * 1e6:.1f} us of host time")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(n):
            call()
        profile.disable()
        torch.cuda.synchronize()
    pstats.Stats(profile).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
