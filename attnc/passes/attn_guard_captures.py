"""attn-guard-captures: mark every captured-tensor access whose index no check before the call can prove.

The runtime bounds each read's index expression at a call's shape (runtime/capture_bounds.py) and
refuses a tensor too small for it, so a read it can bound needs nothing in the kernel. The rest (an
index computed from data, `bias[doc[kv_idx]]`; one that repeats an argument, `t[q_idx - q_idx // 2]`;
a division by something other than a constant) get `attn.guard`, listing the unproved dimensions,
on their `tensor.extract`: the kernels load them under the mask 0 <= index < size, reading 0 (false
for i1) outside the tensor. With `report=true` (ATTNC_DEBUG) they also get `attn.guard_report`, and
the kernels assert the index is in range (`tl.device_assert`) instead of reading 0 silently.

On an `attn.flash_grad` the same holds for every region, and for the gradients' scatters:
`capture_site_guards` (`stat_site_guards`) lists, per capture site of `score_mod_grad` (`stat_grad`),
the dimensions whose yielded index is unproved; the dQ kernel adds those adjoints only in range.

Precondition: `attn.flash` ops (run attn-fuse), and attn-autodiff before this pass, so that the
derived regions are guarded too.

Before:
```mlir
%o, %lse = attn.flash %q, %k, %v captures(%bias, %doc : tensor<64xf32>, tensor<128xi64>) score_mod {
^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
  %d = tensor.extract %doc_1[%kv_idx] : tensor<128xi64>
  %i = arith.index_cast %d : i64 to index
  %x = tensor.extract %bias_1[%i] : tensor<64xf32>
  ...
```
After:
```mlir
  %d = tensor.extract %doc_1[%kv_idx] : tensor<128xi64>
  %i = arith.index_cast %d : i64 to index
  %x = tensor.extract %bias_1[%i] {attn.guard = array<i64: 0>} : tensor<64xf32>
```
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    UnitAttr,
    i64,
)
from xdsl.ir import Attribute, Region
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.utils.exceptions import PassFailedException

from attnc.dialect import attn
from attnc.dialect.capture_reads import GUARD, GUARD_REPORT, capture_extracts, index_expr, index_layouts
from attnc.dialect.index_intervals import provable


@dataclass(frozen=True)
class GuardCaptureReads(RewritePattern):
    """Sets `attn.guard` (and `attn.guard_report`) on each read of a captured tensor with an unproved index."""

    report: bool = False

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.FlashOp | attn.FlashGradOp, rewriter: PatternRewriter) -> None:
        changed = False
        for _, region, index_args in index_layouts(op):
            for read, _ in capture_extracts(region):
                block = region.blocks[0]
                dims = [d for d, i in enumerate(read.indices) if not provable(index_expr(i, block, index_args))]
                wanted: dict[str, Attribute] = {}
                if dims:
                    wanted[GUARD] = DenseArrayBase.from_list(i64, dims)
                    if self.report:
                        wanted[GUARD_REPORT] = UnitAttr()
                if {k: v for k, v in read.attributes.items() if k in (GUARD, GUARD_REPORT)} == wanted:
                    continue
                for name in (GUARD, GUARD_REPORT):
                    read.attributes.pop(name, None)
                read.attributes.update(wanted)
                changed = True
        if changed:
            rewriter.notify_op_modified(op)


@dataclass(frozen=True)
class GuardGradientScatters(RewritePattern):
    """Sets `capture_site_guards` / `stat_site_guards` on an `attn.flash_grad` whose sites yield unproved indices."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.FlashGradOp, rewriter: PatternRewriter) -> None:
        layouts = {name: (region, args) for name, region, args in index_layouts(op)}
        changed = False
        for attribute, region_name, sites, skip in (
            ("capture_site_guards", "score_mod_grad", op.capture_sites, 1),
            ("stat_site_guards", "stat_grad", op.stat_sites, 0),
        ):
            region, index_args = layouts[region_name]
            guards = _site_guards(op, region, sites, index_args, skip) if sites is not None else None
            if op.attributes.get(attribute) == guards:
                continue
            op.attributes.pop(attribute, None)
            if guards is not None:
                op.attributes[attribute] = guards
            changed = True
        if changed:
            rewriter.notify_op_modified(op)


def _site_guards(
    op: attn.FlashGradOp, region: Region, sites: ArrayAttr[IntegerAttr], index_args: dict[int, str], skip: int
) -> ArrayAttr[DenseArrayBase[IntegerType]] | None:
    """Per site, the dimensions of the indices it yields (after `skip` leading values) that are unproved;
    None when no site has one."""
    block = region.blocks[0]
    last = block.last_op
    assert isinstance(last, attn.YieldOp)
    values = list(last.values)[skip:]
    guards: list[DenseArrayBase[IntegerType]] = []
    for site in sites.data:
        capture_type = op.captures[site.value.data].type
        assert isinstance(capture_type, TensorType)
        rank = capture_type.get_num_dims()
        indices, values = values[1 : 1 + rank], values[1 + rank :]
        dims = [d for d, i in enumerate(indices) if not provable(index_expr(i, block, index_args))]
        guards.append(DenseArrayBase.from_list(i64, dims))
    return ArrayAttr(guards) if any(g.get_values() for g in guards) else None


@dataclass(frozen=True)
class AttnGuardCapturesPass(ModulePass):
    """Marks captured-tensor reads (and gradient scatters) whose index the runtime check cannot prove in range."""

    name = "attn-guard-captures"
    report: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for other in op.walk():
            if isinstance(other, attn.QKOp | attn.ScoreModOp | attn.MaskModOp | attn.OnlineRowscaleOp):
                raise PassFailedException("attn-guard-captures requires fused attention ops; run attn-fuse first")
        patterns = [GuardCaptureReads(self.report), GuardGradientScatters()]
        PatternRewriteWalker(GreedyRewritePatternApplier(patterns, dce_enabled=False)).rewrite_module(op)


__all__ = ["AttnGuardCapturesPass", "GuardCaptureReads", "GuardGradientScatters"]
