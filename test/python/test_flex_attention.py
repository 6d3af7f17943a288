"""attnc.flex_attention against torch's own flex_attention (which runs forward on the CPU) and the float64 reference.

Each `program_*` is Flex code from PyTorch's FlexAttention tests or attention-gym; it takes the
`flex_attention` it calls as its one argument, so torch's and attnc's run the same lines: the
port is the import line.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.nn.attention.flex_attention import (
    AuxOutput,
    AuxRequest,
    BlockMask,
    and_masks,
    create_block_mask,
    noop_mask,
    or_masks,
)
from torch.nn.attention.flex_attention import flex_attention as torch_flex_attention

import attnc
from attnc.frontend import api, flex

B, H, S, D = 1, 2, 64, 16


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def qkv(
    b: int = B, hq: int = H, hkv: int = H, s: int = S, d: int = D, requires_grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, k, v = (torch.randn(b, h, s, d, requires_grad=requires_grad) for h in (hq, hkv, hkv))
    return q, k, v


def run_torch(program, *args):
    """torch's flex_attention on the CPU: eager, with its warning that it is not compiled."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return program(torch_flex_attention, *args)


def causal_mask(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


# Programs from attention-gym (mask_mods/, score_mods/) and PyTorch's test_flex_attention.py.


def program_causal(flex_attention, q, k, v):
    block_mask = create_block_mask(causal_mask, B=None, H=None, Q_LEN=S, KV_LEN=S, device="cpu")
    return flex_attention(q, k, v, block_mask=block_mask, return_aux=AuxRequest(lse=True))


def program_sliding_window(flex_attention, q, k, v):
    window_size = 16

    def sliding_window(b, h, q_idx, kv_idx):
        return q_idx - kv_idx <= window_size

    sliding_window_mask = and_masks(sliding_window, causal_mask)
    block_mask = create_block_mask(sliding_window_mask, None, None, S, S, device="cpu")
    return flex_attention(q, k, v, block_mask=block_mask, return_aux=AuxRequest(lse=True))


def program_prefix_lm(flex_attention, q, k, v):
    prefix_length = 20

    def prefix_mask(b, h, q_idx, kv_idx):
        return kv_idx < prefix_length

    block_mask = create_block_mask(or_masks(prefix_mask, causal_mask), None, None, S, S, device="cpu")
    return flex_attention(q, k, v, None, block_mask)


def program_softcap_causal(flex_attention, q, k, v):
    soft_cap = 20.0

    def tanh_softcap(score, b, h, q_idx, kv_idx):
        return soft_cap * torch.tanh(score / soft_cap)

    block_mask = create_block_mask(causal_mask, 1, 1, S, S, device="cpu")
    return flex_attention(q, k, v, score_mod=tanh_softcap, block_mask=block_mask, return_aux=AuxRequest(lse=True))


def program_alibi(flex_attention, q, k, v):
    def alibi(score, b, h, q_idx, kv_idx):
        scale = torch.exp2(-((h + 1) * 8.0 / H))
        bias = (kv_idx - q_idx) * scale
        return score + bias

    return flex_attention(q, k, v, score_mod=alibi, return_aux=AuxRequest(lse=True))


def program_rel_bias_head_offset(flex_attention, q, k, v):
    head_offset = torch.rand(H)

    def _rel_bias(score, b, h, token_q, token_kv):
        return score + (token_q - token_kv)

    def _head_offset(score, b, h, m, n):
        return _rel_bias(score, b, h, m, n) * head_offset[h]

    return flex_attention(q, k, v, score_mod=_head_offset, scale=0.5)


def program_document(flex_attention, q, k, v):
    offsets = torch.tensor([0, 20, 45, S])
    counts = offsets[1:] - offsets[:-1]
    document_id = torch.repeat_interleave(torch.arange(len(counts), dtype=torch.int32), counts)

    def doc_mask_mod(b, h, q_idx, kv_idx):
        same_doc = document_id[q_idx] == document_id[kv_idx]
        q_logical = q_idx - offsets[document_id[q_idx]]
        kv_logical = kv_idx - offsets[document_id[kv_idx]]
        return same_doc & causal_mask(b, h, q_logical, kv_logical)

    block_mask = create_block_mask(doc_mask_mod, None, None, S, S, device="cpu")
    return flex_attention(q, k, v, block_mask=block_mask, return_aux=AuxRequest(lse=True))


def program_gqa(flex_attention, q, k, v):
    def _times_two(score, b, h, m, n):
        return score * 2

    block_mask = create_block_mask(noop_mask, None, None, S, S, device="cpu")
    return flex_attention(q, k, v, _times_two, block_mask, enable_gqa=True, return_lse=True)


@pytest.mark.parametrize(
    "program",
    [
        program_causal,
        program_sliding_window,
        program_prefix_lm,
        program_softcap_causal,
        program_alibi,
        program_rel_bias_head_offset,
        program_document,
    ],
)
def test_flex_attention_ported_programs_match_torch(program):
    """Flex programs run unchanged with attnc's flex_attention and agree with torch's, the lse included."""
    torch.manual_seed(0)
    q, k, v = qkv()
    torch.manual_seed(1)  # for what the program draws itself
    got = program(attnc.flex_attention, q, k, v)
    torch.manual_seed(1)
    want = run_torch(program, q, k, v)
    if isinstance(want, tuple):
        assert isinstance(got[1], AuxOutput) and got[1].max_scores is None
        assert got[1].lse.dtype == torch.float32 and got[1].lse.shape == want[1].lse.shape
        assert rel(got[1].lse, want[1].lse) < 1e-5
        got, want = got[0], want[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    assert rel(got, want) < 1e-5


def test_flex_attention_gqa_and_deprecated_return_lse():
    """enable_gqa shares each kv head among Hq / Hkv query heads; return_lse=True returns the lse tensor itself."""
    torch.manual_seed(0)
    q, k, v = qkv(hq=4, hkv=2)
    (out, lse), (ref, ref_lse) = program_gqa(attnc.flex_attention, q, k, v), run_torch(program_gqa, q, k, v)
    assert isinstance(lse, torch.Tensor) and lse.shape == (B, 4, S)
    assert rel(out, ref) < 1e-5 and rel(lse, ref_lse) < 1e-5
    out, aux = attnc.flex_attention(q, k, v, enable_gqa=True, return_aux=AuxRequest())
    assert aux == AuxOutput(lse=None, max_scores=None)


def test_flex_attention_gradients_match_float64():
    """Gradients of q, k, v and of a captured bias through softcap and a causal BlockMask equal float64's."""
    torch.manual_seed(0)
    q, k, v = qkv(s=32, requires_grad=True)
    bias = torch.randn(H, requires_grad=True)

    def biased_softcap(score, b, h, q_idx, kv_idx):
        return 20.0 * torch.tanh((score + bias[h]) / 20.0)

    block_mask = create_block_mask(causal_mask, None, None, 32, 32, device="cpu")
    out = attnc.flex_attention(q, k, v, score_mod=biased_softcap, block_mask=block_mask)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v, bias), grad)
    ref, _ = attnc.attention_reference(q, k, v, score_mod=biased_softcap, mask_mod=causal_mask)
    want = torch.autograd.grad(ref, (q, k, v, bias), grad.double())
    assert rel(out, ref) < 1e-5
    for name, g, w in zip("q k v bias".split(), got, want):
        assert rel(g, w) < 1e-4, name


def test_flex_attention_under_torch_compile_first_call_inside():
    """First called inside torch.compile(fullgraph=True): traced as plain Python, forward and backward match eager."""
    torch.manual_seed(0)
    q, k, v = qkv(s=32, requires_grad=True)

    def halved(score, b, h, q_idx, kv_idx):  # a mod no other test uses: the cache is cold
        return score * 0.5

    block_mask = create_block_mask(causal_mask, None, None, 32, 32, device="cpu")

    def step(q, k, v, block_mask):
        out, aux = attnc.flex_attention(q, k, v, halved, block_mask, return_aux=AuxRequest(lse=True))
        return out.sum() + aux.lse.sum()

    loss = torch.compile(step, fullgraph=True, backend="aot_eager")(q, k, v, block_mask)
    grads = torch.autograd.grad(loss, (q, k, v))
    ref, ref_lse = attnc.attention_reference(q, k, v, score_mod=halved, mask_mod=causal_mask)
    want = torch.autograd.grad(ref.sum() + ref_lse.sum(), (q, k, v))
    assert rel(loss, ref.sum() + ref_lse.sum()) < 1e-5
    for g, w in zip(grads, want):
        assert rel(g, w) < 1e-4


def _count_traces(monkeypatch) -> list[str]:
    traced: list[str] = []
    for name in ("trace_score_mod", "trace_mask_mod"):
        original = getattr(api, name)

        def counting(fn, _original=original, _name=name):
            traced.append(_name)
            return _original(fn)

        monkeypatch.setattr(api, name, counting)
    return traced


def test_flex_attention_plan_cache_traces_once(monkeypatch):
    """Calling again with the same mods and a new BlockMask of the same mask_mod traces nothing."""
    traced = _count_traces(monkeypatch)

    def shifted(score, b, h, q_idx, kv_idx):
        return score + 0.25

    def window(b, h, q_idx, kv_idx):
        return q_idx - kv_idx < 8

    mask_mod = and_masks(causal_mask, window)
    q, k, v = qkv(s=32)
    first = attnc.flex_attention(q, k, v, shifted, create_block_mask(mask_mod, None, None, 32, 32, device="cpu"))
    assert traced == ["trace_score_mod", "trace_mask_mod"]
    again = attnc.flex_attention(q, k, v, shifted, create_block_mask(mask_mod, None, None, 32, 32, device="cpu"))
    assert traced == ["trace_score_mod", "trace_mask_mod"]
    assert torch.equal(first, again)


def test_flex_attention_document_mask_sees_updated_and_rebound_tensors(monkeypatch):
    """A captured tensor changed in place is read anew without a trace; another closure of the same code, or a
    rebound name, over a tensor of the same shape reuses the trace with its own tensor."""
    traced = _count_traces(monkeypatch)
    torch.manual_seed(0)
    q, k, v = qkv(s=32)

    def document_mask(document_id):
        def doc_mask(b, h, q_idx, kv_idx):
            return document_id[q_idx] == document_id[kv_idx]

        return doc_mask

    def check(mask_mod):
        block_mask = create_block_mask(mask_mod, None, None, 32, 32, device="cpu")
        out = attnc.flex_attention(q, k, v, block_mask=block_mask)
        ref, _ = attnc.attention_reference(q, k, v, mask_mod=mask_mod)
        assert rel(out, ref) < 1e-5

    doc = torch.tensor([0] * 10 + [1] * 22)
    mask_mod = document_mask(doc)
    check(mask_mod)
    doc.copy_(torch.tensor([0] * 25 + [1] * 7))
    check(mask_mod)
    assert len(traced) == 1
    check(document_mask(torch.tensor([0] * 3 + [1] * 29)))  # another closure, another tensor: shared
    check(mask_mod)  # the first closure again: its own tensor
    assert len(traced) == 1
    check(document_mask(torch.tensor([0] * 32, dtype=torch.int32)))  # another dtype: traced again
    assert len(traced) == 2

    global _rebound_doc
    _rebound_doc = torch.tensor([0] * 16 + [1] * 16)
    check(_global_doc_mask)
    _rebound_doc = torch.tensor([0] * 30 + [1] * 2)
    check(_global_doc_mask)
    assert len(traced) == 3


_rebound_doc = torch.zeros(32, dtype=torch.long)


def _global_doc_mask(b, h, q_idx, kv_idx):
    return _rebound_doc[q_idx] == _rebound_doc[kv_idx]


def test_flex_attention_refuses_a_block_mask_of_other_lengths():
    """A BlockMask made for other lengths raises ValueError naming both."""
    q, k, v = qkv(s=32)
    block_mask = create_block_mask(causal_mask, None, None, 64, 64, device="cpu")
    with pytest.raises(ValueError, match="created for Q_LEN=64 and KV_LEN=64, but query has length 32 and key 32"):
        attnc.flex_attention(q, k, v, block_mask=block_mask)


def test_flex_attention_refuses_what_flex_refuses():
    """Different head counts without enable_gqa, return_lse with return_aux, and a bad BACKEND raise Flex's errors."""
    q, k, v = qkv(hq=4, hkv=2, s=32)
    with pytest.raises(ValueError, match="Try setting enable_gqa=True"):
        attnc.flex_attention(q, k, v)
    with pytest.raises(ValueError, match="multiple of kv heads"):
        attnc.flex_attention(*qkv(hq=3, hkv=2, s=32), enable_gqa=True)
    q, k, v = qkv(s=32)
    with pytest.raises(ValueError, match="Cannot specify both return_lse and return_aux"):
        attnc.flex_attention(q, k, v, return_lse=True, return_aux=AuxRequest(lse=True))
    with pytest.raises(ValueError, match="Invalid BACKEND value 'CUTLASS'"):
        attnc.flex_attention(q, k, v, kernel_options={"BACKEND": "CUTLASS"})


def test_flex_attention_refuses_what_attnc_cannot_do():
    """float64 inputs, max_scores, a sliced BlockMask and one that skips blocks without a mask_mod raise, naming why."""
    q, k, v = qkv(s=32)
    with pytest.raises(TypeError, match="q must be float16, bfloat16 or float32, but got torch.float64"):
        attnc.flex_attention(q.double(), k.double(), v.double())
    with pytest.raises(NotImplementedError, match="max_scores"):
        attnc.flex_attention(q, k, v, return_aux=AuxRequest(max_scores=True))
    sliced = create_block_mask(causal_mask, 2, None, 32, 32, device="cpu")[0]
    with pytest.raises(RuntimeError, match="sliced BlockMask"):
        attnc.flex_attention(q, k, v, block_mask=sliced)
    kv_num_blocks = torch.zeros(1, 1, 1, dtype=torch.int32)
    kv_indices = torch.zeros(1, 1, 1, 1, dtype=torch.int32)
    empty = BlockMask.from_kv_blocks(kv_num_blocks, kv_indices, BLOCK_SIZE=32, seq_lengths=(32, 32))
    with pytest.raises(NotImplementedError, match="no mask_mod and skips key blocks"):
        attnc.flex_attention(q, k, v, block_mask=empty)


def test_flex_attention_ignores_other_kernel_options():
    """Tile sizes and other Flex tuning keys, known or not, are accepted and change nothing (attn-tile chooses)."""
    torch.manual_seed(0)
    q, k, v = qkv(s=32)
    plain = attnc.flex_attention(q, k, v)
    tuned = attnc.flex_attention(q, k, v, kernel_options={"BLOCK_M": 16, "num_warps": 2, "NOT_A_KEY": 1})
    assert torch.equal(plain, tuned)
    assert flex.KERNEL_OPTIONS_CHECKED == ("BACKEND", "FORCE_USE_FLEX_ATTENTION", "OUTPUT_LOGSUMEXP", "OUTPUT_MAX")


class _Softcap:
    """A callable object as score_mod: its state is not visible to the plan cache."""

    def __init__(self, cap: float):
        self.cap = cap

    def __call__(self, score, b, h, q_idx, kv_idx):
        return self.cap * torch.tanh(score / self.cap)


_GLOBAL_CAP = 20.0


def test_mods_whose_values_the_cache_cannot_check_trace_again():
    """A dict, a callable object, a global read in a nested function, a tensor derived inside the mod:
    changed between calls, each is seen (the mods are traced at every call, with a warning)."""
    torch.manual_seed(7)
    q, k, v = (torch.randn(1, 2, 64, 16) for _ in range(3))
    cfg = {"cap": 20.0}

    def dict_cap(score, b, h, q_idx, kv_idx):
        return cfg["cap"] * torch.tanh(score / cfg["cap"])

    def nested_global(score, b, h, q_idx, kv_idx):
        def cap(x):
            return _GLOBAL_CAP * torch.tanh(x / _GLOBAL_CAP)

        return cap(score)

    temp = torch.tensor([1.0, 2.0])

    def derived(score, b, h, q_idx, kv_idx):
        return score / temp.exp()[h]

    callable_cap = _Softcap(20.0)

    def change() -> None:
        global _GLOBAL_CAP
        cfg["cap"], callable_cap.cap, _GLOBAL_CAP = 2.0, 2.0, 2.0
        temp.add_(1.0)

    mods = [dict_cap, nested_global, derived, callable_cap]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod in mods:
            attnc.flex_attention(q, k, v, score_mod=mod)
        change()
        try:
            for mod in mods:
                got = attnc.flex_attention(q, k, v, score_mod=mod)
                assert rel(got, torch_flex_attention(q, k, v, score_mod=mod)) < 1e-5, mod
        finally:
            globals()["_GLOBAL_CAP"] = 20.0


def _head_bias(bias: torch.Tensor):
    def score_mod(score, b, h, q_idx, kv_idx):
        return score + bias[h, kv_idx]

    return score_mod


def test_closures_sharing_a_trace_keep_their_own_gradients(monkeypatch):
    """Two closures of one code share a trace; each call and its backward use that closure's tensors, even
    when both forwards run before either backward."""
    traced = _count_traces(monkeypatch)
    torch.manual_seed(5)
    q, k, v = qkv(s=32)
    biases = [torch.randn(H, 32, requires_grad=True) for _ in range(2)]
    mods = [_head_bias(b) for b in biases]
    outs = [attnc.flex_attention(q, k, v, score_mod=m) for m in mods]
    assert len(traced) == 1
    douts = [torch.randn_like(o) for o in outs]
    ((outs[0] * douts[0]).sum() + (outs[1] * douts[1]).sum()).backward()
    for i, bias in enumerate(biases):
        ref_bias = bias.detach().double().requires_grad_()
        ref, _ = attnc.attention_reference(q.double(), k.double(), v.double(), score_mod=_head_bias(ref_bias))
        assert rel(outs[i], ref) < 1e-5
        (ref * douts[i].double()).sum().backward()
        assert bias.grad is not None and ref_bias.grad is not None and rel(bias.grad, ref_bias.grad) < 1e-4


def test_a_shared_trace_is_not_used_under_torch_compile():
    """Under torch.compile a closure whose eager calls shared another's trace gets its own."""
    torch.manual_seed(6)
    q, k, v = qkv(s=32)
    first, second = _head_bias(torch.randn(H, 32)), _head_bias(torch.randn(H, 32))
    attnc.flex_attention(q, k, v, score_mod=first)
    attnc.flex_attention(q, k, v, score_mod=second)  # shares first's trace
    compiled = torch.compile(lambda q, k, v: attnc.flex_attention(q, k, v, score_mod=second), backend="aot_eager")
    got = compiled(q, k, v)
    attnc.flex_attention(q, k, v, score_mod=first)  # swaps the shared trace back to first's tensors
    assert rel(compiled(q, k, v), got) < 1e-6
    assert rel(got, run_torch(lambda f, *a: f(*a, score_mod=second), q, k, v)) < 1e-5


def test_combined_masks_are_told_apart_by_what_they_combine():
    """and_masks of different document masks (same shapes) share a trace but read their own ids; and_masks
    of different mask functions do not share. What and_masks combines is seen: no every-call tracing."""
    torch.manual_seed(8)
    q, k, v = qkv(s=32)

    def document_mask(document_id):
        def doc_mask(b, h, q_idx, kv_idx):
            return document_id[q_idx] == document_id[kv_idx]

        return doc_mask

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def window(b, h, q_idx, kv_idx):
        return q_idx - kv_idx <= 4

    cases = [
        and_masks(causal, document_mask(torch.tensor([0] * 10 + [1] * 22))),
        and_masks(causal, document_mask(torch.tensor([0] * 20 + [1] * 12))),
        and_masks(window, document_mask(torch.tensor([0] * 20 + [1] * 12))),
    ]
    for mask_mod in cases:
        block_mask = create_block_mask(mask_mod, None, None, 32, 32, device="cpu")
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="attnc.flex_attention traces these mods at every call")
            out = attnc.flex_attention(q, k, v, block_mask=block_mask)
        ref, _ = attnc.attention_reference(q, k, v, mask_mod=mask_mod)
        assert rel(out, ref) < 1e-5


def test_a_tensor_bound_twice_is_not_shared_with_two_tensors():
    """pair(x, x) traces one capture read twice; pair(y, z) has two tensors and its own trace."""
    torch.manual_seed(9)
    q, k, v = qkv(s=32)

    def pair(left, right):
        def mask_mod(b, h, q_idx, kv_idx):
            return left[q_idx] == right[kv_idx]

        return mask_mod

    x = torch.tensor([0] * 16 + [1] * 16)
    y, z = torch.tensor([0] * 8 + [1] * 24), torch.tensor([1] * 20 + [0] * 12)
    for mask_mod in (pair(x, x), pair(y, z)):
        out = attnc.flex_attention(q, k, v, block_mask=create_block_mask(mask_mod, None, None, 32, 32, device="cpu"))
        ref, _ = attnc.attention_reference(q, k, v, mask_mod=mask_mod)
        assert rel(out, ref) < 1e-5


def _closure_over(value):
    def score_mod(score, b, h, q_idx, kv_idx):
        return value(score) if callable(value) else score * value

    return score_mod


def _item_of(t: torch.Tensor):
    def score_mod(score, b, h, q_idx, kv_idx):
        return score / t.item()

    return score_mod


def _signed(z: float):
    def score_mod(score, b, h, q_idx, kv_idx):
        return score * math.copysign(3.0, z)

    return score_mod


def _attribute(c: float):
    def score_mod(score, b, h, q_idx, kv_idx):
        return score * score_mod.c  # type: ignore[attr-defined]

    score_mod.c = c  # type: ignore[attr-defined]
    return score_mod


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (_closure_over(torch.tanh), _closure_over(torch.sigmoid)),  # which builtin a cell holds
        (_item_of(torch.tensor(0.5)), _item_of(torch.tensor(4.0))),  # a tensor read into Python
        (_attribute(0.1), _attribute(5.0)),  # the function's own attribute
        (_signed(0.0), _signed(-0.0)),  # -0.0 is not 0.0
    ],
    ids=["builtin", "item", "fn-attribute", "signed-zero"],
)
def test_closures_of_one_code_that_compute_differently_do_not_share(first, second):
    torch.manual_seed(10)
    q, k, v = qkv(s=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod in (first, second):
            ref, _ = attnc.attention_reference(q, k, v, score_mod=mod)
            assert rel(attnc.flex_attention(q, k, v, score_mod=mod), ref) < 1e-5
