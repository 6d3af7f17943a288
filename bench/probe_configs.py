"""Every launch configuration of the linear-attention forward kernels, timed: which ones the tuner's
candidate lists should hold.

python bench/probe_configs.py --gates scalar,vector [--kernels chunk_state,...]   # H200: bf16, B=8, H=16, T=4096, K=V=128

It widens `attnc.runtime.linear_launch.CANDIDATES` to a grid per kernel, runs one forward per gate (the
tuner then times every configuration of the grid) and prints each kernel's configurations,
fastest first: (BLOCK_K, BLOCK_V, warps, stages) and the median ms of one launch.
"""

from __future__ import annotations

import argparse
import itertools

import torch
import torch.nn.functional as F
import triton.testing
from triton.runtime.errors import OutOfResources

import attnc
from attnc.runtime import linear_launch, tune

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
    plain_tuned = tune.tuned

    def logged_tuned(key, candidates, run, reset=None):
        name = f"{gate} {key.split('|')[2]}"
        for c in dict.fromkeys(candidates):
            try:
                ms = float(triton.testing.do_bench(lambda c=c: run(c), warmup=5, rep=20, return_mode="median"))
            except OutOfResources:
                continue
            timings.setdefault(name, []).append((ms, c))
        if reset is not None:
            reset()
        return min(timings[name])[1]

    linear_launch.CANDIDATES.update({name: WIDE[name] for name in args.kernels.split(",")})
    tune.tuned = logged_tuned
    try:
        for gate in args.gates.split(","):
            attnc.linear_attention(gate=gate)(q, k, v, g=gates[gate])
            torch.cuda.synchronize()
    finally:
        tune.tuned = plain_tuned
    for name, rows in timings.items():
        rows.sort()
        print(name, " ".join(f"{c}:{ms:.4f}" for ms, c in rows[: args.top]))


if __name__ == "__main__":
    main()
