"""Sigmoid attention (Apple's SigmoidAttn): p = sigmoid(score - log n), causal.

Each weight stands alone: no row max, no row sum, no rescaling of the accumulator,
so the normalizer has no state. The bias -log(n) keeps the row's total weight near
the softmax's at the start of training; SigmoidAttn takes n = the sequence length,
here fixed at N = 4096 so that one compiled kernel serves every length.

    attnc run examples/sigmoid.py
    attnc compile examples/sigmoid.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

import math
from typing import Any

N = 4096
LOG_N = math.log(N)

normalizer = "sigmoid"


def score_mod(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return score - LOG_N


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx
