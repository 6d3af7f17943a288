"""Causal sliding-window attention: query i sees keys i - 255..i (a window of 256).

Both conditions are affine in the indices, so attn-block-mask classifies the tiles at
compile time: only the band of tiles along the diagonal is visited.

    attnc run examples/sliding_window.py --shape 1,2,2,700,700,64,64
    attnc compile examples/sliding_window.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

from typing import Any

WINDOW = 256


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (q_idx >= kv_idx) & (q_idx - kv_idx < WINDOW)
