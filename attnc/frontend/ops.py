"""Elementwise functions for mods, usable both while tracing and in plain PyTorch.

On a traced value they record IR; on torch tensors and Python numbers they compute with
torch and `math`. So one `score_mod` serves the compiler and the float64 reference:

```python
def softcap(score, b, h, q_idx, kv_idx):
    return 30.0 * attnc.tanh(score / 30.0)
```

A 0-dim tensor next to a traced value is a captured operand, read in the kernel.

torch's own functions and Tensor methods work on traced values too (`torch.tanh(score)`,
`score.clamp(min=0)`): `attnc.frontend.torch_functions` traces them.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from xdsl.dialects import arith
from xdsl.dialects.builtin import f32
from xdsl.ir import Operation, SSAValue

from attnc.frontend.proxy import Proxy, find_tracer

if TYPE_CHECKING:
    from attnc.frontend.trace import Tracer

__all__ = [
    "abs",
    "exp",
    "exp2",
    "fmax",
    "fmin",
    "log",
    "log2",
    "maximum",
    "minimum",
    "sigmoid",
    "sqrt",
    "tanh",
    "where",
]


def where(condition: Any, x: Any, y: Any) -> Any:
    """`x` where `condition` holds, else `y` (torch.where); `arith.select` when traced."""
    if (tracer := find_tracer((condition, x, y))) is not None:
        return tracer.where(condition, x, y)
    if isinstance(condition, torch.Tensor):
        return torch.where(condition, x, y)
    if isinstance(condition, bool):
        return x if condition else y
    raise TypeError(f"where() needs a boolean condition, got {type(condition).__name__}")


def minimum(a: Any, b: Any) -> Any:
    """The elementwise smaller value, NaN-propagating like torch.minimum."""
    if (tracer := find_tracer((a, b))) is not None:
        return tracer.binary("min", a, b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.minimum(*_tensors(a, b))
    return a if math.isnan(a) or a <= b else b


def maximum(a: Any, b: Any) -> Any:
    """The elementwise larger value, NaN-propagating like torch.maximum."""
    if (tracer := find_tracer((a, b))) is not None:
        return tracer.binary("max", a, b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.maximum(*_tensors(a, b))
    return a if math.isnan(a) or a >= b else b


def fmax(a: Any, b: Any) -> Any:
    """The elementwise larger value, ignoring a NaN like torch.fmax: `arith.maxnumf`.

    Triton's default maximum, a little cheaper than the NaN-propagating `maximum`; the
    built-in normalizers use it for their running maximum.
    """
    if (tracer := find_tracer((a, b))) is not None:
        return _float_binary(tracer, arith.MaxnumfOp, a, b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.fmax(*_tensors(a, b))
    return b if math.isnan(a) or b > a else a


def fmin(a: Any, b: Any) -> Any:
    """The elementwise smaller value, ignoring a NaN like torch.fmin: `arith.minnumf`."""
    if (tracer := find_tracer((a, b))) is not None:
        return _float_binary(tracer, arith.MinnumfOp, a, b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.fmin(*_tensors(a, b))
    return b if math.isnan(a) or b < a else a


def _float_binary(tracer: Tracer, op: Callable[[SSAValue, SSAValue], Operation], a: Any, b: Any) -> Proxy:
    x, y = (_as_f32(tracer, v) for v in (a, b))
    return Proxy(tracer.emit(op(x, y)), tracer)


def _as_f32(tracer: Tracer, x: Any) -> SSAValue:
    value = tracer.operand(x)
    if isinstance(value, Proxy):
        return tracer.to_f32(value.value)
    return tracer.constant(float(value), f32)


def exp(x: Any) -> Any:
    """e ** x."""
    return _unary("exp", x, torch.exp, math.exp)


def exp2(x: Any) -> Any:
    """2 ** x."""
    return _unary("exp2", x, torch.exp2, lambda v: 2.0**v)


def log(x: Any) -> Any:
    """The natural logarithm."""
    return _unary("log", x, torch.log, math.log)


def log2(x: Any) -> Any:
    """The base-2 logarithm."""
    return _unary("log2", x, torch.log2, math.log2)


def sqrt(x: Any) -> Any:
    """The square root."""
    return _unary("sqrt", x, torch.sqrt, math.sqrt)


def tanh(x: Any) -> Any:
    """The hyperbolic tangent (softcapping: `cap * tanh(score / cap)`)."""
    return _unary("tanh", x, torch.tanh, math.tanh)


def sigmoid(x: Any) -> Any:
    """1 / (1 + e ** -x)."""
    return _unary("sigmoid", x, torch.sigmoid, _sigmoid)


def abs(x: Any) -> Any:  # the public name mirrors torch.abs
    """The absolute value; integers stay integers."""
    return _unary("abs", x, torch.abs, builtins.abs)


def _unary(name: str, x: Any, on_tensor: Any, on_number: Any) -> Any:
    if isinstance(x, Proxy):
        return x.tracer.unary(name, x)
    if isinstance(x, torch.Tensor):
        return on_tensor(x)
    return on_number(x)


def _sigmoid(v: float) -> float:
    # Either branch keeps exp's argument <= 0, so it never overflows.
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def _tensors(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as tensors; a Python number becomes a 0-dim tensor, which torch's type
    promotion lets the other tensor's dtype win over."""
    like = a if isinstance(a, torch.Tensor) else b
    assert isinstance(like, torch.Tensor)

    def as_tensor(v: Any) -> torch.Tensor:
        return v if isinstance(v, torch.Tensor) else torch.tensor(v, device=like.device)

    return as_tensor(a), as_tensor(b)
