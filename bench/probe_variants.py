"""Time hand edits of the generated forward kernel, to learn what a compiler change would buy.

    python bench/probe_variants.py --out DIR

Each variant is the kernel attnc generates for plain (full) attention, with one edit
made by string replacement (outputs of edited kernels are not checked: timing only).
B=2, H=32, S=8192, D=128, bf16, do_bench medians, TFLOP/s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import triton.testing

import attnc
from attnc.runtime.cache import load_kernel_module
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.forward import PreparedLaunch
from attnc.runtime.launch import LaunchConfig

LOG2E = "1.4426950408889634"

SOFTMAX = """        score = qk * scale
        # normalizer update (softmax)
        tile_max = tl.max(score, axis=1)
        m_new = tl.maximum(m, tile_max, propagate_nan=tl.PropagateNan.ALL)
        all_masked = m_new == float("-inf")
        m_safe = tl.where(all_masked, 0.0, m_new)
        shifted = score - m_safe[:, None]
        p = tl.exp(shifted)
        m_diff = m - m_safe
        alpha = tl.exp(m_diff)
"""

EXP2 = f"""        score = qk * (scale * {LOG2E})
        tile_max = tl.max(score, axis=1)
        m_new = tl.maximum(m, tile_max)
        all_masked = m_new == float("-inf")
        m_safe = tl.where(all_masked, 0.0, m_new)
        p = tl.exp2(score - m_safe[:, None])
        alpha = tl.exp2(m - m_safe)
"""

NO_NAN = SOFTMAX.replace(", propagate_nan=tl.PropagateNan.ALL", "")


def variants(source: str) -> dict[str, str]:
    assert SOFTMAX in source, "the generated softmax changed; update the probe"
    range_loop = source.replace("        start_n = kv_block * BLOCK_N\n", "        start_n = i * BLOCK_N\n", 1)
    return {
        "generated": source,
        "exp2-folded-scale": source.replace(SOFTMAX, EXP2, 1),
        "no-nan-propagation": source.replace(SOFTMAX, NO_NAN, 1),
        "contiguous-blocks": range_loop,
        "exp2+contiguous": range_loop.replace(SOFTMAX, EXP2, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    B, H, S, D = 2, 32, 8192, 128
    q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    compiled = attnc.attention().compile(attnc.Shape(B, H, H, S, S, D, D), torch.bfloat16, "cuda:90")
    flops = 4 * B * H * S * S * D
    lines = []
    for name, source in variants(compiled.stages["triton"]).items():
        module = load_kernel_module(
            source, f"probe_{name.replace('-', '_').replace('+', '_')}", Path(args.out) / "kernels"
        )
        variant = CompiledVariant(compiled.info, {**compiled.stages, "triton": source}, module)
        for cfg in ((128, 128, 8, 3), (128, 64, 8, 3)):
            plan = PreparedLaunch(variant, q, k, v, [], LaunchConfig(*cfg))
            ms = triton.testing.do_bench(lambda: plan.run(q, k, v, []), warmup=25, rep=100, return_mode="median")
            line = f"{name:22} {cfg}: {flops / ms * 1e-9:.0f} TFLOP/s"
            print(line, flush=True)
            lines.append(line)
    (Path(args.out) / "variants.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
