"""Prefix-LM attention: every query sees the first 64 positions (the prefix, attended
bidirectionally), and the rest causally.

    attnc run examples/prefix_lm.py
    attnc compile examples/prefix_lm.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

from typing import Any

PREFIX = 64


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return (kv_idx < PREFIX) | (q_idx >= kv_idx)
