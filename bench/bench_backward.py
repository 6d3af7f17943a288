"""Backward speed of attnc against FlexAttention's (compiled) and cuDNN's, side by side in one process.

    python bench/bench_backward.py --out DIR      # H200: bf16, B=2, H=32, S=8192, D=128

Times the backward alone: one forward with requires_grad, then `torch.autograd.grad`
of the output against a fixed dO, repeated (retain_graph) under do_bench; FLOPs as
tritonbench counts them, 2.5 × the forward's (×0.5 causal). Checks attnc's gradients
against Flex's on the same inputs first. Writes backward.json and backward.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch._functorch.config
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import attnc

# Timing repeats the backward of one graph (retain_graph), which compiled graphs with donated buffers refuse.
torch._functorch.config.donated_buffer = False
flex = torch.compile(flex_attention, dynamic=False)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def backward_ms(fn, q, k, v, dout) -> float:
    out = fn(q, k, v)
    return float(
        triton.testing.do_bench(
            lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True),
            warmup=25,
            rep=200,
            return_mode="median",
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    B, H, S, D = args.batch, args.heads, args.seq, args.dim
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    dout = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16)
    slopes = torch.tensor([2.0 ** (-8.0 * (i + 1) / H) for i in range(H)], device="cuda")

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def alibi(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - q_idx)

    def softcap(score, b, h, q_idx, kv_idx):
        return 30.0 * torch.tanh(score / 30.0)

    rows = []
    for name, sm, mm in (
        ("full", None, None),
        ("causal", None, causal),
        ("alibi-causal", alibi, causal),
        ("softcap-causal", softcap, causal),
    ):
        flops = 2.5 * 4 * B * H * S * S * D * (0.5 if mm else 1.0)
        ours = attnc.attention(score_mod=sm, mask_mod=mm)
        bm = create_block_mask(mm, B=None, H=None, Q_LEN=S, KV_LEN=S) if mm else None

        def theirs(q, k, v, sm=sm, bm=bm):
            return flex(q, k, v, score_mod=sm, block_mask=bm)

        g_ours = torch.autograd.grad(ours(q, k, v), (q, k, v), dout)
        g_flex = torch.autograd.grad(theirs(q, k, v), (q, k, v), dout)
        errs = [rel(a, b) for a, b in zip(g_ours, g_flex)]
        t_ours, t_flex = backward_ms(ours, q, k, v, dout), backward_ms(theirs, q, k, v, dout)
        row = {
            "variant": name,
            "rel_err_vs_flex": errs,
            "attnc_tflops": flops / t_ours * 1e-9,
            "flex_tflops": flops / t_flex * 1e-9,
            "ratio_vs_flex": t_flex / t_ours,
        }
        if name in ("full", "causal"):
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                sdpa = lambda q, k, v, c=(mm is not None): torch.nn.functional.scaled_dot_product_attention(  # noqa: E731
                    q, k, v, is_causal=c
                )
                row["cudnn_tflops"] = flops / backward_ms(sdpa, q, k, v, dout) * 1e-9
        rows.append(row)
        print(json.dumps(row), flush=True)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "backward.json").write_text(json.dumps({"shape": [B, H, S, D], "rows": rows}, indent=1))
    lines = [
        f"B={B} H={H} S={S} D={D} bf16, backward, TFLOP/s",
        "",
        "| variant | attnc | Flex | cuDNN | attnc/Flex |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        cudnn = f"{r['cudnn_tflops']:.0f}" if "cudnn_tflops" in r else "–"
        lines.append(
            f"| {r['variant']} | {r['attnc_tflops']:.0f} | {r['flex_tflops']:.0f} | {cudnn} | {r['ratio_vs_flex']:.2f} |"
        )
    (out_dir / "backward.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
