"""attnc.attention on CPU tensors (Triton's interpreter) against the float64 PyTorch reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import attnc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOL = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 1e-2}


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "score_mod", None), getattr(module, "mask_mod", None)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def inputs(b, hq, hkv, sq, skv, d, dv, dtype=torch.float32):
    q = torch.randn(b, hq, sq, d, dtype=dtype)
    k = torch.randn(b, hkv, skv, d, dtype=dtype)
    v = torch.randn(b, hkv, skv, dv, dtype=dtype)
    return q, k, v


def check(score_mod, mask_mod, q, k, v, scale=None):
    out, lse = attnc.attention(score_mod, mask_mod)(q, k, v, scale=scale, return_lse=True)
    ref, ref_lse = attnc.attention_reference(q, k, v, score_mod=score_mod, mask_mod=mask_mod, scale=scale)
    assert out.dtype == q.dtype and out.shape == ref.shape
    assert lse.dtype == torch.float32 and lse.shape == ref_lse.shape
    assert not torch.isnan(out).any() and not torch.isnan(lse).any()
    tol = TOL[q.dtype]
    assert rel(out, ref) < tol
    finite = torch.isfinite(ref_lse)
    assert torch.equal(torch.isfinite(lse), finite)
    if finite.any():
        assert rel(lse[finite], ref_lse[finite]) < tol
    return out, lse


@pytest.mark.parametrize(
    "example", ["plain", "causal", "softcap", "alibi", "sliding_window", "document_mask", "prefix_lm"]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_examples_match_reference(example, dtype):
    """Every example, ragged lengths (77 x 333) and GQA, against float64."""
    score_mod, mask_mod = load_example(example)
    check(score_mod, mask_mod, *inputs(1, 4, 2, 77, 333, 64, 64, dtype))


def test_attention_fp16_gqa_causal():
    """fp16 inputs, 4 query heads per kv head, a causal mask, Sq shorter than Skv."""
    score_mod, mask_mod = load_example("causal")
    check(score_mod, mask_mod, *inputs(2, 8, 2, 50, 129, 64, 64, torch.float16))


@pytest.mark.parametrize("dims", [(128, 128), (192, 128), (48, 80)])
def test_attention_head_dims(dims):
    """D = 128, D != Dv (192/128) and head dims that are not powers of two."""
    d, dv = dims
    check(None, lambda b, h, q, kv: q >= kv, *inputs(1, 2, 1, 40, 70, d, dv))


def test_attention_fully_masked_rows_give_zero_and_minus_inf():
    """Rows with no kept key: output 0, lse -inf, no NaN."""
    q, k, v = inputs(1, 2, 2, 64, 64, 64, 64)

    def late(b, h, q_idx, kv_idx):
        return kv_idx <= q_idx - 20

    out, lse = check(None, late, q, k, v)
    assert torch.equal(out[:, :, :20], torch.zeros_like(out[:, :, :20]))
    assert torch.isneginf(lse[:, :, :20]).all()


def test_attention_captured_bias_and_scalars():
    """A captured 4-d bias, a per-head vector and a 0-dim tensor, read in one score_mod."""
    b, h, sq, skv = 2, 2, 33, 45
    bias = torch.randn(b, h, sq, skv)
    slopes = torch.rand(h)
    temperature = torch.tensor(0.7)

    def mod(score, b, h, q_idx, kv_idx):
        return score * temperature + bias[b, h, q_idx, kv_idx] - slopes[h] * attnc.abs(q_idx - kv_idx)

    check(mod, None, *inputs(b, h, h, sq, skv, 32, 32))


def test_attention_captured_tensor_changes_are_seen():
    """A captured tensor is read at run time: changing it in place changes the result."""
    bias = torch.zeros(16)
    attn = attnc.attention(score_mod=lambda s, b, h, q, kv: s + bias[kv])
    q, k, v = inputs(1, 4, 4, 16, 16, 16, 16)
    first = attn(q, k, v)
    bias.copy_(torch.randn(16) * 3)
    second = attn(q, k, v)
    ref, _ = attnc.attention_reference(q, k, v, score_mod=lambda s, b, h, q, kv: s + bias[kv])
    assert rel(second, ref) < 1e-4
    assert rel(first, second) > 1e-3


def test_attention_scale_and_non_contiguous_inputs():
    """An explicit scale, and q/k/v that are transposed views of [B, S, H, D] tensors."""
    q = torch.randn(1, 37, 4, 32).transpose(1, 2)
    k = torch.randn(1, 51, 2, 32).transpose(1, 2)
    v = torch.randn(1, 51, 2, 32).transpose(1, 2)
    assert not q.is_contiguous()
    check(None, lambda b, h, qi, kv: qi >= kv, q, k, v, scale=0.3)


def test_attention_runtime_mask_depends_on_head():
    """A mask reading the head index and a captured tensor gets per-head block tables."""
    limit = torch.tensor([5, 60], dtype=torch.int32)

    def mask(b, h, q_idx, kv_idx):
        return kv_idx < limit[h]

    check(None, mask, *inputs(1, 2, 2, 40, 64, 16, 16))


def test_attention_bad_inputs_name_the_problem():
    """Rank, heads, dtypes, devices, head dims and types give errors naming the argument."""
    attn = attnc.attention()
    q, k, v = inputs(1, 4, 2, 8, 8, 16, 16)
    with pytest.raises(ValueError, match=r"q must have 4 dimensions"):
        attn(q[0], k, v)
    with pytest.raises(ValueError, match=r"q heads \(4\) must be a multiple of k/v heads \(3\)"):
        attn(q, *inputs(1, 3, 3, 8, 8, 16, 16)[1:])
    with pytest.raises(TypeError, match=r"share one dtype"):
        attn(q, k.half(), v)
    with pytest.raises(TypeError, match=r"float16, bfloat16 or float32"):
        attn(q.double(), k.double(), v.double())
    with pytest.raises(ValueError, match=r"head dim must be between 16 and 256, but got 8"):
        attn(*inputs(1, 2, 2, 8, 8, 8, 8))
    with pytest.raises(ValueError, match=r"k must have head dim 16"):
        attn(q, torch.randn(1, 2, 8, 32), v)
    with pytest.raises(ValueError, match=r"v must have 2 heads and length 8"):
        attn(q, k, torch.randn(1, 2, 9, 16))
    with pytest.raises(ValueError, match=r"one device"):
        attn(q, k.to("meta"), v)
    with pytest.raises(TypeError, match=r"k must be a torch.Tensor"):
        attn(q, k.numpy(), v)
    with pytest.raises(TypeError, match=r"scale must be a float"):
        attn(q, k, v, scale="0.5")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"scale must be finite"):
            attn(q, k, v, scale=bad)
        with pytest.raises(ValueError, match=r"scale must be finite"):
            attn(q.requires_grad_(), k, v, scale=bad)  # NaN must not stand for the default on the autograd path
        q = q.detach()


def test_attention_captured_tensor_on_another_device():
    """A captured tensor on another device than q is an error naming it."""
    slopes = torch.ones(4, device="meta")
    attn = attnc.attention(score_mod=lambda s, b, h, q, kv: s + slopes[h])
    with pytest.raises(ValueError, match=r"captured tensor 0 \(shape \(4,\)\) is on meta, but q is on cpu"):
        attn(*inputs(1, 4, 2, 8, 8, 16, 16))


def test_attention_untraceable_mod_points_at_the_line():
    """A Python `if` on a traced value raises TraceError naming this file."""

    def branchy(score, b, h, q_idx, kv_idx):
        if score > 0:
            return score
        return -score

    with pytest.raises(attnc.TraceError, match=r"test_attention\.py:\d+"):
        attnc.attention(score_mod=branchy)(*inputs(1, 2, 2, 8, 8, 16, 16))


def test_attention_backward_that_cannot_be_derived_is_refused_not_ignored():
    """Inputs that need gradients through a normalizer whose backward cannot be derived raise, naming the
    part; they never detach silently, and the forward still runs without grad."""

    class RunningMaxScaled(attnc.Normalizer):
        state = {"m": float("-inf")}

        def update(self, scores, state):
            m_new = attnc.maximum(state["m"], attnc.row_max(scores))
            return attnc.exp(scores - m_new), {"m": m_new}, attnc.exp(state["m"] - m_new)

        def finalize(self, acc, state):
            return acc, {}

    q, k, v = inputs(1, 2, 2, 8, 8, 16, 16)
    attn = attnc.attention(normalizer=RunningMaxScaled())
    with pytest.raises(NotImplementedError, match=r"its update's probabilities read the running state"):
        attn(q.requires_grad_(), k, v)
    with torch.no_grad():
        attn(q, k, v)


def test_attention_cross_compiles_for_every_target():
    """The attention kernels build binaries for cuda:80/90 and hip:gfx90a/gfx942; sm_90 uses wgmma."""
    score_mod, mask_mod = load_example("softcap")
    shape = attnc.Shape(2, 8, 2, 1024, 1024, 128, 128)
    for target, binary in (
        ("cuda:80", "cubin"),
        ("cuda:90", "cubin"),
        ("hip:gfx90a", "hsaco"),
        ("hip:gfx942", "hsaco"),
    ):
        compiled = attnc.compile(score_mod, mask_mod, shape=shape, dtype=torch.bfloat16, target=target)
        assert len(compiled.asm(binary)) > 1000
        if target == "cuda:90":
            ttgir = compiled.asm("ttgir")
            assert "ttng.warp_group_dot" in ttgir
            assert "wgmma" in compiled.asm("ptx")


def test_attention_bf16_capture_updates_are_seen_on_cpu():
    """A bf16 captured tensor updated in place is read anew at the next call."""
    bias = torch.zeros(2, dtype=torch.bfloat16)

    def mod(s, b, h, q_idx, kv_idx):
        return s + bias[h] * kv_idx

    attn = attnc.attention(score_mod=mod)
    q, k, v = inputs(1, 2, 2, 32, 32, 16, 16, torch.bfloat16)
    attn(q, k, v)
    bias.fill_(-0.5)
    out = attn(q, k, v)
    ref, _ = attnc.attention_reference(q, k, v, score_mod=mod)
    assert rel(out, ref) < 1e-2


def test_attention_first_calls_from_threads():
    """Several threads compiling their first shapes at once all get right answers."""
    import threading

    attn = attnc.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx >= kv_idx)
    errors: list[BaseException] = []

    def call(seq: int) -> None:
        try:
            q, k, v = inputs(1, 2, 2, seq, seq, 16, 16)
            out = attn(q, k, v)
            ref, _ = attnc.attention_reference(q, k, v, mask_mod=lambda b, h, qi, kv: qi >= kv)
            assert rel(out, ref) < 1e-4
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=call, args=(20 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_attention_gradient_path_checks_inputs():
    """Inputs needing gradients get the same checks: a dtype mix is a TypeError, not a kernel error."""
    attn = attnc.attention()
    q, k, v = inputs(1, 2, 2, 16, 16, 16, 16)
    attn(q.clone().requires_grad_(), k, v)
    with pytest.raises(TypeError, match=r"share one dtype"):
        attn(q.clone().requires_grad_(), k.half(), v)


def test_attention_plan_cache_is_bounded(monkeypatch):
    """Prepared launches are kept for the most recent shapes only, and evicted ones are rebuilt correctly."""
    from attnc.runtime.attention import PlanCache

    monkeypatch.setattr(PlanCache, "SIZE", 2)
    attn = attnc.attention()
    for seq in (8, 9, 10, 8):
        q, k, v = inputs(1, 2, 2, seq, seq, 16, 16)
        ref, _ = attnc.attention_reference(q, k, v)
        assert rel(attn(q, k, v), ref) < 1e-4
        assert len(attn.program._plans) <= 2
