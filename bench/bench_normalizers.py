"""Forward speed of attnc's non-softmax normalizers, side by side with what a user would pick instead.

    python bench/bench_normalizers.py --out DIR                   # H200: B=1, H=32, D=128, S=4096 and 16384
    python bench/bench_normalizers.py --device cpu --seq 128 --heads 2 --dim 32   # a smoke run of the script

- sigmoid attention, sigmoid(s·scale − log n)·V, and ReLU attention, relu(s·scale)·V: attnc against
  `torch.compile` of the eager formula, and against attnc's own softmax forward;
- RetNet parallel retention (decay γ_h = 1 − 2^(−5−h), causal, denominator max(Σ|s|, 1)):
  attnc against flash-linear-attention's `parallel_retention` when `fla` is importable
  (fla-core, carried as a wheel; its output is not normalized the same way, so only
  the time is compared).

bf16, `triton.testing.do_bench` medians on CUDA (wall clock on the CPU), TFLOP/s as
4·B·H·S²·D (×0.5 causal). Each attnc variant is checked against attnc's float64
reference on a slice of rows first. Writes normalizers.json and normalizers.md to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

import attnc


def timer(device: str) -> Callable[[Callable[[], object]], float]:
    if device == "cuda":
        import triton.testing

        def bench(fn: Callable[[], object]) -> float:
            return float(triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median"))

        return bench

    def wall(fn: Callable[[], object]) -> float:
        fn()
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3

    return wall


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def check_rows(attn: attnc.Attention, q, k, v, score_mod, mask_mod, normalizer, rows: int = 64) -> float:
    """attnc against its float64 reference on the first `rows` queries (keeps the reference small)."""
    out = attn(q[:, :, :rows], k, v)
    ref = attnc.attention_reference(
        q[:, :, :rows], k, v, score_mod=score_mod, mask_mod=mask_mod, normalizer=normalizer
    )[0]
    return rel(out, ref)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seq", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    device, B, H, D = args.device, args.batch, args.heads, args.dim
    bench = timer(device)
    dtype = torch.bfloat16
    rows = []
    for S in args.seq:
        torch.manual_seed(0)
        q, k, v = (torch.randn(B, H, S, D, device=device, dtype=dtype) for _ in range(3))
        scale = D**-0.5
        log_n = math.log(S)
        flops = 4 * B * H * S * S * D

        def sigmoid_bias(score, b, h, q_idx, kv_idx, log_n=log_n):
            return score - log_n

        def causal(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx

        log2_gamma = torch.log2(1 - 2.0 ** (-5.0 - torch.arange(H, dtype=torch.float32))).to(device)

        def retnet_decay(score, b, h, q_idx, kv_idx):
            return score * attnc.exp2((q_idx - kv_idx) * log2_gamma[h])

        def eager_sigmoid(q, k, v):
            return torch.sigmoid(q @ k.transpose(-1, -2) * scale - log_n) @ v

        def eager_relu(q, k, v):
            return torch.relu(q @ k.transpose(-1, -2) * scale) @ v

        compiled_sigmoid = torch.compile(eager_sigmoid)
        compiled_relu = torch.compile(eager_relu)
        softmax = attnc.attention()
        sigmoid = attnc.attention(score_mod=sigmoid_bias, normalizer="sigmoid")
        relu = attnc.attention(normalizer="relu")
        retention = attnc.attention(score_mod=retnet_decay, mask_mod=causal, normalizer="retention")
        with torch.no_grad():
            t_softmax = bench(lambda: softmax(q, k, v))
            for name, ours, baseline, mods in (
                ("sigmoid", sigmoid, compiled_sigmoid, (sigmoid_bias, None, "sigmoid")),
                ("relu", relu, compiled_relu, (None, None, "relu")),
            ):
                err = check_rows(ours, q, k, v, *mods)
                t_ours = bench(lambda ours=ours: ours(q, k, v))
                t_base = bench(lambda baseline=baseline: baseline(q, k, v))
                rows.append(
                    {
                        "seq": S,
                        "variant": name,
                        "rel_err": err,
                        "attnc_tflops": flops / t_ours * 1e-9,
                        "torch_compile_tflops": flops / t_base * 1e-9,
                        "vs_torch_compile": t_base / t_ours,
                        "vs_attnc_softmax": t_softmax / t_ours,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
            err = check_rows(retention, q, k, v, retnet_decay, causal, "retention")
            t_ours = bench(lambda: retention(q, k, v))
            row = {"seq": S, "variant": "retention", "rel_err": err, "attnc_tflops": flops * 0.5 / t_ours * 1e-9}
            try:
                from fla.ops.retention import parallel_retention  # type: ignore[import-not-found]
            except ImportError:
                row["fla"] = "not installed"
            else:
                qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))  # fla: [B, T, H, D]
                t_fla = bench(lambda: parallel_retention(qt, kt, vt))
                row["fla_tflops"] = flops * 0.5 / t_fla * 1e-9
                row["vs_fla"] = t_fla / t_ours
            rows.append(row)
            print(json.dumps(row), flush=True)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "normalizers.json").write_text(json.dumps({"B": B, "H": H, "D": D, "rows": rows}, indent=1))
    lines = [
        f"B={B} H={H} D={D} bf16, forward, TFLOP/s",
        "",
        "| S | variant | attnc | baseline | attnc/baseline | attnc/attnc-softmax | rel err |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["variant"] == "retention":
            base = f"{r['fla_tflops']:.0f} (fla)" if "fla_tflops" in r else "fla not installed"
            ratio = f"{r['vs_fla']:.2f}" if "vs_fla" in r else "–"
            lines.append(
                f"| {r['seq']} | retention | {r['attnc_tflops']:.0f} | {base} | {ratio} | – | {r['rel_err']:.1e} |"
            )
        else:
            lines.append(
                f"| {r['seq']} | {r['variant']} | {r['attnc_tflops']:.0f} | {r['torch_compile_tflops']:.0f} (compile) "
                f"| {r['vs_torch_compile']:.2f} | {r['vs_attnc_softmax']:.2f} | {r['rel_err']:.1e} |"
            )
    (out_dir / "normalizers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
