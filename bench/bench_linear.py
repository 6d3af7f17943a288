"""Linear attention speed of attnc against flash-linear-attention (fla-core), side by side in one process.

    python bench/bench_linear.py --out DIR      # H200: bf16, B=8, H=16, T=4096, K=V=128

Three variants, each against what a user would otherwise pick: RetNet (gate "head",
`fla.ops.retention.chunk_retention`), simple GLA / Mamba2-SSD (gate "scalar",
`fla.ops.simple_gla.chunk_simple_gla`), GLA (gate "vector", `fla.ops.gla.chunk_gla`).
attnc takes [B, H, T, D] tensors and fla [B, T, H, D] (each its native layout, made
once, outside the timings). Forward, and forward+backward (gradients of q, k, v, g
for a fixed dO), as `triton.testing.do_bench` medians. Outputs and gradients are
checked against fla's on the same inputs first. Writes linear.json and linear.md;
ratio = attnc ms / fla ms (≤ 1.0 means attnc is at least as fast).
fla 0.6 refuses simple GLA's backward on Hopper with triton < 3.7.1 (fla#640);
`--fla-unguarded` lifts that refusal to time it anyway, its gradients compared with ours.
Needs `fla-core==0.6.0` (and `einops`) next to attnc's own dependencies.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
import triton.testing

import attnc


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def ms(fn) -> float:
    return float(triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median"))


def variants(B: int, H: int, T: int, K: int, V: int):
    """(name, attnc gate, fla function, attnc g, fla g or None) per variant."""
    from fla.ops.gla import chunk_gla
    from fla.ops.retention import chunk_retention
    from fla.ops.simple_gla import chunk_simple_gla

    dev = "cuda"
    gamma = torch.log(1 - 2.0 ** (-5.0 - torch.arange(H, dtype=torch.float32, device=dev)))  # fla's retention decays
    g_scalar = F.logsigmoid(torch.randn(B, H, T, device=dev, dtype=torch.float32)) / 16
    g_vector = F.logsigmoid(torch.randn(B, H, T, K, device=dev, dtype=torch.float32)) / 16
    return [
        ("retention (RetNet)", "head", lambda q, k, v, g: chunk_retention(q, k, v), gamma, None),
        (
            "simple GLA / Mamba2",
            "scalar",
            lambda q, k, v, g: chunk_simple_gla(q, k, v, g=g),
            g_scalar,
            g_scalar.transpose(1, 2).contiguous(),
        ),
        ("GLA", "vector", lambda q, k, v, g: chunk_gla(q, k, v, g=g), g_vector, g_vector.transpose(1, 2).contiguous()),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--only", default="", help="comma-separated gates to run (head,scalar,vector)")
    ap.add_argument("--out", default=".")
    ap.add_argument(
        "--fla-unguarded",
        action="store_true",
        help="lift fla's refusal of its gated backward on Hopper with triton < 3.7.1 (fla#640) and time it "
        "as it runs on this triton; its gradients are then compared with ours (checked against float64 on the CPU)",
    )
    args = ap.parse_args()
    if args.fla_unguarded:
        import fla.ops.common.chunk_o as fla_chunk_o

        fla_chunk_o.TRITON_ABOVE_3_7_1 = True  # the guard's condition: `not TRITON_ABOVE_3_7_1`
    B, H, T, K = args.batch, args.heads, args.seq, args.dim
    V = K
    torch.manual_seed(0)
    dtype = torch.bfloat16
    q = torch.randn(B, H, T, K, device="cuda", dtype=dtype)
    k = (torch.randn(B, H, T, K, device="cuda", dtype=dtype) * K**-0.5).to(dtype)
    v = torch.randn(B, H, T, V, device="cuda", dtype=dtype)
    do = torch.randn(B, H, T, V, device="cuda", dtype=dtype)
    tq, tk, tv, tdo = (t.transpose(1, 2).contiguous() for t in (q, k, v, do))  # fla's [B, T, H, D]
    rows = []
    only = set(filter(None, args.only.split(",")))
    for name, gate, fla_fn, g, fla_g in variants(B, H, T, K, V):
        if only and gate not in only:
            continue
        la = attnc.linear_attention(gate=gate, chunk_size=args.chunk)

        def ours(q, k, v, g, la=la):
            return la(q, k, v, g=g)[0]

        # numerics first: outputs (and gradients, where fla computes them) against fla's
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        g_leaf = g.clone().requires_grad_() if gate != "head" else g
        o = ours(*leaves, g_leaf)
        grads = torch.autograd.grad(o, leaves + ([g_leaf] if gate != "head" else []), do)
        fla_leaves = [t.clone().requires_grad_() for t in (tq, tk, tv)]
        fla_g_leaf = fla_g.clone().requires_grad_() if fla_g is not None else None
        fo = fla_fn(*fla_leaves, fla_g_leaf)
        fo = fo[0] if isinstance(fo, tuple) else fo
        errs = {"o": rel(o, fo.transpose(1, 2))}
        fla_backward_refused = None
        try:
            fla_grads = torch.autograd.grad(fo, fla_leaves + ([fla_g_leaf] if fla_g_leaf is not None else []), tdo)
        except RuntimeError as e:  # fla 0.6 refuses its gated backward on Hopper with triton < 3.7.1 (fla#640)
            fla_backward_refused = str(e).split(".")[0]
            fla_grads = ()
        for gname, a, b in zip(["dq", "dk", "dv", "dg"], grads, fla_grads):
            errs[gname] = rel(a, b.transpose(1, 2) if b.dim() >= 3 else b)

        fwd = ms(lambda: ours(q, k, v, g))
        fla_fwd = ms(lambda: fla_fn(tq, tk, tv, fla_g))
        ql, kl, vl = (t.clone().requires_grad_() for t in (q, k, v))
        gl = g.clone().requires_grad_() if gate != "head" else g
        fql, fkl, fvl = (t.clone().requires_grad_() for t in (tq, tk, tv))
        fgl = fla_g.clone().requires_grad_() if fla_g is not None else None

        def step():
            ours(ql, kl, vl, gl).backward(do)

        def fla_step():
            out = fla_fn(fql, fkl, fvl, fgl)
            (out[0] if isinstance(out, tuple) else out).backward(tdo)

        both = ms(step)
        fla_both = ms(fla_step) if fla_backward_refused is None else float("nan")
        row = {
            "variant": name,
            "gate": gate,
            "fwd_ms": fwd,
            "fla_fwd_ms": fla_fwd,
            "fwd_ratio": fwd / fla_fwd,
            "fwdbwd_ms": both,
            "fla_fwdbwd_ms": fla_both,
            "fwdbwd_ratio": both / fla_both,
            "rel_err_vs_fla": errs,
            "fla_backward_refused": fla_backward_refused,
            "fla_unguarded": args.fla_unguarded and gate == "scalar",
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "shape": {"B": B, "H": H, "T": T, "K": K, "V": V},
        "dtype": "bf16",
        "chunk": args.chunk,
        "device": torch.cuda.get_device_name(),
    }
    (out_dir / "linear.json").write_text(json.dumps({**meta, "rows": rows}, indent=1))
    lines = [
        f"## Linear attention, bf16, B={B}, H={H}, T={T}, K=V={K} ({meta['device']})",
        "",
        "| variant | attnc fwd ms | fla fwd ms | fwd ratio | attnc fwd+bwd ms | fla fwd+bwd ms | fwd+bwd ratio | max rel err vs fla |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        worst = max(r["rel_err_vs_fla"].values())
        fla_both = "refused (fla#640)" if r["fla_backward_refused"] else f"{r['fla_fwdbwd_ms']:.3f}"
        ratio = "–" if r["fla_backward_refused"] else f"{r['fwdbwd_ratio']:.2f}"
        if r["fla_unguarded"]:
            fla_both += " (guard lifted, fla#640)"
        lines.append(
            f"| {r['variant']} | {r['fwd_ms']:.3f} | {r['fla_fwd_ms']:.3f} | {r['fwd_ratio']:.2f} | "
            f"{r['fwdbwd_ms']:.3f} | {fla_both} | {ratio} | {worst:.1e} |"
        )
    (out_dir / "linear.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
