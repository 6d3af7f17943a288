"""RetNet's parallel retention: o_i = Σ_j s_ij v_j / max(Σ_j |s_ij|, 1), s_ij = q_i·k_j γ_h^(i-j).

The decay γ_h^(i-j) is a score_mod, written as 2^((i-j) log2 γ_h) with `log2_gamma`
captured (a `tensor<64xf32>` kernel operand); the causal mask keeps j <= i; the
normalizer "retention" sums |s| over the row in its state `d`. The decays are RetNet's,
γ_h = 1 - exp(linspace(log 1/32, log 1/512)) over 64 heads; a shape with fewer heads
uses the first Hq of them.

    attnc run examples/retention.py
    attnc compile examples/retention.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

import math
from typing import Any

import torch

import attnc

MAX_HEADS = 64
gamma = 1.0 - torch.exp(torch.linspace(math.log(1 / 32), math.log(1 / 512), MAX_HEADS, dtype=torch.float64))
log2_gamma = torch.log2(gamma).float()

normalizer = "retention"


def score_mod(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return score * attnc.exp2((q_idx - kv_idx) * log2_gamma[h])


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx
