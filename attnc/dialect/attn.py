"""The `attn` dialect: attention as logical ops on whole tensors, and its fused form.

The frontend builds the logical chain

```mlir
%s = attn.qk %q, %k {scale = 0.125 : f32} : ... -> tensor<?x8x?x?xf32>
%t = attn.score_mod %s captures(...) { ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, ...): ... }
%keep = attn.mask_mod %t captures(...) { ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, ...): ... }
%p, %lse = attn.online_rowscale %t mask(%keep) {normalizer = "softmax", ...} update {...} finalize {...}
%o = attn.pv %p, %v
```

and `attn-fuse` folds it into one `attn.flash` op that holds every region at once.
Scalar regions see one score (f32) and its indices (`index`), as FlexAttention's
mods do; captured tensors arrive as trailing block arguments and are read with
`tensor.extract`. Every region op is isolated from above: what a region reads is
declared.

Two op families live in modules of their own and are registered in `Attn` here:
the backward, `attn.flash_grad` (attn_grad.py), and linear attention,
`attn.recurrence` and `attn.recurrent_chunk` (attn_recurrent.py). What every family
shares (the tile attribute, `attn.yield`, the region checks) is in attn_regions.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    StringAttr,
    TensorType,
    f32,
    i1,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, Region, SSAValue
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
    var_operand_def,
    var_result_def,
)
from xdsl.traits import IsolatedFromAbove, Pure, RecursiveMemoryEffect
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.type import have_compatible_shape

from attnc.dialect.attn_grad import FlashGradOp
from attnc.dialect.attn_recurrent import RecurrenceOp, RecurrentChunkOp
from attnc.dialect.attn_regions import (
    INDEX_ARGS,
    TileAttr,
    YieldOp,
    check_block_args,
    check_yield,
    dims_match,
    mask_mod_arg_types,
    score_mod_arg_types,
    tensor_type,
    verify_mask_mod,
    verify_score_mod,
)
from attnc.dialect.attn_sequences import SequencesOp, check_layout


def _depends_on(value: SSAValue, sources: set[SSAValue], memo: dict[SSAValue, bool]) -> bool:
    """True when `value` depends on one of `sources` other than through a row reduction."""
    if value in memo:
        return memo[value]
    if value in sources:
        memo[value] = True
        return True
    owner = value.owner
    result = False
    if isinstance(owner, Operation) and not isinstance(owner, (RowMaxOp, RowSumOp)):
        result = any(_depends_on(o, sources, memo) for o in owner.operands)
    memo[value] = result
    return result


def normalizer_arg_types(num_state: int, captures: Sequence[SSAValue]) -> list[Attribute]:
    """Block arguments of update and finalize: (score or acc: f32, b, h: index, *state: f32, *captures)."""
    return [f32, IndexType(), IndexType(), *[f32] * num_state, *[c.type for c in captures]]


def verify_merge(op: Operation, region: Region, num_state: int) -> None:
    """An empty region, or (state_a..., state_b...: f32) -> (scale_a, scale_b, state...: f32)."""
    if region.blocks:
        block = check_block_args(op, region, "merge", [f32] * (2 * num_state))
        check_yield(op, block, "merge", [f32] * (2 + num_state))


def _verify_normalizer(
    op: Operation,
    update: Region,
    finalize: Region,
    state: Sequence[str],
    inits: ArrayAttr,
    captures: Sequence[SSAValue],
) -> int:
    """Checks update/finalize signatures and row/element kinds; returns the number of row statistics."""
    n = len(state)
    for name in state:
        # The names become SSA name hints and Triton variables.
        if not (name.isascii() and name.isidentifier()):
            raise VerifyException(f"'{op.name}' op expected state names to be identifiers, but got \"{name}\"")
    if len(inits.data) != n:
        raise VerifyException(f"'{op.name}' op expected {n} initial state values, but got {len(inits.data)}")
    ub = check_block_args(op, update, "update", normalizer_arg_types(n, captures))
    last = ub.last_op
    if not isinstance(last, YieldOp) or len(last.values) != n + 2 or any(v.type != f32 for v in last.values):
        raise VerifyException(
            f"'{op.name}' op expected the update region to yield (p, alpha, {n} new state values), all f32"
        )
    memo: dict[SSAValue, bool] = {}
    score: set[SSAValue] = {ub.args[0]}
    for name, value in zip(["alpha", *state], list(last.values)[1:]):
        if _depends_on(value, score, memo):
            raise VerifyException(
                f"'{op.name}' op update region yields '{name}' per score element; reduce it over the row with "
                "attn.row_max or attn.row_sum"
            )
    fb = check_block_args(op, finalize, "finalize", normalizer_arg_types(n, captures))
    flast = fb.last_op
    if not isinstance(flast, YieldOp) or not flast.values or any(v.type != f32 for v in flast.values):
        raise VerifyException(f"'{op.name}' op expected the finalize region to yield (out, row statistics...), all f32")
    memo = {}
    acc: set[SSAValue] = {fb.args[0]}
    for i, value in enumerate(list(flast.values)[1:]):
        if _depends_on(value, acc, memo):
            raise VerifyException(
                f"'{op.name}' op finalize region yields row statistic {i} per accumulator element; "
                "row statistics may read only the state"
            )
    return len(flast.values) - 1


# ---------------------------------------------------------------------------
# Logical ops


@irdl_op_definition
class QKOp(IRDLOperation):
    """Scores of every query against every key, times `scale`, in f32.

    ```mlir
    %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x?xf32>
    ```
    """

    name = "attn.qk"
    q = operand_def(TensorType)
    k = operand_def(TensorType)
    scale = attr_def(FloatAttr)
    scores = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$q `,` $k attr-dict `:` type($q) `,` type($k) `->` type($scores)"

    def __init__(self, q: SSAValue, k: SSAValue, scale: float):
        qt, kt = q.type, k.type
        assert isinstance(qt, TensorType) and isinstance(kt, TensorType)
        b, hq, sq, _ = qt.get_shape()
        skv = kt.get_shape()[2]
        super().__init__(
            operands=[q, k],
            attributes={"scale": FloatAttr(scale, f32)},
            result_types=[TensorType(f32, [b, hq, sq, skv])],
        )

    def verify_(self) -> None:
        qt = tensor_type(self.q, "q", self, 4)
        kt = tensor_type(self.k, "k", self, 4)
        st = tensor_type(self.scores, "scores", self, 4)
        qs, ks = qt.get_shape(), kt.get_shape()
        if not dims_match(qs[3], ks[3]):
            raise VerifyException(f"'attn.qk' op expected k head dim {qs[3]}, but got {ks[3]}")
        _check_heads(self, qs[1], ks[1])
        if not dims_match(qs[0], ks[0]):
            raise VerifyException(f"'attn.qk' op expected k batch {qs[0]}, but got {ks[0]}")
        want = [qs[0], qs[1], qs[2], ks[2]]
        if st.element_type != f32 or not have_compatible_shape(st, TensorType(f32, want)):
            raise VerifyException(f"'attn.qk' op expected scores of shape {_shape(want)}xf32, but got {st}")


def _shape(dims: Sequence[int]) -> str:
    return "x".join("?" if d == DYNAMIC_INDEX else str(d) for d in dims)


def _check_heads(op: Operation, hq: int, hkv: int) -> None:
    if hq == DYNAMIC_INDEX or hkv == DYNAMIC_INDEX:
        return
    if hkv <= 0 or hq % hkv:
        raise VerifyException(f"'{op.name}' op expected query heads ({hq}) to be a multiple of kv heads ({hkv})")


@irdl_op_definition
class ScoreModOp(IRDLOperation):
    """Elementwise change of scores, FlexAttention's `score_mod(score, b, h, q_idx, kv_idx)`.

    ```mlir
    %t = attn.score_mod %s captures(%slopes : tensor<8xf32>) {
    ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<8xf32>):
      ...
      attn.yield %r : f32
    } : tensor<?x8x?x?xf32> -> tensor<?x8x?x?xf32>
    ```
    """

    name = "attn.score_mod"
    scores = operand_def(TensorType)
    captures = var_operand_def(TensorType)
    body = region_def("single_block")
    result = result_def(TensorType)
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())
    assembly_format = "$scores (`captures` `(` $captures^ `:` type($captures) `)`)? $body attr-dict `:` type($scores) `->` type($result)"

    def __init__(self, scores: SSAValue, captures: Sequence[SSAValue], body: Region):
        super().__init__(operands=[scores, list(captures)], regions=[body], result_types=[scores.type])

    def verify_(self) -> None:
        tensor_type(self.scores, "scores", self, 4)
        if self.result.type != self.scores.type:
            raise VerifyException(
                f"'attn.score_mod' op expected result type {self.scores.type}, but got {self.result.type}"
            )
        verify_score_mod(self, self.body, self.captures)


@irdl_op_definition
class MaskModOp(IRDLOperation):
    """Which scores take part, FlexAttention's `mask_mod(b, h, q_idx, kv_idx)`; true keeps.

    ```mlir
    %keep = attn.mask_mod %s {
    ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
      %c = arith.cmpi sge, %q_idx, %kv_idx : index
      attn.yield %c : i1
    } : tensor<?x8x?x?xf32> -> tensor<?x8x?x?xi1>
    ```
    """

    name = "attn.mask_mod"
    scores = operand_def(TensorType)
    captures = var_operand_def(TensorType)
    body = region_def("single_block")
    keep = result_def(TensorType)
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())
    assembly_format = "$scores (`captures` `(` $captures^ `:` type($captures) `)`)? $body attr-dict `:` type($scores) `->` type($keep)"

    def __init__(self, scores: SSAValue, captures: Sequence[SSAValue], body: Region):
        st = scores.type
        assert isinstance(st, TensorType)
        super().__init__(
            operands=[scores, list(captures)], regions=[body], result_types=[TensorType(i1, st.get_shape())]
        )

    def verify_(self) -> None:
        st = tensor_type(self.scores, "scores", self, 4)
        kt = tensor_type(self.keep, "result", self, 4)
        if kt.element_type != i1 or kt.get_shape() != st.get_shape():
            raise VerifyException(
                f"'attn.mask_mod' op expected result of shape {_shape(st.get_shape())}xi1, but got {kt}"
            )
        verify_mask_mod(self, self.body, self.captures)


class _RowReductionOp(IRDLOperation):
    """A reduction of an element value over the current tile's row, inside a normalizer's update."""

    value = operand_def(f32)
    result = result_def(f32)
    traits = traits_def(Pure())
    assembly_format = "$value attr-dict `:` type($value)"

    def __init__(self, value: SSAValue):
        super().__init__(operands=[value], result_types=[f32])

    def verify_(self) -> None:
        _check_in_update(self)


@irdl_op_definition
class RowMaxOp(_RowReductionOp):
    """Inside a normalizer's update: the maximum over the current tile's row.

    ```mlir
    %tile_max = attn.row_max %score : f32
    ```
    """

    name = "attn.row_max"


@irdl_op_definition
class RowSumOp(_RowReductionOp):
    """Inside a normalizer's update: the sum over the current tile's row.

    ```mlir
    %tile_sum = attn.row_sum %p : f32
    ```
    """

    name = "attn.row_sum"


def _check_in_update(op: Operation) -> None:
    parent = op.parent_op()
    region = op.parent_region()
    if isinstance(parent, (OnlineRowscaleOp, FlashOp)) and region is parent.update:
        return
    raise VerifyException(f"'{op.name}' op expected to be inside the update region of a normalizer")


@irdl_op_definition
class OnlineRowscaleOp(IRDLOperation):
    """A normalizer as an online row-scale (softmax, sigmoid, ReLU, retention, sinks, yours).

    Named per-row `state` starts at `init`. `update` sees one score of the current
    tile (masked ones set to `masked_score`), the batch and head indices, the old
    state and the captured tensors, and yields the probability `p`, the factor
    `alpha` that rescales the running accumulator, and the new state; `attn.row_max`
    and `attn.row_sum` reduce over the tile's row. `finalize` sees one element of the
    accumulator and the final state and yields the output element and the row
    statistics kept for backward (softmax: the logsumexp). Masked scores always
    contribute p = 0.

    ```mlir
    %p, %lse = attn.online_rowscale %s mask(%keep : tensor<?x8x?x?xi1>) update {
    ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
      ...
      attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
    } finalize {
    ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32):
      ...
      attn.yield %out, %lse : f32, f32
    } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.0 : f32],
       masked_score = 0xff800000 : f32} : tensor<?x8x?x?xf32> -> (tensor<?x8x?x?xf32>, tensor<?x8x?xf32>)
    ```
    """

    name = "attn.online_rowscale"
    scores = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    captures = var_operand_def(TensorType)
    normalizer = attr_def(StringAttr)
    state = attr_def(ArrayAttr[StringAttr])
    init = attr_def(ArrayAttr[FloatAttr])
    masked_score = attr_def(FloatAttr)
    held_constant = opt_attr_def(ArrayAttr[IntegerAttr])  # statistics the backward holds constant
    update = region_def("single_block")
    finalize = region_def("single_block")
    merge = region_def()  # the user's merge of two partial states (Normalizer.merge), if it defines one
    probs = result_def(TensorType)
    stats = var_result_def(TensorType)
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    assembly_format = (
        "$scores (`mask` `(` $mask^ `:` type($mask) `)`)? (`captures` `(` $captures^ `:` type($captures) `)`)? "
        "`update` $update `finalize` $finalize (`merge` $merge^)? attr-dict "
        "`:` type($scores) `->` `(` type($probs) (`,` type($stats)^)? `)`"
    )

    def __init__(
        self, scores: SSAValue, mask: SSAValue | None, spec: NormalizerSpec, captures: Sequence[SSAValue] = ()
    ):
        st = scores.type
        assert isinstance(st, TensorType)
        stat_type = TensorType(f32, st.get_shape()[:3])
        super().__init__(
            operands=[scores, [mask] if mask is not None else [], list(captures)],
            attributes=spec.attributes(),
            regions=[spec.update.clone(), spec.finalize.clone(), spec.merge.clone() if spec.merge else Region()],
            result_types=[st, [stat_type] * spec.num_stats],
        )

    def verify_(self) -> None:
        st = tensor_type(self.scores, "scores", self, 4)
        if self.mask is not None:
            mt = tensor_type(self.mask, "mask", self, 4)
            if mt.element_type != i1 or mt.get_shape() != st.get_shape():
                raise VerifyException(
                    f"'attn.online_rowscale' op expected mask of shape {_shape(st.get_shape())}xi1, but got {mt}"
                )
        state = [s.data for s in self.state.data]
        nstats = _verify_normalizer(self, self.update, self.finalize, state, self.init, self.captures)
        if len(self.stats) != nstats:
            raise VerifyException(
                f"'attn.online_rowscale' op expected {nstats} row statistics results, but got {len(self.stats)}"
            )
        verify_merge(self, self.merge, len(state))
        want = TensorType(f32, st.get_shape()[:3])
        for stat in self.stats:
            if stat.type != want:
                raise VerifyException(
                    f"'attn.online_rowscale' op expected row statistics of type {want}, but got {stat.type}"
                )


@irdl_op_definition
class PVOp(IRDLOperation):
    """Probabilities times values, in the values' element type.

    ```mlir
    %o = attn.pv %p, %v : tensor<?x8x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
    ```
    """

    name = "attn.pv"
    probs = operand_def(TensorType)
    v = operand_def(TensorType)
    out = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$probs `,` $v attr-dict `:` type($probs) `,` type($v) `->` type($out)"

    def __init__(self, probs: SSAValue, v: SSAValue):
        pt, vt = probs.type, v.type
        assert isinstance(pt, TensorType) and isinstance(vt, TensorType)
        b, hq, sq, _ = pt.get_shape()
        super().__init__(
            operands=[probs, v], result_types=[TensorType(vt.element_type, [b, hq, sq, vt.get_shape()[3]])]
        )

    def verify_(self) -> None:
        pt = tensor_type(self.probs, "probabilities", self, 4)
        vt = tensor_type(self.v, "v", self, 4)
        ot = tensor_type(self.out, "result", self, 4)
        ps, vs = pt.get_shape(), vt.get_shape()
        if not dims_match(ps[3], vs[2]):
            raise VerifyException(f"'attn.pv' op expected v sequence length {ps[3]}, but got {vs[2]}")
        _check_heads(self, ps[1], vs[1])
        want = TensorType(vt.element_type, [ps[0], ps[1], ps[2], vs[3]])
        if ot.element_type != vt.element_type or not have_compatible_shape(ot, want):
            raise VerifyException(f"'attn.pv' op expected result of type {want}, but got {ot}")


# ---------------------------------------------------------------------------
# The fused op


@irdl_op_definition
class FlashOp(IRDLOperation):
    """The whole attention in one op, the flash form: what `attn-fuse` produces.

    Holds the score_mod, mask_mod and normalizer regions of the chain it replaced.
    `attn-block-mask` adds `block_mask` ("none", "affine" or "runtime") and, for
    affine masks, the `classify` region: given a tile's index ranges it yields
    whether some (`any`) and whether every (`all`) element of the tile is kept.
    `attn-tile` adds `tile` (and `pack_gqa` over a KV cache: the query heads that share a
    kv head are one tile's rows). The `merge` region, the normalizer's own (its
    `merge`, carried by `attn-fuse`) or one `attn-split` derives over a KV cache, takes
    two partial states of a row (one per split of its keys) and yields the factors that
    rescale each partial accumulator and the merged state, so a combine can merge the
    splits and finalize once.

    ```mlir
    %o, %lse = attn.flash %q, %k, %v captures(%slopes : tensor<8xf32>) score_mod {...} mask_mod {...}
        update {...} finalize {...} classify {...} {scale = 0.125 : f32, normalizer = "softmax", ...}
        : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>)
    ```
    """

    name = "attn.flash"
    q = operand_def(TensorType)
    k = operand_def(TensorType)
    v = operand_def(TensorType)
    sequences = var_operand_def(TensorType)  # the layout's metadata (attn_sequences.py); none when dense
    captures = var_operand_def(TensorType)
    layout = opt_attr_def(StringAttr)  # "packed" | "cache" | "paged"; absent: dense [B, H, S, D]
    scale = attr_def(FloatAttr)
    normalizer = attr_def(StringAttr)
    state = attr_def(ArrayAttr[StringAttr])
    init = attr_def(ArrayAttr[FloatAttr])
    masked_score = attr_def(FloatAttr)
    held_constant = opt_attr_def(ArrayAttr[IntegerAttr])  # statistics the backward holds constant
    block_mask = opt_attr_def(StringAttr)
    tile = opt_attr_def(TileAttr)
    score_mod = region_def("single_block")
    mask_mod = region_def("single_block")
    update = region_def("single_block")
    finalize = region_def("single_block")
    classify = region_def()
    merge = region_def()  # attn-split: (state_a..., state_b...) -> (scale_a, scale_b, state...)
    out = result_def(TensorType)
    stats = var_result_def(TensorType)
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    assembly_format = (
        "$q `,` $k `,` $v (`sequences` `(` $sequences^ `:` type($sequences) `)`)? "
        "(`captures` `(` $captures^ `:` type($captures) `)`)? `score_mod` $score_mod "
        "`mask_mod` $mask_mod `update` $update `finalize` $finalize `classify` $classify "
        "(`merge` $merge^)? attr-dict "
        "`:` type($q) `,` type($k) `,` type($v) `->` `(` type($out) (`,` type($stats)^)? `)`"
    )

    def verify_(self) -> None:
        qt = tensor_type(self.q, "q", self, 4)
        kt = tensor_type(self.k, "k", self, 4)
        vt = tensor_type(self.v, "v", self, 4)
        qs, ks, vs = qt.get_shape(), kt.get_shape(), vt.get_shape()
        if not dims_match(qs[3], ks[3]):
            raise VerifyException(f"'attn.flash' op expected k head dim {qs[3]}, but got {ks[3]}")
        if not dims_match(ks[2], vs[2]) or ks[1] != vs[1]:
            raise VerifyException(
                f"'attn.flash' op expected v of {ks[1]} heads and sequence length {_shape([ks[2]])}, but got {vt}"
            )
        _check_heads(self, qs[1], ks[1])
        if self.layout is not None:
            check_layout(self, self.layout.data, self.q, self.k, self.v, self.sequences)
        elif self.sequences:
            raise VerifyException("'attn.flash' op expected no sequences operands without a layout")
        elif not dims_match(qs[0], ks[0]) or not dims_match(ks[0], vs[0]):
            raise VerifyException(
                f"'attn.flash' op expected q, k and v of one batch size, but got {qs[0]}, {ks[0]} and {vs[0]}"
            )
        ot = tensor_type(self.out, "result", self, 4)
        want = TensorType(vt.element_type, [qs[0], qs[1], qs[2], vs[3]])
        if ot.element_type != vt.element_type or not have_compatible_shape(ot, want):
            raise VerifyException(f"'attn.flash' op expected result of type {want}, but got {ot}")
        stat_type = TensorType(f32, [qs[0], qs[1], qs[2]])
        for stat in self.stats:
            if stat.type != stat_type:
                raise VerifyException(
                    f"'attn.flash' op expected row statistics of type {stat_type}, but got {stat.type}"
                )
        verify_score_mod(self, self.score_mod, self.captures)
        verify_mask_mod(self, self.mask_mod, self.captures)
        state = [s.data for s in self.state.data]
        nstats = _verify_normalizer(self, self.update, self.finalize, state, self.init, self.captures)
        if len(self.stats) != nstats:
            raise VerifyException(
                f"'attn.flash' op expected {nstats} row statistics results, but got {len(self.stats)}"
            )
        kind = self.block_mask.data if self.block_mask is not None else None
        if kind not in (None, "none", "affine", "runtime"):
            raise VerifyException(f"'attn.flash' op expected block_mask to be none, affine or runtime, but got {kind}")
        if kind == "affine":
            block = check_block_args(self, self.classify, "classify", [IndexType()] * 6)
            check_yield(self, block, "classify", [i1, i1])
        elif self.classify.blocks:
            raise VerifyException("'attn.flash' op expected an empty classify region unless block_mask is affine")
        self._verify_decoding(len(state))

    def _verify_decoding(self, num_state: int) -> None:
        """The merge region, and pack_gqa only over a KV cache."""
        over_cache = self.layout is not None and self.layout.data in ("cache", "paged")
        verify_merge(self, self.merge, num_state)
        if "pack_gqa" in self.attributes and not over_cache:
            raise VerifyException("'attn.flash' op expected pack_gqa only over a cache or paged cache")


# ---------------------------------------------------------------------------
# Normalizer specs (the built-ins are written with the same op users get)


class NormalizerSpec:
    """What an `attn.online_rowscale` op needs: name, state, initial values, regions, captured tensors.

    Both regions take `(score or acc, b, h, *state, *captures)`; `captures` are the
    tensors behind their trailing block arguments, in order.
    """

    def __init__(
        self,
        name: str,
        state: Sequence[str],
        init: Sequence[float],
        update: Region,
        finalize: Region,
        stat_names: Sequence[str] = (),
        masked_score: float = float("-inf"),
        captures: Sequence[object] = (),
        held_constant: Sequence[int] = (),
        merge: Region | None = None,
    ):
        self.name = name
        self.merge = merge
        self.held_constant = list(held_constant)
        self.state = list(state)
        self.init = list(init)
        self.update = update
        self.finalize = finalize
        self.stat_names = list(stat_names)
        self.masked_score = masked_score
        self.captures = list(captures)

    @property
    def num_stats(self) -> int:
        return len(self.stat_names)

    def attributes(self) -> dict[str, Attribute]:
        return {
            "normalizer": StringAttr(self.name),
            "state": ArrayAttr([StringAttr(s) for s in self.state]),
            "init": ArrayAttr([FloatAttr(v, f32) for v in self.init]),
            "masked_score": FloatAttr(self.masked_score, f32),
            **(
                {"held_constant": ArrayAttr([IntegerAttr(i, i64) for i in self.held_constant])}
                if self.held_constant
                else {}
            ),
        }


Attn = Dialect(
    "attn",
    [
        QKOp,
        ScoreModOp,
        MaskModOp,
        RowMaxOp,
        RowSumOp,
        OnlineRowscaleOp,
        PVOp,
        FlashOp,
        FlashGradOp,
        RecurrenceOp,
        RecurrentChunkOp,
        SequencesOp,
        YieldOp,
    ],
    [TileAttr],
)

__all__ = [
    "INDEX_ARGS",
    "mask_mod_arg_types",
    "score_mod_arg_types",
    "Attn",
    "FlashGradOp",
    "FlashOp",
    "MaskModOp",
    "NormalizerSpec",
    "OnlineRowscaleOp",
    "PVOp",
    "QKOp",
    "RecurrenceOp",
    "RecurrentChunkOp",
    "RowMaxOp",
    "RowSumOp",
    "ScoreModOp",
    "SequencesOp",
    "TileAttr",
    "YieldOp",
]
