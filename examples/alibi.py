"""ALiBi: a per-head linear bias on the distance between key and query.

`slopes` is captured by the score_mod, so it becomes a kernel operand (a
`tensor<64xf32>` block argument in the IR), not a constant. The slopes are
2**(-8 (h + 1) / 64), ALiBi's geometric sequence for a 64-head model; a shape with
fewer heads uses the first Hq of them, so any Hq up to 64 works.

    attnc run examples/alibi.py
    attnc compile examples/alibi.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

from typing import Any

import torch

MAX_HEADS = 64
slopes = 2.0 ** (-8.0 * (torch.arange(MAX_HEADS, dtype=torch.float32) + 1) / MAX_HEADS)


def score_mod(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return score + slopes[h] * (kv_idx - q_idx)
