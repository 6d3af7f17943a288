"""Forward speed with tuning off and the warm-call host overhead: a quick check that a change to the
runtime or the passes left the kernels and the launch path as fast as before.

    ATTNC_AUTOTUNE=0 python bench/bench_warm_call.py LABEL [--out FILE.json]   # H200: bf16, 2×32×8192×128

Run it once per tree (each in its own process, on one machine) and compare the lines. Full and causal
forward TFLOP/s (`triton.testing.do_bench` medians, FLOPs 4·B·H·S²·D, ½ causal), then the host time
of a warm call on a 1×1×128×64 problem (cached kernel and plan, launches only), as bench_forward.py
measures it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import triton.testing

import attnc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("label")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.manual_seed(0)
    result: dict[str, object] = {"label": args.label}
    B, H, S, D = 2, 32, 8192, 128
    q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    for name, mask in (("full", None), ("causal", lambda b, h, q_idx, kv_idx: q_idx >= kv_idx)):
        attn = attnc.attention(mask_mod=mask)
        attn(q, k, v)
        ms = float(triton.testing.do_bench(lambda: attn(q, k, v), warmup=25, rep=200, return_mode="median"))
        result[name] = round(4 * B * H * S * S * D * (0.5 if mask else 1.0) / ms / 1e9, 1)
    tiny = [torch.randn(1, 1, 128, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    small = attnc.attention()
    with torch.no_grad():
        for _ in range(50):
            small(*tiny)
        torch.cuda.synchronize()
        n = 2000
        t0 = time.perf_counter()
        for _ in range(n):
            small(*tiny)
        result["warm_call_host_us"] = round((time.perf_counter() - t0) / n * 1e6, 1)
        torch.cuda.synchronize()
    print(json.dumps(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
