"""attnc inside torch.compile(fullgraph=True): one custom op, no graph break, forward and backward."""

from __future__ import annotations

import pytest
import torch

import attnc


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


class TinyModel(torch.nn.Module):
    """A projection, attnc attention with a learnable per-head bias, and an output projection."""

    def __init__(self, heads: int = 2, dim: int = 16):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.qkv = torch.nn.Linear(heads * dim, 3 * heads * dim)
        self.out = torch.nn.Linear(heads * dim, heads * dim)
        self.slopes = torch.nn.Parameter(torch.rand(heads))
        slopes = self.slopes

        def alibi(score, b, h, q_idx, kv_idx):
            return score + slopes[h] * (kv_idx - q_idx)

        self.attn = attnc.attention(score_mod=alibi, mask_mod=causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, self.dim).permute(2, 0, 3, 1, 4)
        y = self.attn(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, s, self.heads * self.dim))


def test_torch_compile_fullgraph_forward_and_backward():
    """fullgraph=True compiles; outputs and every parameter's gradient equal eager attnc."""
    torch.manual_seed(0)
    model = TinyModel()
    x = torch.randn(2, 24, 32)
    eager_out = model(x)
    eager_out.square().sum().backward()
    eager_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True)  # inductor, on the CPU here
    out = compiled(x)
    out.square().sum().backward()
    assert rel(out, eager_out) < 1e-5
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert rel(p.grad, eager_grads[name]) < 1e-4, name


def test_torch_compile_sees_one_custom_op():
    """The traced graph holds attnc::attention as a single node."""
    attn = attnc.attention(mask_mod=causal)
    seen: list[str] = []

    def backend(gm: torch.fx.GraphModule, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    q, k, v = (torch.randn(1, 2, 16, 16) for _ in range(3))
    out = torch.compile(lambda q, k, v: attn(q, k, v) * 2, fullgraph=True, backend=backend)(q, k, v)
    assert any("attnc.attention" in t for t in seen), seen
    ref, _ = attnc.attention_reference(q, k, v, mask_mod=causal)
    assert rel(out, 2 * ref) < 1e-4


def test_torch_compile_refuses_a_nan_scale():
    """Under torch.compile a NaN scale is refused as in eager mode, not taken for the default (NaN encodes None)."""
    attn = attnc.attention()
    q, k, v = (torch.randn(1, 2, 16, 16) for _ in range(3))
    compiled = torch.compile(lambda q, k, v: attn(q, k, v, scale=float("nan")), backend="eager")
    with pytest.raises(ValueError, match="scale must be finite"):
        compiled(q, k, v)


def test_first_call_inside_torch_compile():
    """An attention made outside and first called inside torch.compile(fullgraph=True): whether it has a
    backward (which runs passes, out of dynamo's sight) is found eagerly; forward and gradients match."""
    torch.manual_seed(1)
    q = torch.randn(1, 2, 40, 16, requires_grad=True)
    k, v = torch.randn(1, 2, 40, 16), torch.randn(1, 2, 40, 16)
    attn = attnc.attention(mask_mod=causal)
    out = torch.compile(lambda q, k, v: attn(q, k, v), fullgraph=True, backend="aot_eager")(q, k, v)
    out.sum().backward()
    grad, q.grad = q.grad, None
    eager = attn(q, k, v)
    eager.sum().backward()
    assert rel(out, eager) < 1e-6 and grad is not None and rel(grad, q.grad) < 1e-6


def test_dynamic_shapes_compile_once():
    """dynamic=True: sequence lengths 40 to 88 run through one graph."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    attn = attnc.attention(mask_mod=causal)
    compiled = torch.compile(lambda q, k, v: attn(q, k, v) * 2, fullgraph=True, backend="aot_eager", dynamic=True)
    for length in (40, 56, 72, 88):
        q, k, v = (torch.randn(1, 2, length, 16) for _ in range(3))
        assert rel(compiled(q, k, v), attn(q, k, v) * 2) < 1e-6
    assert counters["stats"]["unique_graphs"] == 1
