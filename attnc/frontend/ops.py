"""Elementwise functions for mods, usable both while tracing and in plain PyTorch.

On a traced value they record IR; on torch tensors and Python numbers they compute with
torch and `math`. So one `score_mod` serves the compiler and the float64 reference:

```python
def softcap(score, b, h, q_idx, kv_idx):
    return 30.0 * attnc.tanh(score / 30.0)
```

A 0-dim tensor next to a traced value is a captured operand, read in the kernel.

torch functions called on traced values (`torch.where`, `torch.tanh`, `Tensor.__getitem__`
on a captured tensor, ...) arrive here too, through `Proxy.__torch_function__`, and are
traced by the table `TORCH_FUNCTIONS`; any other raises `TraceError`.
"""

from __future__ import annotations

import builtins
import inspect
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from xdsl.dialects import arith
from xdsl.dialects.builtin import f32, i1
from xdsl.ir import Operation, SSAValue

from attnc.frontend.errors import TraceError
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


# torch functions and Tensor methods on traced values, by `__name__`.


def _binary_handler(op: str, *, swap: bool = False) -> Callable[..., Proxy]:
    def handle(tracer: Tracer, a: object, b: object) -> Proxy:
        return tracer.binary(op, b, a) if swap else tracer.binary(op, a, b)

    return handle


def _unary_handler(op: str) -> Callable[..., Proxy]:
    def handle(tracer: Tracer, x: object) -> Proxy:
        return tracer.unary(op, x)

    return handle


def _div(tracer: Tracer, a: object, b: object, *, rounding_mode: str | None = None) -> Proxy:
    if rounding_mode == "trunc":
        raise TraceError("div(rounding_mode='trunc') is not supported; use // (floor)")
    return tracer.binary("floordiv" if rounding_mode == "floor" else "truediv", a, b)


def _clamp(tracer: Tracer, x: object, min: object = None, max: object = None) -> Proxy:
    result = tracer.operand(x)
    if min is not None:
        result = tracer.binary("max", result, min)
    if max is not None:
        result = tracer.binary("min", result, max)
    return tracer.lift(result)


def _truth(tracer: Tracer, x: object) -> Proxy:
    value = tracer.operand(x)
    if isinstance(value, Proxy) and value.type == i1:
        return value
    return tracer.binary("ne", value, 0)


def _logical(op: str) -> Callable[..., Proxy]:
    def handle(tracer: Tracer, a: object, b: object) -> Proxy:
        return tracer.binary(op, _truth(tracer, a), _truth(tracer, b))

    return handle


def _logical_not(tracer: Tracer, x: object) -> Proxy:
    return tracer.unary("invert", _truth(tracer, x))


def _getitem(tracer: Tracer, source: object, index: object) -> Proxy:
    assert isinstance(source, torch.Tensor)
    return tracer.read(source, index)


def _pow(tracer: Tracer, base: object, exponent: object) -> Proxy:
    if isinstance(exponent, Proxy):
        return tracer.exponential(base, exponent)
    return tracer.power(base, exponent)


TORCH_FUNCTIONS: dict[str, Callable[..., Proxy]] = {
    "__getitem__": _getitem,
    **{name: _binary_handler("add") for name in ("add", "__add__", "__radd__")},
    **{name: _binary_handler("mul") for name in ("mul", "multiply", "__mul__", "__rmul__")},
    **{name: _binary_handler("sub") for name in ("sub", "subtract", "__sub__")},
    **{name: _binary_handler("sub", swap=True) for name in ("rsub", "__rsub__")},
    **{name: _binary_handler("truediv") for name in ("true_divide", "__truediv__")},
    **{name: _binary_handler("truediv", swap=True) for name in ("__rtruediv__", "__rdiv__")},
    "div": _div,
    "divide": _div,
    **{name: _binary_handler("floordiv") for name in ("floor_divide", "__floordiv__")},
    "__rfloordiv__": _binary_handler("floordiv", swap=True),
    **{name: _binary_handler("mod") for name in ("remainder", "__mod__")},
    "__rmod__": _binary_handler("mod", swap=True),
    "pow": _pow,
    "__pow__": _pow,
    "__rpow__": lambda tracer, a, b: _pow(tracer, b, a),
    **{name: _binary_handler("lt") for name in ("lt", "less", "__lt__")},
    **{name: _binary_handler("le") for name in ("le", "less_equal", "__le__")},
    **{name: _binary_handler("gt") for name in ("gt", "greater", "__gt__")},
    **{name: _binary_handler("ge") for name in ("ge", "greater_equal", "__ge__")},
    **{name: _binary_handler("eq") for name in ("eq", "__eq__")},
    **{name: _binary_handler("ne") for name in ("ne", "not_equal", "__ne__")},
    **{name: _binary_handler("and") for name in ("bitwise_and", "__and__", "__rand__")},
    **{name: _binary_handler("or") for name in ("bitwise_or", "__or__", "__ror__")},
    **{name: _binary_handler("xor") for name in ("bitwise_xor", "__xor__", "__rxor__")},
    "logical_and": _logical("and"),
    "logical_or": _logical("or"),
    "logical_xor": _logical("xor"),
    "logical_not": _logical_not,
    "bitwise_not": _unary_handler("invert"),
    "__invert__": _unary_handler("invert"),
    "maximum": _binary_handler("max"),
    "minimum": _binary_handler("min"),
    "fmax": lambda tracer, a, b: _float_binary(tracer, arith.MaxnumfOp, a, b),
    "fmin": lambda tracer, a, b: _float_binary(tracer, arith.MinnumfOp, a, b),
    "clamp": _clamp,
    "clip": _clamp,
    "clamp_min": lambda tracer, x, min: _clamp(tracer, x, min=min),
    "clamp_max": lambda tracer, x, max: _clamp(tracer, x, max=max),
    "relu": lambda tracer, x: tracer.binary("max", x, 0),
    "where": lambda tracer, condition, x, y: tracer.where(condition, x, y),
    **{name: _unary_handler("neg") for name in ("neg", "negative", "__neg__")},
    **{name: _unary_handler(name) for name in ("abs", "exp", "exp2", "log", "log2", "sqrt")},
    **{name: _unary_handler(name) for name in ("rsqrt", "tanh", "sigmoid")},
}

_TORCH_HINTS = {
    "max": "for the larger of two values use attnc.maximum(a, b); over a row of scores, "
    "attnc.row_max(x) in a Normalizer's update",
    "amax": "over a row of scores use attnc.row_max(x) in a Normalizer's update",
    "sum": "over a row of scores use attnc.row_sum(x) in a Normalizer's update",
    "min": "for the smaller of two values use attnc.minimum(a, b)",
    "square": "write x * x",
    "expm1": "write attnc.exp(x) - 1",
    "log1p": "write attnc.log(1 + x)",
    "softmax": "a mod sees one score at a time; the softmax is applied by attnc after it",
    "full_like": "use a Python number instead",
    "tensor": "create the tensor outside the mod and capture it",
}


def _torch_name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", repr(func))
    if getattr(torch, name, None) is func:
        return f"torch.{name}"
    if getattr(torch.Tensor, name, None) is func:
        return f"Tensor.{name}"
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module else name


def trace_torch_function(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Proxy:
    """Trace a torch function or Tensor method that received a traced value."""
    tracer = find_tracer((*args, *kwargs.values()))
    name = getattr(func, "__name__", "")
    handler = TORCH_FUNCTIONS.get(name)
    if tracer is None or handler is None:
        kind = tracer.kind if tracer is not None else "mod"
        hint = _TORCH_HINTS.get(name.strip("_"), _OPS_HINT)
        raise TraceError(f"{_torch_name(func)} cannot be traced in a {kind}; {hint}")
    try:
        inspect.signature(handler).bind(tracer, *args, **kwargs)
    except TypeError as e:
        raise TraceError(f"{_torch_name(func)} with these arguments cannot be traced: {e}") from None
    return handler(tracer, *args, **kwargs)


_OPS_HINT = (
    "use the operators (+ - * / // % ** < <= == & | ~), attnc.where / exp / exp2 / log "
    "/ log2 / sqrt / tanh / sigmoid / abs / minimum / maximum / fmin / fmax, or index a captured tensor"
)
