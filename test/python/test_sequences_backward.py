"""Gradients through packed sequences and a KV cache (CPU, interpreter) against float64 autograd through
`sequences_reference`."""

from __future__ import annotations

import pytest
import torch

import attnc
from attnc.reference import sequences_reference
from attnc.runtime.attention import Signature
from attnc.runtime.targets import Target, cross_compile

TOL = {torch.float32: 1e-4, torch.bfloat16: 2e-2}
LEN_Q = [5, 1, 33, 0, 17, 2]  # ragged, one sequence with fewer queries than keys, one without queries
LEN_K = [5, 9, 40, 3, 17, 2]


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def window(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & (q_idx - kv_idx < 8)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def _cu(lengths: list[int]) -> torch.Tensor:
    return torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)


def _packed(dtype: torch.dtype, hq: int = 4, hkv: int = 2, d: int = 32, dv: int = 16):
    q = torch.randn(1, hq, sum(LEN_Q), d, dtype=dtype, requires_grad=True)
    k = torch.randn(1, hkv, sum(LEN_K), d, dtype=dtype, requires_grad=True)
    v = torch.randn(1, hkv, sum(LEN_K), dv, dtype=dtype, requires_grad=True)
    return q, k, v, {"cu_seqlens_q": _cu(LEN_Q), "cu_seqlens_k": _cu(LEN_K)}


def _lse_loss(lse: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A loss on the finite logsumexps (a row that sees no key has −inf)."""
    return (lse.masked_fill(torch.isinf(lse), 0) * weight).sum()


def check_grads(attn, q, k, v, layout, dtype, extra=(), with_lse=False, **reference):
    """dq, dk, dv and the gradients of `extra` (captured tensors) against autograd through the float64
    reference, for a loss on out (and on lse with `with_lse`)."""
    got = attn(q, k, v, return_lse=with_lse, **layout)
    out, lse = got if with_lse else (got, None)
    dout = torch.randn_like(out)
    dlse = torch.randn(q.shape[:3])
    loss = (out * dout).sum() + (_lse_loss(lse, dlse) if lse is not None else 0)
    grads = torch.autograd.grad(loss, [q, k, v, *extra])
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = sequences_reference(q64, k64, v64, **layout, **reference)
    ref_loss = (ref[0] * dout.double()).sum() + (_lse_loss(ref[1], dlse) if with_lse else 0)
    want = torch.autograd.grad(ref_loss, [q64, k64, v64, *extra])
    for name, g, w in zip(["dq", "dk", "dv", *[f"d{i}" for i in range(len(extra))]], grads, want):
        assert not torch.isnan(g).any(), name
        assert g.dtype == (dtype if name in ("dq", "dk", "dv") else w.dtype), name
        assert rel(g, w) < TOL[dtype], (name, rel(g, w))
    return grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_gradients_match_autograd(dtype):
    """Ragged packed sequences (len_q < len_k, an empty one), causal, GQA, D != Dv, and a per-sequence slope
    read at b that gets its gradient."""
    torch.manual_seed(0)
    q, k, v, layout = _packed(dtype)
    slopes = torch.rand(len(LEN_Q), requires_grad=True)

    def per_doc(score, b, h, q_idx, kv_idx):
        return score + slopes[b] * (kv_idx - q_idx) * 0.1

    attn = attnc.attention(score_mod=per_doc, mask_mod=causal)
    check_grads(attn, q, k, v, layout, dtype, (slopes,), score_mod=per_doc, mask_mod=causal)


def wide_window(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & (q_idx - kv_idx < 72)


@pytest.mark.parametrize("mask", [causal, wide_window, None], ids=["causal", "window", "none"])
def test_packed_whole_blocks_run_unmasked(mask):
    """Sequences over two 32-row tiles (len_q < len_k for some, partial last blocks, an empty one): the whole
    blocks run unmasked, also against a program's partial block (causal: a run from the first block; a
    72-wide window, which keeps a whole 32x32 tile only next to the diagonal: cut blocks before the run and
    after it; no mask: the full ones), the others masked; a slope read at b gets its gradient from both."""
    torch.manual_seed(7)
    len_q, len_k = [100, 70, 0, 97, 5], [100, 83, 4, 130, 9]
    q = torch.randn(1, 2, sum(len_q), 16, requires_grad=True)
    k = torch.randn(1, 1, sum(len_k), 16, requires_grad=True)
    v = torch.randn(1, 1, sum(len_k), 16, requires_grad=True)
    layout = {"cu_seqlens_q": _cu(len_q), "cu_seqlens_k": _cu(len_k)}
    slopes = torch.rand(len(len_q), requires_grad=True)

    def per_doc(score, b, h, q_idx, kv_idx):
        return score + slopes[b] * (kv_idx - q_idx) * 0.05

    attn = attnc.attention(score_mod=per_doc, mask_mod=mask)
    check_grads(attn, q, k, v, layout, torch.float32, (slopes,), with_lse=True, score_mod=per_doc, mask_mod=mask)


def test_kv_cache_whole_blocks_run_unmasked():
    """A KV cache with 64 queries (two full 32-row blocks) over lengths past them: whole blocks run unmasked
    in both kernels, keys past a sequence's length still get gradient 0."""
    torch.manual_seed(8)
    q = torch.randn(3, 2, 64, 16, requires_grad=True)
    k = torch.randn(3, 1, 140, 16, requires_grad=True)
    v = torch.randn(3, 1, 140, 16, requires_grad=True)
    lens = torch.tensor([100, 64, 131], dtype=torch.int32)
    attn = attnc.attention(mask_mod=wide_window)
    _, dk, dv = check_grads(attn, q, k, v, {"cache_seqlens": lens}, torch.float32, with_lse=True, mask_mod=wide_window)
    assert not dk[0, :, 100:].any() and not dv[1, :, 64:].any()


def test_many_packed_sequences_find_their_slots():
    """More sequences than one block of the slot search reads (BLOCK_M = 32 here), empty ones among them and
    one longer than a block: every program finds its sequence, forward and backward."""
    torch.manual_seed(5)
    lengths = torch.randint(0, 9, (37,))
    lengths[[3, 20]] = 0
    lengths[30] = 70
    len_k = (lengths + torch.randint(0, 3, (37,))).tolist()
    cu_q, cu_k = _cu(lengths.tolist()), _cu(len_k)
    q = torch.randn(1, 2, int(cu_q[-1]), 16, requires_grad=True)
    k = torch.randn(1, 1, int(cu_k[-1]), 16, requires_grad=True)
    v = torch.randn(1, 1, int(cu_k[-1]), 16, requires_grad=True)
    layout = {"cu_seqlens_q": cu_q, "cu_seqlens_k": cu_k}
    attn = attnc.attention(mask_mod=causal)
    out = attn(q, k, v, **layout)
    want, _ = sequences_reference(
        q.detach().double(), k.detach().double(), v.detach().double(), **layout, mask_mod=causal
    )
    assert rel(out, want) < TOL[torch.float32]
    check_grads(attn, q, k, v, layout, torch.float32, mask_mod=causal)


@pytest.mark.parametrize("mask", [None, window], ids=["none", "window"])
def test_packed_gradients_through_the_logsumexp(mask):
    """A loss on out and on lse (return_lse): the gradient reaching lse reaches q and k; a sliding window
    skips the blocks it empties."""
    torch.manual_seed(1)
    q, k, v, layout = _packed(torch.float32, hq=2, hkv=2, d=16, dv=16)
    attn = attnc.attention(mask_mod=mask)
    check_grads(attn, q, k, v, layout, torch.float32, with_lse=True, mask_mod=mask)


def test_packed_lse_alone_has_gradients():
    """A loss on lse alone (out unused) still differentiates q and k; v gets 0."""
    torch.manual_seed(2)
    q, k, v, layout = _packed(torch.float32, d=16)
    _, lse = attnc.attention(mask_mod=causal)(q, k, v, return_lse=True, **layout)
    dq, dk, dv = torch.autograd.grad(_lse_loss(lse, torch.ones(())), [q, k, v])
    q64, k64 = (t.detach().double().requires_grad_() for t in (q, k))
    _, ref = sequences_reference(q64, k64, v.detach().double(), **layout, mask_mod=causal)
    want_q, want_k = torch.autograd.grad(_lse_loss(ref, torch.ones(())), [q64, k64])
    assert rel(dq, want_q) < 1e-4 and rel(dk, want_k) < 1e-4
    assert torch.equal(dv, torch.zeros_like(dv))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_sigmoid_gradients(dtype):
    """An elementwise normalizer (sigmoid) over packed sequences: no statistic, weights recomputed."""
    torch.manual_seed(3)
    q, k, v, layout = _packed(dtype)

    def shifted(score, b, h, q_idx, kv_idx):
        return score - 2.0

    attn = attnc.attention(score_mod=shifted, mask_mod=causal, normalizer="sigmoid")
    check_grads(attn, q, k, v, layout, dtype, score_mod=shifted, mask_mod=causal, normalizer="sigmoid")


def test_packed_sink_gradients():
    """Sinks over packed sequences: the sink logits' gradient goes through each row's logsumexp."""
    torch.manual_seed(4)
    q, k, v, layout = _packed(torch.float32, d=16)
    sinks = torch.randn(4, requires_grad=True)
    norm = attnc.SoftmaxWithSinks(sinks)
    attn = attnc.attention(mask_mod=causal, normalizer=norm)
    check_grads(attn, q, k, v, layout, torch.float32, (sinks,), mask_mod=causal, normalizer=norm)


def test_kv_cache_gradients():
    """A contiguous KV cache: the queries are each sequence's last positions, and keys past its length
    get gradient 0."""
    torch.manual_seed(5)
    q = torch.randn(3, 4, 3, 32, requires_grad=True)
    k = torch.randn(3, 2, 50, 32, requires_grad=True)
    v = torch.randn(3, 2, 50, 16, requires_grad=True)
    lens = torch.tensor([3, 29, 50], dtype=torch.int32)
    attn = attnc.attention(mask_mod=causal)
    _, dk, dv = check_grads(attn, q, k, v, {"cache_seqlens": lens}, torch.float32, with_lse=True, mask_mod=causal)
    assert not dk[0, :, 3:].any() and not dv[1, :, 29:].any()


def test_packed_backward_under_torch_compile():
    """out.sum().backward() through a torch.compile(fullgraph=True) function gives the eager gradients."""
    torch.manual_seed(6)
    q, k, v, layout = _packed(torch.float32, d=16)
    bias = torch.randn(len(LEN_Q), requires_grad=True)

    def per_doc(score, b, h, q_idx, kv_idx):
        return score + bias[b]

    attn = attnc.attention(score_mod=per_doc, mask_mod=causal)

    def loss(q, k, v, cu_q, cu_k):
        out, lse = attn(q, k, v, return_lse=True, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, max_seqlen_q=33,
                        max_seqlen_k=40)  # fmt: skip
        return out.sum() + lse.clamp_min(-10).sum()

    compiled = torch.compile(loss, fullgraph=True)
    compiled(q, k, v, layout["cu_seqlens_q"], layout["cu_seqlens_k"]).backward()
    got = [t.grad.clone() for t in (q, k, v, bias)]
    for t in (q, k, v, bias):
        t.grad = None
    loss(q, k, v, layout["cu_seqlens_q"], layout["cu_seqlens_k"]).backward()
    for g, t in zip(got, (q, k, v, bias)):
        assert t.grad is not None and torch.allclose(g, t.grad, rtol=1e-5, atol=1e-6)


def test_paged_backward_is_refused_clearly():
    """A paged cache has no backward: a clear error, never a wrong gradient."""
    q = torch.randn(2, 2, 1, 16, requires_grad=True)
    pages = torch.randn(4, 2, 16, 16)
    table = torch.tensor([[0, 1], [2, 3]], dtype=torch.int32)
    lens = torch.tensor([20, 5], dtype=torch.int32)
    with pytest.raises(NotImplementedError, match="backward of attention over a paged KV cache"):
        attnc.attention()(q, pages, pages, cache_seqlens=lens, block_table=table)


def test_packed_backward_cross_compiles_for_sm90():
    """Both packed backward kernels compile for sm_90 on this machine, with Hopper's wgmma."""
    bias = torch.randn(8)

    def per_doc(score, b, h, q_idx, kv_idx):
        return score + bias[b]

    program = attnc.attention(score_mod=per_doc, mask_mod=causal).program
    compiled = program.compile(Signature("bfloat16", 8, 2, 128, 128, 0.125, "packed"), "cuda:90", backward=True)
    info = compiled.info
    for kernel, (_, _, warps, stages) in ((info.backward_dq, info.dq_config), (info.backward_dkdv, info.dkdv_config)):
        fn = getattr(compiled.kernels, kernel)
        stages_ = cross_compile(
            fn, info.signatures[kernel], info.constexprs[kernel], Target.parse("cuda:90"), warps, stages
        )
        assert stages_["cubin"] and "wgmma" in str(stages_["ptx"]), kernel
