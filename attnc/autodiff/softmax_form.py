"""Online softmax, recognised from what a normalizer's regions compute, never from its name.

A normalizer has softmax's backward (P = exp(t − lse), dT = P ⊙ (dP − δ)) when

- its **update** is online softmax's, op for op: with z = t·c the score in the exp's
  base (c = 1 under `math.exp`, c = log2 e under `math.exp2`), two states m and l
  starting at −∞ and 0,

      m' = max(m, row_max(z)),  p = exp_b(z − m'),  alpha = exp_b(m − m'),
      l' = l·alpha + row_sum(p)

  (m' may be guarded, `select(m' == −∞, C, m')`), and masked scores read as −∞. At
  the end of a row m = max z, l = Σ_j exp_b(z_j − m), acc = Σ_j exp_b(z_j − m)·v_j;
- its **finalize** returns out = acc·W(m, l, c) and a first statistic lse(m, l, c)
  (c: the captured values it reads) such that, for every m, l and c,

      (a) W = exp(κm − lse)                   the weights are exp(t_j − lse)
      (b) exp(lse) = exp(κm)·l + E(c)         lse = log(Σ_j exp(t_j) + E(c))

  with κ = ln b. (b) makes ∂lse/∂t_j = P_j, which softmax's backward assumes, and
  lets a capture in E (a sink's logit) take its gradient from lse alone (see
  `attn.flash_grad`'s `stat_grad`).

(a) and (b) are proved, not sampled: finalize is evaluated symbolically into sums of
exponentials Σ_k a_k·exp(L_k) of linear forms L_k over m, log l, log acc, the captured
values and the logs of sums that do not simplify, in which both identities are
checked term by term (coefficients to 1e-6: the f32 constants log2 e and ln 2 are
rounded). The accumulator may only be a factor (never inside a log). Each `max`/`min` is checked with either operand chosen, and a `select` only
as an empty-row guard: `select(s == s₀, C, s)` on a state s with initial value s₀ is s
on every row that sees a key. Anything else (another op, another shape of update) is
not online softmax.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xdsl.dialects import arith, tensor
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import AnyFloat, FloatAttr, TensorType
from xdsl.ir import Block, BlockArgument, Operation, SSAValue

from attnc.dialect import attn

TOL = 1e-6  # f32's rounding of log2 e and ln 2 is below 3e-8
MAX_BRANCHES = 8  # max/min ops in finalize: each is checked both ways, 2**n evaluations
LN2 = math.log(2.0)
NEG_INF = float("-inf")

_MAX_MIN = (arith.MaxnumfOp, arith.MaximumfOp, arith.MinnumfOp, arith.MinimumfOp)


@dataclass(frozen=True)
class OnlineSoftmax:
    """What the update says: the exp's base as κ = ln b, and which states are m and l."""

    kappa: float
    running_max: int
    running_sum: int


def _constant(value: SSAValue) -> float | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr):
        return float(owner.value.value.data)
    return None


def _operands(value: SSAValue, kind: type[Operation] | tuple[type[Operation], ...]) -> tuple[SSAValue, ...] | None:
    owner = value.owner
    return tuple(owner.operands) if isinstance(owner, kind) else None


def _pair(value: SSAValue, kind: type[Operation] | tuple[type[Operation], ...], a: SSAValue) -> SSAValue | None:
    """For value = kind(a, x) or kind(x, a) (kind commutative): x."""
    operands = _operands(value, kind)
    if operands is None or a not in operands:
        return None
    return operands[1] if operands[0] is a else operands[0]


def _is_empty_row_guard(value: SSAValue, guarded: SSAValue, empty: float) -> bool:
    """value = select(guarded == empty, C, guarded): `guarded` on every row that sees a key."""
    operands = _operands(value, arith.SelectOp)
    if operands is None or operands[2] is not guarded:
        return False
    cond = operands[0].owner
    equal = [arith.CMPF_COMPARISON_OPERATIONS.index(p) for p in ("oeq", "ueq")]
    if not isinstance(cond, arith.CmpfOp) or cond.predicate.value.data not in equal:
        return False
    other = _pair(operands[0], arith.CmpfOp, guarded)
    return other is not None and _constant(other) == empty


def _finite_guard(value: SSAValue, m_new: SSAValue) -> bool:
    """value = select(m_new == −∞, C, m_new) with C finite: exp_b(z − C) is 0 for the −∞ scores of a row so far empty."""
    if not _is_empty_row_guard(value, m_new, NEG_INF):
        return False
    shift = _constant(value.owner.operands[1])  # type: ignore[union-attr]
    return shift is not None and math.isfinite(shift)


def online_softmax_update(op: attn.FlashOp) -> OnlineSoftmax | None:
    """The update's base and state roles if it is online softmax's (module docstring), else None."""
    if len(op.state.data) != 2 or op.masked_score.value.data != NEG_INF:
        return None
    block = op.update.blocks[0]
    score, states = block.args[0], block.args[3:5]
    terminator = block.last_op
    assert isinstance(terminator, attn.YieldOp)
    p, alpha, *new = terminator.values
    init = [a.value.data for a in op.init.data]
    for mi, li in ((0, 1), (1, 0)):
        if init[mi] != NEG_INF or init[li] != 0.0:
            continue
        m_new, l_new = new[mi], new[li]
        row_max = _pair(m_new, (arith.MaxnumfOp, arith.MaximumfOp), states[mi])
        z = _operands(row_max, attn.RowMaxOp) if row_max is not None else None
        if z is None:
            continue
        (z,) = z
        if z is score:
            scaling = 1.0
        else:
            factor = _pair(z, arith.MulfOp, score)
            scaling = _constant(factor) if factor is not None else None
            if scaling is None:
                continue
        for exp, kappa in ((mathd.ExpOp, 1.0), (mathd.Exp2Op, LN2)):
            if abs(kappa * scaling - 1.0) > TOL:
                continue
            p_arg, alpha_arg = _operands(p, exp), _operands(alpha, exp)
            if p_arg is None or alpha_arg is None:
                continue
            shifted, rescale = _operands(p_arg[0], arith.SubfOp), _operands(alpha_arg[0], arith.SubfOp)
            if shifted is None or rescale is None or shifted[0] is not z or rescale[0] is not states[mi]:
                continue
            m_safe = shifted[1]
            if rescale[1] is not m_safe or not (m_safe is m_new or _finite_guard(m_safe, m_new)):
                continue
            terms = _operands(l_new, arith.AddfOp) or ()
            sums = [t for t in terms if _operands(t, attn.RowSumOp) == (p,)]
            decayed = [t for t in terms if _pair(t, arith.MulfOp, states[li]) is alpha]
            if len(terms) == 2 and sums and decayed and sums[0] is not decayed[0]:
                return OnlineSoftmax(kappa, mi, li)
    return None


# Sums of exponentials of linear forms. A variable is an int: 0 m, 1 log l, 2 log acc,
# then one per captured value read and one per log of a sum that does not simplify.

Exponent = tuple[tuple[int, float], ...]  # sorted (variable, coefficient), coefficients nonzero
M, LOG_L, LOG_ACC = 0, 1, 2


@dataclass(frozen=True)
class Linear:
    """const + Σ a_v·v."""

    const: float
    coeffs: Exponent


@dataclass(frozen=True)
class ExpSum:
    """Σ_k a_k·exp(L_k), the L_k distinct and without constant terms."""

    terms: tuple[tuple[Exponent, float], ...]


class NotSoftmax(Exception):
    """Finalize computes something the algebra does not express, or not online softmax's."""


def _exponent(coeffs: dict[int, float]) -> Exponent:
    return tuple(sorted((v, a) for v, a in coeffs.items() if abs(a) > TOL))


def _close(a: Exponent, b: Exponent) -> bool:
    return len(a) == len(b) and all(va == vb and abs(ka - kb) <= TOL for (va, ka), (vb, kb) in zip(a, b))


def _term(coeffs: dict[int, float], coef: float = 1.0) -> ExpSum:
    """coef·exp(Σ a_v·v)."""
    return ExpSum(((_exponent(coeffs), coef),))


def _combine(pairs: list[tuple[dict[int, float] | Exponent, float]]) -> ExpSum:
    """Like terms (exponents equal to TOL) added up; a sum that cancels (to TOL of its parts) dropped."""
    terms: list[tuple[Exponent, float, float]] = []  # exponent, coefficient, largest part
    for exponent, coef in pairs:
        key = _exponent(dict(exponent))
        at = next((i for i, (e, _, _) in enumerate(terms) if _close(e, key)), None)
        if at is None:
            terms.append((key, coef, abs(coef)))
        else:
            e, c, part = terms[at]
            terms[at] = (e, c + coef, max(part, abs(coef)))
    return ExpSum(tuple(sorted((e, c) for e, c, part in terms if abs(c) > TOL * part)))


def _same(a: ExpSum, b: ExpSum) -> bool:
    return len(a.terms) == len(b.terms) and all(
        _close(ea, eb) and abs(ca - cb) <= TOL for (ea, ca), (eb, cb) in zip(a.terms, b.terms)
    )


def _add_linear(a: Linear, b: Linear, sign: float = 1.0) -> Linear:
    coeffs = dict(a.coeffs)
    for v, k in b.coeffs:
        coeffs[v] = coeffs.get(v, 0.0) + sign * k
    return Linear(a.const + sign * b.const, _exponent(coeffs))


def _scale_linear(a: Linear, k: float) -> Linear:
    return Linear(a.const * k, _exponent({v: c * k for v, c in a.coeffs}))


class Algebra:
    """Interns the sums whose logs become variables, normalised so that equal sums meet."""

    def __init__(self) -> None:
        self.sum_of: dict[int, ExpSum] = {}
        self.sites: dict[SSAValue, int] = {}
        self.next = 3

    def variable(self) -> int:
        self.next += 1
        return self.next - 1

    def site(self, read: SSAValue) -> int:
        """The variable of one read of a captured tensor, the same in every evaluation."""
        if read not in self.sites:
            self.sites[read] = self.variable()
        return self.sites[read]

    def exp(self, a: Linear, kappa: float = 1.0) -> ExpSum:
        return _term({v: c * kappa for v, c in a.coeffs}, math.exp(a.const * kappa))

    def log(self, a: ExpSum) -> Linear:
        """log of a positive sum: linear for one term; else the mean exponent, the first coefficient and
        the variable of the normalised sum (shift- and scale-free, so that equal sums meet)."""
        if not a.terms:
            raise NotSoftmax("the log of zero")
        if len(a.terms) == 1:
            ((exponent, coef),) = a.terms
            if coef <= 0:
                raise NotSoftmax("the log of a negative value")
            return Linear(math.log(coef), exponent)
        mean: dict[int, float] = {}
        for exponent, _ in a.terms:
            for v, k in exponent:
                mean[v] = mean.get(v, 0.0) + k / len(a.terms)
        shifted = _combine([({v: dict(e).get(v, 0.0) - k for v, k in mean.items()}, c) for e, c in a.terms])
        scale = abs(shifted.terms[0][1])
        normal = ExpSum(tuple((e, c / scale) for e, c in shifted.terms))
        var = next((v for v, known in self.sum_of.items() if _same(known, normal)), None)
        if var is None:
            var = self.variable()
            self.sum_of[var] = normal
        return Linear(math.log(scale), _exponent({**mean, var: 1.0}))

    def expand(self, a: ExpSum) -> ExpSum:
        """exp(n·log S) written out as Sⁿ for whole n > 0."""
        out: list[tuple[Exponent, float]] = []
        for exponent, coef in a.terms:
            product = _term({v: k for v, k in exponent if not self._power(v, k)}, coef)
            for v, k in exponent:
                if self._power(v, k):
                    for _ in range(round(k)):
                        product = mul(product, self.expand(self.sum_of[v]))
            out += product.terms
        return _combine(list(out))

    def _power(self, v: int, k: float) -> bool:
        return v in self.sum_of and abs(k - round(k)) < TOL and round(k) > 0


def add(a: ExpSum, b: ExpSum, sign: float = 1.0) -> ExpSum:
    return _combine([*a.terms, *((e, sign * c) for e, c in b.terms)])


def mul(a: ExpSum, b: ExpSum) -> ExpSum:
    pairs: list[tuple[dict[int, float] | Exponent, float]] = []
    for (ea, ca), (eb, cb) in itertools.product(a.terms, b.terms):
        coeffs = dict(ea)
        for v, k in eb:
            coeffs[v] = coeffs.get(v, 0.0) + k
        pairs.append((coeffs, ca * cb))
    return _combine(pairs)


def _as_sum(value: Linear | ExpSum) -> ExpSum:
    if isinstance(value, ExpSum):
        return value
    if value.coeffs:
        raise NotSoftmax("a value used both as an exponent and as a factor")
    return _combine([((), value.const)])


def _as_linear(value: Linear | ExpSum) -> Linear:
    if isinstance(value, Linear):
        return value
    if not value.terms:
        return Linear(0.0, ())
    if len(value.terms) == 1 and not value.terms[0][0]:
        return Linear(value.terms[0][1], ())
    raise NotSoftmax("the exponential of an exponential")


class _Finalize:
    """Evaluates finalize's values symbolically, with one operand chosen per max/min.

    `initial`: at the state a row that sees no key ends with, m = −∞ and l = 0, where the
    empty-row guards apply: a linear form with a positive coefficient of m is −∞ there,
    and its exp 0."""

    def __init__(
        self,
        block: Block,
        form: OnlineSoftmax,
        init: list[float],
        algebra: Algebra,
        choices: dict[Operation, int],
        initial: bool = False,
    ):
        self.block, self.form, self.init, self.algebra, self.choices = block, form, init, algebra, choices
        self.initial = initial
        self.values: dict[SSAValue, Linear | ExpSum] = {}

    def __call__(self, value: SSAValue) -> Linear | ExpSum:
        if value not in self.values:
            self.values[value] = self._evaluate(value)
        return self.values[value]

    def _evaluate(self, value: SSAValue) -> Linear | ExpSum:
        args = self.block.args
        if value is args[0]:
            return _term({LOG_ACC: 1.0})
        if value is args[3 + self.form.running_max]:
            return Linear(0.0, ((M, 1.0),))
        if value is args[3 + self.form.running_sum]:
            return ExpSum(()) if self.initial else _term({LOG_L: 1.0})
        op = value.owner
        if isinstance(op, Operation):
            for kinds, evaluate in self._RULES:
                if isinstance(op, kinds):
                    return evaluate(self, value, op)
        raise NotSoftmax(f"'{op.name if isinstance(op, Operation) else value}'")

    def _extract(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        assert isinstance(op, tensor.ExtractOp)
        ty = op.tensor.type
        if not isinstance(ty, TensorType) or not isinstance(ty.element_type, AnyFloat):
            raise NotSoftmax("a read of a non-float tensor")
        if not isinstance(op.tensor, BlockArgument):
            raise NotSoftmax("a read of a non-float tensor")
        return Linear(0.0, ((self.algebra.site(value), 1.0),))

    def _constant(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        assert isinstance(op, arith.ConstantOp)
        number = _constant(value)
        if number is None or not math.isfinite(number):
            raise NotSoftmax(f"the constant {op.value}")
        return Linear(number, ())

    def _cast(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        return self(op.operands[0])

    def _max_min(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        infinite = [self._infinite(self(o)) for o in op.operands]
        if self.initial and any(infinite):  # max(−∞, x) = x, min(−∞, x) = −∞
            is_max = isinstance(op, arith.MaxnumfOp | arith.MaximumfOp)
            return self(op.operands[infinite.index(True) ^ is_max])
        return self(op.operands[self.choices[op]])

    def _select(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        state = op.operands[2]
        index = state.index - 3 if isinstance(state, BlockArgument) and state.block is self.block else -1
        if 0 <= index < len(self.init) and _is_empty_row_guard(value, state, self.init[index]):
            return self(op.operands[1] if self.initial else state)
        raise NotSoftmax("a select other than an empty-row guard")

    def _negate(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        return _negate(self(op.operands[0]))

    def _add(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        sign = 1.0 if isinstance(op, arith.AddfOp) else -1.0
        a, b = self(op.operands[0]), self(op.operands[1])
        if isinstance(a, Linear) and isinstance(b, Linear):
            if self.initial and dict(a.coeffs).get(M, 0.0) * sign * dict(b.coeffs).get(M, 0.0) < 0:
                raise NotSoftmax("−∞ + ∞ on an empty row")
            return _add_linear(a, b, sign)
        return add(_as_sum(a), _as_sum(b), sign)

    def _mul(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        a, b = self(op.operands[0]), self(op.operands[1])
        if isinstance(a, Linear) and isinstance(b, Linear):
            if a.coeffs and b.coeffs:
                raise NotSoftmax("a product of two exponents")
            return _scale_linear(a, b.const) if not b.coeffs else _scale_linear(b, a.const)
        if isinstance(a, Linear) and a.coeffs:
            return _scale_linear(a, _as_linear(b).const)
        if isinstance(b, Linear) and b.coeffs:
            return _scale_linear(b, _as_linear(a).const)
        return mul(_as_sum(a), _as_sum(b))

    def _div(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        a, b = self(op.operands[0]), self(op.operands[1])
        if isinstance(a, Linear) and a.coeffs:
            divisor = _as_linear(b)
            if divisor.coeffs or divisor.const == 0:
                raise NotSoftmax("an exponent divided by a variable")
            return _scale_linear(a, 1.0 / divisor.const)
        return mul(_as_sum(a), self.algebra.exp(_scale_linear(self.algebra.log(_as_sum(b)), -1.0)))

    def _exp(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        exponent = _as_linear(self(op.operands[0]))
        if self._infinite(exponent):
            return ExpSum(())
        return self.algebra.exp(exponent, 1.0 if isinstance(op, mathd.ExpOp) else LN2)

    def _log(self, value: SSAValue, op: Operation) -> Linear | ExpSum:
        argument = _as_sum(self(op.operands[0]))
        if any(v == LOG_ACC for exponent, _ in argument.terms for v, _ in exponent):
            # acc is modelled as exp(log acc), which holds only for acc > 0: it may only be a factor.
            raise NotSoftmax("the log of the accumulator")
        log = self.algebra.log(argument)
        return log if isinstance(op, mathd.LogOp) else _scale_linear(log, 1.0 / LN2)

    # What each op of finalize evaluates to, by op type; anything else is not softmax's finalize.
    _RULES: tuple[tuple[Any, Callable[..., Linear | ExpSum]], ...] = (
        (tensor.ExtractOp, _extract),
        (arith.ConstantOp, _constant),
        (arith.ExtFOp | arith.TruncFOp, _cast),
        (_MAX_MIN, _max_min),
        (arith.SelectOp, _select),
        (arith.NegfOp, _negate),
        (arith.AddfOp | arith.SubfOp, _add),
        (arith.MulfOp, _mul),
        (arith.DivfOp, _div),
        (mathd.ExpOp | mathd.Exp2Op, _exp),
        (mathd.LogOp | mathd.Log2Op, _log),
    )

    def _infinite(self, value: Linear | ExpSum) -> bool:
        """Whether `value` is −∞ at the initial state (+∞ is refused)."""
        if not self.initial or not isinstance(value, Linear):
            return False
        coefficient = dict(value.coeffs).get(M, 0.0)
        if coefficient < 0:
            raise NotSoftmax("+∞ on an empty row")
        return coefficient > 0


def _negate(value: Linear | ExpSum) -> Linear | ExpSum:
    if isinstance(value, Linear):
        return _scale_linear(value, -1.0)
    return ExpSum(tuple((e, -c) for e, c in value.terms))


def _cone(values: list[SSAValue]) -> list[Operation]:
    """The ops `values` are computed from."""
    seen: set[Operation] = set()
    stack = [v.owner for v in values]
    while stack:
        op = stack.pop()
        if isinstance(op, Operation) and op not in seen:
            seen.add(op)
            stack += [o.owner for o in op.operands]
    return list(seen)


def softmax_finalize_problem(op: attn.FlashOp, form: OnlineSoftmax) -> str | None:
    """None when finalize satisfies (a) and (b) of the module docstring under every choice of its
    max/min operands; else what it does instead."""
    block = op.finalize.blocks[0]
    terminator = block.last_op
    assert isinstance(terminator, attn.YieldOp)
    if len(terminator.values) < 2:
        return "it keeps no statistic, and softmax's backward reads its logsumexp"
    out, lse = terminator.values[0], terminator.values[1]
    init = [a.value.data for a in op.init.data]
    branching = [o for o in _cone([out, lse]) if isinstance(o, _MAX_MIN)]
    if len(branching) > MAX_BRANCHES:
        return f"its finalize takes {len(branching)} max/min, more than the {MAX_BRANCHES} this check follows"
    for chosen in itertools.product((0, 1), repeat=len(branching)):
        algebra = Algebra()
        evaluate = _Finalize(block, form, init, algebra, dict(zip(branching, chosen)))
        try:
            weight = mul(_as_sum(evaluate(out)), _term({LOG_ACC: -1.0}))
        except NotSoftmax as e:
            return f"its finalize's output uses {e}, which is not online softmax's"
        try:
            stat = evaluate(lse)
        except NotSoftmax as e:
            return f"its first statistic uses {e}, which is not a logsumexp"
        if isinstance(stat, ExpSum) and (len(stat.terms) > 1 or any(e for e, _ in stat.terms)):
            return "its first statistic is not a logsumexp"
        stat = _as_linear(stat)
        if any(v == LOG_ACC for e, _ in weight.terms for v, _ in e):
            return "its finalize's output is not the accumulator times a row factor"
        shift = _add_linear(stat, Linear(0.0, ((M, form.kappa),)), -1.0)
        one = mul(weight, algebra.exp(shift))
        if len(one.terms) != 1 or one.terms[0][0] or abs(one.terms[0][1] - 1.0) > TOL:
            return "its finalize's output is not Σ_j exp(t_j − lse)·v_j with lse its first statistic"
        total = algebra.expand(algebra.exp(stat))
        extra = add(total, _term({M: form.kappa, LOG_L: 1.0}), -1.0)
        captured = set(algebra.sites.values())
        if any(v not in captured for e, _ in extra.terms for v, _ in e):
            return "its first statistic is not log(Σ_j exp(t_j) + a term of captured values only)"
        if not extra.terms:
            continue
        # A captured term E: the backward reads it off the statistic of an empty row, log E.
        empty_row = _Finalize(block, form, init, algebra, dict(zip(branching, chosen)), initial=True)
        try:
            empty = _as_linear(empty_row(lse))
            if any(v not in captured for v, _ in empty.coeffs):
                raise NotSoftmax("a statistic that depends on the state")
        except NotSoftmax as e:
            return f"its first statistic of a row that sees no key is not log of the captured term: {e}"
        if add(algebra.expand(algebra.exp(empty)), extra, -1.0).terms:
            return "its first statistic of a row that sees no key is not log of the captured term"
    return None


def is_online_softmax(op: attn.FlashOp) -> bool:
    form = online_softmax_update(op)
    return form is not None and softmax_finalize_problem(op, form) is None


__all__ = ["OnlineSoftmax", "is_online_softmax", "online_softmax_update", "softmax_finalize_problem"]
