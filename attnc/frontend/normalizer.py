"""User-defined normalizers: an online row-scale written in Python, traced into two regions.

A normalizer turns a row of scores into the weights that multiply v, one tile of keys
at a time, as FlashAttention does for softmax (AttentionEngine's OnlineFunc idea).
It keeps named per-row `state`; `update` sees a tile of scores and the state and
returns the weights `p`, the new state and `alpha`, the factor that rescales what
was accumulated so far (`acc = acc * alpha + p @ v`); `finalize` turns the
accumulator and the final state into the output and the row statistics that
`return_lse=True` returns.

```python
class TemperedSoftmax(attnc.Normalizer):
    state = {"m": float("-inf"), "l": 0.0}
    stats = ("lse",)

    def __init__(self, temperature):            # a tensor [Hq], one per query head
        self.temperature = temperature

    def update(self, scores, state):
        s = scores / self.temperature[self.h]
        m_new = attnc.maximum(state["m"], attnc.row_max(s))
        p = attnc.exp(s - m_new)
        alpha = attnc.exp(state["m"] - m_new)
        return p, {"m": m_new, "l": state["l"] * alpha + attnc.row_sum(p)}, alpha

    def finalize(self, acc, state):
        return acc / state["l"], {"lse": state["m"] + attnc.log(state["l"])}
```

`trace_normalizer` calls `update` and `finalize` once each with proxies, as
`score_mod` is traced (`attnc.frontend.trace`): `scores` and `acc` stand for one
element, each state value for its row, `self.b` / `self.h` for the batch and query
head, and a tensor read with them (`self.temperature[self.h]`) becomes a trailing
block argument of both regions. `attnc.row_max` / `attnc.row_sum` reduce over the
tile's row; alpha and the state must be such row values. The same class runs in the
float64 reference on whole rows (`attnc.reference`), where `scores` is a tensor.

A masked score is replaced by `masked_score` before `update`, and its weight is
forced to 0 after it. Pick `masked_score` so that a masked entry changes no row
reduction either (-inf under a row_max, 0 under a row_sum of |s|): partially masked
tiles run `update` with it, fully masked tiles are skipped.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from xdsl.dialects.builtin import IndexType, f32
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue

from attnc.dialect.attn import NormalizerSpec, RowMaxOp, RowSumOp, YieldOp
from attnc.frontend.errors import SourceLocation, TraceError, user_frame
from attnc.frontend.proxy import Proxy
from attnc.frontend.trace import Tracer, definition_location, return_location

__all__ = ["Normalizer", "NormalizerTracer", "row_max", "row_sum", "trace_normalizer"]


class Normalizer:
    """Base class of every normalizer, built-in or the user's.

    Class (or instance) attributes:
    - `state`: ordered `{name: initial value}` of the per-row state (may be empty);
    - `stats`: names of the row statistics `finalize` returns (may be empty);
    - `masked_score`: what a masked score reads as in `update` (default -inf);
    - `held_constant`: statistics the backward treats as constants (RetNet's rule for
      its denominator); `finalize` may divide the accumulator by one of them;
    - `name`: the `normalizer` attribute of the IR (default: the class name).

    `self.b` and `self.h` are the batch and query-head indices while `update` and
    `finalize` run: traced indices in the compiler, broadcast index tensors in the
    reference.
    """

    name: ClassVar[str] = ""
    state: Mapping[str, float] = {}
    stats: tuple[str, ...] = ()
    masked_score: float = float("-inf")
    held_constant: tuple[str, ...] = ()
    b: Any = None
    h: Any = None

    def update(self, scores: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        """A tile of scores and the old state → (p, new state, alpha)."""
        raise NotImplementedError

    def finalize(self, acc: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The accumulator and the final state → (out, {stat name: row statistic})."""
        raise NotImplementedError

    def merge(self, a: dict[str, Any], b: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        """Optional: the states of one row after two disjoint ranges of its keys → (scale_a, scale_b,
        merged state), the accumulators merging as acc_a · scale_a + acc_b · scale_b. Decoding over a KV
        cache then splits the keys across programs even when attn-split cannot read the normalizer's
        form (online softmax and additive normalizers need none); without one, such attention runs unsplit.
        The initial `state` stands for an empty range of keys: merging it with any state b must give b
        (scale_a's value then does not matter, as the accumulator is 0; scale_b must be 1)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def row_max(x: Any) -> Any:
    """The maximum of `x` over the current tile's row (`attn.row_max`).

    In the reference, over the last dimension of a tensor of scores, kept as size 1.
    """
    if isinstance(x, Proxy):
        return _row_reduce("row_max", x)
    if isinstance(x, torch.Tensor):
        return x.amax(-1, keepdim=True)
    raise TypeError(f"row_max() needs scores (a tensor or a traced value), got {type(x).__name__}")


def row_sum(x: Any) -> Any:
    """The sum of `x` over the current tile's row (`attn.row_sum`).

    In the reference, over the last dimension of a tensor of scores, kept as size 1.
    """
    if isinstance(x, Proxy):
        return _row_reduce("row_sum", x)
    if isinstance(x, torch.Tensor):
        return x.sum(-1, keepdim=True)
    raise TypeError(f"row_sum() needs scores (a tensor or a traced value), got {type(x).__name__}")


def _row_reduce(kind: str, x: Proxy) -> Proxy:
    tracer = x.tracer
    if not isinstance(tracer, NormalizerTracer) or tracer.part != "update":
        where = "a Normalizer's finalize" if isinstance(tracer, NormalizerTracer) else f"a {tracer.kind}"
        raise TraceError(
            f"attnc.{kind} reduces over a tile of scores; it belongs in a Normalizer's update, not in {where}"
        )
    value = tracer.to_f32(x.value)
    if value not in tracer.per_element:
        raise TraceError(
            f"attnc.{kind} of a value that is the same along the row (it does not depend on the "
            "scores); reduce a value computed from the scores"
        )
    op = RowMaxOp(value) if kind == "row_max" else RowSumOp(value)
    return Proxy(tracer.emit(op), tracer)


class NormalizerTracer(Tracer):
    """A Tracer for one of a normalizer's two regions.

    It knows which values vary along the row (`per_element`: computed from the
    score or the accumulator other than through a row reduction) and where in the
    user's source each value was computed, for errors about the state.
    """

    def __init__(self, norm: Normalizer, part: str) -> None:
        super().__init__(getattr(norm, part), f"normalizer {part}")
        self.norm = norm
        self.part = part
        self.per_element: set[SSAValue] = set()
        self.origin: dict[SSAValue, SourceLocation] = {}

    def element_argument(self, name: str) -> Proxy:
        """The block argument that varies along the row: `score` or `acc`."""
        proxy = self.argument(name, f32)
        self.per_element.add(proxy.value)
        return proxy

    def emit(self, op: Operation) -> SSAValue:
        result = super().emit(op)
        if not isinstance(op, RowMaxOp | RowSumOp) and any(o in self.per_element for o in op.operands):
            self.per_element.add(result)
        frame = user_frame()
        if frame is not None:
            self.origin[result] = SourceLocation.of_frame(frame)
        return result

    def capture(self, source: torch.Tensor, name: str) -> None:
        """Declare `source` as the next trailing block argument, before the user's code runs."""
        self._capture(source, name)

    def _capture_name(self, source: torch.Tensor) -> str:
        # `self.sinks[self.h]`: the user's frame holds `self`, not the tensor.
        if id(source) not in self._capture_args:
            for name, value in vars(self.norm).items():
                if value is source and name.isidentifier():
                    return name
        return super()._capture_name(source)


def trace_normalizer(norm: Normalizer) -> NormalizerSpec:
    """Trace `norm.update` and `norm.finalize` into the regions of an `attn.online_rowscale`.

    update: `(score: f32, b: index, h: index, *state: f32, *captures)` →
    `attn.yield p, alpha, *new_state`; finalize: `(acc: f32, b, h, *state, *captures)` →
    `attn.yield out, *stats`. Both regions have the same captures, in the spec's order.
    """
    if not isinstance(norm, Normalizer):
        raise TypeError(f"trace_normalizer needs a Normalizer instance, got {type(norm).__name__}")
    state, init, stats, masked_score = _declaration(norm)
    update = NormalizerTracer(norm, "update")
    update_block, update_values = _trace_update(norm, update, state)
    finalize = NormalizerTracer(norm, "finalize")
    update_captures = list(zip(update.captures, update_block.args[3 + len(state) :]))
    finalize_block = _trace_finalize(norm, finalize, state, stats, update_captures)
    # Tensors only finalize reads become trailing arguments of update too.
    for arg in finalize_block.args[3 + len(state) + len(update.captures) :]:
        extra = update_block.insert_arg(arg.type, len(update_block.args))
        extra.name_hint = arg.name_hint
    update_block.add_op(YieldOp(*update_values))
    merge = _trace_merge(norm, state) if type(norm).merge is not Normalizer.merge else None
    return NormalizerSpec(
        norm.name or type(norm).__name__,
        list(state),
        init,
        Region(update_block),
        Region(finalize_block),
        stat_names=list(stats),
        masked_score=masked_score,
        captures=finalize.captures,
        held_constant=[stats.index(n) for n in norm.held_constant],
        merge=merge,
    )


def _trace_merge(norm: Normalizer, state: list[str]) -> Region:
    """The merge region: `(state_a..., state_b...: f32)` → `attn.yield scale_a, scale_b, *merged`."""
    tracer = NormalizerTracer(norm, "merge")
    a = _StateView({name: tracer.argument(f"{name}_a", f32) for name in state}, "merge")
    b = _StateView({name: tracer.argument(f"{name}_b", f32) for name in state}, "merge")
    result = norm.merge(a, b)
    location = return_location(norm.merge)
    if not isinstance(result, tuple) or len(result) != 3 or not isinstance(result[2], Mapping):
        raise TraceError(
            f"merge must return (scale_a, scale_b, merged_state) with merged_state a dict, but returned "
            f"{_describe(result)}",
            location,
        )
    scale_a, scale_b, merged = result
    _check_keys(merged, state, "merge's state", "`state`", location)
    if tracer.captures:
        raise TraceError("merge may read only the two states, not tensors", location)
    yielded = [
        _name(_scalar(tracer, scale_a, "scale_a", location), "scale_a"),
        _name(_scalar(tracer, scale_b, "scale_b", location), "scale_b"),
        *[_name(_scalar(tracer, merged[name], f"merged state '{name}'", location), name) for name in state],
    ]
    tracer.block.add_op(YieldOp(*yielded))
    return Region(tracer.block)


def _trace_update(norm: Normalizer, tracer: NormalizerTracer, state: list[str]) -> tuple[Block, list[SSAValue]]:
    """The update block, and the values its yield will carry (the yield waits for all captures)."""
    _check_method(norm, "update", "(self, scores, state)")
    score = tracer.element_argument("score")
    b, h = tracer.argument("b", IndexType()), tracer.argument("h", IndexType())
    values = _StateView({name: tracer.argument(name, f32) for name in state}, "update")
    with _indices(norm, b, h):
        result = norm.update(score, values)
    location = return_location(norm.update)
    if not isinstance(result, tuple) or len(result) != 3 or not isinstance(result[1], Mapping):
        raise TraceError(
            f"update must return (p, new_state, alpha) with new_state a dict, but returned {_describe(result)}",
            location,
        )
    p, new_state, alpha = result
    _check_keys(new_state, state, "update's new state", "`state`", location)
    p_value = _name(_scalar(tracer, p, "p", location), "p")
    alpha_value = _name(_scalar(tracer, alpha, "alpha", location), "alpha")
    _check_per_row(tracer, alpha_value, "alpha", location)
    state_values = []
    for name in state:
        value = _name(_scalar(tracer, new_state[name], f"new state '{name}'", location), f"{name}_new")
        _check_per_row(tracer, value, f"new state '{name}'", location)
        state_values.append(value)
    return tracer.block, [p_value, alpha_value, *state_values]


def _check_per_row(tracer: NormalizerTracer, value: SSAValue, what: str, location: SourceLocation | None) -> None:
    if value in tracer.per_element:
        raise TraceError(
            f"update returns {what} per score, but it must be one value per row; "
            "reduce over the row with attnc.row_max(...) or attnc.row_sum(...)",
            tracer.origin.get(value, location),
        )


def _trace_finalize(
    norm: Normalizer,
    tracer: NormalizerTracer,
    state: list[str],
    stats: list[str],
    update_captures: list[tuple[torch.Tensor, BlockArgument]],
) -> Block:
    """The finalize block; its captures start with update's, in update's order."""
    _check_method(norm, "finalize", "(self, acc, state)")
    acc = tracer.element_argument("acc")
    b, h = tracer.argument("b", IndexType()), tracer.argument("h", IndexType())
    values = {name: tracer.argument(name, f32) for name in state}
    for source, arg in update_captures:
        tracer.capture(source, arg.name_hint or "capture")
    with _indices(norm, b, h):
        result = norm.finalize(acc, _StateView(values, "finalize"))
    block = tracer.block
    location = return_location(norm.finalize)
    if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], Mapping):
        raise TraceError(
            f"finalize must return (out, stats) with stats a dict (empty if `stats` declares none), "
            f"but returned {_describe(result)}",
            location,
        )
    out, stat_values = result
    _check_keys(stat_values, stats, "finalize's statistics", "`stats`", location)
    yielded = [_name(_scalar(tracer, out, "out", location), "out")]
    for name in stats:
        value = _name(_scalar(tracer, stat_values[name], f"statistic '{name}'", location), name)
        if value in tracer.per_element:
            raise TraceError(
                f"finalize returns statistic '{name}' per accumulator element, but a statistic is "
                "one value per row; compute it from the state only",
                tracer.origin.get(value, location),
            )
        yielded.append(value)
    block.add_op(YieldOp(*yielded))
    return block


# The class's declarations.


def _declaration(norm: Normalizer) -> tuple[list[str], list[float], list[str], float]:
    """state names, initial values, stat names and masked_score, checked."""
    location = _class_location(norm)
    kind = type(norm).__name__
    state = norm.state
    if not isinstance(state, Mapping):
        raise TraceError(f"{kind}.state must be a dict {{name: initial value}}, got {type(state).__name__}", location)
    for name, value in state.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise TraceError(f"{kind}.state has the key {name!r}; state names must be identifiers", location)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TraceError(
                f"{kind}.state['{name}'] must be a number (its initial value), got {type(value).__name__}",
                location,
            )
    stats = norm.stats
    if isinstance(stats, str) or not isinstance(stats, tuple | list):
        hint = f"; write ({stats!r},)" if isinstance(stats, str) else ""
        raise TraceError(f"{kind}.stats must be a tuple of names, got {stats!r}{hint}", location)
    for name in stats:
        if not isinstance(name, str) or not name.isidentifier():
            raise TraceError(f"{kind}.stats has {name!r}; statistic names must be identifiers", location)
    if len(set(stats)) != len(stats):
        raise TraceError(f"{kind}.stats names a statistic twice: {tuple(stats)}", location)
    held = norm.held_constant
    if isinstance(held, str) or not isinstance(held, tuple | list) or any(n not in stats for n in held):
        raise TraceError(
            f"{kind}.held_constant must be a tuple of names from stats {tuple(stats)}, got {held!r}", location
        )
    masked = norm.masked_score
    if isinstance(masked, bool) or not isinstance(masked, numbers.Real) or math.isnan(masked):
        raise TraceError(f"{kind}.masked_score must be a number, got {masked!r}", location)
    name = norm.name
    if not isinstance(name, str):
        raise TraceError(f"{kind}.name must be a string, got {type(name).__name__}", location)
    return list(state), [float(v) for v in state.values()], list(stats), float(masked)


def _class_location(norm: Normalizer) -> SourceLocation | None:
    try:
        filename = inspect.getsourcefile(type(norm))
        _, lineno = inspect.getsourcelines(type(norm))
    except (OSError, TypeError):
        return None
    return SourceLocation(filename, lineno) if filename is not None else None


def _check_method(norm: Normalizer, part: str, params: str) -> None:
    method: Callable[..., Any] = getattr(norm, part)
    if getattr(type(norm), part, None) is getattr(Normalizer, part):
        raise TraceError(f"{type(norm).__name__} does not define {part}{params}", _class_location(norm))
    try:
        inspect.signature(method).bind(None, None)
    except TypeError:
        raise TraceError(
            f"a Normalizer's {part} takes {params}, but `{part}{inspect.signature(method)}` cannot be called with them",
            definition_location(method),
        ) from None
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        return


class _indices:
    """`norm.b` and `norm.h` as the traced indices while one method is traced."""

    def __init__(self, norm: Normalizer, b: Proxy, h: Proxy) -> None:
        self.norm, self.b, self.h = norm, b, h

    def __enter__(self) -> None:
        self.norm.b, self.norm.h = self.b, self.h

    def __exit__(self, *exc: object) -> None:
        del self.norm.b, self.norm.h


class _StateView(dict):
    """The state a method reads; reading a name `state` does not declare is a TraceError."""

    def __init__(self, values: dict[str, Proxy], part: str) -> None:
        super().__init__(values)
        self.part = part

    def __missing__(self, key: object) -> Any:
        declared = ", ".join(self) or "nothing"
        raise TraceError(f"{self.part} reads state {key!r}, but `state` declares {declared}")


def _check_keys(
    got: Mapping[Any, Any], declared: list[str], what: str, declaration: str, location: SourceLocation | None
) -> None:
    """`got` has exactly the names `declaration` (`state` or `stats`) declares."""
    missing = [name for name in declared if name not in got]
    extra = [name for name in got if name not in declared]
    if not missing and not extra:
        return
    parts = []
    if extra:
        parts.append(f"has {', '.join(map(repr, extra))}, which {declaration} does not declare")
    if missing:
        parts.append(f"lacks {', '.join(map(repr, missing))}")
    declared_text = ", ".join(map(repr, declared)) or "nothing"
    raise TraceError(f"{what} {', and '.join(parts)} ({declaration} declares {declared_text})", location)


def _scalar(tracer: NormalizerTracer, value: object, what: str, location: SourceLocation | None) -> SSAValue:
    """One returned value as f32: a traced value, a Python number or a 0-dim tensor."""
    if isinstance(value, torch.Tensor) and value.dim() != 0:
        raise TraceError(
            f"{what} is a tensor of shape {tuple(value.shape)}; index it to read one element (self.sinks[self.h])",
            location,
        )
    if value is None or not isinstance(value, Proxy | torch.Tensor | numbers.Real):
        raise TraceError(f"{what} must be a traced value or a number, but is {_describe(value)}", location)
    return tracer.to_f32(tracer.result_value(value, location))


def _name(value: SSAValue, name: str) -> SSAValue:
    """Name what a region yields after its role, unless it already has a name (an argument, a constant)."""
    if value.name_hint is None:
        value.name_hint = name
    return value


def _describe(value: object) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} ({', '.join(type(v).__name__ for v in value)})"
    if isinstance(value, Proxy):
        return "a single traced value"
    return type(value).__name__
