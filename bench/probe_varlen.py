"""Where packed varlen prefill's time goes: per-kernel GPU time (torch.profiler) of attnc's forward and
forward+backward and of Flex's document mask, per call, and each timing repeated to show its spread.

    ATTNC_AUTOTUNE=0 python bench/probe_varlen.py [--pack 16x512|skewed] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections import defaultdict

import torch
import triton.testing
from bench_varlen import PACKS, D, H
from torch.nn.attention.flex_attention import create_block_mask, flex_attention
from torch.profiler import ProfilerActivity, profile

import attnc


def kernel_times(fn, calls: int = 20) -> dict[str, float]:
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    totals: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            totals[event.name[:70]] += event.device_time / calls / 1000
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", default="16x512", choices=list(PACKS))
    ap.add_argument("--profile", action="store_true", help="cProfile attnc's forward+backward host path")
    args = ap.parse_args()
    lengths = PACKS[args.pack]
    total, longest = sum(lengths), max(lengths)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device="cuda", dtype=torch.int32)
    q, k, v = (torch.randn(1, H, total, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    dout = torch.randn(1, H, total, D, device="cuda", dtype=torch.bfloat16)
    attn = attnc.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx >= kv_idx)
    doc = torch.repeat_interleave(torch.arange(len(lengths), device="cuda"), torch.tensor(lengths, device="cuda"))
    block_mask = create_block_mask(
        lambda b, h, qi, ki: (doc[qi] == doc[ki]) & (qi >= ki), None, None, total, total, device="cuda"
    )
    flex_compiled = torch.compile(flex_attention, dynamic=False)

    def ours():
        return attn(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=longest, max_seqlen_k=longest)

    def flex():
        return flex_compiled(q, k, v, block_mask=block_mask)

    for label, fn in (("attnc", ours), ("flex", flex)):
        with torch.no_grad():
            fn()
            times = [triton.testing.do_bench(fn, warmup=10, rep=100, return_mode="median") for _ in range(3)]
            print(f"{label} fwd ms: {[round(t, 4) for t in times]}")
            for name, ms in list(kernel_times(fn).items())[:6]:
                print(f"   {ms:8.4f} ms  {name}")

        def both(fn=fn):
            fn().backward(dout)

        times = [triton.testing.do_bench(both, warmup=10, rep=100, return_mode="median") for _ in range(3)]
        print(f"{label} fwd+bwd ms: {[round(t, 4) for t in times]}")
        for name, ms in list(kernel_times(both).items())[:8]:
            print(f"   {ms:8.4f} ms  {name}")
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(20):
            both()
        host = (time.perf_counter() - start) / 20 * 1e3
        torch.cuda.synchronize()
        print(f"{label} fwd+bwd host ms per call (no sync): {host:.3f}")
        if label == "attnc" and args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(20):
                both()
            profiler.disable()
            torch.cuda.synchronize()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
