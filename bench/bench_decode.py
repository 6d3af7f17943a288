"""Decoding speed over a KV cache, contiguous and paged, against cuDNN and FlashAttention-2 (through SDPA)
and FlexAttention, side by side in one process.

    python bench/bench_decode.py [--quick] [--out bench/decode-h200.json]

bf16, Hq=32, Hkv=8, D=128; every sequence of the batch holds `kv` keys (so the dense peers compute the
same thing); q=1 (decode) and q=16 (speculative, causal at the bottom right). attnc runs with
`cache_seqlens` (and `block_table` for pages of 16 and 256, shuffled), choosing its splits. Variants:
softmax, softcap (a score_mod) and gpt-oss's sinks (no peer computes them). GB/s counts
the bytes of K and V read once, against a device copy measured in the same run (read + write bytes).
`triton.testing.do_bench` medians; each attnc output is checked against cuDNN's first.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import attnc

HQ, HKV, D = 32, 8, 128
FULL = [(1, 1, 8, 32768), (1, 1, 1, 131072), (1, 1, 64, 4096), (16, 1, 8, 16384)]  # (q, _, B, kv)


def bench(fn: Callable[[], object]) -> float:
    fn()
    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def copy_ceiling() -> float:
    """GB/s of a 2 GB device-to-device copy, counting the bytes read and written."""
    src = torch.empty(2**30, dtype=torch.bfloat16, device="cuda")
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src))
    return 2 * src.numel() * 2 / ms / 1e6


def softcap(score, b, h, q_idx, kv_idx):
    return 30.0 * attnc.tanh(score / 30.0)


def flex_softcap(score, b, h, q_idx, kv_idx):
    return 30.0 * torch.tanh(score / 30.0)


def pages(k: torch.Tensor, v: torch.Tensor, page: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, hkv, length, d = k.shape
    per_seq = length // page
    order = torch.randperm(batch * per_seq, device=k.device).reshape(batch, per_seq)
    kp = torch.empty(batch * per_seq, page, hkv, d, dtype=k.dtype, device=k.device)  # vLLM's layout
    vp = torch.empty_like(kp)
    kp[order.flatten()] = k.reshape(batch, hkv, per_seq, page, d).permute(0, 2, 3, 1, 4).flatten(0, 1)
    vp[order.flatten()] = v.reshape(batch, hkv, per_seq, page, d).permute(0, 2, 3, 1, 4).flatten(0, 1)
    return kp.transpose(1, 2), vp.transpose(1, 2), order.to(torch.int32)


def run_shape(sq: int, batch: int, kv: int, variant: str, ceiling: float) -> dict[str, object]:
    torch.manual_seed(0)
    q = torch.randn(batch, HQ, sq, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(batch, HKV, kv, D, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(batch, HKV, kv, D, device="cuda", dtype=torch.bfloat16)
    lens = torch.full((batch,), kv, device="cuda", dtype=torch.int32)
    shift = kv - sq

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    mask = causal if sq > 1 else None
    score = softcap if variant == "softcap" else None
    normalizer: str | attnc.Normalizer = "softmax"
    if variant == "sinks":  # gpt-oss's sinks: no peer computes them; the row shows attnc beside its softmax
        normalizer = attnc.SoftmaxWithSinks(torch.randn(HQ, device="cuda"))
    attn = attnc.attention(score_mod=score, mask_mod=mask, normalizer=normalizer)
    row: dict[str, object] = {"q": sq, "batch": batch, "kv": kv, "variant": variant}
    gb = 2 * batch * HKV * kv * D * 2 / 1e9

    sdpa_mask = None
    if sq > 1:
        sdpa_mask = torch.arange(kv, device="cuda")[None, :] <= (torch.arange(sq, device="cuda")[:, None] + shift)
    peers: dict[str, Callable[[], torch.Tensor]] = {}
    if variant == "softmax":
        for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("fa2", SDPBackend.FLASH_ATTENTION)):

            def sdpa(backend=backend) -> torch.Tensor:
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask, enable_gqa=True)

            peers[name] = sdpa
    flex_mask = None
    if sq > 1:
        flex_mask = create_block_mask(lambda b, h, qi, ki: qi + shift >= ki, None, None, sq, kv, device="cuda")
    flex = torch.compile(flex_attention, dynamic=False)
    flex_score = flex_softcap if variant == "softcap" else None
    if variant != "sinks":
        peers["flex"] = lambda: flex(q, k, v, score_mod=flex_score, block_mask=flex_mask, enable_gqa=True)

    reference = None
    for name, fn in peers.items():
        try:
            out = fn()
            reference = out if reference is None else reference
            ms = bench(fn)
            row[f"{name}_ms"] = round(ms, 4)
        except Exception as e:  # a peer that does not run this shape
            row[f"{name}_error"] = f"{type(e).__name__}: {str(e)[:120]}"
    for label, page in (("contiguous", 0), ("paged16", 16), ("paged256", 256)):
        kp, vp, table = pages(k, v, page) if page else (k, v, None)

        def fn(kp=kp, vp=vp, table=table) -> torch.Tensor:
            return attn(q, kp, vp, cache_seqlens=lens, block_table=table)

        out = fn()
        if reference is not None:
            row[f"attnc_{label}_max_err"] = round(float((out.float() - reference.float()).abs().max()), 4)
        ms = bench(fn)
        row[f"attnc_{label}_ms"] = round(ms, 4)
        row[f"attnc_{label}_gbs"] = round(gb / ms * 1e3, 1)
        row[f"attnc_{label}_of_copy"] = round(gb / ms * 1e3 / ceiling, 3)
    best = min((row[f"{p}_ms"] for p in peers if f"{p}_ms" in row), default=None)
    if best is not None:
        row["attnc_vs_best_peer"] = round(best / row["attnc_contiguous_ms"], 3)  # >1: attnc faster
    return row


def host_time() -> float:
    """Microseconds of host time per warm decode call (B=1, 256 keys, so the GPU never holds the host back)."""
    q = torch.randn(1, HQ, 1, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, HKV, 256, D, device="cuda", dtype=torch.bfloat16)
    lens = torch.full((1,), 256, device="cuda", dtype=torch.int32)
    attn = attnc.attention()
    with torch.no_grad():
        for _ in range(50):
            attn(q, k, k, cache_seqlens=lens)
        torch.cuda.synchronize()
        n = 2000
        start = time.perf_counter()
        for _ in range(n):
            attn(q, k, k, cache_seqlens=lens)
        elapsed = time.perf_counter() - start
        torch.cuda.synchronize()
    return round(elapsed / n * 1e6, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the issue's four shapes, softmax only")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--variants", default="softmax,softcap,sinks", help="the full run's variants")
    args = ap.parse_args()
    ceiling = copy_ceiling()
    rows: list[dict[str, object]] = []
    if args.quick:
        shapes = [(sq, b, kv, "softmax") for sq, _, b, kv in FULL]
    else:
        shapes = [
            (sq, b, kv, variant)
            for variant in args.variants.split(",")
            for sq in (1, 16)
            for b in (1, 8, 64)
            for kv in (4096, 32768, 131072)
            if b * kv <= 8 * 131072
        ]
    for sq, b, kv, variant in shapes:
        row = run_shape(sq, b, kv, variant, ceiling)
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {
        "copy_ceiling_gbs": round(ceiling, 1),
        "device": torch.cuda.get_device_name(),
        "warm_decode_host_us": host_time(),
        "rows": rows,
    }
    print(json.dumps({"warm_decode_host_us": result["warm_decode_host_us"]}))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
