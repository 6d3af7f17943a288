"""ReLU attention, causal: p = max(score, 0), with no normalization over the row.

The normalizer has no state; a masked score reads as -inf, so its weight is 0.

    attnc run examples/relu.py
    attnc compile examples/relu.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

from typing import Any

normalizer = "relu"


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx
