"""Reverse-mode differentiation of scalar regions: the chain rule on straight-line SSA.

A score_mod region maps one score to one score,

```mlir
^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes: tensor<8xf32>):
  %0 = tensor.extract %slopes[%h] : tensor<8xf32>
  ...
  attn.yield %5 : f32
```

and its derivative region takes the same arguments plus the incoming gradient `%grad`
(∂L/∂score_mod(score)). It recomputes the forward values it needs, then walks the ops
backwards accumulating adjoints (a value used twice sums two contributions), and yields
`dscore` followed by, for every `tensor.extract` of a float capture in program order
(a *site*), the site's adjoint and the indices it read:

```mlir
^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes: tensor<8xf32>, %grad: f32):
  ...
  attn.yield %dscore, %dslopes, %h : f32, f32, index
```

The runtime scatters each site's adjoint into the capture's gradient at those indices
(summed over every score, and over sites of one tensor). Only values that depend on the
score or on a float capture are differentiated; integer/index arithmetic, comparisons
and conversions from integers carry no gradient. A float op on that path with no rule
below is rejected: such a score_mod needs a user-given backward.

`differentiate_statistic` does the same for the statistic a softmax-form normalizer's
finalize returns, with respect to the captured values it reads (see
`attn.flash_grad`'s `stat_grad`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence

from xdsl.dialects import arith, tensor
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import AnyFloat, FloatAttr, IndexType, TensorType, f32
from xdsl.ir import Block, BlockArgument, Operation, OpResult, Region, SSAValue
from xdsl.utils.exceptions import PassFailedException

from attnc.dialect.attn import INDEX_ARGS, YieldOp


def float_capture_sites(region: Region, wrt: Collection[int] | None = None) -> list[int]:
    """For each `tensor.extract` of a float capture in `wrt` (None: every one) in a score_mod
    region, in program order: which capture it reads."""
    block = region.blocks[0]
    return _sites(list(block.ops), block, wrt, _FIRST_CAPTURE)


_FIRST_CAPTURE = 1 + INDEX_ARGS  # score_mod's block arguments: score, the indices, then the captures


def _sites(ops: list[Operation], block: Block, wrt: Collection[int] | None, first_capture: int) -> list[int]:
    sites: list[int] = []
    for op in ops:
        if isinstance(op, tensor.ExtractOp) and _is_site(op.tensor, block, wrt, first_capture):
            assert isinstance(op.tensor, BlockArgument)
            sites.append(op.tensor.index - first_capture)
    return sites


def _is_site(value: SSAValue, block: Block, wrt: Collection[int] | None, first_capture: int) -> bool:
    """Whether `value` is a float capture of `block` whose gradient is asked for."""
    ty = value.type
    in_block = isinstance(value, BlockArgument) and value.block is block
    if not (in_block and isinstance(ty, TensorType) and isinstance(ty.element_type, AnyFloat)):
        return False
    assert isinstance(value, BlockArgument)
    return wrt is None or value.index - first_capture in wrt


def _name(value: SSAValue, hint: str) -> None:
    """Names a derived value, never a block argument or a shared constant."""
    if isinstance(value, OpResult) and not isinstance(value.op, arith.ConstantOp) and value.name_hint is None:
        value.name_hint = hint


class _Builder:
    """Appends ops to the derivative block; f32 constants are emitted once each."""

    def __init__(self, block: Block):
        self.block = block
        self.consts: dict[float, SSAValue] = {}

    def emit(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    def const(self, value: float) -> SSAValue:
        if value not in self.consts:
            self.consts[value] = self.emit(arith.ConstantOp(FloatAttr(value, f32)))
            self.consts[value].name_hint = "cst"
        return self.consts[value]

    def add(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.AddfOp(a, b))

    def mul(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.MulfOp(a, b))

    def div(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.DivfOp(a, b))

    def neg(self, a: SSAValue) -> SSAValue:
        return self.emit(arith.NegfOp(a))

    def select(self, cond: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.SelectOp(cond, a, b))

    def cmp(self, pred: str, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.CmpfOp(a, b, pred))


# A rule maps (builder, forward op with operands/result remapped, adjoint of its result)
# to one adjoint contribution per operand (None: no gradient to that operand).
Rule = Callable[[_Builder, list[SSAValue], SSAValue, SSAValue], list[SSAValue | None]]

LN2 = math.log(2.0)


def _divf(b: _Builder, x: list[SSAValue], r: SSAValue, g: SSAValue) -> list[SSAValue | None]:
    g_over_y = b.div(g, x[1])
    return [g_over_y, b.neg(b.mul(g_over_y, r))]


def _chosen(pred: str) -> Rule:
    """max/min: the gradient goes to the operand chosen (the left one on a tie)."""

    def rule(b: _Builder, x: list[SSAValue], r: SSAValue, g: SSAValue) -> list[SSAValue | None]:
        left = b.cmp(pred, x[0], x[1])
        zero = b.const(0.0)
        return [b.select(left, g, zero), b.select(left, zero, g)]

    return rule


def _select(b: _Builder, x: list[SSAValue], r: SSAValue, g: SSAValue) -> list[SSAValue | None]:
    zero = b.const(0.0)
    return [None, b.select(x[0], g, zero), b.select(x[0], zero, g)]


def _absf(b: _Builder, x: list[SSAValue], r: SSAValue, g: SSAValue) -> list[SSAValue | None]:
    return [b.select(b.cmp("olt", x[0], b.const(0.0)), b.neg(g), g)]


def _rsqrt(b: _Builder, x: list[SSAValue], r: SSAValue, g: SSAValue) -> list[SSAValue | None]:
    # d/dx x^(-1/2) = -r^3 / 2
    return [b.mul(g, b.mul(b.const(-0.5), b.mul(r, b.mul(r, r))))]


def _erf(b: _Builder, x: list[SSAValue], r: SSAValue, g: SSAValue) -> list[SSAValue | None]:
    # d/dx erf(x) = 2/√π · exp(−x²)
    gauss = b.emit(mathd.ExpOp(b.neg(b.mul(x[0], x[0]))))
    return [b.mul(g, b.mul(b.const(2.0 / math.sqrt(math.pi)), gauss))]


def _tan(b: _Builder, x: list[SSAValue], r: SSAValue, g: SSAValue) -> list[SSAValue | None]:
    return [b.mul(g, b.add(b.const(1.0), b.mul(r, r)))]


def _step(b: _Builder, x: list[SSAValue], r: SSAValue, g: SSAValue) -> list[SSAValue | None]:
    """floor, ceil, round: piecewise constant, so zero almost everywhere (as torch has it)."""
    return [None]


RULES: dict[type[Operation], Rule] = {
    arith.AddfOp: lambda b, x, r, g: [g, g],
    arith.SubfOp: lambda b, x, r, g: [g, b.neg(g)],
    arith.MulfOp: lambda b, x, r, g: [b.mul(g, x[1]), b.mul(g, x[0])],
    arith.DivfOp: _divf,
    arith.NegfOp: lambda b, x, r, g: [b.neg(g)],
    arith.MaximumfOp: _chosen("oge"),
    arith.MaxnumfOp: _chosen("oge"),
    arith.MinimumfOp: _chosen("ole"),
    arith.MinnumfOp: _chosen("ole"),
    arith.SelectOp: _select,
    arith.ExtFOp: lambda b, x, r, g: [g],
    arith.TruncFOp: lambda b, x, r, g: [g],
    mathd.ExpOp: lambda b, x, r, g: [b.mul(g, r)],
    mathd.Exp2Op: lambda b, x, r, g: [b.mul(g, b.mul(r, b.const(LN2)))],
    mathd.LogOp: lambda b, x, r, g: [b.div(g, x[0])],
    mathd.Log2Op: lambda b, x, r, g: [b.div(g, b.mul(x[0], b.const(LN2)))],
    mathd.TanhOp: lambda b, x, r, g: [b.mul(g, b.emit(arith.SubfOp(b.const(1.0), b.mul(r, r))))],
    mathd.AbsFOp: _absf,
    mathd.SqrtOp: lambda b, x, r, g: [b.div(g, b.mul(b.const(2.0), r))],
    mathd.RsqrtOp: _rsqrt,
    mathd.SinOp: lambda b, x, r, g: [b.mul(g, b.emit(mathd.CosOp(x[0])))],
    mathd.CosOp: lambda b, x, r, g: [b.neg(b.mul(g, b.emit(mathd.SinOp(x[0]))))],
    mathd.TanOp: _tan,
    mathd.ErfOp: _erf,
    mathd.Log1pOp: lambda b, x, r, g: [b.div(g, b.add(b.const(1.0), x[0]))],
    mathd.ExpM1Op: lambda b, x, r, g: [b.mul(g, b.add(r, b.const(1.0)))],
    mathd.FloorOp: _step,
    mathd.CeilOp: _step,
    mathd.RoundEvenOp: _step,
}

# Casts pass the (f32) adjoint through; every other rule computes in f32, so its op must too.
_CASTS = (arith.ExtFOp, arith.TruncFOp)


def _active_values(
    block: Block, wrt: Collection[int] | None, first_capture: int, roots: set[SSAValue]
) -> set[SSAValue]:
    """Float values that depend on `roots` or on a read of a float capture in `wrt`."""
    active = set(roots)
    for op in block.ops:
        if isinstance(op, tensor.ExtractOp):
            if _is_site(op.tensor, block, wrt, first_capture):
                active.add(op.result)
            continue
        if any(o in active for o in op.operands):
            active.update(r for r in op.results if isinstance(r.type, AnyFloat))
    return active


def _unsupported(op: Operation, region: str) -> PassFailedException:
    return PassFailedException(
        f"attn-autodiff cannot differentiate '{op.name}' in {region}; "
        f"a {region} using it would need a user-given backward"
    )


def _sweep(
    b: _Builder,
    forward: list[Operation],
    mapper: dict[SSAValue, SSAValue],
    result: SSAValue,
    seed: SSAValue,
    active: set[SSAValue],
    region: str,
) -> dict[SSAValue, SSAValue]:
    """The adjoints of the active forward values, from `seed` at `result`, walking `forward` backwards."""
    adjoint: dict[SSAValue, SSAValue] = {}

    def accumulate(value: SSAValue, contribution: SSAValue) -> None:
        adjoint[value] = b.add(adjoint[value], contribution) if value in adjoint else contribution

    if result in active:
        accumulate(result, seed)
    for op in reversed(forward):
        if not op.results or op.results[0] not in adjoint:
            continue
        if isinstance(op, tensor.ExtractOp):
            continue  # a site: its adjoint is yielded by the caller
        rule = RULES.get(type(op))
        if rule is None:
            raise _unsupported(op, region)
        if not isinstance(op, _CASTS) and op.results[0].type != f32:
            raise PassFailedException(
                f"attn-autodiff differentiates f32 arithmetic only, but '{op.name}' computes in {op.results[0].type}"
            )
        operands = [mapper[o] for o in op.operands]
        contributions = rule(b, operands, mapper[op.results[0]], adjoint[op.results[0]])
        for operand, contribution in zip(op.operands, contributions):
            if contribution is not None and operand in active:
                accumulate(operand, contribution)
    return adjoint


def _site_yields(
    b: _Builder,
    forward: list[Operation],
    block: Block,
    wrt: Collection[int] | None,
    first_capture: int,
    adjoint: dict[SSAValue, SSAValue],
    mapper: dict[SSAValue, SSAValue],
) -> list[SSAValue]:
    """Per site of `forward`, in program order: its adjoint and the indices it read."""
    yielded: list[SSAValue] = []
    for op in forward:
        if isinstance(op, tensor.ExtractOp) and _is_site(op.tensor, block, wrt, first_capture):
            site = adjoint.get(op.result) or b.const(0.0)
            _name(site, f"d{op.tensor.name_hint or 'capture'}")
            yielded += [site, *(mapper[i] for i in op.indices)]
    return yielded


def differentiate_score_mod(region: Region, wrt: Collection[int] | None = None) -> Region:
    """The derivative region of a score_mod region (see the module docstring for its signature).

    Sites are yielded for the float captures in `wrt` only (None: every one); the others
    are treated as constants, as tensors that do not require grad are."""
    old = region.blocks[0]
    terminator = old.last_op
    assert isinstance(terminator, YieldOp)
    new = Block(arg_types=[*(a.type for a in old.args), f32])
    mapper: dict[SSAValue, SSAValue] = {}
    for old_arg, new_arg in zip(old.args, new.args):
        new_arg.name_hint = old_arg.name_hint
        mapper[old_arg] = new_arg
    grad = new.args[-1]
    grad.name_hint = "grad"

    # Recompute the forward values.
    forward = [op for op in old.ops if op is not terminator]
    for op in forward:
        new.add_op(op.clone(value_mapper=mapper))

    # Backward sweep.
    active = _active_values(old, wrt, _FIRST_CAPTURE, {old.args[0]})
    b = _Builder(new)
    adjoint = _sweep(b, forward, mapper, terminator.values[0], grad, active, "score_mod")

    # Yield dscore, then (adjoint, indices...) per site.
    dscore = adjoint.get(old.args[0]) or b.const(0.0)
    _name(dscore, "dscore")
    yielded = [dscore, *_site_yields(b, forward, old, wrt, _FIRST_CAPTURE, adjoint, mapper)]
    new.add_op(YieldOp(*yielded))
    _erase_dead(new)
    return Region(new)


def _erase_dead(block: Block) -> None:
    """Removes recomputed forward ops the derivative does not read (every region op is pure)."""
    for op in reversed(list(block.ops)):
        if op is not block.last_op and all(not r.uses for r in op.results):
            block.erase_op(op)


def differentiate_statistic(
    finalize: Region, stat: int, initial_state: Sequence[float], wrt: Collection[int] | None = None
) -> tuple[Region, list[int]] | None:
    """The `stat_grad` region of a softmax-form normalizer and which capture each of its sites
    reads, or None when the statistic reads no float capture in `wrt`.

    finalize's statistic `stat` is lse = log(Σ_j exp(t_j) + E(c)) (softmax_form.py), so
    ∂lse/∂c = E'(c)·exp(−lse) = exp(lse₀ − lse)·∂lse₀/∂c, with lse₀ = log E(c) the
    statistic finalize gives a row that sees no key (the state at its initial values).
    The region takes (b, h, lse, captures..., grad) and yields, per site of the
    statistic, grad·exp(lse₀ − lse)·∂lse₀/∂site and the indices the site read.
    """
    old = finalize.blocks[0]
    terminator = old.last_op
    assert isinstance(terminator, YieldOp)
    first_capture = 3 + len(initial_state)  # finalize's block arguments: acc, b, h, the state, the captures
    captures = old.args[first_capture:]
    new = Block(arg_types=[IndexType(), IndexType(), f32, *(c.type for c in captures), f32])
    batch, head, lse, *capture_args, grad = new.args
    mapper: dict[SSAValue, SSAValue] = {}
    for old_arg, new_arg in zip((old.args[1], old.args[2], *captures), (batch, head, *capture_args)):
        new_arg.name_hint = old_arg.name_hint
        mapper[old_arg] = new_arg
    lse.name_hint, grad.name_hint = "lse", "grad"

    # The statistic of an empty row: finalize's ops it needs, at the initial state.
    value = terminator.values[1 + stat]
    needed = _cone(value)
    forward = [op for op in old.ops if op in needed]
    sites = _sites(forward, old, wrt, first_capture)
    if not sites:
        return None
    b = _Builder(new)
    for arg, initial in zip(old.args[3:first_capture], initial_state):
        mapper[arg] = b.const(initial)
    for op in forward:
        new.add_op(op.clone(value_mapper=mapper))
    empty = mapper[value]
    weight = b.emit(mathd.ExpOp(b.emit(arith.SubfOp(empty, lse))))
    seed = b.mul(grad, weight)
    _name(seed, "dlse_empty")

    active = _active_values(old, wrt, first_capture, set())
    adjoint = _sweep(b, forward, mapper, value, seed, active, "finalize")
    new.add_op(YieldOp(*_site_yields(b, forward, old, wrt, first_capture, adjoint, mapper)))
    _erase_dead(new)
    return Region(new), sites


def _cone(value: SSAValue) -> set[Operation]:
    """The ops `value` is computed from."""
    seen: set[Operation] = set()
    stack = [value.owner]
    while stack:
        op = stack.pop()
        if isinstance(op, Operation) and op not in seen:
            seen.add(op)
            stack += [o.owner for o in op.operands]
    return seen


__all__ = ["RULES", "differentiate_score_mod", "differentiate_statistic", "float_capture_sites"]
