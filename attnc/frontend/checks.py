"""Input checks shared by every entry point, so one mistake raises one error wherever it is made.

`TypeError` when an argument is not of a kind attnc takes (not a tensor, an unsupported
dtype, a scale that is not a number); `ValueError` when it is of the right kind but does
not fit (shape, device, a non-finite scale). Each message names the argument.
"""

from __future__ import annotations

import math
from typing import Any

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MIN_HEAD_DIM, MAX_HEAD_DIM = 16, 256


def check_tensors(layouts: dict[str, str], tensors: dict[str, Any]) -> None:
    """Each of `tensors` is a 4-D float16/bfloat16/float32 tensor; all share one dtype and one device."""
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, but got {type(t).__name__}")
    for name, t in tensors.items():
        if t.dim() != 4:
            raise ValueError(f"{name} must have 4 dimensions {layouts[name]}, but got shape {tuple(t.shape)}")
        if t.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float16, bfloat16 or float32, but got {t.dtype}")
    names, values = ", ".join(list(tensors)[:-1]) + f" and {list(tensors)[-1]}", list(tensors.values())
    if any(t.dtype != values[0].dtype for t in values):
        raise TypeError(f"{names} must share one dtype, but got {', '.join(str(t.dtype) for t in values)}")
    if any(t.device != values[0].device for t in values):
        raise ValueError(f"{names} must be on one device, but got {', '.join(str(t.device) for t in values)}")
    if values[0].device.type not in ("cpu", "cuda"):
        raise ValueError(f"{list(tensors)[0]} must be on a CPU or CUDA device, but got {values[0].device}")


def check_stored(q: Any, k: Any, v: Any, block_table: bool) -> None:
    """q, k, v as packed or cached sequences store them: one dtype and device, heads that group, head
    dims that match, v stored like k (pages when `block_table`)."""
    length = "page_size" if block_table else "S"
    check_tensors(
        {"q": "[B, Hq, Sq, D]", "k": f"[B, Hkv, {length}, D]", "v": f"[B, Hkv, {length}, Dv]"}, {"q": q, "k": k, "v": v}
    )
    hq, d = q.shape[1], q.shape[3]
    hkv = k.shape[1]
    if v.shape[0] != k.shape[0] or v.shape[1] != hkv or v.shape[2] != k.shape[2]:
        raise ValueError(f"v must be stored like k {tuple(k.shape[:3])}, but got shape {tuple(v.shape)}")
    if hkv == 0 or hq % hkv:
        raise ValueError(f"q heads ({hq}) must be a multiple of k/v heads ({hkv})")
    if k.shape[3] != d:
        raise ValueError(f"k must have head dim {d} like q, but got {k.shape[3]}")
    for name, dim in (("q/k head dim", d), ("v head dim", v.shape[3])):
        if not MIN_HEAD_DIM <= dim <= MAX_HEAD_DIM:
            raise ValueError(f"{name} must be between {MIN_HEAD_DIM} and {MAX_HEAD_DIM}, but got {dim}")


def check_scale(scale: Any) -> None:
    """None (the default, head_dim**-0.5) or a finite number."""
    if scale is None:
        return
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a float or None, but got {type(scale).__name__}")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, but got {scale}")


def check_on_device(name: str, t: torch.Tensor, device: torch.device) -> None:
    if t.device != device:
        raise ValueError(f"{name} must be on q's device {device}, but is on {t.device}")


__all__ = [
    "FLOAT_DTYPES",
    "MAX_HEAD_DIM",
    "MIN_HEAD_DIM",
    "check_on_device",
    "check_scale",
    "check_stored",
    "check_tensors",
]
