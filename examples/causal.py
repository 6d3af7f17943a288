"""Causal attention: query i sees keys 0..i.

attn-block-mask classifies this predicate symbolically: tiles above the diagonal are
skipped, tiles below it run without evaluating the mask.

    attnc run examples/causal.py
    attnc compile examples/causal.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

from typing import Any


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx
