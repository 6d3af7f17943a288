"""Causal attention with tanh soft-capping of the scores, as in Gemma 2 and Grok-1.

Scores are squashed into (-30, 30) by `30 * tanh(score / 30)` before the softmax.

    attnc run examples/softcap.py
    attnc compile examples/softcap.py --shape 2,4,2,128,128,64,64 --emit triton
"""

from __future__ import annotations

from typing import Any

import attnc

SOFTCAP = 30.0


def score_mod(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return SOFTCAP * attnc.tanh(score / SOFTCAP)


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx
