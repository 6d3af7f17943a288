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
    pieces(q, k, v, cu, dout, attn, n)


def pieces(q, k, v, cu, dout, attn, n: int) -> None:
    """Host time of the parts of a packed forward+backward, each alone, with the device busy."""
    from attnc.runtime.sequence_autograd import attention_sequences_backward_op
    from attnc.runtime.sequence_op import attention_sequences_op

    name = attn.program.name
    meta = [cu, cu]
    with torch.no_grad():
        out, lse = attention_sequences_op(name, q, k, v, meta, "packed", 512, 512, 0, [], float("nan"))
    dlse = torch.zeros_like(lse)
    calls = {
        "forward op body (no grad)": lambda: attention_sequences_op._init_fn(
            name, q, k, v, meta, "packed", 512, 512, 0, [], float("nan")
        ),
        "forward through the op (no grad)": lambda: torch.ops.attnc.attention_sequences(
            name, q, k, v, meta, "packed", 512, 512, 0, [], float("nan")
        ),
        "backward op body": lambda: attention_sequences_backward_op._init_fn(
            name, q, k, v, out, lse, dout, dlse, meta, "packed", 512, 512, [], [], float("nan")
        ),
        "backward through the op": lambda: torch.ops.attnc.attention_sequences_backward(
            name, q, k, v, out, lse, dout, dlse, meta, "packed", 512, 512, [], [], float("nan")
        ),
        "three zeros_like(q)": lambda: [torch.zeros_like(q) for _ in range(3)],
    }
    for label, call in calls.items():
        with torch.no_grad():
            call()
            torch.cuda.synchronize()
            total = 0.0
            for _ in range(n):
                torch.cuda._sleep(20_000_000)
                start = time.perf_counter()
                call()
                total += time.perf_counter() - start
                torch.cuda.synchronize()
        print(f"{label}: {total / n * 1e6:.0f} us per call")


if __name__ == "__main__":
    main()
