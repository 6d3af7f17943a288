"""torch functions and Tensor methods on traced values, recognised by identity.

A torch function that receives a traced value (`torch.tanh(score)`, `torch.where(q_idx >= kv_idx,
score, -inf)`, `bias[h, q_idx, kv_idx]`, `temperature * score`) reaches `Proxy.__torch_function__`
with the function object itself; a method of a traced value (`score.exp()`, `score.clamp(min=0)`,
`q_idx.to(torch.float32)`) is looked up on `torch.Tensor` by `Proxy.__getattr__`. Both go through
`TORCH_FUNCTIONS`, keyed by those objects: a user's own function called `tanh` is not
`torch.tanh`, and raises `TraceError` like any function attnc cannot trace.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from xdsl.dialects.builtin import IndexType, f32, i1, i32, i64
from xdsl.ir import Attribute

from attnc.frontend import ops
from attnc.frontend.errors import MissingAttributeError, TraceError
from attnc.frontend.proxy import Proxy, find_tracer

if TYPE_CHECKING:
    from attnc.frontend.trace import Tracer

__all__ = ["TORCH_FUNCTIONS", "tensor_attribute", "trace_torch_function"]

Handler = Callable[..., Any]


def _forms(*names: str) -> list[Callable[..., Any]]:
    """`torch.<name>` and `torch.Tensor.<name>` for each name, where torch has them."""
    return [f for name in names for owner in (torch, torch.Tensor) if (f := getattr(owner, name, None)) is not None]


def _binary(op: str, *, swap: bool = False) -> Handler:
    def handle(tracer: Tracer, input: object, other: object) -> Proxy:
        return tracer.binary(op, other, input) if swap else tracer.binary(op, input, other)

    return handle


def _unary(op: str) -> Handler:
    def handle(tracer: Tracer, input: object) -> Proxy:
        return tracer.unary(op, input)

    return handle


def _add(tracer: Tracer, input: object, other: object, *, alpha: object = 1) -> Proxy:
    return tracer.binary("add", input, other if alpha == 1 else tracer.binary("mul", alpha, other))


def _sub(tracer: Tracer, input: object, other: object, *, alpha: object = 1) -> Proxy:
    return tracer.binary("sub", input, other if alpha == 1 else tracer.binary("mul", alpha, other))


def _div(tracer: Tracer, input: object, other: object, *, rounding_mode: str | None = None) -> Proxy:
    if rounding_mode == "trunc":
        raise TraceError("div(rounding_mode='trunc') cannot be traced; use // (floor division)")
    return tracer.binary("floordiv" if rounding_mode == "floor" else "truediv", input, other)


def _clamp(tracer: Tracer, input: object, min: object = None, max: object = None) -> Proxy:
    result = tracer.operand(input)
    if min is not None:
        result = tracer.binary("max", result, min)
    if max is not None:
        result = tracer.binary("min", result, max)
    return tracer.lift(result)


def _extremum(op: str) -> Handler:
    """torch.max(a, b) / a.max(b), elementwise; with one tensor, or a dimension, torch reduces."""
    row = ", over a row of scores attnc.row_max(x) in a Normalizer's update" if op == "max" else ""

    def handle(tracer: Tracer, input: object, other: object = None, *args: object, **kwargs: object) -> Proxy:
        if not isinstance(other, Proxy | torch.Tensor) or args or kwargs:
            raise TraceError(
                f"torch.{op} of one value or over a dimension is a reduction, and a mod sees one value; "
                f"for the {op} of two values use torch.{op}imum(a, b) or torch.clamp{row}"
            )
        return tracer.binary(op, input, other)

    return handle


def _truth(tracer: Tracer, x: object) -> Proxy:
    value = tracer.operand(x)
    if isinstance(value, Proxy) and value.type == i1:
        return value
    return tracer.binary("ne", value, 0)


def _logical(op: str) -> Handler:
    def handle(tracer: Tracer, input: object, other: object) -> Proxy:
        return tracer.binary(op, _truth(tracer, input), _truth(tracer, other))

    return handle


def _logical_not(tracer: Tracer, input: object) -> Proxy:
    return tracer.unary("invert", _truth(tracer, input))


def _getitem(tracer: Tracer, source: object, index: object) -> Proxy:
    assert isinstance(source, torch.Tensor)
    return tracer.read(source, index)


def _pow(tracer: Tracer, input: object, exponent: object) -> Proxy:
    if isinstance(exponent, Proxy) and not isinstance(input, Proxy):
        return tracer.exponential(input, exponent)
    return tracer.power(input, exponent)


def _round(tracer: Tracer, input: object, *, decimals: int = 0) -> Proxy:
    if decimals == 0:
        return tracer.unary("round", input)
    scale = 10.0**decimals
    return tracer.binary("truediv", tracer.unary("round", tracer.binary("mul", input, scale)), scale)


def _relu(tracer: Tracer, input: object, inplace: bool = False) -> Proxy:
    return tracer.binary("max", input, 0)


def _to(tracer: Tracer, input: object, *args: object, **kwargs: object) -> Proxy:
    """Tensor.to(dtype), .to(device, dtype), .to(other) and their keywords; a device changes nothing."""
    dtypes = [a for a in (*args, kwargs.get("dtype")) if isinstance(a, torch.dtype)]
    others = [a for a in args if isinstance(a, Proxy | torch.Tensor)]
    if others:
        dtypes.append(tensor_attribute(others[0], "dtype") if isinstance(others[0], Proxy) else others[0].dtype)
    if not dtypes:
        return tracer.lift(tracer.operand(input))
    return tracer.convert(input, dtypes[0])


def _converter(dtype: torch.dtype) -> Handler:
    def handle(tracer: Tracer, input: object, memory_format: object = None) -> Proxy:
        return tracer.convert(input, dtype)

    return handle


def _type_as(tracer: Tracer, input: object, other: object) -> Proxy:
    return _to(tracer, input, other)


def _filled(fill: object) -> Handler:
    """x.new_ones(()), torch.zeros_like(x), ...: a constant of x's type (or `dtype`); a mod's values are scalars."""

    def handle(tracer: Tracer, input: object, size: object = (), *, dtype: torch.dtype | None = None, **_: object):
        return _constant_like(tracer, input, size, fill, dtype)

    return handle


def _full(tracer: Tracer, input: object, size: object, fill_value: object, *, dtype=None, **_: object) -> Proxy:
    return _constant_like(tracer, input, size, fill_value, dtype)


def _full_like(tracer: Tracer, input: object, fill_value: object, *, dtype=None, **_: object) -> Proxy:
    return _constant_like(tracer, input, (), fill_value, dtype)


def _constant_like(tracer: Tracer, like: object, size: object, fill: object, dtype: torch.dtype | None) -> Proxy:
    if tuple(size) if isinstance(size, Sequence) else size not in ((), 1):  # type: ignore[arg-type]
        raise TraceError(f"a mod computes one value at a time; a tensor of size {size} cannot be made here")
    target = dtype or (tensor_attribute(like, "dtype") if isinstance(like, Proxy) else torch.float32)
    value = tracer.operand(fill)
    if not isinstance(value, Proxy):  # a constant of the target's kind, so no conversion is traced
        value = float(value) if target.is_floating_point else bool(value) if target == torch.bool else int(value)
    return tracer.convert(value, target)


def _where_method(tracer: Tracer, input: object, condition: object, other: object) -> Proxy:
    # x.where(cond, y) is torch.where(cond, x, y).
    return tracer.where(condition, input, other)


_CONVERTERS = {
    "float": torch.float32,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "double": torch.float64,
    "int": torch.int32,
    "long": torch.int64,
    "bool": torch.bool,
}

_TABLE: list[tuple[Handler, list[Callable[..., Any]]]] = [
    (_getitem, [torch.Tensor.__getitem__]),
    # Arithmetic.
    (_add, _forms("add", "__add__", "__radd__", "__iadd__")),
    (_sub, [torch.sub, torch.subtract, torch.Tensor.sub, torch.Tensor.subtract, torch.Tensor.__sub__]),
    (_binary("sub", swap=True), [torch.rsub, torch.Tensor.__rsub__]),
    (_binary("mul"), _forms("mul", "multiply", "__mul__", "__rmul__")),
    (_binary("truediv"), _forms("true_divide", "__truediv__")),
    (_binary("truediv", swap=True), _forms("__rtruediv__", "__rdiv__")),
    (_div, _forms("div", "divide")),
    (_binary("floordiv"), _forms("floor_divide", "__floordiv__")),
    (_binary("floordiv", swap=True), _forms("__rfloordiv__")),
    (_binary("mod"), _forms("remainder", "__mod__")),
    (_binary("mod", swap=True), _forms("__rmod__")),
    (_pow, _forms("pow", "__pow__", "float_power")),
    (lambda tracer, input, other: _pow(tracer, other, input), _forms("__rpow__")),
    (_unary("neg"), _forms("neg", "negative", "__neg__")),
    (_unary("abs"), _forms("abs", "absolute", "__abs__")),
    (_unary("sign"), _forms("sign", "sgn")),
    # Comparisons and logic.
    (_binary("lt"), _forms("lt", "less", "__lt__")),
    (_binary("le"), _forms("le", "less_equal", "__le__")),
    (_binary("gt"), _forms("gt", "greater", "__gt__")),
    (_binary("ge"), _forms("ge", "greater_equal", "__ge__")),
    (_binary("eq"), _forms("eq", "__eq__")),
    (_binary("ne"), _forms("ne", "not_equal", "__ne__")),
    (_binary("and"), _forms("bitwise_and", "__and__", "__rand__")),
    (_binary("or"), _forms("bitwise_or", "__or__", "__ror__")),
    (_binary("xor"), _forms("bitwise_xor", "__xor__", "__rxor__")),
    (_unary("invert"), _forms("bitwise_not", "__invert__")),
    (_binary("shl"), _forms("bitwise_left_shift", "__lshift__")),
    (_binary("shr"), _forms("bitwise_right_shift", "__rshift__")),
    (_binary("shl", swap=True), _forms("__rlshift__")),
    (_binary("shr", swap=True), _forms("__rrshift__")),
    (_logical("and"), _forms("logical_and")),
    (_logical("or"), _forms("logical_or")),
    (_logical("xor"), _forms("logical_xor")),
    (_logical_not, _forms("logical_not")),
    (lambda tracer, condition, input, other: tracer.where(condition, input, other), [torch.where]),
    (_where_method, [torch.Tensor.where]),
    # Minimum, maximum and clamping.
    (_binary("max"), _forms("maximum")),
    (_binary("min"), _forms("minimum")),
    (_extremum("max"), _forms("max")),
    (_extremum("min"), _forms("min")),
    (lambda tracer, input, other: ops.fmax(input, other), _forms("fmax")),
    (lambda tracer, input, other: ops.fmin(input, other), _forms("fmin")),
    (_clamp, _forms("clamp", "clip")),
    (lambda tracer, input, min: _clamp(tracer, input, min=min), _forms("clamp_min")),
    (lambda tracer, input, max: _clamp(tracer, input, max=max), _forms("clamp_max")),
    (_relu, [*_forms("relu"), F.relu]),
    # Elementwise functions: MLIR's math ops (sigmoid is composed).
    *((_unary(name), _forms(name)) for name in ("exp", "exp2", "log", "log2", "sqrt", "rsqrt", "tanh")),
    *((_unary(name), _forms(name)) for name in ("sigmoid", "sin", "cos", "tan", "erf", "log1p", "expm1")),
    *((_unary(name), _forms(name)) for name in ("floor", "ceil")),
    (_round, _forms("round")),
    (_unary("sigmoid"), [torch.special.expit]),
    *((_unary(name), [getattr(torch.special, name)]) for name in ("exp2", "erf", "log1p", "expm1")),
    (lambda tracer, input: tracer.binary("mul", input, input), _forms("square")),
    (lambda tracer, input: tracer.binary("truediv", 1.0, input), _forms("reciprocal")),
    # Conversions and constants.
    (_to, [torch.Tensor.to]),
    (_type_as, [torch.Tensor.type_as]),
    *((_converter(dtype), [getattr(torch.Tensor, name)]) for name, dtype in _CONVERTERS.items()),
    (_filled(1), [torch.Tensor.new_ones, torch.ones_like]),
    (_filled(0), [torch.Tensor.new_zeros, torch.zeros_like]),
    (_full, [torch.Tensor.new_full]),
    (_full_like, [torch.full_like]),
]

TORCH_FUNCTIONS: dict[Callable[..., Any], Handler] = {f: handler for handler, funcs in _TABLE for f in funcs}
"""Each torch function, Tensor method and operator slot a mod may call on traced values, by identity."""

_TORCH_DTYPES: dict[Attribute, torch.dtype] = {f32: torch.float32, i1: torch.bool, i32: torch.int32, i64: torch.int64}


def tensor_attribute(proxy: Proxy, name: str) -> Any:
    """`proxy.<name>`: its `dtype`, or a bound Tensor method from `TORCH_FUNCTIONS`."""
    if name == "dtype":
        # index is Triton's int32, as FlexAttention's indices are.
        return torch.int32 if isinstance(proxy.type, IndexType) else _TORCH_DTYPES[proxy.type]
    method = getattr(torch.Tensor, name, None)
    if method is not None and method in TORCH_FUNCTIONS:

        def bound(*args: Any, **kwargs: Any) -> Any:
            return trace_torch_function(method, (proxy, *args), kwargs)

        return bound
    if method is None:
        raise MissingAttributeError(f"a traced value has no attribute `{name}`")
    raise MissingAttributeError(f"Tensor.{name} cannot be traced in a {proxy.tracer.kind}; {_hint(name)}")


def trace_torch_function(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Proxy:
    """Trace a torch function or Tensor method that received a traced value."""
    tracer = find_tracer((*args, *kwargs.values()))
    handler = TORCH_FUNCTIONS.get(func)
    if tracer is None or handler is None:
        kind = tracer.kind if tracer is not None else "mod"
        raise TraceError(f"{_torch_name(func)} cannot be traced in a {kind}; {_hint(getattr(func, '__name__', ''))}")
    try:
        inspect.signature(handler).bind(tracer, *args, **kwargs)
    except TypeError as e:
        raise TraceError(f"{_torch_name(func)} with these arguments cannot be traced: {e}") from None
    return handler(tracer, *args, **kwargs)


def _torch_name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", repr(func))
    for owner, prefix in ((torch, "torch"), (torch.Tensor, "Tensor"), (F, "torch.nn.functional")):
        if getattr(owner, name, None) is func:
            return f"{prefix}.{name}"
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module else name


def _hint(name: str) -> str:
    return HINTS.get(name.strip("_"), OPS_HINT)


HINTS = {
    "amax": "over a row of scores use attnc.row_max(x) in a Normalizer's update",
    "sum": "over a row of scores use attnc.row_sum(x) in a Normalizer's update",
    "softmax": "a mod sees one score at a time; the softmax is applied by attnc after it",
    "tensor": "create the tensor outside the mod and capture it",
}
"""What to write instead of a torch function that cannot be traced, by its name; every function
and method named here is traced (test_trace_methods.py checks that)."""

OPS_HINT = (
    "use Python's operators, torch's elementwise functions (torch.exp, torch.where, torch.clamp, "
    "torch.maximum, ...) or their Tensor methods (x.exp(), x.clamp(min=0), x.to(torch.float32)), "
    "or index a captured tensor"
)
