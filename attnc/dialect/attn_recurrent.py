"""Linear attention in the `attn` dialect: `attn.recurrence` and its chunked form `attn.recurrent_chunk`.

Part of the `attn` dialect, split out as the recurrent op family: attn.py registers
these ops in `Attn` and re-exports them.

The recurrence, per batch and head, with state `S` of shape [K, V] in f32:

    S_t = exp(g_t) ⊙ S_{t-1} + k_tᵀ v_t        o_t = scale · q_t S_t

Optional `q_map`/`k_map` regions `(x: f32) -> f32` are feature maps applied to each
element of q and k as the kernels load them. `gate` says what `g` is: "none" (no operand, no decay), "head" (`tensor<H x f32>`,
a constant log-decay per head: RetNet), "scalar" (`tensor<B x H x T x f32>`: gated
retention, Mamba2-SSD) or "vector" (`tensor<B x H x T x K x f32>`: GLA, one decay
per key channel). q and k may have fewer heads than v (a divisor: each q/k head
serves a group of v heads). With `varlen`, the batch is one packed sequence cut
by run-time offsets and the states are one per sequence.
"""

from __future__ import annotations

from xdsl.dialects.builtin import DYNAMIC_INDEX, I64, FloatAttr, IntegerAttr, StringAttr, TensorType, UnitAttr, f32
from xdsl.ir import Attribute, Operation, SSAValue
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
from xdsl.utils.exceptions import VerifyException


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
    name = op.name
    qs = _tensor(op.q, "q", op, 4).get_shape()
    kt = _tensor(op.k, "k", op, 4)
    vt = _tensor(op.v, "v", op, 4)
    ks, vs = kt.get_shape(), vt.get_shape()
    if any(not _dims_match(a, b) for a, b in zip(qs, ks)):
        raise VerifyException(f"'{name}' op expected k of the shape of q, but got {op.k.type} and {op.q.type}")
    batch, heads_qk, seq, dim_k = qs
    heads, dim_v = vs[1], vs[3]
    if not _dims_match(batch, vs[0]) or not _dims_match(seq, vs[2]):
        raise VerifyException(
            f"'{name}' op expected v of batch {_dim(batch)} and length {_dim(seq)}, but got {op.v.type}"
        )
    if heads_qk != DYNAMIC_INDEX and heads != DYNAMIC_INDEX and heads % heads_qk:
        raise VerifyException(f"'{name}' op expected the q/k heads ({heads_qk}) to divide the v heads ({heads})")
    gate = op.gate.data
    if gate not in GATES:
        raise VerifyException(f"'{name}' op expected gate to be none, head, scalar or vector, but got {gate}")
    want = {"head": [heads], "scalar": [batch, heads, seq], "vector": [batch, heads, seq, dim_k]}.get(gate)
    if want is None:
        if op.g is not None:
            raise VerifyException(f"'{name}' op expected no gate operand for gate none")
    else:
        if op.g is None:
            raise VerifyException(f"'{name}' op expected a gate operand for gate {gate}")
        gt = _tensor(op.g, "g", op, len(want))
        if gt.element_type != f32 or any(not _dims_match(a, b) for a, b in zip(gt.get_shape(), want)):
            shape = "x".join(_dim(d) for d in want)
            raise VerifyException(f"'{name}' op expected g of type tensor<{shape}xf32> for gate {gate}, but got {gt}")
    state_shape = [DYNAMIC_INDEX, heads, dim_k, dim_v]
    for value, what in ((op.initial_state, "initial state"), (op.final_state, "final state")):
        if value is None:
            continue
        st = _tensor(value, what, op, 4)
        if st.element_type != f32 or any(not _dims_match(a, b) for a, b in zip(st.get_shape(), state_shape)):
            raise VerifyException(
                f"'{name}' op expected {what} of type tensor<?x{_dim(heads)}x{_dim(dim_k)}x{_dim(dim_v)}xf32>, but got {st}"
            )
    ot = _tensor(op.out, "result", op, 4)
    if ot.element_type != vt.element_type or any(not _dims_match(a, b) for a, b in zip(ot.get_shape(), vs)):
        raise VerifyException(f"'{name}' op expected result of the type of v {vt}, but got {ot}")
    for region, what in ((op.q_map, "q_map"), (op.k_map, "k_map")):
        if not region.blocks:
            continue
        block = region.blocks[0]
        if len(region.blocks) != 1 or [a.type for a in block.args] != [f32]:
            raise VerifyException(f"'{name}' op expected a {what} region of one block with one f32 argument")
        last = block.last_op
        if last is None or [o.type for o in last.operands] != [f32]:
            raise VerifyException(f"'{name}' op expected the {what} region to yield one f32")
    if op.varlen is not None and batch != DYNAMIC_INDEX and batch != 1:
        raise VerifyException(f"'{name}' op expected batch 1 with varlen, but got {batch}")


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
        c = self.chunk_size.value.data
        if c < 16 or c & (c - 1):
            raise VerifyException(
                f"'attn.recurrent_chunk' op expected chunk_size a power of two of at least 16, but got {c}"
            )
        for what, block in (("block_k", self.block_k), ("block_v", self.block_v)):
            if block is not None and (block.value.data < 16 or block.value.data & (block.value.data - 1)):
                raise VerifyException(
                    f"'attn.recurrent_chunk' op expected {what} a power of two of at least 16, but got {block.value.data}"
                )


def int_attr(op: Operation, name: str) -> int:
    """An integer attribute set by a pass (chunk_size, block_k, num_warps ...)."""
    value = op.attributes[name]
    assert isinstance(value, IntegerAttr)
    return value.value.data


__all__ = ["GATES", "RecurrenceOp", "RecurrentChunkOp", "int_attr"]
