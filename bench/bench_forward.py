"""Forward speed of attnc against FlexAttention and cuDNN (SDPA), side by side in one process.

    python bench/bench_forward.py [--out DIR] [--batch 2 --heads 32 --seq 8192 --dim 128]

bf16; FLOPs as tritonbench counts them (4·B·H·S²·D, ×0.5 causal, sliding window by
its kept fraction). Each variant is first checked against FlexAttention on the same
inputs (relative error), then timed with `triton.testing.do_bench` medians.
Writes forward.json and forward.md to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import attnc

flex = torch.compile(flex_attention, dynamic=False)


def variants(heads: int) -> dict[str, dict]:
    slopes = torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)], device="cuda")

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def sliding(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx <= 1024)

    def alibi(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - q_idx)

    def softcap(score, b, h, q_idx, kv_idx):
        return 30.0 * torch.tanh(score / 30.0)

    return {
        "full": dict(score_mod=None, mask_mod=None, sdpa_causal=False),
        "causal": dict(score_mod=None, mask_mod=causal, sdpa_causal=True),
        "alibi-causal": dict(score_mod=alibi, mask_mod=causal),
        "softcap-causal": dict(score_mod=softcap, mask_mod=causal),
        "sliding-window-1024": dict(score_mod=None, mask_mod=sliding),
    }


def kept_fraction(mask_mod, s: int) -> float:
    if mask_mod is None:
        return 1.0
    q = torch.arange(s, device="cuda")[:, None]
    kv = torch.arange(s, device="cuda")[None, :]
    return mask_mod(0, 0, q, kv).float().mean().item()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    B, H, S, D = args.batch, args.heads, args.seq, args.dim
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    rows = []
    for name, spec in variants(H).items():
        if args.only and name not in args.only.split(","):
            continue
        sm, mm = spec["score_mod"], spec["mask_mod"]
        frac = kept_fraction(mm, S)
        flops = 4 * B * H * S * S * D * frac
        t0 = time.perf_counter()
        ours = attnc.attention(score_mod=sm, mask_mod=mm)
        with torch.no_grad():
            out = ours(q, k, v)
        torch.cuda.synchronize()
        first_call_s = time.perf_counter() - t0
        bm = create_block_mask(mm, B=None, H=None, Q_LEN=S, KV_LEN=S) if mm is not None else None
        ref = flex(q, k, v, score_mod=sm, block_mask=bm)
        err = rel(out, ref)
        t_ours = triton.testing.do_bench(lambda: ours(q, k, v), warmup=25, rep=200, return_mode="median")
        t_flex = triton.testing.do_bench(
            lambda: flex(q, k, v, score_mod=sm, block_mask=bm), warmup=25, rep=200, return_mode="median"
        )
        row = {
            "variant": name,
            "rel_err_vs_flex": err,
            "attnc_ms": t_ours,
            "flex_ms": t_flex,
            "attnc_tflops": flops / t_ours * 1e-9,
            "flex_tflops": flops / t_flex * 1e-9,
            "ratio_vs_flex": t_flex / t_ours,
            "first_call_s": first_call_s,
        }
        if "sdpa_causal" in spec:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                t_cudnn = triton.testing.do_bench(
                    lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=spec["sdpa_causal"]),
                    warmup=25,
                    rep=200,
                    return_mode="median",
                )
            row["cudnn_ms"] = t_cudnn
            row["cudnn_tflops"] = flops / t_cudnn * 1e-9
        rows.append(row)
        print(json.dumps(row), flush=True)

    # Warm host overhead: a tiny shape with a cached kernel, launches only.
    tiny = [torch.randn(1, 1, 128, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    small = attnc.attention()
    with torch.no_grad():
        small(*tiny)
        torch.cuda.synchronize()
        n = 2000
        t0 = time.perf_counter()
        for _ in range(n):
            small(*tiny)
        host_us = (time.perf_counter() - t0) / n * 1e6
        torch.cuda.synchronize()
    print(json.dumps({"warm_call_host_us": host_us}))

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "forward.json").write_text(
        json.dumps({"shape": [B, H, S, D], "rows": rows, "warm_call_host_us": host_us}, indent=1)
    )
    lines = [
        f"B={B} H={H} S={S} D={D} bf16, forward, TFLOP/s (do_bench median)",
        "",
        "| variant | attnc | Flex | cuDNN | attnc/Flex | rel err vs Flex |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cudnn = f"{r['cudnn_tflops']:.0f}" if "cudnn_tflops" in r else "–"
        lines.append(
            f"| {r['variant']} | {r['attnc_tflops']:.0f} | {r['flex_tflops']:.0f} | {cudnn} | {r['ratio_vs_flex']:.2f} | {r['rel_err_vs_flex']:.1e} |"
        )
    lines.append(f"\nwarm call host overhead (1x1x128x64, cached kernel): {host_us:.1f} µs")
    (out_dir / "forward.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
