"""`attnc.linear_attention`: the recurrent family (linear attention, RetNet, gated retention, Mamba2-SSD, GLA).

```python
la = attnc.linear_attention(gate="scalar")              # None | "head" | "scalar" | "vector"
o, S = la(q, k, v, g=g, initial_state=S0, output_final_state=True)
```

Per batch and head, with state S [K, V] kept in float32:

    S_t = exp(g_t) ⊙ S_{t-1} + k_tᵀ v_t        o_t = scale · q_t S_t      (scale defaults to K**-0.5)

- gate None: no decay (plain linear attention); "head": g [H], a constant log-decay per
  head (RetNet: log γ_h); "scalar": g [B, H, T] (gated retention, simple GLA, Mamba2-SSD
  with q=C, k=B·dt, v=x, g=A·dt); "vector": g [B, H, T, K] (GLA, one decay per key channel).
- q, k [B, Hk, T, K] may have fewer heads than v [B, H, T, V] (Hk divides H; Mamba2's groups): heads
  before time, unlike flash-linear-attention's [B, T, H, K], whose calls `attnc.ops` provides.
- `q_map`/`k_map` are elementwise feature maps (e.g. `lambda x: attnc.where(x > 0, x + 1, attnc.exp(x))`,
  elu(x)+1), traced like a score_mod into regions of the op and applied by the kernels as
  they load q and k; their derivatives (for the backward) come from attn-autodiff's rules.
- `normalize=True` (gate None only) is Katharopoulos et al.'s form o_t = q_t S_t / (q_t z_t)
  with z_t = Σ_{s≤t} k_s: z rides along as one more column of v, so the state is [K, V+1].
- `cu_seqlens` (int32 [N+1]) packs N sequences into a batch of 1; states reset at each
  boundary, and `initial_state` and the final state are then [N, H, K, V].
- g = −inf (or any log-decay below −104, whose exp is 0 in float32) resets the state. A NaN
  or ±inf at step t reaches the output from step t on only (conversion/chunk_nonfinite.py).

CPU tensors run the same kernels through Triton's interpreter. The function is a
`torch.library` custom op with an autograd formula, so `torch.compile(fullgraph=True)`
keeps it as one node and gradients reach q, k, v, g and initial_state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    DenseArrayBase,
    FloatAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    i32,
)
from xdsl.ir import Block, Region

import attnc.runtime.linear_autograd  # noqa: F401  (registers the attnc::linear_attention custom ops)
from attnc.dialect import attn
from attnc.frontend.build import ELEMENT_TYPES
from attnc.frontend.checks import check_on_device, check_scale, check_tensors
from attnc.frontend.errors import TraceError
from attnc.frontend.trace import Tracer, return_location
from attnc.runtime.compiler import CompiledLinear
from attnc.runtime.linear_program import LinearProgram, LinearSignature

D = DYNAMIC_INDEX

GATE_KINDS = (None, "head", "scalar", "vector")
FLA_LAYOUT = (
    " (linear_attention takes [B, H, T, ...]; for flash-linear-attention's [B, T, H, ...] use attnc.ops, "
    "e.g. attnc.ops.chunk_gla)"
)


class LinearAttention:
    """A linear-attention variant: the gate kind, feature maps, normalizer and chunk size."""

    def __init__(
        self,
        gate: str | None = None,
        q_map: Callable[[Any], Any] | None = None,
        k_map: Callable[[Any], Any] | None = None,
        normalize: bool = False,
        chunk_size: int = 64,
    ):
        if gate not in GATE_KINDS:
            raise ValueError(f"gate must be None, 'head', 'scalar' or 'vector', but got {gate!r}")
        if chunk_size < 16 or chunk_size & (chunk_size - 1):
            raise ValueError(f"chunk_size must be a power of two of at least 16, but got {chunk_size}")
        if normalize and gate is not None:
            raise ValueError(f"normalize=True is the plain linear attention form; it needs gate=None, but got {gate!r}")
        self.gate = gate
        self.q_map, self.k_map = q_map, k_map
        self.normalize = normalize
        self.chunk_size = chunk_size
        self._maps = (
            trace_feature_map(q_map, "q_map") if q_map is not None else None,
            trace_feature_map(k_map, "k_map") if k_map is not None else None,
        )
        self.program = LinearProgram(self._build, gate or "none", chunk_size)

    def _build(self, sig: LinearSignature) -> ModuleOp:
        return build_module(sig, self.gate or "none", *self._maps)

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        g: torch.Tensor | None = None,
        scale: float | None = None,
        initial_state: torch.Tensor | None = None,
        output_final_state: bool = False,
        cu_seqlens: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        _check(self.gate, q, k, v, g, scale, initial_state, cu_seqlens, self.normalize)
        run_scale = float(q.shape[-1]) ** -0.5 if scale is None else float(scale)
        if self.normalize:
            v = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
        g32 = g.float().contiguous() if g is not None else None
        h0 = initial_state.float().contiguous() if initial_state is not None else None
        o, ht, *_saved = torch.ops.attnc.linear_attention(self.program.name, q, k, v, g32, h0, cu_seqlens, run_scale)
        if self.normalize:
            o = o[..., :-1] / o[..., -1:]
        return o, (ht if output_final_state else None)

    def compiled(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        has_initial: bool,
        varlen: bool,
        scale: float,
        backward: bool,
    ) -> tuple[CompiledLinear, bool]:
        """The compiled kernels for these inputs, and whether the inputs must be upcast (bf16 on the CPU)."""
        return self.program.compiled_for(q, v, has_initial, varlen, scale, backward)

    def ir(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, stage: str = "attn", **kwargs: Any) -> str:
        """The IR of one stage ("attn", "chunk", "tile" or "triton") for these inputs."""
        scale = float(kwargs.get("scale") or float(q.shape[-1]) ** -0.5)
        compiled, _ = self.compiled(
            q,
            k,
            v,
            kwargs.get("initial_state") is not None,
            kwargs.get("cu_seqlens") is not None,
            scale,
            kwargs.get("backward", False),
        )
        return compiled.stages[stage]


def trace_feature_map(fn: Callable[[Any], Any], kind: str) -> Region:
    """Trace an elementwise feature map `fn(x)` into a region `(x: f32) -> f32` (like a score_mod)."""
    tracer = Tracer(fn, kind)
    result = tracer.call([tracer.argument("x", f32)])
    value = tracer.result_value(result, return_location(fn))
    traced = tracer.finish(tracer.to_f32(value))
    if traced.captures:
        raise TraceError(f"{kind} must be elementwise in x alone, but it reads a tensor", return_location(fn))
    return traced.region


def linear_attention(
    gate: str | None = None,
    q_map: Callable[[Any], Any] | None = None,
    k_map: Callable[[Any], Any] | None = None,
    normalize: bool = False,
    chunk_size: int = 64,
) -> LinearAttention:
    """A linear-attention callable `la(q, k, v, g=None, scale=None, initial_state=None,
    output_final_state=False, cu_seqlens=None) -> (o, final_state or None)`; see the module docstring."""
    return LinearAttention(gate, q_map, k_map, normalize, chunk_size)


def _shape(t: torch.Tensor) -> str:
    return str(list(t.shape))


def _check(
    gate: str | None,
    q: Any,
    k: Any,
    v: Any,
    g: Any,
    scale: float | None,
    initial_state: Any,
    cu_seqlens: Any,
    normalize: bool,
) -> None:
    """Every input checked, each error naming the argument."""
    check_tensors({"q": "[B, H, T, K]", "k": "[B, H, T, K]", "v": "[B, H, T, V]"}, {"q": q, "k": k, "v": v})
    if k.shape != q.shape:
        raise ValueError(f"k must have q's shape {_shape(q)}, but got {_shape(k)}")
    batch, heads_qk, length, dim_k = q.shape
    if dim_k == 0:
        raise ValueError(f"q and k must have a head dim of at least 1, but got shape {_shape(q)}")
    if v.shape[0] != batch or v.shape[2] != length:
        raise ValueError(f"v must be [{batch}, H, {length}, V] like q, but got {_shape(v)}{FLA_LAYOUT}")
    heads = v.shape[1]
    if heads_qk == 0 or heads % heads_qk:
        raise ValueError(f"the heads of q and k ({heads_qk}) must divide the heads of v ({heads})")
    check_scale(scale)
    _check_gate(gate, g, q, batch, heads, length, dim_k)
    count = batch if cu_seqlens is None else _check_cu_seqlens(cu_seqlens, q)
    if initial_state is not None:
        if not isinstance(initial_state, torch.Tensor) or not initial_state.is_floating_point():
            raise ValueError("initial_state must be a floating-point torch.Tensor")
        want = [count, heads, dim_k, v.shape[3] + (1 if normalize else 0)]
        if list(initial_state.shape) != want:
            raise ValueError(f"initial_state must have shape {want}, but got {_shape(initial_state)}")
        check_on_device("initial_state", initial_state, q.device)


def _check_cu_seqlens(cu_seqlens: Any, q: torch.Tensor) -> int:
    """The number of sequences `cu_seqlens` packs into q's batch of 1."""
    if not isinstance(cu_seqlens, torch.Tensor) or cu_seqlens.dtype != torch.int32 or cu_seqlens.dim() != 1:
        raise ValueError("cu_seqlens must be a 1-D int32 tensor of sequence offsets [N+1]")
    check_on_device("cu_seqlens", cu_seqlens, q.device)
    if q.shape[0] != 1:
        raise ValueError(f"cu_seqlens packs sequences into a batch of 1, but q has batch {q.shape[0]}")
    bounds = cu_seqlens.tolist()
    length = q.shape[2]
    if len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != length or any(b < a for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"cu_seqlens must rise from 0 to the sequence length {length}, but got {bounds}")
    return len(bounds) - 1


def _check_gate(gate: str | None, g: Any, q: torch.Tensor, batch: int, heads: int, length: int, dim_k: int) -> None:
    if gate is None:
        if g is not None:
            raise ValueError("g was given, but this linear attention has no gate (gate=None)")
        return
    if not isinstance(g, torch.Tensor):
        raise ValueError(f"gate {gate!r} needs g, a torch.Tensor of log-decays")
    want = {"head": [heads], "scalar": [batch, heads, length], "vector": [batch, heads, length, dim_k]}[gate]
    if list(g.shape) != want:
        raise ValueError(f"g must have shape {want} for gate {gate!r}, but got {_shape(g)}{FLA_LAYOUT}")
    if not g.is_floating_point():
        raise ValueError(f"g must be floating point, but got {g.dtype}")
    check_on_device("g", g, q.device)


def build_module(spec: LinearSignature, gate: str, q_map: Region | None, k_map: Region | None) -> ModuleOp:
    """The logical IR: one function holding one `attn.recurrence`, the feature maps as its regions."""
    elem = ELEMENT_TYPES[spec.dtype]
    qk_t = TensorType(elem, [D, spec.heads_qk, D, spec.dim_k])
    v_t = TensorType(elem, [D, spec.heads, D, spec.dim_v])
    state_t = TensorType(f32, [D, spec.heads, spec.dim_k, spec.dim_v])
    g_t = {
        "none": None,
        "head": TensorType(f32, [spec.heads]),
        "scalar": TensorType(f32, [D, spec.heads, D]),
        "vector": TensorType(f32, [D, spec.heads, D, spec.dim_k]),
    }[gate]
    arg_types = [qk_t, qk_t, v_t] + ([g_t] if g_t is not None else []) + ([state_t] if spec.has_initial else [])
    block = Block(arg_types=arg_types)
    names = ["q", "k", "v"] + (["g"] if g_t is not None else []) + (["initial_state"] if spec.has_initial else [])
    for arg, name in zip(block.args, names):
        arg.name_hint = name
    args = dict(zip(names, block.args))
    attributes: dict[str, Any] = {"gate": StringAttr(gate), "scale": FloatAttr(spec.scale, f32)}
    if spec.varlen:
        attributes["varlen"] = UnitAttr()
    op = attn.RecurrenceOp.create(
        operands=[
            args["q"],
            args["k"],
            args["v"],
            *([args["g"]] if "g" in args else []),
            *([args["initial_state"]] if "initial_state" in args else []),
        ],
        result_types=[v_t, state_t],
        attributes=attributes,
        properties={"operandSegmentSizes": _segments(g_t is not None, spec.has_initial)},
        regions=[q_map.clone() if q_map is not None else Region(), k_map.clone() if k_map is not None else Region()],
    )
    op.results[0].name_hint, op.results[1].name_hint = "o", "final_state"
    block.add_ops([op, func.ReturnOp(op.results[0], op.results[1])])
    fn = func.FuncOp("linear_attention", (arg_types, [v_t, state_t]), Region(block))
    module = ModuleOp([fn])
    module.verify()
    return module


def _segments(has_g: bool, has_initial: bool) -> Any:
    return DenseArrayBase.from_list(i32, [1, 1, 1, int(has_g), int(has_initial)])


__all__ = ["GATE_KINDS", "LinearAttention", "build_module", "linear_attention"]
