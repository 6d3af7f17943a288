"""Document masking: packed sequences where each token sees only its own document.

`document_id[i]` is the document of position i. It is a captured int32 tensor read
at both indices, so the mask is not affine: attn-block-mask gets a block table
computed on the device at run time. The ids cover 16384 positions (Sq and Skv up to
16384), in documents whose lengths vary from 8 to about 1000 tokens.

    attnc run examples/document_mask.py
    attnc compile examples/document_mask.py --shape 2,4,2,128,128,64,64 --emit attn
"""

from __future__ import annotations

from typing import Any

import torch

MAX_POSITIONS = 16384


def _document_ids(positions: int, seed: int = 0) -> torch.Tensor:
    """Consecutive documents with log-uniform lengths between 8 and 1024 tokens."""
    gen = torch.Generator().manual_seed(seed)
    lengths: list[int] = []
    while sum(lengths) < positions:
        lengths.append(int(2.0 ** (3 + 7 * torch.rand((), generator=gen).item())))
    ids = torch.repeat_interleave(torch.arange(len(lengths), dtype=torch.int32), torch.tensor(lengths))
    return ids[:positions].contiguous()


document_id = _document_ids(MAX_POSITIONS)


def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
    return document_id[q_idx] == document_id[kv_idx]
