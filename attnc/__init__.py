"""attnc: an MLIR-based compiler for attention variants, built on xDSL and Triton."""

from __future__ import annotations

from attnc.frontend.api import Attention, CompiledAttention, Shape, attention, compile
from attnc.frontend.errors import TraceError
from attnc.frontend.ops import abs, exp, exp2, log, log2, maximum, minimum, sigmoid, sqrt, tanh, where
from attnc.reference import attention_reference

__version__ = "0.1.0"

__all__ = [
    "Attention",
    "CompiledAttention",
    "Shape",
    "TraceError",
    "abs",
    "attention",
    "attention_reference",
    "compile",
    "exp",
    "exp2",
    "log",
    "log2",
    "maximum",
    "minimum",
    "sigmoid",
    "sqrt",
    "tanh",
    "where",
]
