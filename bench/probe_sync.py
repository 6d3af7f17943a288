"""Whether attnc's packed forward+backward synchronizes with the device, and where its host time goes.

    ATTNC_AUTOTUNE=0 python bench/probe_sync.py

Runs a warm call under `torch.cuda.set_sync_debug_mode("error")` (a synchronizing op raises, with its
traceback), then times the host side of each piece with the device busy: the forward, the backward, and
the Triton launches inside them.
"""

from __future__ import annotations

import time
import traceback
from collections import defaultdict

import torch

import attnc
import attnc.runtime.launch as launch

H, D, LENGTHS = 32, 128, [512] * 16


def main() -> None:
    total = sum(LENGTHS)
    cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], device="cuda", dtype=torch.int32)
    q, k, v = (torch.randn(1, H, total, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    dout = torch.randn(1, H, total, D, device="cuda", dtype=torch.bfloat16)
    attn = attnc.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx >= kv_idx)

    def forward() -> torch.Tensor:
        return attn(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=512, max_seqlen_k=512)

    for _ in range(3):
        forward().backward(dout)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        forward().backward(dout)
        print("no synchronizing op in a warm forward+backward")
    except RuntimeError:
        traceback.print_exc(limit=-12)
    torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()

    spent: dict[str, float] = defaultdict(float)
    run_kernel = launch.run_kernel

    def timed_run_kernel(*args, **kwargs):
        start = time.perf_counter()
        try:
            return run_kernel(*args, **kwargs)
        finally:
            spent["triton launches"] += time.perf_counter() - start

    launch.run_kernel = timed_run_kernel
    sleep = torch.cuda._sleep
    n = 20
    for _ in range(n):
        sleep(20_000_000)  # keep the device busy: a sync would show as host time
        start = time.perf_counter()
        out = forward()
        spent["forward"] += time.perf_counter() - start
        start = time.perf_counter()
        out.backward(dout)
        spent["backward"] += time.perf_counter() - start
        torch.cuda.synchronize()
    launch.run_kernel = run_kernel
    for name, seconds in spent.items():
        print(f"{name}: {seconds / n * 1e6:.0f} us per call")


if __name__ == "__main__":
    main()
