"""attnc: an MLIR-based compiler for attention variants, built on xDSL and Triton.

The public names load on first use, so tools that need only the IR (attn-opt, the
passes) start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what __getattr__ below loads, spelled out for type checkers
    from attnc.frontend.api import Attention, CompiledAttention, Shape, attention, compile
    from attnc.frontend.errors import TraceError
    from attnc.frontend.flex import flex_attention
    from attnc.frontend.linear import LinearAttention, linear_attention
    from attnc.frontend.normalizer import Normalizer, row_max, row_sum
    from attnc.frontend.normalizers import ReLU, Retention, Sigmoid, Softmax, SoftmaxWithSinks
    from attnc.frontend.ops import abs, exp, exp2, log, log2, maximum, minimum, sigmoid, sqrt, tanh, where
    from attnc.reference import attention_reference, sequences_reference

_EXPORTS = {
    "Attention": "attnc.frontend.api",
    "CompiledAttention": "attnc.frontend.api",
    "Shape": "attnc.frontend.api",
    "attention": "attnc.frontend.api",
    "compile": "attnc.frontend.api",
    "TraceError": "attnc.frontend.errors",
    "flex_attention": "attnc.frontend.flex",
    "LinearAttention": "attnc.frontend.linear",
    "linear_attention": "attnc.frontend.linear",
    "abs": "attnc.frontend.ops",
    "exp": "attnc.frontend.ops",
    "exp2": "attnc.frontend.ops",
    "log": "attnc.frontend.ops",
    "log2": "attnc.frontend.ops",
    "maximum": "attnc.frontend.ops",
    "minimum": "attnc.frontend.ops",
    "sigmoid": "attnc.frontend.ops",
    "sqrt": "attnc.frontend.ops",
    "tanh": "attnc.frontend.ops",
    "where": "attnc.frontend.ops",
    "attention_reference": "attnc.reference",
    "sequences_reference": "attnc.reference",
    "Normalizer": "attnc.frontend.normalizer",
    "row_max": "attnc.frontend.normalizer",
    "row_sum": "attnc.frontend.normalizer",
    "Softmax": "attnc.frontend.normalizers",
    "Sigmoid": "attnc.frontend.normalizers",
    "ReLU": "attnc.frontend.normalizers",
    "Retention": "attnc.frontend.normalizers",
    "SoftmaxWithSinks": "attnc.frontend.normalizers",
}

__all__ = [
    "Attention",
    "CompiledAttention",
    "LinearAttention",
    "Normalizer",
    "ReLU",
    "Retention",
    "Shape",
    "Sigmoid",
    "Softmax",
    "SoftmaxWithSinks",
    "TraceError",
    "abs",
    "attention",
    "attention_reference",
    "compile",
    "exp",
    "exp2",
    "flex_attention",
    "linear_attention",
    "log",
    "log2",
    "maximum",
    "minimum",
    "row_max",
    "row_sum",
    "sequences_reference",
    "sigmoid",
    "sqrt",
    "tanh",
    "where",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'attnc' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
