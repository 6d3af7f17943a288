"""Causal softmax with attention sinks (gpt-oss): one learned logit per query head.

out_i = Σ_j exp(s_ij) v_j / (Σ_j exp(s_ij) + exp(sinks[h])): the sink takes weight
but has no value, so a head can attend to "nothing". `sinks` is captured by the
normalizer (a `tensor<64xf32>` kernel operand, read as sinks[h] in finalize); a
shape with fewer heads uses the first Hq of them.

    attnc run examples/sinks.py
    attnc compile examples/sinks.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

from typing import Any

import torch

import attnc

MAX_HEADS = 64
# Stand-ins for trained logits: spread over [-2, 2], so some heads' sinks matter.
sinks = torch.linspace(-2.0, 2.0, MAX_HEADS)

normalizer = attnc.SoftmaxWithSinks(sinks)


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return q_idx >= kv_idx
