"""Every launch configuration of the linear-attention forward kernels, timed: which ones the tuner's
candidate lists should hold.

python bench/probe_configs.py --gates scalar,vector [--kernels chunk_state,...]   # H200: bf16, B=8, H=16, T=4096, K=V=128

It widens `attnc.runtime.linear.CANDIDATES` to a grid per kernel, runs one forward per gate (the
tuner then times every configuration of the grid) and prints each kernel's configurations,
fastest first: (BLOCK_K, BLOCK_V, warps, stages) and the median ms of one launch.
"""

from __future__ import annotations

import argparse
import itertools

import torch
import torch.nn.functional as F
import triton.testing

import attnc
from attnc.runtime import linear

WIDE = {
    "chunk_state": list(itertools.product((32, 64), (32, 64), (1, 2, 4, 8), (2, 3, 4)))
    + [(bk, bv, w, st) for bk, bv in ((64, 128), (128, 64), (128, 128)) for w in (4, 8) for st in (2, 3)],
    "chunk_output": list(itertools.product((32, 64, 128), (64, 128), (4, 8), (2, 3, 4)))
    + [(64, 32, 4, 2), (64, 32, 4, 3)],
    "chunk_scores": list(itertools.product((0,), (0,), (1, 2, 4, 8), (1, 2, 3))),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gates", default="scalar,vector")
    ap.add_argument("--top", type=int, default=8, help="configurations printed per kernel")
    ap.add_argument("--kernels", default=",".join(WIDE), help="the kernels to widen (the others keep their lists)")
    args = ap.parse_args()

    B, H, T, K = 8, 16, 4096, 128
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, T, K, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    gates = {
        "head": torch.log(1 - 2.0 ** (-5.0 - torch.arange(H, dtype=torch.float32, device="cuda"))),
        "scalar": F.logsigmoid(torch.randn(B, H, T, device="cuda")) / 16,
        "vector": F.logsigmoid(torch.randn(B, H, T, K, device="cuda")) / 16,
    }
    timings: dict[str, list[tuple[float, tuple[int, ...]]]] = {}
    current = [""]
    plain_bench = triton.testing.do_bench
    plain_tune = linear._tune

    def logged_bench(fn, *a, **kw):
        ms = float(plain_bench(fn, *a, **kw))
        bk, bv, warps, stages = fn.__defaults__[1:]
        timings.setdefault(current[0], []).append((ms, (bk, bv, warps, stages)))
        return ms

    def logged_tune(compiled, which, *a, **kw):
        current[0] = f"{compiled.spec.gate} {which}"
        return plain_tune(compiled, which, *a, **kw)

    linear.CANDIDATES.update({name: WIDE[name] for name in args.kernels.split(",")})
    linear._stored = lambda key: None  # time every configuration, whatever an earlier run stored
    linear._tune = logged_tune
    triton.testing.do_bench = logged_bench
    try:
        for gate in args.gates.split(","):
            attnc.linear_attention(gate=gate)(q, k, v, g=gates[gate])
            torch.cuda.synchronize()
    finally:
        triton.testing.do_bench = plain_bench
        linear._tune = plain_tune
    for name, rows in timings.items():
        rows.sort()
        print(name, " ".join(f"{c}:{ms:.4f}" for ms, c in rows[: args.top]))


if __name__ == "__main__":
    main()
