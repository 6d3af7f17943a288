"""Trace a FlexAttention-style `score_mod` / `mask_mod` into one attn region.

The user's function is called once with proxy values standing for the block arguments.
Every operation on a proxy appends `arith` / `math` / `tensor` ops to the region's
single block; the returned proxy is yielded with `attn.yield`.

```python
def alibi(score, b, h, q_idx, kv_idx):
    return score + slopes[h] * (kv_idx - q_idx)
```

traces to

```mlir
^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes: tensor<8xf32>):
  %0 = tensor.extract %slopes[%h] : tensor<8xf32>
  %1 = arith.subi %kv_idx, %q_idx : index
  %2 = arith.index_cast %1 : index to i64
  %3 = arith.sitofp %2 : i64 to f32
  %4 = arith.mulf %0, %3 : f32
  %5 = arith.addf %score, %4 : f32
  attn.yield %5 : f32
```

Type rules, as Python and torch would compute them:
- a float anywhere makes the operation f32 (integers: `index_cast` to i64, `sitofp`);
- integers of different types meet in `index`; a Python int takes the other side's type;
- `/` divides as floats, `//` floors (`arith.floordivsi`), `%` follows the divisor's sign;
- booleans (i1) count as 0/1 in arithmetic, and stay i1 under `& | ^ ~` and `== !=`.

A captured tensor (`bias[b, h, q_idx, kv_idx]`, `slopes[h]`, a 0-dim `scale`) becomes one
trailing block argument of static tensor type, read with `tensor.extract`; it is a kernel
operand at run time, never a constant. torch functions on proxies reach
`Proxy.__torch_function__`; the elementwise ones are traced, the rest raise `TraceError`.
"""

from __future__ import annotations

import dis
import functools
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import CodeType
from typing import Any

import torch
from xdsl.dialects import arith, tensor
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    TensorType,
    bf16,
    f16,
    f32,
    f64,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue

from attnc.dialect.attn import YieldOp
from attnc.frontend.errors import SourceLocation, TraceError, user_frame
from attnc.frontend.proxy import Proxy, find_tracer
from attnc.frontend.torch_functions import tensor_attribute, trace_torch_function

__all__ = [
    "Proxy",
    "TracedRegion",
    "Tracer",
    "find_tracer",
    "trace_mask_mod",
    "trace_score_mod",
]

INDEX = IndexType()

_ELEMENT_TYPES: dict[torch.dtype, Attribute] = {
    torch.float32: f32,
    torch.float16: f16,
    torch.bfloat16: bf16,
    torch.float64: f64,
    torch.int32: i32,
    torch.int64: i64,
    torch.bool: i1,
}

# A Python number in an expression with a proxy, before it becomes a constant.
Number = bool | int | float


@dataclass
class TracedRegion:
    """A traced mod: the region and the tensors its trailing block arguments stand for."""

    region: Region
    captures: list[torch.Tensor]


def trace_score_mod(fn: Callable[..., Any]) -> TracedRegion:
    """Trace `fn(score, b, h, q_idx, kv_idx)`.

    Block arguments `(score: f32, b, h, q_idx, kv_idx: index, *captures)`; yields f32.
    """
    tracer = Tracer(fn, "score_mod")
    args = [
        tracer.argument("score", f32),
        *(tracer.argument(name, INDEX) for name in ("b", "h", "q_idx", "kv_idx")),
    ]
    result = tracer.call(args)
    location = return_location(fn)
    if isinstance(result, Proxy) and result.type == i1:
        raise TraceError(
            "score_mod must return a float score, but returned a boolean; "
            "a boolean belongs in a mask_mod, or pick a score with attnc.where(cond, score, -inf)",
            location,
        )
    if isinstance(result, bool):
        raise TraceError(
            f"score_mod must return a float score, but returned the Python bool {result}",
            location,
        )
    value = tracer.result_value(result, location)
    return tracer.finish(tracer.to_f32(value))


def trace_mask_mod(fn: Callable[..., Any]) -> TracedRegion:
    """Trace `fn(b, h, q_idx, kv_idx)`.

    Block arguments `(b, h, q_idx, kv_idx: index, *captures)`; yields i1.
    """
    tracer = Tracer(fn, "mask_mod")
    args = [tracer.argument(name, INDEX) for name in ("b", "h", "q_idx", "kv_idx")]
    result = tracer.call(args)
    location = return_location(fn)
    if isinstance(result, Proxy) and result.type != i1:
        raise TraceError(
            f"mask_mod must return a boolean (e.g. q_idx >= kv_idx), but returned a traced {result.type} value",
            location,
        )
    if not isinstance(result, bool | Proxy | torch.Tensor | None):
        raise TraceError(
            f"mask_mod must return a boolean (e.g. q_idx >= kv_idx), but returned {type(result).__name__} {result!r}",
            location,
        )
    value = tracer.result_value(result, location)
    if value.type != i1:
        raise TraceError(
            f"mask_mod must return a boolean, but returned a tensor element of type {value.type}",
            location,
        )
    return tracer.finish(value)


class Tracer:
    """Builds the region's single block while the user's function runs."""

    def __init__(self, fn: Callable[..., Any], kind: str) -> None:
        if not callable(fn):
            raise TraceError(f"{kind} must be a function, got {type(fn).__name__}")
        self.fn = fn
        self.kind = kind
        self.block = Block()
        self.captures: list[torch.Tensor] = []
        self._capture_args: dict[int, BlockArgument] = {}
        self._constants: dict[tuple[Attribute, str], SSAValue] = {}

    # Setup and results.

    def argument(self, name: str, type: Attribute) -> Proxy:
        arg = self.block.insert_arg(type, len(self.block.args))
        arg.name_hint = name
        return Proxy(arg, self)

    def torch_function(self, func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Proxy:
        """A torch function or Tensor method that received one of this trace's values, traced (ops.py)."""
        return trace_torch_function(func, args, kwargs)

    def tensor_attribute(self, proxy: Proxy, name: str) -> Any:
        """`proxy.<name>`: a Tensor method bound to it, or its dtype (torch_functions.py)."""
        return tensor_attribute(proxy, name)

    def call(self, args: list[Proxy]) -> object:
        _check_signature(self.fn, len(args), self.kind)
        return self.fn(*args)

    def result_value(self, result: object, location: SourceLocation | None) -> SSAValue:
        if result is None:
            raise TraceError(f"{self.kind} returned None; is a `return` missing?", definition_location(self.fn))
        if isinstance(result, Proxy):
            self._check_own(result)
            return result.value
        if isinstance(result, torch.Tensor) and result.dim() == 0:
            return self.read(result, ()).value
        if isinstance(result, bool):
            return self.constant(result, i1)
        if isinstance(result, numbers.Real):
            return self.constant(float(result), f32)
        raise TraceError(
            f"{self.kind} must return a traced value or a Python number, but returned {type(result).__name__}",
            location,
        )

    def finish(self, value: SSAValue) -> TracedRegion:
        self.block.add_op(YieldOp(value))
        return TracedRegion(Region(self.block), self.captures)

    # Values.

    def emit(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    def constant(self, value: Number, type: Attribute) -> SSAValue:
        value = float(value) if type == f32 else value
        key = (type, repr(value))
        if key in self._constants:
            return self._constants[key]
        if type == f32:
            result = self.emit(arith.ConstantOp(FloatAttr(float(value), f32)))
            result.name_hint = "cst"
        elif type == i1:
            result = self.emit(arith.ConstantOp(IntegerAttr(int(value), i1)))
            result.name_hint = "true" if value else "false"
        else:
            assert isinstance(type, IntegerType | IndexType)
            result = self.emit(arith.ConstantOp(IntegerAttr(int(value), type)))
            suffix = "" if type == INDEX else f"_{type}"
            result.name_hint = f"c{int(value)}{suffix}"
        self._constants[key] = result
        return result

    def to_f32(self, value: SSAValue) -> SSAValue:
        if value.type == f32:
            return value
        if value.type == INDEX:
            value = self.emit(arith.IndexCastOp(value, i64))
        if value.type == i1:
            return self.emit(arith.UIToFPOp(value, f32))
        if isinstance(value.type, IntegerType):
            return self.emit(arith.SIToFPOp(value, f32))
        if isinstance(value.type, Float16Type | BFloat16Type):
            return self.emit(arith.ExtFOp(value, f32))
        if isinstance(value.type, Float64Type):
            return self.emit(arith.TruncFOp(value, f32))
        raise AssertionError(f"no conversion from {value.type} to f32")

    def to_index(self, value: SSAValue) -> SSAValue:
        if value.type == INDEX:
            return value
        if value.type == i1:
            value = self.emit(arith.ExtUIOp(value, i64))
        return self.emit(arith.IndexCastOp(value, INDEX))

    def operand(self, x: object) -> Proxy | Number:
        """A proxy, or a Python number kept as a constant until its type is known."""
        if isinstance(x, Proxy):
            self._check_own(x)
            return x
        if isinstance(x, bool | int | float):
            return x
        if isinstance(x, torch.Tensor):
            if x.dim() != 0:
                raise TraceError(
                    f"a tensor of shape {tuple(x.shape)} cannot be combined with traced values; "
                    "index it to read one element (bias[b, h, q_idx, kv_idx])"
                )
            return self.read(x, ())
        if isinstance(x, numbers.Integral):
            return int(x)
        if isinstance(x, numbers.Real):
            return float(x)
        raise TraceError(f"cannot combine a traced value with {type(x).__name__} {x!r}")

    def lift(self, x: Proxy | Number) -> Proxy:
        """A proxy for `x`; a Python constant becomes i1, index or f32 by its Python type."""
        if isinstance(x, Proxy):
            return x
        type = i1 if isinstance(x, bool) else INDEX if isinstance(x, int) else f32
        return Proxy(self.constant(x, type), self)

    def _check_own(self, proxy: Proxy) -> None:
        if proxy.tracer is not self:
            raise TraceError("a traced value from another trace was used; do not keep proxies across calls of a mod")

    # Operations.

    def binary(self, op: str, lhs: object, rhs: object) -> Proxy:
        a, b = self.operand(lhs), self.operand(rhs)
        is_float = _is_float(a) or _is_float(b)
        if op == "truediv":
            return self._proxy(arith.DivfOp(self._as_f32(a), self._as_f32(b)))
        if is_float:
            return self._float_binary(op, self._as_f32(a), self._as_f32(b))
        if op in ("floordiv", "mod") and not isinstance(b, Proxy) and b == 0:
            raise TraceError("integer division by zero")
        keep_bool = op in ("and", "or", "xor", "eq", "ne")
        x, y = self._unify_ints(a, b, keep_bool=keep_bool)
        return self._int_binary(op, x, y)

    def _float_binary(self, op: str, x: SSAValue, y: SSAValue) -> Proxy:
        if op in _FLOAT_OPS:
            return self._proxy(_FLOAT_OPS[op](x, y))
        if op in _FLOAT_PREDICATES:
            return self._proxy(arith.CmpfOp(x, y, _FLOAT_PREDICATES[op]))
        if op == "floordiv":
            return self._proxy(mathd.FloorOp(self.emit(arith.DivfOp(x, y))))
        if op == "mod":
            floor = self.emit(mathd.FloorOp(self.emit(arith.DivfOp(x, y))))
            return self._proxy(arith.SubfOp(x, self.emit(arith.MulfOp(floor, y))))
        raise TraceError(f"`{_SYMBOLS.get(op, op)}` needs boolean or integer operands, not floats")

    def _int_binary(self, op: str, x: SSAValue, y: SSAValue) -> Proxy:
        if op in _INT_OPS:
            return self._proxy(_INT_OPS[op](x, y))
        if op in _INT_PREDICATES:
            return self._proxy(arith.CmpiOp(x, y, _INT_PREDICATES[op]))
        if op == "floordiv":
            return self._proxy(arith.FloorDivSIOp(x, y))
        if op == "mod":
            # Python's %: the remainder takes the divisor's sign.
            quotient = self.emit(arith.FloorDivSIOp(x, y))
            return self._proxy(arith.SubiOp(x, self.emit(arith.MuliOp(quotient, y))))
        raise AssertionError(f"unknown binary operation {op}")

    def unary(self, op: str, x: object) -> Proxy:
        value = self.lift(self.operand(x)).value
        if op == "invert":
            if value.type == f32:
                raise TraceError("`~` needs a boolean or an integer, not a float")
            ones = self.constant(True if value.type == i1 else -1, value.type)
            return self._proxy(arith.XOrIOp(value, ones))
        if op in ("neg", "abs"):
            if value.type == f32:
                return self._proxy(arith.NegfOp(value) if op == "neg" else mathd.AbsFOp(value))
            value = self.to_index(value) if value.type == i1 else value
            if op == "abs":
                return self._proxy(mathd.AbsIOp(value))
            return self._proxy(arith.SubiOp(self.constant(0, value.type), value))
        if op in _INTEGRAL and value.type != f32:
            return Proxy(value, self)  # an integer is its own floor, ceil and rounding
        if op == "sign":
            return self._sign(value)
        value = self.to_f32(value)
        if op == "sigmoid":
            # MLIR's math has no sigmoid: 1 / (1 + exp(-x)).
            exp = self.emit(mathd.ExpOp(self.emit(arith.NegfOp(value))))
            one = self.constant(1.0, f32)
            return self._proxy(arith.DivfOp(one, self.emit(arith.AddfOp(one, exp))))
        if op not in _FLOAT_UNARY:
            raise AssertionError(f"unknown unary operation {op}")
        return self._proxy(_FLOAT_UNARY[op](value))

    def _sign(self, value: SSAValue) -> Proxy:
        """-1, 0 or 1 by the sign of `value` (torch.sign); a float keeps a zero's sign and NaN,
        as x · 0, so the derivative is 0 everywhere."""
        if value.type == i1:
            return Proxy(self.to_index(value), self)
        is_float = value.type == f32
        zero = self.constant(0.0 if is_float else 0, value.type)
        one, minus_one = (self.constant(v if is_float else int(v), value.type) for v in (1.0, -1.0))
        compare = arith.CmpfOp if is_float else arith.CmpiOp
        positive = self.emit(compare(value, zero, "ogt" if is_float else "sgt"))
        negative = self.emit(compare(value, zero, "olt" if is_float else "slt"))
        rest = self.emit(arith.MulfOp(value, zero)) if is_float else zero
        return self._proxy(arith.SelectOp(positive, one, self.emit(arith.SelectOp(negative, minus_one, rest))))

    def convert(self, x: object, dtype: torch.dtype) -> Proxy:
        """`x.to(dtype)`: values stay f32, index, i32, i64 or i1; a half type rounds and widens back."""
        value = self.lift(self.operand(x)).value
        if dtype == torch.float32:
            return Proxy(self.to_f32(value), self)
        if dtype in (torch.float16, torch.bfloat16):
            narrow = self.emit(arith.TruncFOp(self.to_f32(value), _ELEMENT_TYPES[dtype]))
            return self._proxy(arith.ExtFOp(narrow, f32))
        if dtype == torch.bool:
            return Proxy(value, self) if value.type == i1 else self.binary("ne", Proxy(value, self), 0)
        if dtype in (torch.int32, torch.int64):
            if value.type == f32:  # toward zero, as torch converts
                return self._proxy(arith.FPToSIOp(value, i32 if dtype == torch.int32 else i64))
            return Proxy(self.to_index(value) if value.type == i1 else value, self)
        raise TraceError(f"a traced value cannot be converted to {dtype}; a mod computes in float32, integers and bool")

    def power(self, base: object, exponent: object) -> Proxy:
        """`base ** y`: a chain of multiplications for a small integer constant y, sqrt or rsqrt
        for ±0.5, else exp2(y · log2|base|) with the sign and the zero exponent torch gives."""
        if isinstance(exponent, Proxy) or isinstance(exponent, torch.Tensor):
            return self._float_power(base, self.operand(exponent))
        x = self.lift(self.operand(base))
        if isinstance(exponent, float) and exponent.is_integer():
            x, exponent = Proxy(self.to_f32(x.value), self), int(exponent)
        if isinstance(exponent, bool) or not isinstance(exponent, int | float):
            raise TraceError(f"`**` needs a number or a traced exponent, not {type(exponent).__name__}")
        if exponent in (0.5, -0.5):
            return self.unary("sqrt" if exponent > 0 else "rsqrt", x)
        if isinstance(exponent, float) or abs(exponent) > 8:
            return self._float_power(x, exponent)
        if x.type == i1:
            x = Proxy(self.to_index(x.value), self)  # True ** 2 == 1, an int
        if exponent == 0:
            return self.lift(1.0 if x.type == f32 else 1)
        result = x
        for _ in range(abs(exponent) - 1):
            result = self.binary("mul", result, x)
        return self.binary("truediv", 1.0, result) if exponent < 0 else result

    def _float_power(self, base: object, exponent: Proxy | Number) -> Proxy:
        """exp2(y · log2|x|) in f32; a negative x takes the sign of an odd integer y and is NaN
        for a non-integer y, and x ** 0 is 1, as torch.pow has them."""
        x = Proxy(self._as_f32(self.operand(base)), self)
        y = self.lift(exponent if isinstance(exponent, Proxy) else float(exponent))
        # x = 0 apart (0, inf or 1 by y's sign), so log2 never sees 0 and the gradient there is not 0 · inf
        zero = self.binary("eq", x, 0.0)
        safe = self.where(zero, 1.0, self.unary("abs", x))
        at_zero = self.where(self.binary("gt", y, 0.0), 0.0, self.where(self.binary("lt", y, 0.0), math.inf, 1.0))
        magnitude = self.where(zero, at_zero, self.unary("exp2", self.binary("mul", y, self.unary("log2", safe))))
        if not isinstance(exponent, Proxy):  # a constant y: only its own case remains
            if not float(exponent).is_integer():
                return self.where(self.binary("lt", x, 0.0), math.nan, magnitude)
            if int(exponent) % 2 == 0:
                return magnitude
            return self.where(self.binary("lt", x, 0.0), -magnitude, magnitude)
        even = self.binary("eq", self.binary("mul", self.unary("floor", self.binary("mul", y, 0.5)), 2.0), y)
        negative = self.where(even, magnitude, -magnitude)
        if y.type == f32:
            negative = self.where(self.binary("eq", self.unary("floor", y), y), negative, math.nan)
        return self.where(self.binary("eq", y, 0.0), 1.0, self.where(self.binary("lt", x, 0.0), negative, magnitude))

    def exponential(self, base: object, exponent: Proxy) -> Proxy:
        """`c ** x`: exp2(x * log2(c)) for a positive constant c, else as `power`."""
        if isinstance(base, bool) or not isinstance(base, int | float) or base <= 0:
            return self._float_power(base, exponent)
        if base != 2:
            exponent = self.binary("mul", exponent, math.log2(base))
        return self.unary("exp2", exponent)

    def where(self, condition: object, x: object, y: object) -> Proxy:
        cond = self.operand(condition)
        if isinstance(cond, bool):
            return self.lift(self.operand(x if cond else y))
        if not isinstance(cond, Proxy) or cond.type != i1:
            raise TraceError("the condition of where(cond, a, b) must be a boolean, such as q_idx >= kv_idx")
        a, b = self.operand(x), self.operand(y)
        if _is_float(a) or _is_float(b):
            xv, yv = self._as_f32(a), self._as_f32(b)
        else:
            xv, yv = self._unify_ints(a, b, keep_bool=True)
        return self._proxy(arith.SelectOp(cond.value, xv, yv))

    def read(self, source: torch.Tensor, index: object) -> Proxy:
        """One element of a captured tensor: `tensor.extract`, then float types to f32."""
        indices = index if isinstance(index, tuple) else (index,)
        name = self._capture_name(source)
        if source.dim() != len(indices):
            raise TraceError(
                f"`{name}` has {source.dim()} dimensions {tuple(source.shape)} but is indexed "
                f"with {len(indices)}; a mod reads one element, so index every dimension "
                f"at once ({name}[i, j, ...])"
            )
        values = [self._index_value(i, dim, source, name) for dim, i in enumerate(indices)]
        arg = self._capture(source, name)
        assert isinstance(arg.type, TensorType)
        element = self.emit(tensor.ExtractOp(arg, values, arg.type.element_type))
        if isinstance(element.type, Float16Type | BFloat16Type | Float64Type):
            element = self.to_f32(element)
        return Proxy(element, self)

    def _index_value(self, index: object, dim: int, source: torch.Tensor, name: str) -> SSAValue:
        if isinstance(index, torch.Tensor) and index.dim() == 0 and not index.is_floating_point():
            index = self.read(index, ())
        if isinstance(index, Proxy):
            self._check_own(index)
            if index.type == f32:
                raise TraceError(f"index {dim} of `{name}` is a float; tensor indices must be integers")
            return self.to_index(index.value)
        if isinstance(index, numbers.Integral) and not isinstance(index, bool):
            size = source.shape[dim]
            position = int(index) + size if int(index) < 0 else int(index)
            if not 0 <= position < size:
                raise TraceError(
                    f"index {int(index)} is out of bounds for dimension {dim} of `{name}` with size {size}"
                )
            return self.constant(position, INDEX)
        what = "a slice" if isinstance(index, slice) else type(index).__name__
        raise TraceError(
            f"index {dim} of `{name}` is {what}; a mod reads one element, so each index must "
            "be an integer or a traced integer (b, h, q_idx, kv_idx, ...)"
        )

    def _capture(self, source: torch.Tensor, name: str) -> BlockArgument:
        if id(source) in self._capture_args:
            return self._capture_args[id(source)]
        element = _ELEMENT_TYPES.get(source.dtype)
        if element is None:
            supported = ", ".join(str(d).removeprefix("torch.") for d in _ELEMENT_TYPES)
            raise TraceError(f"captured tensor `{name}` has dtype {source.dtype}; supported: {supported}")
        arg = self.block.insert_arg(TensorType(element, list(source.shape)), len(self.block.args))
        arg.name_hint = name
        self._capture_args[id(source)] = arg
        self.captures.append(source)
        return arg

    def _capture_name(self, source: torch.Tensor) -> str:
        """The Python name the user's code reads `source` by, else `capture<N>`."""
        if id(source) in self._capture_args:
            return self._capture_args[id(source)].name_hint or f"capture{len(self.captures)}"
        frame = user_frame()
        if frame is not None:
            for name, value in frame.f_locals.items():
                if value is source and name.isidentifier():
                    return name
            for name in frame.f_code.co_names:
                if frame.f_globals.get(name) is source:
                    return name
        return f"capture{len(self.captures)}"

    # Helpers.

    def _proxy(self, op: Operation) -> Proxy:
        return Proxy(self.emit(op), self)

    def _as_f32(self, x: Proxy | Number) -> SSAValue:
        if isinstance(x, Proxy):
            return self.to_f32(x.value)
        return self.constant(float(x), f32)

    def _unify_ints(self, a: Proxy | Number, b: Proxy | Number, *, keep_bool: bool) -> tuple[SSAValue, SSAValue]:
        """Two integer operands of one type: i1 stays i1 only where `keep_bool` allows."""
        if isinstance(a, Proxy) and isinstance(b, Proxy):
            x, y = a.value, b.value
            if x.type == y.type and (keep_bool or x.type != i1):
                return x, y
            return self.to_index(x), self.to_index(y)
        if isinstance(b, Proxy):
            y, x = self._unify_ints(b, a, keep_bool=keep_bool)
            return x, y
        if not isinstance(a, Proxy):  # two constants, as in where(cond, 1, 0)
            both_bool = isinstance(a, bool) and isinstance(b, bool)
            a = Proxy(self.constant(a, i1 if keep_bool and both_bool else INDEX), self)
        assert not isinstance(b, float)
        x = a.value
        if x.type == i1 and keep_bool and isinstance(b, bool):
            return x, self.constant(b, i1)
        if x.type == i1 or not _fits(int(b), x.type):
            x = self.to_index(x)
        if not _fits(int(b), x.type):
            raise TraceError(f"the integer constant {b} does not fit in 64 bits")
        return x, self.constant(int(b), x.type)


_FLOAT_OPS: dict[str, Callable[[SSAValue, SSAValue], Operation]] = {
    "add": arith.AddfOp,
    "sub": arith.SubfOp,
    "mul": arith.MulfOp,
    "min": arith.MinimumfOp,
    "max": arith.MaximumfOp,
}
_INT_OPS: dict[str, Callable[[SSAValue, SSAValue], Operation]] = {
    "add": arith.AddiOp,
    "sub": arith.SubiOp,
    "mul": arith.MuliOp,
    "min": arith.MinSIOp,
    "max": arith.MaxSIOp,
    "and": arith.AndIOp,
    "or": arith.OrIOp,
    "xor": arith.XOrIOp,
    "shl": arith.ShLIOp,
    "shr": arith.ShRSIOp,  # arithmetic, as torch shifts signed integers
}
# Ordered predicates, except `!=`: in Python and torch, NaN != x is True.
_FLOAT_PREDICATES = {"lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge", "eq": "oeq", "ne": "une"}
_INT_PREDICATES = {"lt": "slt", "le": "sle", "gt": "sgt", "ge": "sge", "eq": "eq", "ne": "ne"}
_FLOAT_UNARY: dict[str, Callable[[SSAValue], Operation]] = {
    "exp": mathd.ExpOp,
    "exp2": mathd.Exp2Op,
    "log": mathd.LogOp,
    "log2": mathd.Log2Op,
    "sqrt": mathd.SqrtOp,
    "rsqrt": mathd.RsqrtOp,
    "tanh": mathd.TanhOp,
    "sin": mathd.SinOp,
    "cos": mathd.CosOp,
    "tan": mathd.TanOp,
    "erf": mathd.ErfOp,
    "log1p": mathd.Log1pOp,
    "expm1": mathd.ExpM1Op,
    "floor": mathd.FloorOp,
    "ceil": mathd.CeilOp,
    "round": mathd.RoundEvenOp,  # torch.round rounds half to even
}
_INTEGRAL = frozenset({"floor", "ceil", "round"})
_SYMBOLS = {"and": "&", "or": "|", "xor": "^", "shl": "<<", "shr": ">>"}


def _is_float(x: object) -> bool:
    return isinstance(x, float) or (isinstance(x, Proxy) and x.type == f32)


def _fits(value: int, type: Attribute) -> bool:
    bits = type.width.data if isinstance(type, IntegerType) else 64
    return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)


# Locations and signatures of the user's function.


def _code_of(fn: Callable[..., Any]) -> CodeType | None:
    fn = inspect.unwrap(fn)
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        code = getattr(type(fn).__call__, "__code__", None)
    return code if isinstance(code, CodeType) else None


def definition_location(fn: Callable[..., Any]) -> SourceLocation | None:
    code = _code_of(fn)
    return SourceLocation.of_definition(code) if code is not None else None


def return_location(fn: Callable[..., Any]) -> SourceLocation | None:
    """The expression the mod returns; the mod's first line if it has several returns."""
    code = _code_of(fn)
    if code is None:
        return None
    instructions = list(dis.get_instructions(code))
    returns = [k for k, i in enumerate(instructions) if i.opname.startswith("RETURN_")]
    if len(returns) != 1 or returns[0] == 0:
        return SourceLocation.of_definition(code)
    # RETURN_VALUE spans the whole statement (nothing, in a lambda); the instruction
    # before it computed the returned value.
    k = returns[0]
    value = instructions[k] if instructions[k].opname == "RETURN_CONST" else instructions[k - 1]
    location = SourceLocation.of_instruction(code, value.offset)
    if location.col is None or location.col == location.end_col:
        return SourceLocation.of_definition(code)
    return location


def _check_signature(fn: Callable[..., Any], count: int, kind: str) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*range(count))
    except TypeError:
        params = "(score, b, h, q_idx, kv_idx)" if kind == "score_mod" else "(b, h, q_idx, kv_idx)"
        raise TraceError(
            f"a {kind} takes {count} arguments {params}, but "
            f"`{getattr(fn, '__name__', fn)}{signature}` cannot be called with them",
            definition_location(fn),
        ) from None
