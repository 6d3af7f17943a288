"""A user-defined normalizer: causal softmax with a learned temperature per query head.

p_ij = exp(s_ij / T_h) / Σ_j exp(s_ij / T_h), written as an `attnc.Normalizer`: the
online softmax (running max `m`, running sum `l`) on scores divided by T_h, which
`update` reads as `self.temperature[self.h]` (a captured `tensor<64xf32>`). It is
traced into an `attn.online_rowscale` as the built-in normalizers are. A shape with
fewer heads uses the first Hq temperatures.

    attnc run examples/tempered_softmax.py
    attnc compile examples/tempered_softmax.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

from typing import Any

import torch

import attnc

MAX_HEADS = 64
NEG_INF = float("-inf")


class TemperedSoftmax(attnc.Normalizer):
    """Online softmax of score / temperature[h]; the statistic `lse` is log Σ exp(s / T_h)."""

    name = "tempered_softmax"
    state = {"m": NEG_INF, "l": 0.0}
    stats = ("lse",)

    def __init__(self, temperature: torch.Tensor) -> None:
        self.temperature = temperature

    def update(self, scores: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        s = scores / self.temperature[self.h]
        m_new = attnc.maximum(state["m"], attnc.row_max(s))
        # Until a row sees an unmasked score m is -inf; shift by 0 so exp gives 0, not NaN.
        m_safe = attnc.where(m_new == NEG_INF, 0.0, m_new)
        p = attnc.exp(s - m_safe)
        alpha = attnc.exp(state["m"] - m_safe)
        return p, {"m": m_new, "l": state["l"] * alpha + attnc.row_sum(p)}, alpha

    def finalize(self, acc: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        l_safe = attnc.where(state["l"] == 0.0, 1.0, state["l"])
        return acc / l_safe, {"lse": state["m"] + attnc.log(state["l"])}


# Stand-ins for trained temperatures, in [0.5, 2).
temperature = 0.5 + 1.5 * torch.arange(MAX_HEADS, dtype=torch.float32) / MAX_HEADS

normalizer = TemperedSoftmax(temperature)


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx
