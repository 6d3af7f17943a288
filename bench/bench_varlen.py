"""Packed variable-length prefill, causal, against SDPA on jagged nested tensors and FlexAttention with a
document mask, side by side in one process.

    python bench/bench_varlen.py [--out bench/varlen-h200.json]

bf16, H=32, D=128. Two packs: 16 sequences of 512, and a skewed mix (one long sequence among short ones).
attnc runs `attn(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=m, max_seqlen_k=m)`; SDPA runs
`scaled_dot_product_attention(is_causal=True)` on `torch.nested` jagged tensors; Flex runs the packed
[1, H, total, D] tensors with a block mask from the document ids (built once, outside the timing).
Forward and forward+backward; `triton.testing.do_bench` medians; attnc's output is checked against SDPA's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import triton.testing
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import attnc

H, D = 32, 128
PACKS = {"16x512": [512] * 16, "skewed": [4096, 1024, 512, 256, 256, 128, 64, 64, 32, 16] + [100] * 12}


def bench(fn: Callable[[], object]) -> float:
    fn()
    return float(triton.testing.do_bench(fn, warmup=10, rep=100, return_mode="median"))


def run_pack(name: str, lengths: list[int]) -> dict[str, object]:
    torch.manual_seed(0)
    total, longest = sum(lengths), max(lengths)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device="cuda", dtype=torch.int32)
    q, k, v = (torch.randn(1, H, total, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    dout = torch.randn(1, H, total, D, device="cuda", dtype=torch.bfloat16)
    attn = attnc.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx >= kv_idx)

    def ours() -> torch.Tensor:
        return attn(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=longest, max_seqlen_k=longest)

    offsets = cu.long()

    def jagged(t: torch.Tensor) -> torch.Tensor:  # [1, H, total, D] → nested [N, H, j, D] (a view)
        flat = t[0].transpose(0, 1)  # [total, H, D]
        return torch.nested.nested_tensor_from_jagged(flat, offsets).transpose(1, 2)

    def sdpa() -> torch.Tensor:
        out = F.scaled_dot_product_attention(jagged(q), jagged(k), jagged(v), is_causal=True)
        return out.transpose(1, 2).values().transpose(0, 1).unsqueeze(0)

    doc = torch.repeat_interleave(torch.arange(len(lengths), device="cuda"), torch.tensor(lengths, device="cuda"))

    def document_causal(b, h, q_idx, kv_idx):
        return (doc[q_idx] == doc[kv_idx]) & (q_idx >= kv_idx)

    block_mask = create_block_mask(document_causal, None, None, total, total, device="cuda")
    flex_compiled = torch.compile(flex_attention, dynamic=False)

    def flex() -> torch.Tensor:
        return flex_compiled(q, k, v, block_mask=block_mask)

    row: dict[str, object] = {"pack": name, "sequences": len(lengths), "total": total}
    reference = None
    for label, fn in (("sdpa_jagged", sdpa), ("flex", flex), ("attnc", ours)):
        try:
            with torch.no_grad():
                out = fn()
            if reference is None:
                reference = out
            else:
                row[f"{label}_max_err"] = round(float((out.float() - reference.float()).abs().max()), 4)
            with torch.no_grad():
                row[f"{label}_fwd_ms"] = round(bench(fn), 4)

            def both(fn=fn) -> None:
                fn().backward(dout)

            row[f"{label}_fwd_bwd_ms"] = round(bench(both), 4)
        except Exception as e:  # a peer that does not run this pack
            row[f"{label}_error"] = f"{type(e).__name__}: {str(e)[:160]}"
    for peer in ("sdpa_jagged", "flex"):
        for kind in ("fwd", "fwd_bwd"):
            if f"{peer}_{kind}_ms" in row and f"attnc_{kind}_ms" in row:
                row[f"attnc_{kind}_vs_{peer}"] = round(row[f"{peer}_{kind}_ms"] / row[f"attnc_{kind}_ms"], 3)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    for name, lengths in PACKS.items():
        row = run_pack(name, lengths)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out is not None:
        args.out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
