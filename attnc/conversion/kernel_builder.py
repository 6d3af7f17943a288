"""Building one tile-dialect kernel, op by op, with Triton's broadcasting made explicit.

Tile op shapes carry nominal sizes; the kernel names its block sizes, so the
builder tracks each value's symbolic dims (("BLOCK_M", "1"), ...) beside it and
inserts `tile.splat`/`tile.broadcast`/`tile.cast` wherever Triton would
broadcast or promote implicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from xdsl.dialects import arith, math, scf
from xdsl.dialects.builtin import (
    AnyFloat,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    UnitAttr,
    f32,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.transforms.dead_code_elimination import region_dce

from attnc.dialect import tile

Dims = tuple[str, ...]


@dataclass
class Capture:
    """A captured tensor inside a kernel: its pointer, its strides in elements, and the sizes of the
    dimensions guarded reads mask (by dimension)."""

    ptr: SSAValue
    strides: list[SSAValue]
    sizes: dict[int, SSAValue] = field(default_factory=dict)


Value = SSAValue | Capture


@dataclass
class LoopBody:
    """What a `kb.loop` body sees: the induction variable and the carried values, by name."""

    index: SSAValue
    carried: dict[str, SSAValue]
    results: dict[str, SSAValue] = field(default_factory=dict)
    yielded: dict[str, SSAValue] | None = None

    def yield_(self, values: Mapping[str, SSAValue]) -> None:
        self.yielded = dict(values)


def _broadcast_dims(a: Dims, b: Dims) -> Dims:
    if not a:
        return b
    if not b:
        return a
    assert len(a) == len(b), f"cannot broadcast {a} with {b}"
    return tuple(y if x == "1" else x for x, y in zip(a, b))


def _is_constant(v: SSAValue, value: float) -> bool:
    owner = v.owner
    return (
        isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr) and owner.value.value.data == value
    )


def _int_width(ty: Attribute) -> int:
    return ty.width.data if isinstance(ty, IntegerType) else 32


class KernelBuilder:
    """Appends tile ops to one `tile.func`, naming values after the kernel's own variables."""

    i32_type = i32

    def __init__(
        self,
        name: str,
        params: Sequence[tuple[str, Attribute]],
        constexprs: Mapping[str, int],
        approx_tanh: bool = False,
        instrument: bool = False,
    ):
        self.constexprs = dict(constexprs)
        self.approx_tanh = approx_tanh  # tanh as one hardware instruction (NVIDIA's tanh.approx.f32)
        self.instrument = instrument  # Proton scopes around the stages (attn-instrument)
        self.func = tile.FuncOp(name, [p for p, _ in params], [t for _, t in params], self.constexprs)
        self.block = self.func.body.block
        self.args = {p: arg for (p, _), arg in zip(params, self.block.args)}
        self.dims: dict[SSAValue, Dims] = {}
        self._comment: str | None = None
        self._constexpr_values: dict[str, SSAValue] = {}

    @staticmethod
    def ptr_type(element: Attribute) -> Attribute:
        return tile.PtrType(element)

    # -- plumbing -----------------------------------------------------------------

    def _add(self, op: Operation) -> None:
        """Append `op`, with the pending comment."""
        if self._comment is not None:
            op.attributes["attnc.comment"] = StringAttr(self._comment)
            self._comment = None
        self.block.add_op(op)

    def emit(self, op: Operation, dims: Dims = (), name: str | None = None) -> SSAValue:
        self._add(op)
        result = op.results[0]
        if name:
            result.name_hint = name
        self.dims[result] = dims
        return result

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """A Proton scope `name` around what the body emits, when the kernel is instrumented; else nothing."""
        if not self.instrument:
            yield
            return
        self._add(tile.ScopeEnterOp(name))
        yield
        self._add(tile.ScopeExitOp(name))

    def comment(self, text: str) -> None:
        """Attach `text` as a `# comment` to the next op."""
        self._comment = text

    def dims_of(self, v: SSAValue) -> Dims:
        return self.dims.get(v, ())

    def size(self, dims: Dims) -> list[int]:
        return [1 if d == "1" else self.constexprs[d] if d in self.constexprs else int(d) for d in dims]

    def finish(self) -> tile.FuncOp:
        self.block.add_op(tile.ReturnOp())
        region_dce(self.func.body)
        return self.func

    # -- scalars ------------------------------------------------------------------

    def arg(self, name: str) -> SSAValue:
        return self.args[name]

    def program_id(self, axis: int, name: str) -> SSAValue:
        return self.emit(tile.ProgramIdOp(axis), (), name)

    def constexpr(self, name: str) -> SSAValue:
        """The constexpr's value, defined once at the top of the kernel so every region may use it."""
        if name not in self._constexpr_values:
            op = tile.ConstexprOp(name)
            op.result.name_hint = name.lower()
            top = self.func.body.block
            if top.first_op is None:
                top.add_op(op)
            else:
                top.insert_op_before(op, top.first_op)
            self.dims[op.result] = ()
            self._constexpr_values[name] = op.result
        return self._constexpr_values[name]

    def i32(self, value: int) -> SSAValue:
        return self.emit(arith.ConstantOp(IntegerAttr(value, i32)))

    def f32(self, value: float) -> SSAValue:
        return self.emit(arith.ConstantOp(FloatAttr(value, f32)))

    def constant_like(self, op: arith.ConstantOp) -> SSAValue:
        """A scalar constant of a region; `index` constants become i32."""
        value = op.value
        if isinstance(value, IntegerAttr) and isinstance(value.type, IndexType):
            return self.i32(value.value.data)
        return self.emit(op.clone())

    # -- shapes -------------------------------------------------------------------

    def arange(self, dim: str, name: str | None = None) -> SSAValue:
        return self.emit(tile.ArangeOp(dim, self.size((dim,))[0]), (dim,), name)

    def full(self, dims: Dims, value: float, element: Attribute, name: str | None = None) -> SSAValue:
        return self.emit(tile.FullOp(value, list(dims), self.size(dims), element), dims, name)

    def col(self, x: SSAValue, name: str | None = None) -> SSAValue:
        """[N] → [N, 1]."""
        return self.emit(tile.ExpandDimsOp(x, 1), (*self.dims_of(x), "1"), name)

    def row(self, x: SSAValue, name: str | None = None) -> SSAValue:
        """[N] → [1, N]."""
        return self.emit(tile.ExpandDimsOp(x, 0), ("1", *self.dims_of(x)), name)

    def to_dims(self, x: SSAValue, dims: Dims) -> SSAValue:
        have = self.dims_of(x)
        if have == dims:
            return x
        if len(have) == 1 and len(dims) == 2:
            x = self.col(x) if have[0] == dims[0] else self.row(x)
            have = self.dims_of(x)
            if have == dims:
                return x
        if not have:
            return self.emit(tile.SplatOp(x, list(dims), self.size(dims)), dims)
        return self.emit(tile.BroadcastOp(x, list(dims), self.size(dims)), dims)

    def _element(self, x: SSAValue) -> Attribute:
        return tile.element_type_of(x.type)

    def _rows_to_2d(self, xs: Sequence[SSAValue]) -> list[SSAValue]:
        """A per-row vector [BLOCK_M] meeting a 2-d tile becomes a column [BLOCK_M, 1]."""
        rank2 = [self.dims_of(x) for x in xs if len(self.dims_of(x)) == 2]
        if not rank2:
            return list(xs)
        out = []
        for x in xs:
            d = self.dims_of(x)
            if len(d) == 1:
                x = self.col(x) if d[0] == rank2[0][0] else self.row(x)
            out.append(x)
        return out

    def _unify(self, *xs: SSAValue) -> list[SSAValue]:
        """Same dims and, for integers, the widest width (Triton's promotion)."""
        xs = tuple(self._rows_to_2d(xs))
        dims: Dims = ()
        for x in xs:
            dims = _broadcast_dims(dims, self.dims_of(x))
        ints = [x for x in xs if isinstance(self._element(x), IntegerType) and self._element(x) != i1]
        if len(ints) > 1:
            widest = max(_int_width(self._element(x)) for x in ints)
            target = i64 if widest == 64 else i32
            xs = tuple(self.cast(x, target) if x in ints and self._element(x) != target else x for x in xs)
        return [self.to_dims(x, dims) for x in xs]

    # -- elementwise --------------------------------------------------------------

    def binary(self, cls: Callable[..., Operation], a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        if cls is arith.MulfOp:
            if _is_constant(b, 1.0):  # a stateless normalizer's alpha: the accumulator stays as it is
                return a
            folded = self._fold_scalar_factors(a, b, name)
            if folded is not None:
                return folded
        a, b = self._unify(a, b)
        return self.emit(cls(a, b), self.dims_of(a), name)

    def _uniform(self, v: SSAValue) -> SSAValue | None:
        """The scalar behind `v` when every element of `v` is that scalar (a scalar or a splat)."""
        if not self.dims_of(v):
            return v
        if isinstance(v.owner, tile.SplatOp):
            return v.owner.value
        return None

    def _fold_scalar_factors(self, a: SSAValue, b: SSAValue, name: str | None) -> SSAValue | None:
        """(x · s) · c as x · (s · c), and (x · s ± t) · c as x · (s · c) ± t · c, for scalars s, t
        and c: one multiply(-add) per element instead of two or three.

        This is what lets softmax's log2(e) merge with the attention scale, and
        sigmoid's tanh(t/2) of a biased score take one FMA. The first products stay
        if something else reads them; otherwise `finish` drops them.
        """
        c = self._uniform(b)
        inner = a.owner
        if c is not None and self.dims_of(a) and isinstance(inner, arith.AddfOp | arith.SubfOp):
            t = self._uniform(inner.rhs)
            scaled = inner.lhs.owner
            if t is not None and isinstance(scaled, arith.MulfOp) and self._uniform(scaled.rhs) is not None:
                product = self.binary(arith.MulfOp, inner.lhs, b)
                return self.binary(type(inner), product, self._scalar_product(t, c), name)
        if c is None or not self.dims_of(a) or not isinstance(inner, arith.MulfOp):
            return None
        s = self._uniform(inner.rhs)
        if s is None or not self.dims_of(inner.lhs):
            return None
        factor = self.emit(arith.MulfOp(s, c), ())
        return self.binary(arith.MulfOp, inner.lhs, factor, name)

    def _scalar_product(self, t: SSAValue, c: SSAValue) -> SSAValue:
        """t · c for scalars, folded when both are constants."""
        if isinstance(t.owner, arith.ConstantOp) and isinstance(c.owner, arith.ConstantOp):
            tv, cv = t.owner.value, c.owner.value
            if isinstance(tv, FloatAttr) and isinstance(cv, FloatAttr):
                return self.f32(tv.value.data * cv.value.data)
        return self.emit(arith.MulfOp(t, c), ())

    def unary(self, cls: Callable[..., Operation], a: SSAValue, name: str | None = None) -> SSAValue:
        if cls is math.TanhOp and self.approx_tanh and self._element(a) == f32:
            return self.emit(tile.InlineAsmOp(a, "tanh.approx.f32 $0, $1;", "=r,r"), self.dims_of(a), name)
        return self.emit(cls(a), self.dims_of(a), name)

    def add(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        cls = arith.AddfOp if isinstance(self._element(a), AnyFloat) else arith.AddiOp
        return self.binary(cls, a, b, name)

    def sub(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        cls = arith.SubfOp if isinstance(self._element(a), AnyFloat) else arith.SubiOp
        return self.binary(cls, a, b, name)

    def mul(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        cls = arith.MulfOp if isinstance(self._element(a), AnyFloat) else arith.MuliOp
        return self.binary(cls, a, b, name)

    def div(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        """Integer division of non-negative values."""
        return self.binary(arith.DivSIOp, a, b, name)

    def rem(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        return self.binary(arith.RemSIOp, a, b, name)

    def min(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        return self.binary(arith.MinSIOp, a, b, name)

    def max(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        return self.binary(arith.MaxSIOp, a, b, name)

    def cdiv(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        return self.div(self.sub(self.add(a, b), self.i32(1)), b, name)

    def and_(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        return self.binary(arith.AndIOp, a, b, name)

    def or_(self, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        return self.binary(arith.OrIOp, a, b, name)

    def not_(self, a: SSAValue, name: str | None = None) -> SSAValue:
        true = self.emit(arith.ConstantOp(IntegerAttr(-1, i1)))
        return self.binary(arith.XOrIOp, a, true, name)

    def cmp(self, predicate: str, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        a, b = self._unify(a, b)
        return self.emit(tile.CmpIOp(a, b, predicate), self.dims_of(a), name)

    def cmpf(self, predicate: str, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        a, b = self._unify(a, b)
        return self.emit(tile.CmpFOp(a, b, predicate), self.dims_of(a), name)

    def where(self, c: SSAValue, a: SSAValue, b: SSAValue, name: str | None = None) -> SSAValue:
        c, a, b = self._unify(c, a, b)
        return self.emit(tile.SelectOp(c, a, b), self.dims_of(a), name)

    def cast(self, x: SSAValue, element: Attribute, name: str | None = None) -> SSAValue:
        if isinstance(element, IndexType):
            element = i32
        if self._element(x) == element:
            return x
        widened = x.owner
        if (
            isinstance(element, AnyFloat)
            and isinstance(self._element(x), IntegerType)
            and isinstance(widened, tile.CastOp)
        ):
            source = self._element(widened.value)
            if isinstance(source, IntegerType) and source != i1 and source.width.data < _int_width(self._element(x)):
                x = widened.value  # a sign extension before an int → float conversion changes no value
        return self.emit(tile.CastOp(x, element), self.dims_of(x), name)

    def wide(self, x: SSAValue) -> SSAValue:
        """x as i64, for offsets that may pass 2**31 elements."""
        return self.cast(x, i64)

    # -- reductions and matrix products -------------------------------------------

    def row_reduce(self, kind: str, x: SSAValue, name: str | None = None) -> SSAValue:
        """Reduce over the key axis: a per-row vector [BLOCK_M], as FlashAttention keeps m and l."""
        dims = self.dims_of(x)
        if len(dims) != 2:
            return x
        return self.emit(tile.ReduceOp(x, kind, 1), dims[:1], name)

    def _reduce_scalar(self, kind: str, x: SSAValue, name: str | None) -> SSAValue:
        as_int = self.cast(x, i32)
        while self.dims_of(as_int):
            as_int = self.emit(tile.ReduceOp(as_int, kind, len(self.dims_of(as_int)) - 1), self.dims_of(as_int)[:-1])
        return self.cmp("sgt", as_int, self.i32(0), name)

    def sum_all(self, x: SSAValue, name: str | None = None) -> SSAValue:
        """The sum of every element of a tile, as a scalar."""
        while self.dims_of(x):
            dims = self.dims_of(x)
            x = self.emit(tile.ReduceOp(x, "sum", len(dims) - 1), dims[:-1], name if len(dims) == 1 else None)
        return x

    def reduce_any(self, x: SSAValue, name: str | None = None) -> SSAValue:
        return self._reduce_scalar("max", x, name)

    def reduce_all(self, x: SSAValue, name: str | None = None) -> SSAValue:
        return self._reduce_scalar("min", x, name)

    def dot(
        self, a: SSAValue, b: SSAValue, acc: SSAValue | None, precision: str | None, name: str | None = None
    ) -> SSAValue:
        dims = (self.dims_of(a)[0], self.dims_of(b)[1])
        return self.emit(tile.DotOp(a, b, acc, input_precision=precision), dims, name)

    def trans(self, x: SSAValue, name: str | None = None) -> SSAValue:
        return self.emit(tile.TransOp(x), self.dims_of(x)[::-1], name)

    # -- memory -------------------------------------------------------------------

    def addptr(self, ptr: SSAValue, offset: SSAValue, name: str | None = None) -> SSAValue:
        dims = _broadcast_dims(self.dims_of(ptr), self.dims_of(offset))
        ptr, offset = self.to_dims(ptr, dims) if self.dims_of(ptr) else ptr, self.to_dims(offset, dims)
        return self.emit(tile.AddPtrOp(ptr, offset), dims, name)

    def load(self, ptrs: SSAValue, mask: SSAValue | None, other: float | None, name: str | None = None) -> SSAValue:
        dims = self.dims_of(ptrs)
        if mask is not None:
            mask = self.to_dims(mask, dims)
        return self.emit(tile.LoadOp(ptrs, mask, other if mask is not None else None), dims, name)

    def _write(
        self, cls: type[tile.StoreOp | tile.AtomicAddOp], ptrs: SSAValue, value: SSAValue, mask: SSAValue | None
    ) -> None:
        dims = self.dims_of(ptrs)
        value = self.to_dims(value, dims)
        if mask is not None:
            mask = self.to_dims(mask, dims)
        self._add(cls(ptrs, value, mask))

    def store(self, ptrs: SSAValue, value: SSAValue, mask: SSAValue | None = None) -> None:
        self._write(tile.StoreOp, ptrs, value, mask)

    def atomic_add(self, ptrs: SSAValue, value: SSAValue, mask: SSAValue | None = None) -> None:
        self._write(tile.AtomicAddOp, ptrs, value, mask)

    def capture(self, ptr_name: str, strides: list[SSAValue], sizes: dict[int, SSAValue]) -> Capture:
        return Capture(self.arg(ptr_name), strides, sizes)

    def gather(
        self,
        capture: Capture,
        indices: Sequence[SSAValue],
        guard: Sequence[int] = (),
        tensor: str = "capture",
        report: bool = False,
        name: str | None = None,
    ) -> SSAValue:
        """`t[i, j, ...]` of a captured tensor, each index a scalar or a tile.

        The load is masked by 0 <= index < size in each dimension of `guard` and reads 0 outside;
        with `report`, the kernel also asserts each of those in range, naming `tensor`."""
        offset: SSAValue | None = None
        for index, stride in zip(indices, capture.strides):
            term = self.mul(self.wide(index), self.wide(stride))
            offset = term if offset is None else self.add(offset, term)
        ptrs = capture.ptr if offset is None else self.addptr(capture.ptr, offset)
        in_range = self.in_range(capture, indices, guard, tensor, report)
        return self.load(ptrs, in_range, 0 if in_range is not None else None, name)

    def in_range(
        self, capture: Capture, indices: Sequence[SSAValue], guard: Sequence[int], tensor: str, report: bool = False
    ) -> SSAValue | None:
        """0 <= index < size for each dimension of `guard`, named `<tensor>_in_range` (None when `guard` is
        empty); with `report`, each also asserted, naming the tensor and the dimension."""
        mask: SSAValue | None = None
        for dim in guard:
            index = indices[dim]
            ok = self.and_(self.cmp("sge", index, self.i32(0)), self.cmp("slt", index, capture.sizes[dim]))
            if report:
                self.func.attributes["debug"] = UnitAttr()
                message = f"captured tensor '{tensor}' is read outside its shape at dimension {dim}"
                self._add(tile.DeviceAssertOp(ok, message))
            mask = ok if mask is None else self.and_(mask, ok)
        if mask is not None:
            mask.name_hint = f"{tensor}_in_range"
        return mask

    # -- control flow -------------------------------------------------------------

    @contextmanager
    def loop(
        self, lo: SSAValue, hi: SSAValue, step: SSAValue, carried: Mapping[str, SSAValue], comment: str
    ) -> Iterator[LoopBody]:
        names = list(carried)
        inits = [carried[n] for n in names]
        body_block = Block(arg_types=[i32, *[v.type for v in inits]])
        body_block.args[0].name_hint = "i"
        for arg, n, init in zip(body_block.args[1:], names, inits):
            arg.name_hint = n
            self.dims[arg] = self.dims_of(init)
        outer = self.block
        self.block = body_block
        body = LoopBody(body_block.args[0], dict(zip(names, body_block.args[1:])))
        yield body
        assert body.yielded is not None, "loop body must call yield_"
        self.block.add_op(scf.YieldOp(*[self.to_dims(body.yielded[n], self.dims_of(carried[n])) for n in names]))
        self.block = outer
        self.comment(comment)
        loop = scf.ForOp(lo, hi, step, inits, body_block)
        self._add(loop)
        for n, result, init in zip(names, loop.results, inits):
            result.name_hint = n
            self.dims[result] = self.dims_of(init)
            body.results[n] = result

    @contextmanager
    def branch(self, cond: SSAValue, carried: Mapping[str, SSAValue], comment: str) -> Iterator[LoopBody]:
        """`if cond:` around the body, which updates `carried` by name; otherwise they pass through unchanged.
        The body's `index` is `cond`."""
        names = list(carried)
        then_block = Block()
        outer = self.block
        self.block = then_block
        body = LoopBody(cond, dict(carried))
        yield body
        assert body.yielded is not None, "branch body must call yield_"
        self.block.add_op(scf.YieldOp(*[self.to_dims(body.yielded[n], self.dims_of(carried[n])) for n in names]))
        self.block = outer
        self.comment(comment)
        branch = scf.IfOp(
            cond, [carried[n].type for n in names], [then_block], [Block([scf.YieldOp(*carried.values())])]
        )
        self._add(branch)
        for n, result in zip(names, branch.results):
            result.name_hint = n
            self.dims[result] = self.dims_of(carried[n])
            body.results[n] = result
