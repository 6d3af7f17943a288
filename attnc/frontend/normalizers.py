"""The built-in normalizers, written with the same `Normalizer` API a user gets.

None is a special case anywhere below the frontend: each is traced by
`trace_normalizer` into an `attn.online_rowscale`, and runs as is in the float64
reference. What `return_lse=True` returns is each class's `stats`:

| normalizer | p | stats |
|---|---|---|
| `Softmax` | exp(s − max) / Σ exp(s − max) | `lse`: log Σ exp(s), natural log |
| `Sigmoid` | sigmoid(s) | none |
| `ReLU` | max(s, 0) | none |
| `Retention` | s / max(Σ \\|s\\|, 1) (RetNet's parallel form) | `denominator`: max(Σ \\|s\\|, 1) |
| `SoftmaxWithSinks(sinks)` | exp(s) / (Σ exp(s) + exp(sinks[h])) | `lse`: log(Σ exp(s) + exp(sinks[h])) |

A row whose scores are all masked gives output 0 under every normalizer, never NaN.
"""

from __future__ import annotations

from typing import Any

import torch

from attnc.frontend import ops
from attnc.frontend.normalizer import Normalizer, row_max, row_sum

__all__ = [
    "BUILTIN_NORMALIZERS",
    "ReLU",
    "Retention",
    "Sigmoid",
    "Softmax",
    "SoftmaxWithSinks",
    "resolve_normalizer",
]

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
NEG_INF = float("-inf")


class Softmax(Normalizer):
    """Online softmax (FlashAttention-2) in base 2: running max `m` of score·log2(e), running sum `l`.

    exp(s − max) = 2^(s·log2 e − m): the hardware's exp is exp2, and `scores * LOG2E`
    (the constant on the right) merges with the attention scale into one multiply,
    so the kernel spends one FMA and one exp2 per score. A row whose scores are all
    masked keeps m = -inf and l = 0; it gives output 0 and lse -inf, never NaN.
    """

    name = "softmax"
    state = {"m": NEG_INF, "l": 0.0}
    stats = ("lse",)

    def update(self, scores: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        score2 = scores * LOG2E
        m_new = ops.fmax(state["m"], row_max(score2))
        # Until a row sees an unmasked score, m stays -inf; shift by 0 so exp2 gives 0, not NaN.
        m_safe = ops.where(m_new == NEG_INF, 0.0, m_new)
        p = ops.exp2(score2 - m_safe)
        alpha = ops.exp2(state["m"] - m_safe)
        return p, {"m": m_new, "l": state["l"] * alpha + row_sum(p)}, alpha

    def finalize(self, acc: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        l = state["l"]
        # One division per row, then a multiply per element.
        inv_l = 1.0 / ops.where(l == 0.0, 1.0, l)
        return acc * inv_l, {"lse": state["m"] * LN2 + ops.log(l)}


class Sigmoid(Normalizer):
    """p = sigmoid(score), no state: each weight stands alone (Apple's SigmoidAttn).

    Written as 0.5 + 0.5·tanh(score/2): on NVIDIA GPUs with 16-bit inputs tanh is one
    hardware instruction (attn-tile's choice), where 1 / (1 + exp(-score)) would spend
    two (exp and a reciprocal) and leave sigmoid slower than softmax. A masked score
    reads as -inf, whose sigmoid is 0.
    """

    name = "sigmoid"

    def update(self, scores: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        return 0.5 + 0.5 * ops.tanh(scores * 0.5), {}, 1.0

    def finalize(self, acc: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return acc, {}


class ReLU(Normalizer):
    """p = max(score, 0), no state (ReLU attention). A masked score reads as -inf."""

    name = "relu"

    def update(self, scores: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        return ops.fmax(scores, 0.0), {}, 1.0

    def finalize(self, acc: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return acc, {}


class Retention(Normalizer):
    """RetNet's parallel form: o_i = Σ_j s_ij v_j / max(Σ_j |s_ij|, 1).

    The scores carry RetNet's decay (a score_mod) and its causal mask; `d` sums |s|
    over the row. A masked score reads as 0, so it adds nothing to `d`. The
    statistic `denominator` is max(d, 1), which RetNet holds constant in backward.
    """

    name = "retention"
    state = {"d": 0.0}
    stats = ("denominator",)
    held_constant = ("denominator",)
    masked_score = 0.0

    def update(self, scores: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        return scores, {"d": state["d"] + row_sum(ops.abs(scores))}, 1.0

    def finalize(self, acc: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        denominator = ops.fmax(state["d"], 1.0)
        if isinstance(denominator, torch.Tensor):
            # The float64 reference: RetNet holds the denominator constant in backward, as attn-autodiff does.
            denominator = denominator.detach()
        return acc * (1.0 / denominator), {"denominator": denominator}


class SoftmaxWithSinks(Softmax):
    """Softmax with one learned logit per query head in the denominator (gpt-oss's sinks).

    out = Σ_j exp(s_j) v_j / (Σ_j exp(s_j) + exp(sinks[h])): the sink takes weight but
    has no value. The running state is softmax's (base 2); finalize adds the sink
    relative to M = max(m, sink·log2 e), so neither term overflows. A fully masked
    row gives output 0 and lse = sinks[h].
    """

    name = "softmax_with_sinks"

    def __init__(self, sinks: torch.Tensor) -> None:
        if not isinstance(sinks, torch.Tensor) or sinks.dim() != 1 or not sinks.is_floating_point():
            shape = tuple(sinks.shape) if isinstance(sinks, torch.Tensor) else type(sinks).__name__
            raise TypeError(f"SoftmaxWithSinks needs a float tensor [query heads] of sink logits, got {shape}")
        self.sinks = sinks

    def finalize(self, acc: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        m, l = state["m"], state["l"]
        sink2 = self.sinks[self.h] * LOG2E
        top = ops.fmax(m, sink2)
        row_scale = ops.exp2(m - top)
        denominator = l * row_scale + ops.exp2(sink2 - top)
        return acc * (row_scale / denominator), {"lse": (top + ops.log2(denominator)) * LN2}

    def __repr__(self) -> str:
        return f"SoftmaxWithSinks(sinks of shape {tuple(self.sinks.shape)})"


BUILTIN_NORMALIZERS: dict[str, type[Normalizer]] = {
    "softmax": Softmax,
    "sigmoid": Sigmoid,
    "relu": ReLU,
    "retention": Retention,
}


def resolve_normalizer(normalizer: str | Normalizer) -> Normalizer:
    """The Normalizer a name or an instance stands for."""
    if isinstance(normalizer, Normalizer):
        return normalizer
    if isinstance(normalizer, str):
        if normalizer in BUILTIN_NORMALIZERS:
            return BUILTIN_NORMALIZERS[normalizer]()
        available = ", ".join(repr(name) for name in BUILTIN_NORMALIZERS)
        hint = ""
        if normalizer.replace("-", "_").lower() in ("softmax_with_sinks", "sinks"):
            hint = "; attention sinks need their logits: normalizer=attnc.SoftmaxWithSinks(sinks)"
        raise ValueError(f"unknown normalizer {normalizer!r}; available: {available}{hint}")
    if isinstance(normalizer, type) and issubclass(normalizer, Normalizer):
        raise TypeError(
            f"normalizer= needs an instance of {normalizer.__name__}, not the class: write {normalizer.__name__}()"
        )
    raise TypeError(
        f"normalizer= must be a name ({', '.join(BUILTIN_NORMALIZERS)}) or an attnc.Normalizer instance, "
        f"got {type(normalizer).__name__}"
    )
