"""Time the backward kernels under several tile configurations, to pick attn-tile's backward defaults.

    python bench/probe_backward.py --out DIR        # H200: bf16, B=2, H=32, S=8192, D=128

Replaces the compiled variant's launch of the backward kernels (`dq_config`, `dkdv_config`,
what attn-tile chose) with each candidate in turn, varying
one kernel's configuration while the other keeps the default (the kernels are the
same; only BLOCK_M/BLOCK_N, num_warps and num_stages change) and
times the backward alone, as `bench_backward.py` does. A candidate that does not fit
(shared memory, registers) is reported as such.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
import triton.testing

import attnc
from attnc import Attention, Shape
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.targets import Target

DEFAULT = (64, 64, 4, 2)
# dQ holds BLOCK_M query rows and walks BLOCK_N keys; dK/dV holds BLOCK_N keys and walks BLOCK_M queries.
DQ = [(64, 64, 4, 2), (128, 64, 8, 2), (128, 128, 8, 1), (128, 32, 4, 3)]
DKDV = [(64, 64, 4, 2), (64, 128, 8, 2), (128, 128, 8, 1), (32, 64, 4, 3)]
# (dQ, dK/dV) launches: (block_m, block_n, num_warps, num_stages) each.
CANDIDATES = [(c, DEFAULT) for c in DQ] + [(DEFAULT, c) for c in DKDV[1:]]


def backward_variant(attn: Attention, q: torch.Tensor) -> CompiledVariant:
    """The compiled variant the backward of `attn` launches on q, k, v of q's shape (no captured tensors)."""
    b, h, s, d = q.shape
    return attn.compile(Shape(b, h, h, s, s, d, d), q.dtype, str(Target.current()), backward=True, grad_captures=())


def use(variant: CompiledVariant, dq: tuple[int, ...], dkdv: tuple[int, ...]) -> None:
    variant.info = dataclasses.replace(variant.info, dq_config=list(dq), dkdv_config=list(dkdv))


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

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    rows = []
    for name, mm in (("full", None), ("causal", causal)):
        attn = attnc.attention(mask_mod=mm)
        variant = backward_variant(attn, q)
        flops = 2.5 * 4 * B * H * S * S * D * (0.5 if mm else 1.0)
        out = attn(q, k, v)
        reference = None
        for dq, dkdv in CANDIDATES:
            use(variant, dq, dkdv)
            row = {"variant": name, "dq": dq, "dkdv": dkdv}
            try:
                grads = torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)
                if reference is None:
                    reference = grads
                row["max_rel_vs_first"] = max(
                    ((a.float() - b.float()).norm() / b.float().norm()).item() for a, b in zip(grads, reference)
                )
                ms = triton.testing.do_bench(
                    lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True),
                    warmup=25,
                    rep=100,
                    return_mode="median",
                )
                row["tflops"] = flops / ms * 1e-9
            except Exception as e:  # noqa: BLE001 - a probe reports what does not fit and goes on
                row["error"] = f"{type(e).__name__}: {str(e)[:200]}"
            rows.append(row)
            print(json.dumps(row), flush=True)
    # Where the default configuration's time goes, kernel by kernel (CUDA time of one backward).
    for name, mm in (("full", None), ("causal", causal)):
        attn = attnc.attention(mask_mod=mm)
        use(backward_variant(attn, q), DEFAULT, DEFAULT)
        out = attn(q, k, v)
        torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)
            torch.cuda.synchronize()
        totals: dict[str, float] = {}
        for event in prof.events():
            if event.device_type == torch.autograd.DeviceType.CUDA:
                totals[event.name[:60]] = totals.get(event.name[:60], 0.0) + event.device_time / 5e3
        row = {"variant": name, "kernel_ms": dict(sorted(totals.items(), key=lambda kv: -kv[1]))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "probe_backward.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
