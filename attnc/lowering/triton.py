"""Print tile IR as Triton kernel source: `emit_triton`, and `print_triton`, attn-opt's `-t triton`.

Each `tile.func` becomes one `@triton.jit` function. Every op that computes something
gets its own line, named after the op's SSA name hint; constants, constexprs and
`x[:, None]` stay inline. Passes make every decision; this module only prints, through
the per-op rules in `attnc.lowering.rules`.

A value that may be a Python number while Triton traces the kernel (a literal, a
constexpr, an int parameter, which Triton turns into a constexpr when it is 1, or
arithmetic on those) is "constish"; where Triton needs a tensor of the IR's type, the
printer writes `tl.full((), x, dtype)` instead of `x`.
"""

from __future__ import annotations

import ast
import functools
import keyword
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import (
    ModuleOp,
    StringAttr,
    TensorType,
    i1,
)
from xdsl.ir import Block, BlockArgument, Operation, OpResult, SSAValue
from xdsl.traits import IsTerminator
from xdsl.utils.disjoint_set import DisjointSet
from xdsl.utils.exceptions import DiagnosticException

from attnc.dialect import tile
from attnc.lowering.rules import RULES, dtype
from attnc.lowering.rules import arith as _arith_rules  # noqa: F401  (registers rules)
from attnc.lowering.rules import math as _math_rules  # noqa: F401
from attnc.lowering.rules import scf as _scf_rules  # noqa: F401
from attnc.lowering.rules import tile as _tile_rules  # noqa: F401

HEADER = "import triton\nimport triton.language as tl\n"
PROFILER_IMPORT = "import triton.profiler.language as pl\n"
"""Imported only by kernels attn-instrument scoped."""

COMMENT = "attnc.comment"
"""A string attribute on any op, printed as a `# ...` line before it."""

# Names the kernel itself needs; a value may shadow other builtins (`max`, `sum`).
_RESERVED = frozenset({*keyword.kwlist, "tl", "triton", "range", "float"})

# Ops that name their result even when it is used once: the kernel's landmarks.
_NAMED: tuple[type[Operation], ...] = (
    tile.ProgramIdOp,
    tile.NumProgramsOp,
    tile.LoadOp,
    tile.DotOp,
    tile.ReduceOp,
    tile.TransOp,
)

# Ops that Triton's operators and tl.load/tl.store broadcast for: a tile.splat or
# tile.broadcast operand of theirs can print as its source (`x * stride`).
_BROADCASTING: tuple[type[Operation], ...] = (
    tile.AddPtrOp,
    tile.LoadOp,
    tile.StoreOp,
    tile.AtomicAddOp,
    tile.CmpIOp,
    tile.CmpFOp,
    tile.SelectOp,
    arith.SelectOp,
    arith.AddfOp,
    arith.AddiOp,
    arith.SubfOp,
    arith.SubiOp,
    arith.MulfOp,
    arith.MuliOp,
    arith.DivfOp,
    arith.DivSIOp,
    arith.RemSIOp,
    arith.FloorDivSIOp,
    arith.CeilDivSIOp,
    arith.AndIOp,
    arith.OrIOp,
    arith.XOrIOp,
    arith.MaximumfOp,
    arith.MinimumfOp,
    arith.MaxnumfOp,
    arith.MinnumfOp,
    arith.MaxSIOp,
    arith.MinSIOp,
)


_INLINE_LIMIT = 80
"""Longer expressions get a line of their own even where they could be inlined."""


def inlined(value: SSAValue) -> bool:
    """Whether `value` prints as an expression inside its one reader, without a name.

    That is an unnamed (no name hint) result of a pure op without regions, read once,
    in the same block, and not a landmark (`_NAMED`) or a hook carrying a comment.
    """
    if not isinstance(value, OpResult) or value.name_hint or not value.has_one_use():
        return False
    op = value.op
    if op.regions or len(op.results) != 1 or isinstance(op, _NAMED) or COMMENT in op.attributes:
        return False
    if type(op) not in RULES:
        return False
    (use,) = value.uses
    return use.operation.parent_block() is op.parent_block()


def elided_operands(op: Operation) -> set[int]:
    """Operands of `op` made by tile.splat/broadcast that Triton broadcasts implicitly.

    They print as the splat's or broadcast's source, where the other operands still
    give the result its shape (for loads and stores: the pointers).
    """
    if not isinstance(op, _BROADCASTING):
        return set()
    candidates = {
        i
        for i, v in enumerate(op.operands)
        if isinstance(v, OpResult) and isinstance(v.op, tile.SplatOp | tile.BroadcastOp)
    }
    if isinstance(op, tile.LoadOp | tile.StoreOp | tile.AtomicAddOp):
        candidates.discard(0)
    if not candidates:
        return set()
    shapes = [
        tile.shape_of(v.op.operands[0].type if i in candidates else v.type)  # type: ignore[union-attr]
        for i, v in enumerate(op.operands)
    ]
    full = tile.shape_of(op.operands[0].type if not op.results else op.results[0].type)
    if isinstance(op, tile.LoadOp):
        full = tile.shape_of(op.ptr.type)
    if _broadcast(shapes) != full:
        return set()
    return candidates


def _broadcast(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...] | None:
    out: tuple[int, ...] = ()
    for shape in shapes:
        if not shape:
            continue
        if not out:
            out = shape
            continue
        if len(shape) != len(out):
            return None
        out = tuple(a if b == 1 else b for a, b in zip(out, shape, strict=True))
    return out


# Always or sometimes printed as an expression of their operand (`x[:, None]`, a
# splat Triton broadcasts, a cast to the same dtype).
_OFTEN_INLINE: tuple[type[Operation], ...] = (
    tile.ExpandDimsOp,
    tile.SplatOp,
    tile.BroadcastOp,
    tile.CastOp,
    arith.ExtFOp,
    arith.TruncFOp,
    arith.SIToFPOp,
    arith.UIToFPOp,
    arith.FPToSIOp,
    arith.ExtSIOp,
    arith.ExtUIOp,
    arith.TruncIOp,
    arith.IndexCastOp,
    arith.BitcastOp,
)


def _transparent(op: Operation) -> bool:
    """Whether the printer may write `op`'s result as an expression of its operands.

    A read of such a result then reads the operands where the result is read, which
    is what the loop-carried naming must account for.
    """
    if isinstance(op, _OFTEN_INLINE):
        return True
    return len(op.results) == 1 and inlined(op.results[0])


def emit_triton(module: ModuleOp) -> str:
    """The Triton source of every `tile.func` in `module`, after one import header.

    A module holding anything else has not been lowered; that is a diagnostic.
    """
    kernels: list[str] = []
    for op in module.ops:
        if not isinstance(op, tile.FuncOp):
            raise DiagnosticException(
                f"'{op.name}' op is not tile IR: the triton target prints tile.func kernels; "
                "run convert-attn-to-tile first"
            )
        kernels.append(KernelPrinter(op).emit())
    scoped = any(isinstance(op, tile.ScopeEnterOp) for op in module.walk())
    header = HEADER + (PROFILER_IMPORT if scoped else "")
    return header + "".join("\n\n" + kernel for kernel in kernels)


def print_triton(module: ModuleOp, output: IO[str]) -> None:
    """`emit_triton` as an xDSL target callable: `(module, output) -> None`."""
    output.write(emit_triton(module))


# ===-------------------------------------------------------------------=== #
# Loop-carried values share one Python name
# ===-------------------------------------------------------------------=== #


class _CarriedNames:
    """Which values print under one Python name: a union-find (xDSL's DisjointSet) over SSA values.

    Every `scf.for` ties each result to its iter arg. Where it is safe it also ties in
    the init value (defined in the loop's block, used only by the loop) and the yielded
    value (defined in the body, used only by the yield, and the iter arg is not read
    after it), so `acc = tl.dot(a, b, acc)` updates `acc` in place. An `scf.if` ties
    each result to the values its branches make only to yield them.
    """

    def __init__(self, func: tile.FuncOp):
        self._sets: DisjointSet[SSAValue] = DisjointSet()
        self._hint: dict[SSAValue, str] = {}  # read at roots; every member has one
        for op in func.walk():
            if isinstance(op, scf.ForOp):
                self._plan_for(op)
            elif isinstance(op, scf.IfOp):
                self._plan_if(op)

    def __contains__(self, value: SSAValue) -> bool:
        return value in self._hint

    def root(self, value: SSAValue) -> SSAValue:
        return self._sets.find(value)

    def hint(self, value: SSAValue) -> str:
        return self._hint[self.root(value)]

    def _union(self, a: SSAValue, b: SSAValue) -> None:
        """Tie `b`'s set to `a`'s; `a`'s root stays the root and keeps its hint, if it has one."""
        for v in (a, b):
            if v not in self._hint:
                self._sets.add(v)
                self._hint[v] = v.name_hint or ""
        ra, rb = self.root(a), self.root(b)
        if self._sets.union_left(ra, rb):
            self._hint[ra] = self._hint[ra] or self._hint[rb]

    def _plan_for(self, op: scf.ForOp) -> None:
        body = op.body.block
        yielded = body.last_op
        assert isinstance(yielded, scf.YieldOp)
        for i, result in enumerate(op.results):
            arg = body.args[1 + i]
            self._union(result, arg)
            init, value = op.iter_args[i], yielded.operands[i]
            if _init_is_carried(op, init):
                self._union(result, init)
            if _yield_is_carried(op, i, value):
                self._union(result, value)
            root = self.root(result)
            self._hint[root] = self._hint[root] or value.name_hint or init.name_hint or ""

    def _plan_if(self, op: scf.IfOp) -> None:
        """Each branch assigns the result names; a value made for the yield takes them."""
        for region in (op.true_region, op.false_region):
            if not region.blocks:
                continue
            yielded = region.block.last_op
            assert isinstance(yielded, scf.YieldOp)
            for result, value in zip(op.results, yielded.operands, strict=True):
                self._union(result, result)
                if (
                    isinstance(value, OpResult)
                    and value.op.parent_block() is region.block
                    and value.has_one_use()
                    and not _transparent(value.op)
                ):
                    self._union(result, value)


def _init_is_carried(op: scf.ForOp, init: SSAValue) -> bool:
    return (
        isinstance(init, OpResult)
        and init.op.parent_block() is op.parent_block()
        and init.has_one_use()
        and not _transparent(init.op)
    )


def _reads(value: SSAValue) -> Iterator[tuple[Operation, int]]:
    """Every (op, operand index) that reads `value`, also through transparent ops."""
    for use in value.uses:
        yield use.operation, use.index
        if _transparent(use.operation):
            for result in use.operation.results:
                yield from _reads(result)


def _yield_is_carried(op: scf.ForOp, index: int, value: SSAValue) -> bool:
    body = op.body.block
    if not isinstance(value, OpResult) or value.op.parent_block() is not body:
        return False
    if not value.has_one_use() or _transparent(value.op):
        return False
    position = body.get_operation_index(value.op)
    for reader, operand_index in _reads(body.args[1 + index]):
        ancestor = body.find_ancestor_op_in_block(reader)
        assert ancestor is not None
        if ancestor is value.op:
            if not value.op.regions:
                continue
            # `acc = inner_loop(init=acc)`: the inner loop carries the same name.
            if isinstance(value.op, scf.ForOp) and reader is value.op and operand_index - 3 == value.index:
                continue
            return False
        if body.get_operation_index(ancestor) > position:
            return False
    return True


# ===-------------------------------------------------------------------=== #
# The printer
# ===-------------------------------------------------------------------=== #


# Python's operator precedence, loosest first; atoms (names, calls, subscripts) bind
# tightest.
_COMPARE, _UNARY, _ATOM = 5, 12, 14
_BINARY: dict[type[ast.operator], int] = {
    ast.BitOr: 6,
    ast.BitXor: 7,
    ast.BitAnd: 8,
    ast.LShift: 9,
    ast.RShift: 9,
    ast.Add: 10,
    ast.Sub: 10,
    ast.Mult: 11,
    ast.Div: 11,
    ast.FloorDiv: 11,
    ast.Mod: 11,
    ast.Pow: 13,
}


def _precedence(text: str) -> int:
    """How tightly the expression `text` binds, on the scale above."""
    node = ast.parse(text, mode="eval").body
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)]
    if isinstance(node, ast.Compare):
        return _COMPARE
    if isinstance(node, ast.UnaryOp):
        return _UNARY
    if isinstance(node, ast.Constant) and text.startswith("-"):
        return _UNARY
    if isinstance(node, ast.Name | ast.Call | ast.Subscript | ast.Attribute | ast.Constant):
        return _ATOM
    return 0


@functools.cache
def _slots(template: str) -> tuple[tuple[int, int], ...]:
    """For each `{}`/`{N}` of `template`: which operand goes there and how tightly an
    expression must bind to go there without parentheses."""
    names: list[int] = []
    counter = iter(range(template.count("{")))

    def mark(match: re.Match[str]) -> str:
        names.append(int(match.group(1)) if match.group(1) else next(counter))
        return f"__slot{len(names) - 1}"

    tree = ast.parse(re.sub(r"\{(\d*)\}", mark, template), mode="eval")
    need = [0] * len(names)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            if not (isinstance(child, ast.Name) and child.id.startswith("__slot")):
                continue
            slot = int(child.id.removeprefix("__slot"))
            if isinstance(parent, ast.BinOp):
                level = _BINARY[type(parent.op)]
                need[slot] = level + (child is parent.right)
            elif isinstance(parent, ast.Compare):
                need[slot] = _COMPARE + 1
            elif isinstance(parent, ast.UnaryOp):
                need[slot] = _UNARY + 1  # `-(-x)` rather than `--x`
            elif isinstance(parent, ast.Subscript | ast.Attribute):
                need[slot] = _ATOM
    return tuple(zip(names, need, strict=True))


class KernelPrinter:
    """Prints one `tile.func`; the rules call back into it."""

    def __init__(self, func: tile.FuncOp):
        self.func = func
        self._lines: list[str] = []
        self._indent = 0
        self._exprs: dict[SSAValue, str] = {}
        self._constish: set[SSAValue] = set()
        self._taken: set[str] = set(_RESERVED)
        self._carried = _CarriedNames(func)
        self._carried_names: dict[SSAValue, str] = {}

    # --- the kernel ---------------------------------------------------------

    def emit(self) -> str:
        """The `@triton.jit` function, ending in a newline."""
        func = self.func
        names = [n.data for n in func.arg_names.data]
        constexprs = list(func.constexprs.data)
        self._taken |= {func.sym_name.data, *names, *constexprs}
        params = [*names, *(f"{c}: tl.constexpr" for c in constexprs)]
        signature = f"def {func.sym_name.data}({', '.join(params)}):"
        self._lines = ["@triton.jit(debug=True)" if func.debug is not None else "@triton.jit"]
        if len(signature) <= 88:
            self._lines.append(signature)
        else:
            self._lines.append(f"def {func.sym_name.data}(")
            self._lines += [f"    {p}," for p in params]
            self._lines.append("):")
        with self.indented():
            start = len(self._lines)
            for arg, name in zip(func.body.block.args, names, strict=True):
                self._bind_parameter(arg, name)
            self.emit_block(func.body.block)
            if len(self._lines) == start:
                self.line("pass")
        return "\n".join(self._lines) + "\n"

    def _bind_parameter(self, arg: BlockArgument, name: str) -> None:
        self._exprs[arg] = name
        if isinstance(arg.type, tile.PtrType) or arg.type == i1:
            return
        if dtype(arg.type) == "tl.int32":  # a constexpr when the caller passes 1
            self._constish.add(arg)
            return
        if dtype(arg.type) != "tl.float32":
            # Triton passes Python ints as i32 (i64 when large) and floats as f32.
            self.line(f"{name} = tl.cast({name}, {dtype(arg.type)})")

    # --- lines --------------------------------------------------------------

    def line(self, text: str) -> None:
        """Write one line at the current indentation."""
        self._lines.append("    " * self._indent + text)

    @contextmanager
    def indented(self) -> Iterator[None]:
        self._indent += 1
        try:
            yield
        finally:
            self._indent -= 1

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def emit_block(self, block: Block) -> None:
        """Print the ops of `block`, all but its terminator."""
        for op in block.ops:
            if not op.has_trait(IsTerminator):
                self.emit_op(op)

    def emit_op(self, op: Operation) -> None:
        comment = op.attributes.get(COMMENT)
        if isinstance(comment, StringAttr):
            for text in comment.data.splitlines():
                self.line(f"# {text}".rstrip())
        rule = RULES.get(type(op))
        if rule is None:
            raise NotImplementedError(f"no Triton rule for '{op.name}'")
        rule(self, op)

    # --- names --------------------------------------------------------------

    def fresh(self, hint: str) -> str:
        """A Python name from `hint`, not yet used in this kernel."""
        base = re.sub(r"\W", "_", hint) or "v"
        if base[0].isdigit():
            base = f"v{base}"
        name, n = base, 0
        while name in self._taken:
            n += 1
            name = f"{base}_{n}"
        self._taken.add(name)
        return name

    def name_of(self, value: SSAValue, default: str) -> str:
        """The Python name `value` is assigned to; loop-carried values share one."""
        if value not in self._carried:
            return self.fresh(value.name_hint or default)
        root = self._carried.root(value)
        if root not in self._carried_names:
            self._carried_names[root] = self.fresh(self._carried.hint(value) or default)
        return self._carried_names[root]

    # --- values -------------------------------------------------------------

    def expr(self, value: SSAValue) -> str:
        """The Python expression of `value`: a name, a literal or an inline expression."""
        return self._exprs[value]

    def operand(self, value: SSAValue) -> str:
        """`expr`, parenthesized unless atomic: for `x[:, None]` and `x.to(...)`."""
        text = self._exprs[value]
        return text if _precedence(text) == _ATOM else f"({text})"

    @staticmethod
    def fill(template: str, texts: Sequence[str]) -> str:
        """`template` with its `{}`/`{0}` replaced by `texts`, parenthesized only where
        Python's precedence needs it (`a * (b + c)`, `(a < b) & c`, `-(a + b)`)."""
        slots = iter(_slots(template))

        def replace(match: re.Match[str]) -> str:
            index, need = next(slots)
            text = texts[index]
            return text if _precedence(text) >= need else f"({text})"

        return re.sub(r"\{(\d*)\}", replace, template)

    def elided(self, value: SSAValue) -> bool:
        """Whether every reader of `value` (a splat or broadcast) broadcasts implicitly."""
        return all(use.index in elided_operands(use.operation) for use in value.uses)

    def is_constish(self, value: SSAValue) -> bool:
        return value in self._constish

    def tensor(self, value: SSAValue) -> str:
        """`expr`, as a tensor of the IR's dtype where it may be a Python number."""
        if value in self._constish:
            return f"tl.full((), {self._exprs[value]}, {dtype(value.type)})"
        return self._exprs[value]

    def bind(self, value: SSAValue, text: str, *, constish: bool = False) -> None:
        """Print reads of `value` as `text` (a name already assigned, or an expression)."""
        self._exprs[value] = text
        if constish:
            self._constish.add(value)

    def assign(self, value: SSAValue, text: str, default: str, *, constish: bool = False) -> str:
        """Write `name = text` for `value` and return the name, or inline `text`.

        Unnamed values read once print inside their reader instead (see `inlined`).
        """
        if constish and value in self._carried:
            # Triton cannot carry a Python number through a loop or out of an if.
            text, constish = f"tl.full((), {text}, {dtype(value.type)})", False
        if inlined(value) and len(text) <= _INLINE_LIMIT:
            self.bind(value, text, constish=constish)
            return text
        name = self.name_of(value, default)
        self.line(f"{name} = {text}")
        self.bind(value, name, constish=constish)
        return name

    def assign_all(self, names: Sequence[str], values: Sequence[SSAValue]) -> None:
        """Write `a, b = x, y` for the pairs whose name and expression differ."""
        pairs = [(n, self.carried(v)) for n, v in zip(names, values, strict=True)]
        pairs = [(n, t) for n, t in pairs if n != t]
        if pairs:
            self.line(f"{', '.join(n for n, _ in pairs)} = {', '.join(t for _, t in pairs)}")

    def carried(self, value: SSAValue) -> str:
        """`expr` for a loop-carried position: scalars must be tensors there."""
        if isinstance(value.type, TensorType):
            return self.expr(value)
        return self.tensor(value)
