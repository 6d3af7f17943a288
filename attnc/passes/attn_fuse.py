"""attn-fuse: fold the logical chain qk → score_mod → mask_mod → online_rowscale → pv
into one `attn.flash` op that holds every region (the flash form).

Precondition: logical attn ops as the frontend builds them. Each intermediate
tensor (scores, mask, probabilities) may feed only the chain itself, since the
fused op never materializes it.

Before:
```mlir
%s = attn.qk %q, %k {scale = 0.125 : f32} : ...
%t = attn.score_mod %s { ... } : ...
%keep = attn.mask_mod %t { ... } : ...
%p, %lse = attn.online_rowscale %t mask(%keep : ...) update { ... } finalize { ... } {...} : ...
%o = attn.pv %p, %v : ...
```
When q, k and v are the views of an `attn.sequences` op (packed, cached or paged storage),
the fused op reads the storage and takes the layout and its metadata:
`attn.flash %q, %k, %v sequences(%lens : tensor<?xi32>) ... {layout = "cache", ...}`.

After:
```mlir
%o, %lse = attn.flash %q, %k, %v score_mod { ... } mask_mod { ... } update { ... } finalize { ... }
    classify { } {scale = 0.125 : f32, normalizer = "softmax", ...} : ...
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i1
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from attnc.dialect import attn
from attnc.dialect.attn_sequences import SequencesOp


def remap_region(
    region: Region, arg_types: Sequence[Attribute], arg_map: Sequence[int], names: Sequence[str | None] = ()
) -> Region:
    """A copy of `region` whose block takes `arg_types`; old argument i becomes new argument `arg_map[i]`.

    New arguments no old one maps to take their name from `names`.
    """
    old = region.blocks[0]
    new = Block(arg_types=list(arg_types))
    for arg, name in zip(new.args, names):
        arg.name_hint = name
    mapper: dict[SSAValue, SSAValue] = {}
    for i, old_arg in enumerate(old.args):
        new_arg = new.args[arg_map[i]]
        new_arg.name_hint = old_arg.name_hint
        mapper[old_arg] = new_arg
    for op in old.ops:
        new.add_op(op.clone(value_mapper=mapper))
    return Region(new)


def capture_positions(region_captures: Sequence[SSAValue], fused: Sequence[SSAValue]) -> list[int]:
    """Where each of a region's captured operands sits in the fused op's capture list."""
    return [list(fused).index(c) for c in region_captures]


LOGICAL_OPS = (attn.QKOp, attn.ScoreModOp, attn.MaskModOp, attn.OnlineRowscaleOp, SequencesOp)


def identity_score_mod(captures: list[SSAValue]) -> Region:
    block = Block(arg_types=attn.score_mod_arg_types(captures))
    for arg, name in zip(block.args, ["score", "b", "h", "q_idx", "kv_idx"]):
        arg.name_hint = name
    block.add_op(attn.YieldOp(block.args[0]))
    return Region(block)


def keep_all_mask_mod(captures: list[SSAValue]) -> Region:
    block = Block(arg_types=attn.mask_mod_arg_types(captures))
    for arg, name in zip(block.args, ["b", "h", "q_idx", "kv_idx"]):
        arg.name_hint = name
    keep = arith.ConstantOp(IntegerAttr(1, i1))
    keep.result.name_hint = "keep"
    block.add_ops([keep, attn.YieldOp(keep.result)])
    return Region(block)


def _fail(op: Operation, why: str) -> PassFailedException:
    return PassFailedException(f"attn-fuse cannot fuse '{op.name}': {why}")


def _only_used_by(value: SSAValue, users: tuple[Operation, ...], what: str, op: Operation) -> None:
    for use in value.uses:
        if use.operation not in users:
            raise _fail(op, f"'{use.operation.name}' also reads its {what}, which the fused op does not materialize")


@dataclass
class _Chain:
    """The logical ops an `attn.pv` reads through: qk, score_mod and mask_mod if present, the normalizer."""

    qk: attn.QKOp
    score_mod: attn.ScoreModOp | None
    mask_mod: attn.MaskModOp | None
    norm: attn.OnlineRowscaleOp

    def captures(self) -> list[SSAValue]:
        """Every tensor the chain's regions capture, once each, in order of first use."""
        captures: list[SSAValue] = []
        for source in (self.score_mod, self.mask_mod, self.norm):
            for c in source.captures if source is not None else ():
                if c not in captures:
                    captures.append(c)
        return captures


def _match_chain(op: attn.PVOp) -> _Chain:
    """The chain feeding `op`, checked to be fusable: each intermediate tensor feeds only the chain."""
    norm = op.probs.owner
    if not isinstance(norm, attn.OnlineRowscaleOp):
        raise _fail(op, "its probabilities do not come from attn.online_rowscale")
    _only_used_by(norm.probs, (op,), "probabilities", op)
    score_mod = norm.scores.owner if isinstance(norm.scores.owner, attn.ScoreModOp) else None
    qk_value = score_mod.scores if score_mod is not None else norm.scores
    qk = qk_value.owner
    if not isinstance(qk, attn.QKOp):
        raise _fail(op, "its scores do not come from attn.qk")
    mask_mod = None
    if norm.mask is not None:
        mask_mod = norm.mask.owner
        if not isinstance(mask_mod, attn.MaskModOp):
            raise _fail(op, "the normalizer's mask does not come from attn.mask_mod")
        if mask_mod.scores not in (qk.scores, norm.scores):
            raise _fail(op, "attn.mask_mod reads scores from outside the chain")
        _only_used_by(mask_mod.keep, (norm,), "mask", op)
    chain_users = tuple(x for x in (score_mod, mask_mod, norm) if x is not None)
    _only_used_by(qk.scores, chain_users, "attn.qk scores", op)
    if score_mod is not None:
        _only_used_by(score_mod.result, chain_users, "modified scores", op)
    return _Chain(qk, score_mod, mask_mod, norm)


def _fused_regions(chain: _Chain, captures: list[SSAValue]) -> list[Region]:
    """attn.flash's regions (score_mod, mask_mod, update, finalize, an empty classify), each taking
    the fused op's `captures` as its trailing arguments."""
    names = [c.name_hint for c in captures]
    if chain.score_mod is not None:
        score_region = remap_region(
            chain.score_mod.body,
            attn.score_mod_arg_types(captures),
            [0, 1, 2, 3, 4, *[5 + i for i in capture_positions(list(chain.score_mod.captures), captures)]],
            [None] * 5 + names,
        )
    else:
        score_region = identity_score_mod(captures)
    if chain.mask_mod is not None:
        mask_region = remap_region(
            chain.mask_mod.body,
            attn.mask_mod_arg_types(captures),
            [0, 1, 2, 3, *[4 + i for i in capture_positions(list(chain.mask_mod.captures), captures)]],
            [None] * 4 + names,
        )
    else:
        mask_region = keep_all_mask_mod(captures)
    norm = chain.norm
    num_state = len(norm.state.data)
    normalizer_args = attn.normalizer_arg_types(num_state, captures)
    arg_map = [
        *range(3 + num_state),
        *[3 + num_state + i for i in capture_positions(list(norm.captures), captures)],
    ]
    normalizer_names = [None] * (3 + num_state) + names
    update = remap_region(norm.update, normalizer_args, arg_map, normalizer_names)
    finalize = remap_region(norm.finalize, normalizer_args, arg_map, normalizer_names)
    merge = norm.merge.clone() if norm.merge.blocks else Region()  # the normalizer's own merge, if any
    return [score_region, mask_region, update, finalize, Region(), merge]


class FusePVChain(RewritePattern):
    """Replaces `attn.pv` and the chain feeding it with one `attn.flash`."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.PVOp, rewriter: PatternRewriter) -> None:
        chain = _match_chain(op)
        qk, norm = chain.qk, chain.norm
        captures = chain.captures()
        q, k, v, meta, layout = _storage(qk.q, qk.k, op.v, op)
        flash = attn.FlashOp.build(
            operands=[q, k, v, meta, captures],
            attributes={
                **({"layout": layout} if layout is not None else {}),
                "scale": qk.scale,
                "normalizer": norm.normalizer,
                "state": norm.state,
                "init": norm.init,
                "masked_score": norm.masked_score,
                **({"held_constant": norm.held_constant} if norm.held_constant is not None else {}),
            },
            regions=_fused_regions(chain, captures),
            result_types=[op.out.type, [s.type for s in norm.stats]],
        )
        flash.out.name_hint = op.out.name_hint
        for new, old in zip(flash.stats, norm.stats):
            new.name_hint = old.name_hint
        rewriter.insert(flash, InsertPoint.before(op))
        for old, new in zip(norm.stats, flash.stats):
            rewriter.replace_all_uses_with(old, new)
        rewriter.replace(op, [], [flash.out])
        for dead in (norm, chain.mask_mod, chain.score_mod, qk):
            if dead is not None:
                rewriter.erase(dead)
        view = qk.q.owner
        if isinstance(view, SequencesOp) and all(not r.uses for r in view.results):
            rewriter.erase(view)


def _storage(
    q: SSAValue, k: SSAValue, v: SSAValue, op: Operation
) -> tuple[SSAValue, SSAValue, SSAValue, list[SSAValue], StringAttr | None]:
    """q, k, v as the fused op reads them: through an `attn.sequences` view, its storage, metadata and layout."""
    view = q.owner
    if not isinstance(view, SequencesOp):
        if any(isinstance(x.owner, SequencesOp) for x in (k, v)):
            raise _fail(op, "k or v comes from attn.sequences, but q does not")
        return q, k, v, [], None
    if (q, k, v) != (view.q_seq, view.k_seq, view.v_seq):
        raise _fail(op, "q, k and v must be the three views of one attn.sequences op")
    return view.q, view.k, view.v, list(view.meta), view.layout


@dataclass(frozen=True)
class AttnFusePass(ModulePass):
    """Fuses each logical attention chain into one `attn.flash` op (see the module docstring)."""

    name = "attn-fuse"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(GreedyRewritePatternApplier([FusePVChain()]), apply_recursively=False).rewrite_module(op)
        for leftover in op.walk():
            if isinstance(leftover, LOGICAL_OPS):
                raise _fail(leftover, "it is not part of a chain that ends in attn.pv")


__all__ = ["AttnFusePass", "FusePVChain"]
