"""Packed, cached and paged sequences compiled on a CUDA device against the float64 reference
(run with `pytest -m gpu`)."""

from __future__ import annotations

import pytest
import torch

import attnc
from attnc.reference import sequences_reference

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def softcap(score, b, h, q_idx, kv_idx):
    return 30.0 * attnc.tanh(score / 30.0)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("sq", [1, 16])
@pytest.mark.parametrize("page", [0, 16, 256])
def test_cache_cuda_matches_reference(sq, page):
    """Decode (q=1) and speculative (q=16) over a ragged KV cache, contiguous or paged, GQA 8/2, bf16."""
    torch.manual_seed(0)
    batch, hq, hkv, capacity, d = 3, 8, 2, 1024, 128
    q = torch.randn(batch, hq, sq, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(batch, hkv, capacity, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(batch, hkv, capacity, d, device="cuda", dtype=torch.bfloat16)
    lens = torch.tensor([sq, 517, capacity], device="cuda", dtype=torch.int32)
    attn = attnc.attention(score_mod=softcap, mask_mod=causal)
    if page:
        per_seq = capacity // page
        order = torch.randperm(batch * per_seq, device="cuda").reshape(batch, per_seq)
        k_pages = torch.empty(batch * per_seq, page, hkv, d, device="cuda", dtype=k.dtype)  # vLLM's layout
        v_pages = torch.empty_like(k_pages)
        k_pages[order.flatten()] = k.reshape(batch, hkv, per_seq, page, d).permute(0, 2, 3, 1, 4).flatten(0, 1)
        v_pages[order.flatten()] = v.reshape(batch, hkv, per_seq, page, d).permute(0, 2, 3, 1, 4).flatten(0, 1)
        kwargs = {"block_table": order.to(torch.int32)}
        out = attn(q, k_pages.transpose(1, 2), v_pages.transpose(1, 2), cache_seqlens=lens, **kwargs)
    else:
        out = attn(q, k, v, cache_seqlens=lens)
    ref, _ = sequences_reference(q, k, v, cache_seqlens=lens, score_mod=softcap, mask_mod=causal)
    assert rel(out, ref) < 1e-2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_packed_cuda_matches_reference(dtype):
    """A packed batch of ragged causal sequences, lse too; max_seqlen given as ints."""
    torch.manual_seed(1)
    lengths = [512, 7, 1000, 129, 64]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device="cuda", dtype=torch.int32)
    q = torch.randn(1, 8, sum(lengths), 64, device="cuda", dtype=dtype)
    k = torch.randn(1, 4, sum(lengths), 64, device="cuda", dtype=dtype)
    v = torch.randn(1, 4, sum(lengths), 64, device="cuda", dtype=dtype)
    attn = attnc.attention(mask_mod=causal)
    out, lse = attn(q, k, v, return_lse=True, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=1000, max_seqlen_k=1000)
    ref, ref_lse = sequences_reference(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, mask_mod=causal)
    tol = 1e-4 if dtype == torch.float32 else 1e-2
    assert rel(out, ref) < tol
    assert rel(lse, ref_lse) < tol


def test_decode_step_captured_in_a_cuda_graph():
    """A decode step over a paged cache is captured once and replayed with new cache contents and lengths."""
    torch.manual_seed(2)
    batch, hq, hkv, page, per_seq, d = 4, 8, 2, 16, 32, 64
    q = torch.randn(batch, hq, 1, d, device="cuda", dtype=torch.bfloat16)
    k_pages = torch.randn(batch * per_seq, hkv, page, d, device="cuda", dtype=torch.bfloat16)
    v_pages = torch.randn_like(k_pages)
    table = torch.randperm(batch * per_seq, device="cuda").reshape(batch, per_seq).to(torch.int32)
    lens = torch.tensor([5, 100, 512, 333], device="cuda", dtype=torch.int32)
    attn = attnc.attention(score_mod=softcap)

    def step() -> torch.Tensor:
        return attn(q, k_pages, v_pages, cache_seqlens=lens, block_table=table)

    step()  # compile and plan outside the capture
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    for _ in range(2):
        q.copy_(torch.randn_like(q))
        k_pages.copy_(torch.randn_like(k_pages))
        lens.copy_(torch.randint(1, per_seq * page + 1, (batch,), device="cuda", dtype=torch.int32))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, step())


@pytest.mark.parametrize("page", [0, 16])
def test_warm_decode_calls_take_each_calls_tensors(page):
    """Warm decode calls (replayed through Triton's launcher) read this call's q, cache, lengths and pages,
    with splits and without; k given as v, and an input that lost its alignment, fall back to the full
    launch."""
    torch.manual_seed(3)
    batch, hq, hkv, capacity, d = 2, 8, 2, 2048, 64
    attn = attnc.attention(score_mod=softcap)
    for num_splits in (0, 1, 3):
        for call in range(4):
            q = torch.randn(batch, hq, 1, d, device="cuda", dtype=torch.bfloat16)
            # the last call: views one element in, not 16-byte aligned like the first calls' tensors
            extra = 1 if call == 3 else 0
            k = torch.randn(batch * hkv * capacity * d + extra, device="cuda", dtype=torch.bfloat16)[extra:]
            v = k if call == 2 else torch.randn_like(k)  # the third call gives k as v
            k, v = (t.view(batch, hkv, capacity, d) for t in (k, v))
            lens = torch.randint(1, capacity + 1, (batch,), device="cuda", dtype=torch.int32)
            if page:
                per_seq = capacity // page
                order = torch.randperm(batch * per_seq, device="cuda").reshape(batch, per_seq)
                k_pages = torch.empty(batch * per_seq, hkv, page, d, device="cuda", dtype=k.dtype)
                v_pages = torch.empty_like(k_pages)
                k_pages[order.flatten()] = k.reshape(batch, hkv, per_seq, page, d).transpose(1, 2).flatten(0, 1)
                v_pages[order.flatten()] = v.reshape(batch, hkv, per_seq, page, d).transpose(1, 2).flatten(0, 1)
                out, lse = attn(q, k_pages, v_pages, return_lse=True, cache_seqlens=lens,
                                block_table=order.to(torch.int32), num_splits=num_splits)  # fmt: skip
            else:
                out, lse = attn(q, k, v, return_lse=True, cache_seqlens=lens, num_splits=num_splits)
            ref, ref_lse = sequences_reference(q, k, v, cache_seqlens=lens, score_mod=softcap)
            assert rel(out, ref) < 1e-2, (num_splits, call)
            assert rel(lse, ref_lse) < 1e-3, (num_splits, call)


def test_decode_step_under_torch_compile_reduce_overhead():
    """torch.compile(mode="reduce-overhead") captures the decode step in CUDA graphs; new lengths and cache
    contents between calls give what eager gives."""
    torch.manual_seed(4)
    batch, hq, hkv, capacity, d = 2, 8, 2, 1024, 64
    q = torch.randn(batch, hq, 1, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(batch, hkv, capacity, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    lens = torch.tensor([17, capacity], device="cuda", dtype=torch.int32)
    attn = attnc.attention(score_mod=softcap)

    @torch.compile(mode="reduce-overhead", fullgraph=True)
    def step(q, k, v, lens):
        return attn(q, k, v, cache_seqlens=lens) * 1.0

    for _ in range(4):
        lens.copy_(torch.randint(1, capacity + 1, (batch,), device="cuda", dtype=torch.int32))
        k.copy_(torch.randn_like(k))
        out = step(q, k, v, lens).clone()
        ref, _ = sequences_reference(q, k, v, cache_seqlens=lens, score_mod=softcap)
        assert rel(out, ref) < 1e-2
