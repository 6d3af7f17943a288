"""Gradients through the normalizers other than softmax, against float64 autograd (CPU, interpreter).

attn-autodiff derives them from the normalizer's own regions: sigmoid, ReLU and a
stateless user normalizer as elementwise weights, retention with its denominator held
constant (RetNet's rule), sinks as softmax plus the sink's own gradient, derived from the
normalizer's finalize.
"""

from __future__ import annotations

import pytest
import torch

import attnc

TOL = {torch.float32: 1e-4, torch.bfloat16: 1e-2, torch.float16: 1e-2}
H = 4


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def sigmoid_bias(score, b, h, q_idx, kv_idx):
    return score - 2.0


LOG2_GAMMA = torch.log2(1 - 2.0 ** (-5.0 - torch.arange(H, dtype=torch.float32)))


def retnet_decay(score, b, h, q_idx, kv_idx):
    return score * attnc.exp2((q_idx - kv_idx) * LOG2_GAMMA[h])


def retention_reference(q, k, v):
    """RetNet's parallel form in float64 with the denominator held constant (detached) in backward."""
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    i = torch.arange(q.shape[2])[:, None]
    j = torch.arange(k.shape[2])[None, :]
    decay = torch.where(i >= j, torch.exp2((i - j) * LOG2_GAMMA.double()[:, None, None]), 0.0)
    s = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5 * decay
    denominator = s.abs().sum(-1, keepdim=True).clamp_min(1.0).detach()
    return (s / denominator) @ v


def grads(attn, shape, dtype, reference, extra=()):
    b, hq, hkv, sq, skv, d = shape
    q = torch.randn(b, hq, sq, d, dtype=dtype, requires_grad=True)
    k = torch.randn(b, hkv, skv, d, dtype=dtype, requires_grad=True)
    v = torch.randn(b, hkv, skv, d, dtype=dtype, requires_grad=True)
    out = attn(q, k, v)
    dout = torch.randn_like(out)
    got = torch.autograd.grad((out * dout).sum(), [q, k, v, *extra])
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    want = torch.autograd.grad((reference(q64, k64, v64) * dout.double()).sum(), [q64, k64, v64, *extra])
    for name, g, w in zip(["dq", "dk", "dv", *[f"d{i}" for i in range(len(extra))]], got, want):
        assert not torch.isnan(g).any(), name
        assert rel(g, w) < TOL[dtype], (name, rel(g, w))


def reference_of(score_mod, mask_mod, normalizer):
    return lambda q, k, v: attnc.attention_reference(
        q, k, v, score_mod=score_mod, mask_mod=mask_mod, normalizer=normalizer
    )[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("masked", [False, True])
def test_sigmoid_and_relu_gradients(dtype, masked):
    """Ragged lengths, GQA, with and without a causal mask."""
    mask = causal if masked else None
    for score_mod, normalizer in ((sigmoid_bias, "sigmoid"), (None, "relu")):
        attn = attnc.attention(score_mod, mask, normalizer=normalizer)
        grads(attn, (1, H, 2, 37, 45, 32), dtype, reference_of(score_mod, mask, normalizer))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_retention_gradients_hold_the_denominator_constant(dtype):
    attn = attnc.attention(retnet_decay, causal, normalizer="retention")
    grads(attn, (1, H, 2, 41, 41, 32), dtype, retention_reference)


class NaturalSoftmax(attnc.Normalizer):
    """Online softmax in base e, its states in the other order, under a name of its own."""

    name = "my_attention"
    state = {"l": 0.0, "m": float("-inf")}
    stats = ("lse",)

    def update(self, scores, state):
        m_new = attnc.maximum(state["m"], attnc.row_max(scores))
        m_safe = attnc.where(m_new == float("-inf"), 0.0, m_new)
        p = attnc.exp(scores - m_safe)
        alpha = attnc.exp(state["m"] - m_safe)
        return p, {"l": state["l"] * alpha + attnc.row_sum(p), "m": m_new}, alpha

    def finalize(self, acc, state):
        l_safe = attnc.where(state["l"] == 0.0, 1.0, state["l"])
        return acc / l_safe, {"lse": state["m"] + attnc.log(state["l"])}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sinks_get_gradients(dtype):
    """q, k, v and the learnable sink logits, against autograd through the reference: the sinks'
    gradient is derived from the normalizer's finalize (attn.flash_grad's stat_grad)."""
    sinks = (3 * torch.randn(H)).requires_grad_()
    norm = attnc.SoftmaxWithSinks(sinks)
    attn = attnc.attention(mask_mod=causal, normalizer=norm)
    grads(attn, (2, H, 2, 33, 40, 16), dtype, reference_of(None, causal, norm), extra=(sinks,))


def test_sinks_gradients_through_the_logsumexp_and_empty_rows():
    """A loss on out and lse, rows that see no key (their lse is the sink), and a bias that does not
    require grad next to sinks that do."""
    sinks = torch.randn(H, requires_grad=True)
    bias = torch.randn(H)

    def biased(score, b, h, q_idx, kv_idx):
        return score + bias[h]

    def late(b, h, q_idx, kv_idx):
        return (q_idx >= 6) & (kv_idx <= q_idx)

    norm = attnc.SoftmaxWithSinks(sinks)
    q, k, v = (torch.randn(1, H, 29, 16, requires_grad=True) for _ in range(3))
    out, lse = attnc.attention(biased, late, normalizer=norm)(q, k, v, return_lse=True)
    dout, dlse = torch.randn_like(out), torch.randn_like(lse)
    got = torch.autograd.grad((out * dout).sum() + (lse * dlse).sum(), [q, k, v, sinks])
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref, ref_lse = attnc.attention_reference(q64, k64, v64, score_mod=biased, mask_mod=late, normalizer=norm)
    loss = (ref * dout.double()).sum() + (ref_lse * dlse.double()).sum()
    want = torch.autograd.grad(loss, [q64, k64, v64, sinks])
    assert torch.allclose(lse[:, :, :6], sinks.detach()[None, :, None].expand(1, H, 6))
    for name, g, w in zip(["dq", "dk", "dv", "dsinks"], got, want):
        assert rel(g, w) < 1e-4, (name, rel(g, w))


def test_a_user_sink_gets_its_gradient_from_its_own_finalize():
    """A sink written by a user, in base e, with a scale of its own (E = 3·exp(sink[h])): no name and no
    attribute tells attnc it is a sink; the gradient comes from the finalize's math."""
    sinks = torch.randn(H, requires_grad=True)

    class ScaledSink(NaturalSoftmax):
        name = "scaled_sink"

        def finalize(self, acc, state):
            total = attnc.exp(state["m"]) * state["l"] + 3.0 * attnc.exp(sinks[self.h])
            return acc * attnc.exp(state["m"]) / total, {"lse": attnc.log(total)}

    norm = ScaledSink()
    attn = attnc.attention(mask_mod=causal, normalizer=norm)
    grads(attn, (1, H, 2, 25, 31, 16), torch.float32, reference_of(None, causal, norm), extra=(sinks,))


def test_user_normalizer_with_a_learned_temperature_gets_gradients():
    """A stateless user normalizer, p = sigmoid(score / temperature[h]): the temperature's gradient
    comes from the same derived region as dq, dk and dv."""
    temperature = (torch.rand(H) + 0.5).requires_grad_()

    class TemperedSigmoid(attnc.Normalizer):
        def update(self, scores, state):
            return attnc.sigmoid(scores / temperature[self.h]), {}, 1.0

        def finalize(self, acc, state):
            return acc, {}

    norm = TemperedSigmoid()
    # No mask: the reference would differentiate sigmoid(−inf / t) into NaN for masked scores.
    attn = attnc.attention(sigmoid_bias, normalizer=norm)
    grads(attn, (1, H, H, 30, 30, 16), torch.float32, reference_of(sigmoid_bias, None, norm), extra=(temperature,))


def test_fully_masked_rows_have_zero_gradients():
    """Rows that see no key: output 0, every gradient 0 and finite."""

    def late(b, h, q_idx, kv_idx):
        return (q_idx >= 8) & (kv_idx <= q_idx)

    for normalizer in ("sigmoid", "retention"):
        q, k, v = (torch.randn(1, 2, 20, 16, requires_grad=True) for _ in range(3))
        out = attnc.attention(mask_mod=late, normalizer=normalizer)(q, k, v)
        (dq,) = torch.autograd.grad(out.sum(), [q])
        assert torch.isfinite(dq).all()
        assert (dq[:, :, :8] == 0).all()


def test_dividing_by_a_statistic_needs_it_declared_held_constant():
    """A normalized ReLU divides by a sum of its own weights: the backward cannot hold that sum
    constant unless the normalizer says so, so gradients are refused, naming the part; declared in
    `held_constant` (RetNet's rule), they are the gradients with it held constant."""

    class NormalizedReLU(attnc.Normalizer):
        state = {"l": 0.0}
        stats = ("l",)

        def update(self, scores, state):
            p = attnc.maximum(scores, 0.0)
            return p, {"l": state["l"] + attnc.row_sum(p)}, 1.0

        def finalize(self, acc, state):
            total = attnc.maximum(state["l"], 1.0)
            return acc / total, {"l": total}

    q, k, v = (torch.randn(1, 2, 20, 16, requires_grad=True) for _ in range(3))
    with pytest.raises(NotImplementedError, match=r"divides by statistic 0, which depends on the scores"):
        attnc.attention(normalizer=NormalizedReLU())(q, k, v)

    class HeldReLU(NormalizedReLU):
        held_constant = ("l",)

    out = attnc.attention(normalizer=HeldReLU())(q, k, v)
    (dv,) = torch.autograd.grad(out.sum(), [v])
    s = torch.relu((q @ k.transpose(-1, -2)) * 16**-0.5).detach()
    want = s.transpose(-1, -2) @ (torch.ones_like(out) / s.sum(-1, keepdim=True).clamp_min(1.0))
    assert rel(dv, want) < 1e-4


def test_dividing_by_a_later_statistic_is_refused_before_training():
    """The op keeps the first statistic for the backward; dividing by another is refused up front."""

    class TwoStats(attnc.Normalizer):
        state = {"l": 0.0}
        stats = ("raw", "den")
        held_constant = ("den",)

        def update(self, scores, state):
            p = attnc.maximum(scores, 0.0)
            return p, {"l": state["l"] + attnc.row_sum(p)}, 1.0

        def finalize(self, acc, state):
            den = attnc.maximum(state["l"], 1.0)
            return acc / den, {"raw": state["l"], "den": den}

    q, k, v = (torch.randn(1, 2, 20, 16, requires_grad=True) for _ in range(3))
    with pytest.raises(NotImplementedError, match=r"must be its first"):
        attnc.attention(normalizer=TwoStats())(q, k, v)


def flash_grad_attributes(normalizer) -> str:
    """The attributes of the derived attn.flash_grad, as printed."""
    shape = attnc.Shape(1, H, H, 64, 64, 16, 16)
    compiled = attnc.compile(
        mask_mod=causal, shape=shape, dtype=torch.float32, target="cpu", normalizer=normalizer, backward=True
    )
    flash = compiled.ir("flash")
    return flash[flash.index("attn.flash_grad") :]


def test_softmax_backward_is_chosen_by_the_regions_not_the_name():
    """The built-ins and a renamed online softmax in base e get softmax's backward, and its gradients are right."""
    for normalizer in ("softmax", attnc.SoftmaxWithSinks(torch.randn(H)), NaturalSoftmax()):
        assert 'probabilities = "softmax"' in flash_grad_attributes(normalizer)
    attn = attnc.attention(mask_mod=causal, normalizer=NaturalSoftmax())
    grads(attn, (1, H, 2, 37, 45, 16), torch.float32, reference_of(None, causal, NaturalSoftmax()))


def test_a_normalizer_named_softmax_gets_its_own_gradient():
    """`name = "softmax"` on other math does not buy softmax's backward: a stateless one gets the
    elementwise backward, right against the reference."""

    class NamedSoftmax(attnc.Normalizer):
        name = "softmax"

        def update(self, scores, state):
            return attnc.sigmoid(scores), {}, 1.0

        def finalize(self, acc, state):
            return acc, {}

    assert 'probabilities = "elementwise"' in flash_grad_attributes(NamedSoftmax())
    attn = attnc.attention(sigmoid_bias, normalizer=NamedSoftmax())
    grads(attn, (1, H, 2, 30, 30, 16), torch.float32, reference_of(sigmoid_bias, None, NamedSoftmax()))


def test_a_normalizer_named_softmax_with_a_shifted_statistic_is_refused():
    """Online softmax's update whose logsumexp is off by one: P = exp(t − lse) would be wrong by a
    factor e, so the backward is refused, naming the part, instead of computed from a name."""

    class ShiftedSoftmax(NaturalSoftmax):
        name = "softmax"

        def finalize(self, acc, state):
            return acc / state["l"], {"lse": state["m"] + attnc.log(state["l"]) + 1.0}

    q, k, v = (torch.randn(1, 2, 20, 16, requires_grad=True) for _ in range(3))
    with pytest.raises(
        NotImplementedError,
        match=r"normalizer 'softmax': its update is online softmax's, but its finalize's output is not",
    ):
        attnc.attention(normalizer=ShiftedSoftmax())(q, k, v)


def test_sinks_gradient_with_a_minus_inf_logit_is_finite():
    """A sink logit of −∞ (a head without a sink) has gradient 0, not NaN; the others match float64 autograd."""
    torch.manual_seed(31)
    sinks = torch.tensor([float("-inf"), 0.5, -1.0, 2.0], requires_grad=True)
    q, k, v = (torch.randn(1, 4, 40, 32, dtype=torch.float64) for _ in range(3))
    attnc.attention(normalizer=attnc.SoftmaxWithSinks(sinks))(q.float(), k.float(), v.float()).sum().backward()
    got, sinks.grad = sinks.grad, None
    scores = q @ k.transpose(-1, -2) * 32**-0.5
    with_sink = torch.cat([scores, sinks.double()[None, :, None, None].expand(1, 4, 40, 1)], dim=-1)
    (torch.softmax(with_sink, dim=-1)[..., :-1] @ v).sum().backward()
    assert got is not None and torch.isfinite(got).all()
    assert got[0] == 0.0
    assert torch.allclose(got, sinks.grad, rtol=1e-4, atol=1e-5)


def test_softmax_whose_finalize_takes_the_log_of_the_accumulator_is_refused():
    """|acc| / l written as exp(½·log(acc²)) / l is not softmax's output (acc may be negative): no softmax backward."""

    class AbsSoftmax(attnc.Softmax):
        name = "softmax"

        def finalize(self, acc, state):
            l = attnc.where(state["l"] == 0.0, 1.0, state["l"])  # noqa: E741
            return attnc.exp(0.5 * attnc.log(acc * acc)) / l, {"lse": state["m"] + attnc.log(state["l"])}

    problem = attnc.attention(normalizer=AbsSoftmax()).backward_problem()
    assert problem is not None and "log of the accumulator" in problem
