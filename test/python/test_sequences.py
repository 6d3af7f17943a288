"""Packed, cached and paged sequences on the CPU (Triton's interpreter) against the float64 reference."""

from __future__ import annotations

import re

import pytest
import torch

import attnc
from attnc.reference import sequences_reference

TOL = {torch.float32: 2e-4, torch.bfloat16: 3e-2, torch.float16: 5e-3}


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def window(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & (q_idx - kv_idx < 8)


def _close(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> None:
    err = (got.double() - want).abs().max().item()
    assert err <= TOL[dtype] * max(1.0, want.abs().max().item()), err


def _cache(batch=3, hq=4, hkv=2, sq=3, capacity=70, d=32, dv=16, dtype=torch.float32):
    q = torch.randn(batch, hq, sq, d, dtype=dtype)
    k = torch.randn(batch, hkv, capacity, d, dtype=dtype)
    v = torch.randn(batch, hkv, capacity, dv, dtype=dtype)
    lens = torch.tensor([sq, 41, capacity][:batch], dtype=torch.int32)
    return q, k, v, lens


def _pages(k: torch.Tensor, v: torch.Tensor, page: int, extra: int = 3):
    """The cache cut into pages, stored in a shuffled order with unused pages between."""
    batch, hkv, capacity, _ = k.shape
    per_seq = -(-capacity // page)
    pad = per_seq * page - capacity
    kp = torch.nn.functional.pad(k, (0, 0, 0, pad)).reshape(batch, hkv, per_seq, page, -1)
    vp = torch.nn.functional.pad(v, (0, 0, 0, pad)).reshape(batch, hkv, per_seq, page, -1)
    num_pages = batch * per_seq + extra
    order = torch.randperm(num_pages)[: batch * per_seq].reshape(batch, per_seq)
    k_pages = torch.randn(num_pages, hkv, page, k.shape[3], dtype=k.dtype)
    v_pages = torch.randn(num_pages, hkv, page, v.shape[3], dtype=v.dtype)
    for b in range(batch):
        for j in range(per_seq):
            k_pages[order[b, j]] = kp[b, :, j]
            v_pages[order[b, j]] = vp[b, :, j]
    return k_pages, v_pages, order.to(torch.int32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mask", [None, causal, window], ids=["none", "causal", "window"])
def test_kv_cache_matches_reference(dtype, mask):
    """Only the first cache_seqlens[b] keys are read; the Sq queries are the sequence's last positions."""
    torch.manual_seed(0)
    q, k, v, lens = _cache(dtype=dtype)
    attn = attnc.attention(mask_mod=mask)
    out, lse = attn(q, k, v, return_lse=True, cache_seqlens=lens)
    ref_out, ref_lse = sequences_reference(q, k, v, cache_seqlens=lens, mask_mod=mask)
    _close(out, ref_out, dtype)
    _close(lse, ref_lse, dtype)
    # keys past a sequence's length are never read: garbage there changes nothing
    k2, v2 = k.clone(), v.clone()
    k2[0, :, int(lens[0]) :] = float("nan")
    v2[1, :, int(lens[1]) :] = float("inf")
    assert torch.equal(attn(q, k2, v2, cache_seqlens=lens), out)


@pytest.mark.parametrize("page", [16, 32, 24, 64])
def test_paged_cache_matches_contiguous(page):
    """Pages in a shuffled order (any page size) give the contiguous cache's answer; the mods see logical
    positions and the sequence's index."""
    torch.manual_seed(1)
    q, k, v, lens = _cache(dtype=torch.float32)
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625])
    bias = torch.randn(3)

    def alibi(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx) + bias[b]

    attn = attnc.attention(score_mod=alibi, mask_mod=causal)
    k_pages, v_pages, table = _pages(k, v, page)
    out = attn(q, k_pages, v_pages, cache_seqlens=lens, block_table=table)
    (ref_out, _) = sequences_reference(q, k, v, cache_seqlens=lens, score_mod=alibi, mask_mod=causal)
    _close(out, ref_out, torch.float32)
    # a vLLM/FlashAttention cache [num_pages, page, Hkv, D] passes as a transposed view
    vllm_k = k_pages.transpose(1, 2).contiguous().transpose(1, 2)
    vllm_v = v_pages.transpose(1, 2).contiguous().transpose(1, 2)
    assert torch.equal(attn(q, vllm_k, vllm_v, cache_seqlens=lens, block_table=table), out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_packed_sequences_match_reference(dtype):
    """Packed variable-length sequences: b is the sequence, positions are within it, bottom-right aligned
    when a sequence has fewer queries than keys."""
    torch.manual_seed(2)
    len_q, len_k = [5, 1, 33, 0, 17], [5, 9, 40, 3, 17]
    cu_q = torch.tensor([0, *torch.tensor(len_q).cumsum(0).tolist()], dtype=torch.int32)
    cu_k = torch.tensor([0, *torch.tensor(len_k).cumsum(0).tolist()], dtype=torch.int32)
    q = torch.randn(1, 4, sum(len_q), 32, dtype=dtype)
    k = torch.randn(1, 2, sum(len_k), 32, dtype=dtype)
    v = torch.randn(1, 2, sum(len_k), 32, dtype=dtype)
    doc_bias = torch.randn(5)

    def per_doc(score, b, h, q_idx, kv_idx):
        return score + doc_bias[b]

    attn = attnc.attention(score_mod=per_doc, mask_mod=causal)
    out, lse = attn(q, k, v, return_lse=True, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k)
    ref_out, ref_lse = sequences_reference(
        q, k, v, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, score_mod=per_doc, mask_mod=causal
    )
    _close(out, ref_out, dtype)
    _close(lse, ref_lse, dtype)
    given = attn(q, k, v, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, max_seqlen_q=33, max_seqlen_k=40)
    assert torch.equal(given, out)


@pytest.mark.parametrize("normalizer", ["sigmoid", "relu", "retention", attnc.SoftmaxWithSinks(torch.zeros(4))])
def test_kv_cache_every_normalizer(normalizer):
    """Each built-in normalizer over a KV cache, GQA and D != Dv."""
    torch.manual_seed(3)
    q, k, v, lens = _cache()
    attn = attnc.attention(mask_mod=causal, normalizer=normalizer)
    got = attn(q, k, v, return_lse=True, cache_seqlens=lens)
    got = got if isinstance(got, tuple) else (got,)
    want = sequences_reference(q, k, v, cache_seqlens=lens, mask_mod=causal, normalizer=normalizer)
    _close(got[0], want[0], torch.float32)
    if len(want) > 1 and got[1] is not None:
        _close(got[1], want[1], torch.float32)


def test_runtime_mask_over_a_cache():
    """A mask that reads a tensor (document ids over the cache's positions)."""
    torch.manual_seed(4)
    q, k, v, lens = _cache()
    doc = torch.arange(70) // 20

    def same_doc(b, h, q_idx, kv_idx):
        return doc[q_idx] == doc[kv_idx]

    attn = attnc.attention(mask_mod=same_doc)
    (ref_out, _) = sequences_reference(q, k, v, cache_seqlens=lens, mask_mod=same_doc)
    _close(attn(q, k, v, cache_seqlens=lens), ref_out, torch.float32)


def test_one_plan_serves_lengths_of_one_bucket():
    """Calls whose longest lengths round up to the same power of two reuse one plan."""
    q, k, v, _ = _cache()
    attn = attnc.attention(mask_mod=causal)
    attn(q, k, v, cache_seqlens=torch.tensor([3, 10, 20], dtype=torch.int32))
    plans = len(attn.program._plans)
    attn(q, k, v, cache_seqlens=torch.tensor([30, 3, 9], dtype=torch.int32))
    assert len(attn.program._plans) == plans


def _packed_inputs():
    q = torch.randn(1, 2, 8, 16)
    k = torch.randn(1, 2, 8, 16)
    cu = torch.tensor([0, 3, 8], dtype=torch.int32)
    return q, k, k.clone(), cu


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cu_seqlens_q": "cu", "cache_seqlens": "lens"}, ValueError, "exclude each other"),
        ({"cu_seqlens_q": "cu"}, ValueError, "need both cu_seqlens_q and cu_seqlens_k"),
        ({"cu_seqlens_q": "cu64", "cu_seqlens_k": "cu"}, TypeError, "cu_seqlens_q must be int32"),
        ({"cu_seqlens_q": "down", "cu_seqlens_k": "down"}, ValueError, "must not decrease"),
        ({"cu_seqlens_q": "short", "cu_seqlens_k": "short"}, ValueError, "must end at the number of packed rows, 8"),
        ({"cu_seqlens_q": "cu", "cu_seqlens_k": "cu", "max_seqlen_q": 4}, ValueError, "max_seqlen_q is 4"),
        ({"cu_seqlens_q": "cu", "cu_seqlens_k": "cu", "max_seqlen_k": 2.5}, TypeError, "max_seqlen_k must be"),
        ({"max_seqlen_q": 4}, ValueError, "go with cu_seqlens_q"),
        ({"cu_seqlens_q": "cu", "cu_seqlens_k": "more_q"}, ValueError, "sequence 0 has 3 queries but 1 keys"),
    ],
)
def test_bad_packed_sequences(kwargs, error, message):
    q, k, v, cu = _packed_inputs()
    values = {
        "cu": cu,
        "cu64": cu.long(),
        "down": torch.tensor([0, 5, 3, 8], dtype=torch.int32),
        "short": torch.tensor([0, 3, 7], dtype=torch.int32),
        "more_q": torch.tensor([0, 1, 8], dtype=torch.int32),
        "lens": torch.tensor([3], dtype=torch.int32),
    }
    args = {name: values[value] if isinstance(value, str) else value for name, value in kwargs.items()}
    with pytest.raises(error, match=message):
        attnc.attention()(q, k, v, **args)


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("too_long", ValueError, r"cache_seqlens must be between Sq \(3\) and the cache's capacity \(70\), but got 71"),
        ("below_sq", ValueError, r"between Sq \(3\) .* but got 2"),
        ("batch", ValueError, "cache_seqlens must have one length per sequence"),
        ("page_id", ValueError, r"block_table\[1, 2\] is page 99, outside the cache's"),
        ("table_only", ValueError, "block_table needs cache_seqlens"),
        ("device", ValueError, "cache_seqlens must be on q's device"),
    ],
)
def test_bad_caches(case, error, message):
    q, k, v, lens = _cache()
    kwargs: dict = {"cache_seqlens": lens}
    if case == "too_long":
        kwargs["cache_seqlens"] = torch.tensor([3, 71, 5], dtype=torch.int32)
    elif case == "below_sq":
        kwargs["cache_seqlens"] = torch.tensor([2, 5, 5], dtype=torch.int32)
    elif case == "batch":
        kwargs["cache_seqlens"] = lens[:2]
    elif case in ("page_id", "table_only"):
        k, v, table = _pages(k, v, 16)
        table[1, 2] = 99
        kwargs["block_table"] = table
        if case == "table_only":
            del kwargs["cache_seqlens"]
    elif case == "device":
        kwargs["cache_seqlens"] = lens.to("meta")
    with pytest.raises(error, match=message):
        attnc.attention()(q, k, v, **kwargs)


def test_sequences_under_torch_compile():
    """A decode step over a KV cache compiles whole (fullgraph) and gives the eager answer."""
    q, k, v, lens = _cache()
    attn = attnc.attention(mask_mod=causal)
    step = torch.compile(lambda q, k, v, lens: attn(q, k, v, cache_seqlens=lens), fullgraph=True)
    assert torch.equal(step(q, k, v, lens), attn(q, k, v, cache_seqlens=lens))


def test_packed_under_torch_compile_needs_max_seqlen():
    q, k, v, cu = _packed_inputs()
    attn = attnc.attention()
    step = torch.compile(lambda q, k, v, cu: attn(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu), fullgraph=True)
    with pytest.raises(Exception, match="need max_seqlen_q and max_seqlen_k as Python ints"):
        step(q, k, v, cu)
    given = torch.compile(
        lambda q, k, v, cu: attn(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=5, max_seqlen_k=5),
        fullgraph=True,
    )
    assert torch.equal(given(q, k, v, cu), attn(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu))


def _long_cache(batch=2, hq=6, hkv=2, sq=2, capacity=150, d=32, dv=16):
    torch.manual_seed(5)
    q = torch.randn(batch, hq, sq, d)
    k = torch.randn(batch, hkv, capacity, d)
    v = torch.randn(batch, hkv, capacity, dv)
    lens = torch.tensor([capacity, 77][:batch], dtype=torch.int32)
    return q, k, v, lens


@pytest.mark.parametrize("splits", [1, 3, 7])
@pytest.mark.parametrize(
    "normalizer", ["softmax", "sigmoid", "relu", "retention", attnc.SoftmaxWithSinks(torch.linspace(-1, 1, 6))]
)
def test_split_decoding_matches_reference(splits, normalizer):
    """Each sequence's keys split 1, 3 or 7 ways, merged by the normalizer's merge region; GQA 6/2 with the
    query heads packed, D != Dv, a score_mod reading h."""
    q, k, v, lens = _long_cache()

    def head_bias(score, b, h, q_idx, kv_idx):
        return score + 0.1 * h

    attn = attnc.attention(score_mod=head_bias, mask_mod=causal, normalizer=normalizer)
    got = attn(q, k, v, return_lse=True, cache_seqlens=lens, num_splits=splits)
    got = got if isinstance(got, tuple) else (got,)
    want = sequences_reference(q, k, v, cache_seqlens=lens, score_mod=head_bias, mask_mod=causal, normalizer=normalizer)
    _close(got[0], want[0], torch.float32)
    if len(want) > 1 and got[1] is not None:
        _close(got[1], want[1], torch.float32)


@pytest.mark.parametrize("splits", [1, 4])
def test_split_window_over_a_long_paged_cache(splits):
    """A sliding window over a long paged cache: most key blocks are empty and skipped, in every split."""
    q, k, v, lens = _long_cache()
    k_pages, v_pages, table = _pages(k, v, 16)
    attn = attnc.attention(mask_mod=window)
    out = attn(q, k_pages, v_pages, cache_seqlens=lens, block_table=table, num_splits=splits)
    (want, _) = sequences_reference(q, k, v, cache_seqlens=lens, mask_mod=window)
    _close(out, want, torch.float32)


def test_split_forms_in_the_ir():
    """attn-split adds the merge region over a KV cache (not for dense attention); the split forward and the
    combine kernel appear beside the unsplit forward."""
    from attnc.runtime.attention import Signature

    attn = attnc.attention(mask_mod=causal)
    cached = attn.program.compile(Signature("float32", 4, 2, 32, 32, 0.1, "cache", 0), "cpu")
    assert "merge {" in cached.stages["flash"] and "pack_gqa" in cached.stages["flash"]
    kernels = re.findall(r"^def (\w+)\(", cached.stages["triton"], re.M)
    assert kernels == ["attention_fwd", "attention_fwd_split", "attention_combine"]
    dense = attn.program.compile(Signature("float32", 4, 2, 32, 32, 0.1), "cpu")
    assert "merge {" not in dense.stages["flash"]


def test_num_splits_is_checked():
    q, k, v, lens = _cache()
    with pytest.raises(TypeError, match="num_splits must be a non-negative int"):
        attnc.attention()(q, k, v, cache_seqlens=lens, num_splits=-1)
    with pytest.raises(ValueError, match="num_splits splits the keys of a KV cache"):
        attnc.attention()(q, k, v, num_splits=2)


def test_strided_lengths_are_refused():
    """The kernels read lengths and offsets at b and b + 1: a strided metadata tensor is an error, never a
    read of the wrong elements."""
    q, k, v, lens = _cache()
    pairs = torch.stack([lens, lens], dim=1)
    with pytest.raises(ValueError, match="cache_seqlens must be contiguous, but has stride 2"):
        attnc.attention()(q, k, v, cache_seqlens=pairs[:, 0])
    with pytest.raises(ValueError, match="cache_seqlens must be contiguous, but has stride 0"):
        attnc.attention()(q, k, v, cache_seqlens=torch.tensor([40], dtype=torch.int32).expand(3))


def test_additive_normalizer_with_a_nonzero_start_runs_unsplit():
    """A sum that starts at 1 would be counted once per split: attn-split gives it no merge, so it runs unsplit
    and stays exact with num_splits=3."""

    class Offset(attnc.Normalizer):
        name = "offset_sum"
        state = {"d": 1.0}
        stats = ()

        def update(self, scores, state):
            p = attnc.exp(scores - 4.0)
            return p, {"d": state["d"] + attnc.row_sum(p)}, 1.0

        def finalize(self, acc, state):
            return acc / state["d"], {}

    q, k, v, lens = _long_cache()
    attn = attnc.attention(mask_mod=causal, normalizer=Offset())
    (want,) = sequences_reference(q, k, v, cache_seqlens=lens, mask_mod=causal, normalizer=Offset())
    _close(attn(q, k, v, cache_seqlens=lens, num_splits=3), want, torch.float32)


def test_num_splits_with_dense_or_packed_inputs():
    """num_splits=1 on dense inputs is no split (also when training); more than 1 needs a KV cache."""
    q, k, v, cu = _packed_inputs()
    dense = attnc.attention()
    qg = q.clone().requires_grad_()
    dense(qg, k, v, num_splits=1).sum().backward()
    assert qg.grad is not None
    with pytest.raises(ValueError, match="num_splits splits the keys of a KV cache"):
        dense(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, num_splits=4)
    with pytest.raises(TypeError, match="num_splits must be a non-negative int"):
        dense(q, k, v, num_splits=[2])


class _RunningMaxScale(attnc.Normalizer):
    """out = Σ_j s_j v_j / max(1, max_j s_j): its state is a running max that alpha never rescales, a form
    attn-split cannot read; `merge` says how two key ranges combine."""

    name = "running_max_scale"
    state = {"top": 1.0}
    stats = ("top",)
    masked_score = 0.0

    def update(self, scores, state):
        return scores, {"top": attnc.maximum(state["top"], attnc.row_max(scores))}, 1.0

    def finalize(self, acc, state):
        return acc / state["top"], {"top": state["top"]}


class _Mergeable(_RunningMaxScale):
    name = "running_max_scale_mergeable"

    def merge(self, a, b):
        return 1.0, 1.0, {"top": attnc.maximum(a["top"], b["top"])}


@pytest.mark.parametrize("normalizer", [_RunningMaxScale(), _Mergeable()], ids=["no-merge", "merge"])
def test_user_merge_splits_decoding(normalizer):
    """A normalizer attn-split cannot read runs unsplit; with its own merge it splits, and both give the
    reference's answer."""
    from attnc.runtime.attention import Signature

    q, k, v, lens = _long_cache()
    attn = attnc.attention(mask_mod=causal, normalizer=normalizer)
    out, top = attn(q, k, v, return_lse=True, cache_seqlens=lens, num_splits=3)
    want, want_top = sequences_reference(q, k, v, cache_seqlens=lens, mask_mod=causal, normalizer=normalizer)
    _close(out, want, torch.float32)
    _close(top, want_top, torch.float32)
    compiled = attn.program.compile(Signature("float32", 6, 2, 32, 16, 0.1, "cache", 0), "cpu")
    assert bool(compiled.info.split_forward) == isinstance(normalizer, _Mergeable)


def test_user_merge_must_return_three_values():
    class Bad(_RunningMaxScale):
        def merge(self, a, b):
            return {"top": a["top"]}

    with pytest.raises(attnc.TraceError, match=r"merge must return \(scale_a, scale_b, merged_state\)"):
        attnc.attention(normalizer=Bad())


def test_one_page_id_per_key_block_when_blocks_fit_in_pages():
    """Pages of a multiple of BLOCK_N: one page id per key block, shared by K and V; smaller pages: one per key.
    Each of the two key loops (blocks the mask keeps whole, blocks it cuts) loads them once."""
    from attnc.runtime.attention import Signature

    attn = attnc.attention(mask_mod=causal)
    whole = attn.program.compile(Signature("float32", 4, 2, 32, 32, 0.1, "paged", 64), "cpu").stages["triton"]
    forward = whole[whole.index("def attention_fwd(") : whole.index("def attention_fwd_split(")]
    assert forward.count("tl.load(block_table_ptr") == 2 and "page_id = tl.load(block_table_ptr + " in forward
    small = attn.program.compile(Signature("float32", 4, 2, 32, 32, 0.1, "paged", 16), "cpu").stages["triton"]
    forward = small[small.index("def attention_fwd(") : small.index("def attention_fwd_split(")]
    assert forward.count("tl.load(block_table_ptr") == 2 and "mask=in_range" in forward


def test_a_paged_cache_without_pages_is_refused():
    q, k, v, lens = _cache()
    with pytest.raises(ValueError, match="a paged cache needs at least one page"):
        attnc.attention()(
            q, k[:0, :, :16], v[:0, :, :16], cache_seqlens=lens, block_table=torch.zeros(3, 1, dtype=torch.int32)
        )


_WRONG_OFFSETS = """
import torch, attnc
from attnc.runtime.sequences import Sequences
q, k, v = (torch.randn(1, 2, 40, 16) for _ in range(3))
attn = attnc.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx >= kv_idx)
for wrong in ([-2**31, 0, 40], [0, -2**31, 40], [0, 2**31 - 1, 40], [0, 30, 20]):
    cu = torch.tensor(wrong, dtype=torch.int32)
    out, _ = attn.program.forward(q, k, v, None, Sequences("packed", (cu, cu), 2, 20, 20))
print("ran")
"""


def test_wrong_offsets_on_the_device_stay_inside_the_tensors():
    """cu_seqlens are not read on the host on CUDA (no sync): offsets far outside the rows, as a corrupt
    tensor may hold, must not send a program outside q, k, v or out (the interpreter crashed reading there
    before the slots clamped them). Run apart: a read outside the tensors may kill the process."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WRONG_OFFSETS], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "ran" in done.stdout, done.stderr[-2000:]
