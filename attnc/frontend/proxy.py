"""The value a mod computes with while it is traced: a `Proxy` for one SSA value.

Python operators on a proxy call back into its `Tracer`, which appends the ops; what
needs a concrete value (`if`, `float()`, indexing a list) raises `TraceError`. torch
functions on a proxy arrive at `Proxy.__torch_function__`, and Tensor methods at
`Proxy.__getattr__`; both go to `attnc.frontend.torch_functions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from xdsl.ir import Attribute, SSAValue

from attnc.frontend.errors import TraceError

if TYPE_CHECKING:
    from attnc.frontend.trace import Tracer


class Proxy:
    """A traced scalar: one SSA value (f32, index, i32, i64 or i1) of the region."""

    __slots__ = ("tracer", "value")

    def __init__(self, value: SSAValue, tracer: Tracer) -> None:
        self.value = value
        self.tracer = tracer

    @property
    def type(self) -> Attribute:
        return self.value.type

    def __repr__(self) -> str:
        return f"<attnc traced {self.type} value>"

    # Arithmetic. Python numbers, 0-dim tensors and proxies mix freely.
    def __add__(self, other: object) -> Proxy:
        return self.tracer.binary("add", self, other)

    def __radd__(self, other: object) -> Proxy:
        return self.tracer.binary("add", other, self)

    def __sub__(self, other: object) -> Proxy:
        return self.tracer.binary("sub", self, other)

    def __rsub__(self, other: object) -> Proxy:
        return self.tracer.binary("sub", other, self)

    def __mul__(self, other: object) -> Proxy:
        return self.tracer.binary("mul", self, other)

    def __rmul__(self, other: object) -> Proxy:
        return self.tracer.binary("mul", other, self)

    def __truediv__(self, other: object) -> Proxy:
        return self.tracer.binary("truediv", self, other)

    def __rtruediv__(self, other: object) -> Proxy:
        return self.tracer.binary("truediv", other, self)

    def __floordiv__(self, other: object) -> Proxy:
        return self.tracer.binary("floordiv", self, other)

    def __rfloordiv__(self, other: object) -> Proxy:
        return self.tracer.binary("floordiv", other, self)

    def __mod__(self, other: object) -> Proxy:
        return self.tracer.binary("mod", self, other)

    def __rmod__(self, other: object) -> Proxy:
        return self.tracer.binary("mod", other, self)

    def __pow__(self, exponent: object) -> Proxy:
        return self.tracer.power(self, exponent)

    def __rpow__(self, base: object) -> Proxy:
        return self.tracer.exponential(base, self)

    def __neg__(self) -> Proxy:
        return self.tracer.unary("neg", self)

    def __pos__(self) -> Proxy:
        return self.tracer.binary("add", self, 0)

    def __abs__(self) -> Proxy:
        return self.tracer.unary("abs", self)

    # Comparisons and logic.
    def __lt__(self, other: object) -> Proxy:
        return self.tracer.binary("lt", self, other)

    def __le__(self, other: object) -> Proxy:
        return self.tracer.binary("le", self, other)

    def __gt__(self, other: object) -> Proxy:
        return self.tracer.binary("gt", self, other)

    def __ge__(self, other: object) -> Proxy:
        return self.tracer.binary("ge", self, other)

    def __eq__(self, other: object) -> Proxy:  # type: ignore[override]
        return self.tracer.binary("eq", self, other)

    def __ne__(self, other: object) -> Proxy:  # type: ignore[override]
        return self.tracer.binary("ne", self, other)

    __hash__ = None  # type: ignore[assignment]

    def __and__(self, other: object) -> Proxy:
        return self.tracer.binary("and", self, other)

    def __rand__(self, other: object) -> Proxy:
        return self.tracer.binary("and", other, self)

    def __or__(self, other: object) -> Proxy:
        return self.tracer.binary("or", self, other)

    def __ror__(self, other: object) -> Proxy:
        return self.tracer.binary("or", other, self)

    def __xor__(self, other: object) -> Proxy:
        return self.tracer.binary("xor", self, other)

    def __rxor__(self, other: object) -> Proxy:
        return self.tracer.binary("xor", other, self)

    def __lshift__(self, other: object) -> Proxy:
        return self.tracer.binary("shl", self, other)

    def __rlshift__(self, other: object) -> Proxy:
        return self.tracer.binary("shl", other, self)

    def __rshift__(self, other: object) -> Proxy:
        return self.tracer.binary("shr", self, other)

    def __rrshift__(self, other: object) -> Proxy:
        return self.tracer.binary("shr", other, self)

    def __invert__(self) -> Proxy:
        return self.tracer.unary("invert", self)

    # Python constructs that need a concrete value.
    def __bool__(self) -> NoReturn:
        raise TraceError(
            "a traced value has no Python truth value (`if`, `while`, `and`, `or`, `not`, "
            "a < b < c and bool() need one); choose with attnc.where(cond, a, b) and "
            "combine conditions with `&`, `|`, `~` in parentheses"
        )

    def __float__(self) -> NoReturn:
        raise TraceError(
            "float() of a traced value (math.* functions call it): its value is only known "
            "in the kernel; compute with it directly, and use torch's functions (torch.exp, "
            "torch.log, torch.sqrt, torch.tanh, ...) instead of math.*"
        )

    def __int__(self) -> NoReturn:
        raise TraceError(
            "int() of a traced value: its value is only known in the kernel; "
            "compute with it directly (use // for integer division)"
        )

    def __index__(self) -> NoReturn:
        raise TraceError(
            "a traced value cannot index a Python list or tuple, or be used as a Python "
            "integer; put the values in a torch tensor and index that tensor"
        )

    def __iter__(self) -> NoReturn:
        raise TraceError("a traced value is a scalar; it cannot be iterated over")

    def __len__(self) -> NoReturn:
        raise TraceError("a traced value is a scalar; it has no len()")

    def __getitem__(self, index: object) -> NoReturn:
        raise TraceError("a traced value is a scalar; it cannot be indexed")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in Proxy.__slots__:  # an unset slot: no tracer to ask
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return self.tracer.tensor_attribute(self, name)  # Tensor methods, by identity (torch_functions.py)

    @classmethod
    def __torch_function__(
        cls,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        tracer = find_tracer((*args, *kwargs.values()))
        if tracer is None:
            raise TraceError(f"{getattr(func, '__name__', func)} cannot be traced here: its traced value is nested")
        return tracer.torch_function(func, args, kwargs)  # the table of traceable functions: torch_functions.py


def find_tracer(values: Sequence[object]) -> Tracer | None:
    """The trace a proxy among `values` (or inside a tuple or list there) belongs to."""
    for v in values:
        if isinstance(v, Proxy):
            return v.tracer
        if isinstance(v, tuple | list):
            for item in v:
                if isinstance(item, Proxy):
                    return item.tracer
    return None
