"""How q, k and v are stored when they are not one dense `[B, H, S, D]` batch: `attn.sequences`.

Serving stores sequences three ways, FlashAttention's conventions in attnc's layout:

- `packed`: variable-length sequences one after another, q `[1, Hq, total_q, D]`, k/v
  `[1, Hkv, total_k, D]`; `cu_seqlens_q`, `cu_seqlens_k` (i32 `[N+1]`) give where each starts.
- `cache`: a KV cache, q `[B, Hq, Sq, D]`, k/v `[B, Hkv, S_max, D]`; `cache_seqlens` (i32 `[B]`)
  says how many keys of each sequence are valid.
- `paged`: a paged KV cache, k/v `[num_pages, Hkv, page_size, D]` (the page size static);
  `cache_seqlens` and `block_table` (i32 `[B, pages_per_seq]`, page ids).

The op views the storage as one logical sequence per batch entry; `attn-fuse` folds it into
`attn.flash`, which then reads the storage directly. In every layout, sequence b's queries are
its last positions: q_idx = len_k − len_q + i, as FlashAttention aligns causal masks.

```mlir
%q2, %k2, %v2 = attn.sequences "cache" %q, %k, %v (%lens : tensor<?xi32>)
    : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
    -> tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
```
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import DYNAMIC_INDEX, StringAttr, TensorType, i32
from xdsl.ir import Operation, SSAValue
from xdsl.irdl import IRDLOperation, irdl_op_definition, operand_def, prop_def, result_def, traits_def, var_operand_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from attnc.dialect.attn_regions import dims_match, tensor_type

# layout → the metadata tensors it takes, by name, with their ranks
LAYOUTS: dict[str, tuple[tuple[str, int], ...]] = {
    "packed": (("cu_seqlens_q", 1), ("cu_seqlens_k", 1)),
    "cache": (("cache_seqlens", 1),),
    "paged": (("cache_seqlens", 1), ("block_table", 2)),
}


def check_layout(op: Operation, layout: str, q: SSAValue, k: SSAValue, v: SSAValue, meta: Sequence[SSAValue]) -> None:
    """Raises VerifyException unless `meta` is what `layout` takes and q, k, v are stored as it says."""
    if layout not in LAYOUTS:
        raise VerifyException(f"'{op.name}' op expected layout packed, cache or paged, but got \"{layout}\"")
    wanted = LAYOUTS[layout]
    if len(meta) != len(wanted):
        names = ", ".join(n for n, _ in wanted)
        raise VerifyException(f"'{op.name}' op expected {len(wanted)} sequence operands ({names}), but got {len(meta)}")
    for value, (name, rank) in zip(meta, wanted):
        ty = tensor_type(value, name, op, rank)
        if ty.element_type != i32:
            raise VerifyException(f"'{op.name}' op expected {name} of i32, but got {ty.element_type}")
    qs = tensor_type(q, "q", op, 4).get_shape()
    ks = tensor_type(k, "k", op, 4).get_shape()
    vs = tensor_type(v, "v", op, 4).get_shape()
    if layout == "packed":
        for name, dims in (("q", qs), ("k", ks), ("v", vs)):
            if not dims_match(dims[0], 1):
                raise VerifyException(f"'{op.name}' op expected packed {name} of batch 1, but got {dims[0]}")
    if layout == "cache" and not dims_match(qs[0], ks[0]):
        raise VerifyException(f"'{op.name}' op expected the cache's batch {ks[0]} to be q's {qs[0]}")
    if layout == "paged" and (ks[2] == DYNAMIC_INDEX or ks[2] < 1):
        raise VerifyException(f"'{op.name}' op expected k/v pages of a static size, but got k of shape {_shape(ks)}")
    if not dims_match(ks[0], vs[0]) or not dims_match(ks[2], vs[2]):
        raise VerifyException(f"'{op.name}' op expected v stored like k, but got {_shape(vs)} and {_shape(ks)}")


def packed_slots(total_rows: int, num_seqs: int, block: int) -> int:
    """How many programs a packed grid launches per head over `total_rows` rows of `num_seqs` sequences in
    blocks of `block`: sequence b owns slots [cu[b] // block + b, cu[b+1] // block + b + 1), at least one per
    block of its rows (conversion/sequence_rows.packed_slot finds a slot's sequence)."""
    return total_rows // block + num_seqs


def page_size(layout: str, k_type: TensorType) -> int:
    """The static page size of a paged cache (0 for the other layouts)."""
    return k_type.get_shape()[2] if layout == "paged" else 0


def _shape(dims: Sequence[int]) -> str:
    return "x".join("?" if d == DYNAMIC_INDEX else str(d) for d in dims)


def _logical(ty: TensorType) -> TensorType:
    """One sequence per batch entry, its length dynamic."""
    _, heads, _, dim = ty.get_shape()
    return TensorType(ty.element_type, [DYNAMIC_INDEX, heads, DYNAMIC_INDEX, dim])


@irdl_op_definition
class SequencesOp(IRDLOperation):
    """Views packed, cached or paged storage as one logical sequence per batch entry (see the module doc)."""

    name = "attn.sequences"
    layout = prop_def(StringAttr)
    q = operand_def(TensorType)
    k = operand_def(TensorType)
    v = operand_def(TensorType)
    meta = var_operand_def(TensorType)
    q_seq = result_def(TensorType)
    k_seq = result_def(TensorType)
    v_seq = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$layout $q `,` $k `,` $v ` ` `(` $meta `:` type($meta) `)` attr-dict "
        "`:` type($q) `,` type($k) `,` type($v) `->` type($q_seq) `,` type($k_seq) `,` type($v_seq)"
    )

    def __init__(self, layout: str, q: SSAValue, k: SSAValue, v: SSAValue, meta: Sequence[SSAValue]):
        types = [q.type, k.type, v.type]
        assert all(isinstance(t, TensorType) for t in types)
        super().__init__(
            operands=[q, k, v, list(meta)],
            properties={"layout": StringAttr(layout)},
            result_types=[_logical(t) for t in types if isinstance(t, TensorType)],
        )

    def verify_(self) -> None:
        check_layout(self, self.layout.data, self.q, self.k, self.v, self.meta)
        for name, stored, seq in (("q", self.q, self.q_seq), ("k", self.k, self.k_seq), ("v", self.v, self.v_seq)):
            want = _logical(tensor_type(stored, name, self, 4))
            if seq.type != want:
                raise VerifyException(f"'{self.name}' op expected the {name} view of type {want}, but got {seq.type}")


__all__ = ["LAYOUTS", "SequencesOp", "check_layout", "packed_slots", "page_size"]
