"""Linear attention in the `attn` dialect: `attn.recurrence` and its chunked form `attn.recurrent_chunk`.

Part of the `attn` dialect, split out as the recurrent op family: attn.py registers
these ops in `Attn` and re-exports them.

The recurrence, per batch and head, with state `S` of shape [K, V] in f32:

    S_t = exp(g_t) ⊙ S_{t-1} + k_tᵀ v_t        o_t = scale · q_t S_t

Optional `q_map`/`k_map` regions `(x: f32) -> f32` are feature maps applied to each
element of q and k as the kernels load them. `gate` says what `g` is: "none" (no
operand, no decay), "head" (`tensor<H x f32>`, a constant log-decay per head: RetNet),
"scalar" (`tensor<B x H x T x f32>`: gated retention, Mamba2-SSD) or "vector"
(`tensor<B x H x T x K x f32>`: GLA, one decay per key channel). q and k may have fewer heads than v (a divisor: each q/k head
serves a group of v heads). With `varlen`, the batch is one packed sequence cut
by run-time offsets and the states are one per sequence.
"""

from __future__ import annotations

from xdsl.dialects.builtin import DYNAMIC_INDEX, I64, FloatAttr, IntegerAttr, StringAttr, TensorType, UnitAttr, f32
from xdsl.ir import Attribute, Operation, Region, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    attr_def,
    irdl_op_definition,
    operand_def,
    opt_attr_def,
    opt_operand_def,
    region_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.bitwise_casts import is_power_of_two
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.type import have_compatible_shape


def _dims_match(a: int, b: int) -> bool:
    return a == DYNAMIC_INDEX or b == DYNAMIC_INDEX or a == b


def _tensor(value: SSAValue, what: str, op: Operation, rank: int) -> TensorType:
    ty = value.type
    if not isinstance(ty, TensorType):
        raise VerifyException(f"'{op.name}' op expected {what} to be a tensor, but got {ty}")
    if ty.get_num_dims() != rank:
        raise VerifyException(f"'{op.name}' op expected {what} of rank {rank}, but got rank {ty.get_num_dims()}")
    return ty


GATES = ("none", "head", "scalar", "vector")


def _dim(d: int) -> str:
    return "?" if d == DYNAMIC_INDEX else str(d)


class _RecurrentOp(IRDLOperation):
    """What both forms share: operands, results and their verification."""

    q = operand_def(TensorType)
    k = operand_def(TensorType)
    v = operand_def(TensorType)
    g = opt_operand_def(TensorType)
    initial_state = opt_operand_def(TensorType)
    gate = attr_def(StringAttr)
    scale = attr_def(FloatAttr)
    varlen = opt_attr_def(UnitAttr)
    backward = opt_attr_def(UnitAttr)
    q_map = region_def()
    k_map = region_def()
    out = result_def(TensorType)
    final_state = result_def(TensorType)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())
    assembly_format = (
        "$q `,` $k `,` $v (`gate` `(` $g^ `:` type($g) `)`)? (`initial` `(` $initial_state^ `:` type($initial_state) `)`)? "
        "(`q_map` $q_map^)? (`k_map` $k_map^)? attr-dict `:` type($q) `,` type($k) `,` type($v) `->` `(` type($out) `,` type($final_state) `)`"
    )

    def verify_(self) -> None:
        verify_recurrent(self)


def verify_recurrent(op: _RecurrentOp) -> None:
    """The checks both forms share, in order: q, k and v, the gate, the states, the result, the feature maps."""
    qt = _tensor(op.q, "q", op, 4)
    kt = _tensor(op.k, "k", op, 4)
    vt = _tensor(op.v, "v", op, 4)
    _verify_qkv(op, qt, kt, vt)
    batch, _, seq, dim_k = qt.get_shape()
    heads, dim_v = vt.get_shape()[1], vt.get_shape()[3]
    _verify_gate(op, batch, heads, seq, dim_k)
    _verify_states(op, TensorType(f32, [DYNAMIC_INDEX, heads, dim_k, dim_v]))
    ot = _tensor(op.out, "result", op, 4)
    if not _has_type(ot, vt):
        raise VerifyException(f"'{op.name}' op expected result of the type of v {vt}, but got {ot}")
    for region, what in ((op.q_map, "q_map"), (op.k_map, "k_map")):
        _verify_feature_map(op, region, what)
    if op.varlen is not None and batch != DYNAMIC_INDEX and batch != 1:
        raise VerifyException(f"'{op.name}' op expected batch 1 with varlen, but got {batch}")


def _has_type(ty: TensorType, expected: TensorType) -> bool:
    """Whether `ty` is `expected` up to dynamic dims."""
    return ty.element_type == expected.element_type and have_compatible_shape(ty, expected)


def _verify_qkv(op: _RecurrentOp, qt: TensorType, kt: TensorType, vt: TensorType) -> None:
    """k has q's shape; v has their batch and length, and a multiple of their heads."""
    name = op.name
    if not have_compatible_shape(qt, kt):
        raise VerifyException(f"'{name}' op expected k of the shape of q, but got {kt} and {qt}")
    batch, heads_qk, seq, _ = qt.get_shape()
    vs = vt.get_shape()
    heads = vs[1]
    if not _dims_match(batch, vs[0]) or not _dims_match(seq, vs[2]):
        raise VerifyException(f"'{name}' op expected v of batch {_dim(batch)} and length {_dim(seq)}, but got {vt}")
    if heads_qk != DYNAMIC_INDEX and heads != DYNAMIC_INDEX and heads % heads_qk:
        raise VerifyException(f"'{name}' op expected the q/k heads ({heads_qk}) to divide the v heads ({heads})")


def _verify_gate(op: _RecurrentOp, batch: int, heads: int, seq: int, dim_k: int) -> None:
    """`gate` is one of GATES, and `g` is there, of that gate's type, exactly when the gate needs it."""
    gate = op.gate.data
    if gate not in GATES:
        raise VerifyException(f"'{op.name}' op expected gate to be none, head, scalar or vector, but got {gate}")
    if gate == "none":
        if op.g is not None:
            raise VerifyException(f"'{op.name}' op expected no gate operand for gate none")
        return
    if op.g is None:
        raise VerifyException(f"'{op.name}' op expected a gate operand for gate {gate}")
    want = TensorType(f32, {"head": [heads], "scalar": [batch, heads, seq], "vector": [batch, heads, seq, dim_k]}[gate])
    gt = _tensor(op.g, "g", op, want.get_num_dims())
    if not _has_type(gt, want):
        raise VerifyException(f"'{op.name}' op expected g of type {want} for gate {gate}, but got {gt}")


def _verify_states(op: _RecurrentOp, want: TensorType) -> None:
    """The initial state, if any, and the final one: one [K, V] f32 state per sequence and head."""
    for value, what in ((op.initial_state, "initial state"), (op.final_state, "final state")):
        if value is None:
            continue
        st = _tensor(value, what, op, 4)
        if not _has_type(st, want):
            raise VerifyException(f"'{op.name}' op expected {what} of type {want}, but got {st}")


def _verify_feature_map(op: _RecurrentOp, region: Region, what: str) -> None:
    """An optional q_map or k_map: one block `(x: f32)` that yields one f32."""
    if not region.blocks:
        return
    block = region.blocks[0]
    if len(region.blocks) != 1 or [a.type for a in block.args] != [f32]:
        raise VerifyException(f"'{op.name}' op expected a {what} region of one block with one f32 argument")
    last = block.last_op
    if last is None or [o.type for o in last.operands] != [f32]:
        raise VerifyException(f"'{op.name}' op expected the {what} region to yield one f32")


@irdl_op_definition
class RecurrenceOp(_RecurrentOp):
    """The logical recurrence over whole sequences, what the frontend builds.

    ```mlir
    %o, %s = attn.recurrence %q, %k, %v gate(%g : tensor<?x4x?xf32>) {gate = "scalar", scale = 0.125 : f32}
        : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x64x64xf32>)
    ```
    """

    name = "attn.recurrence"


@irdl_op_definition
class RecurrentChunkOp(_RecurrentOp):
    """The recurrence cut into chunks of `chunk_size` steps, what `attn-chunk` makes.

    Inside a chunk the output is a masked, decay-weighted parallel product
    (`(q kᵀ ⊙ D) v`); across chunks the state is carried by a scan. `attn-tile`
    adds the key and value blocks of the state (`block_k`, `block_v`), `num_warps`
    and `num_stages`.

    ```mlir
    %o, %s = attn.recurrent_chunk %q, %k, %v {gate = "none", scale = 0.125 : f32, chunk_size = 64 : i64}
        : tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16>, tensor<?x4x?x64xf16> -> (tensor<?x4x?x64xf16>, tensor<?x4x64x64xf32>)
    ```
    """

    name = "attn.recurrent_chunk"
    chunk_size = attr_def(IntegerAttr[I64])
    block_k = opt_attr_def(IntegerAttr[I64])
    block_v = opt_attr_def(IntegerAttr[I64])

    def head_dims(self) -> tuple[int, int]:
        """(K, V): the key and value head dims."""
        qt, vt = self.q.type, self.v.type
        assert isinstance(qt, TensorType) and isinstance(vt, TensorType)
        return qt.get_shape()[3], vt.get_shape()[3]

    @property
    def element_type(self) -> Attribute:
        qt = self.q.type
        assert isinstance(qt, TensorType)
        return qt.element_type

    def verify_(self) -> None:
        verify_recurrent(self)
        for what, size in (("chunk_size", self.chunk_size), ("block_k", self.block_k), ("block_v", self.block_v)):
            if size is not None and (size.value.data < 16 or not is_power_of_two(size.value.data)):
                raise VerifyException(
                    f"'attn.recurrent_chunk' op expected {what} a power of two of at least 16, but got {size.value.data}"
                )


def int_attr(op: Operation, name: str) -> int:
    """An integer attribute set by a pass (chunk_size, block_k, num_warps ...)."""
    value = op.attributes[name]
    assert isinstance(value, IntegerAttr)
    return value.value.data


__all__ = ["GATES", "RecurrenceOp", "RecurrentChunkOp", "int_attr"]
