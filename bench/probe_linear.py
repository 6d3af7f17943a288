"""Where the linear-attention forward's time goes, kernel by kernel, beside fla's (CUDA time per call).

python bench/probe_linear.py --gates head,scalar,vector [--backward]   # H200: bf16, B=8, H=16, T=4096, K=V=128
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import attnc


def kernel_ms(fn, calls: int = 10) -> dict[str, float]:
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    totals: dict[str, float] = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            name = event.name[:50]
            totals[name] = totals.get(name, 0.0) + event.device_time / 1e3 / calls
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gates", default="head,scalar")
    ap.add_argument("--backward", action="store_true", help="profile forward+backward (fla's refusal is printed)")
    args = ap.parse_args()
    from fla.ops.gla import chunk_gla
    from fla.ops.retention import chunk_retention
    from fla.ops.simple_gla import chunk_simple_gla

    B, H, T, K = 8, 16, 4096, 128
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, T, K, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    tq, tk, tv = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    gamma = torch.log(1 - 2.0 ** (-5.0 - torch.arange(H, dtype=torch.float32, device="cuda")))
    g = F.logsigmoid(torch.randn(B, H, T, device="cuda")) / 16
    tg = g.transpose(1, 2).contiguous()
    gv = F.logsigmoid(torch.randn(B, H, T, K, device="cuda")) / 16
    tgv = gv.transpose(1, 2).contiguous()
    do = torch.randn_like(v)
    tdo = do.transpose(1, 2).contiguous()
    if args.backward:
        for t in (q, k, v, tq, tk, tv, g, tg, gv, tgv):
            t.requires_grad_()

    def call(fn, out_grad):
        def run():
            out = fn()
            out = out[0] if isinstance(out, tuple) else out
            if args.backward:
                out.backward(out_grad)

        return run

    with torch.set_grad_enabled(args.backward):
        for gate in args.gates.split(","):
            la = attnc.linear_attention(gate=gate)
            gg = {"head": gamma, "scalar": g, "vector": gv}[gate]
            print(gate, "attnc", kernel_ms(call(lambda la=la, gg=gg: la(q, k, v, g=gg), do)))
            fla = {
                "head": lambda: chunk_retention(tq, tk, tv),
                "scalar": lambda: chunk_simple_gla(tq, tk, tv, g=tg),
                "vector": lambda: chunk_gla(tq, tk, tv, g=tgv),
            }[gate]
            try:
                print(gate, "fla", kernel_ms(call(fla, tdo)))
            except RuntimeError as e:  # fla 0.6 refuses its gated backward on Hopper with triton < 3.7.1
                print(gate, "fla refused:", str(e).split(".")[0])


if __name__ == "__main__":
    main()
