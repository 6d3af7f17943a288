"""What Triton made of the generated forward kernel on this GPU, and how each launch config times.

    python bench/probe_kernel.py --out DIR

For the plain and causal variants at B=2, H=32, S=8192, D=128 (bf16): the JIT-compiled
kernel's TTGIR (async copies, warpgroup MMA) and PTX (load widths), and do_bench
medians for each candidate launch configuration. Writes the TTGIR to DIR.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import torch
import triton.testing

import attnc
from attnc.runtime import launch as launch_module
from attnc.runtime.forward import PreparedLaunch
from attnc.runtime.launch import LaunchConfig

CONFIGS = [(128, 128, 8, 3), (128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 2), (64, 128, 4, 3), (128, 32, 4, 4)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    out_dir = Path(args.out)
    B, H, S, D = 2, 32, 8192, 128
    q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    handles = []
    original = launch_module.run_kernel

    def capture(*a, **kw):
        handle = original(*a, **kw)
        handles.append(handle)
        return handle

    launch_module.run_kernel = capture
    for name, mask in (("full", None), ("causal", lambda b, h, qi, kv: qi >= kv)):
        attn = attnc.attention(mask_mod=mask)
        shape = attnc.Shape(B, H, H, S, S, D, D)
        compiled = attn.compile(shape, torch.bfloat16, "cuda:90")
        flops = 4 * B * H * S * S * D * (0.5 if mask else 1.0)
        for cfg in CONFIGS:
            config = LaunchConfig(*cfg)
            try:
                plan = PreparedLaunch(compiled, q, k, v, [], config)
                handles.clear()
                plan.run(q, k, v, [])
                kernel = handles[-1]
                ms = triton.testing.do_bench(lambda: plan.run(q, k, v, []), warmup=25, rep=100, return_mode="median")
            except Exception as e:  # noqa: BLE001
                print(name, cfg, "failed:", type(e).__name__, str(e)[:120], flush=True)
                continue
            ttgir, ptx = kernel.asm["ttgir"], kernel.asm["ptx"]
            loads = Counter(re.findall(r"(ld\.global[.a-z0-9]*|cp\.async[.a-z0-9]*|cp\.async\.bulk[.a-z0-9]*)", ptx))
            print(
                f"{name} {cfg}: {flops / ms * 1e-9:.0f} TFLOP/s  async_copy={ttgir.count('async_copy_global_to_local')} "
                f"wgmma={ttgir.count('warp_group_dot')} loads={dict(loads.most_common(4))}",
                flush=True,
            )
            (out_dir / f"{name}_{'_'.join(map(str, cfg))}.ttgir").write_text(ttgir) if cfg == CONFIGS[0] else None


if __name__ == "__main__":
    main()
