"""attn-autodiff: derive the backward `attn.flash_grad` of each `attn.flash`.

The forward keeps, per query row, lse = log Σ_j exp(t_j), with t = score_mod(s) the
modified scores (masked ones −∞) and s = scale · q·kᵀ. The backward the kernels will
implement, FlashAttention-2 style, recomputes the probabilities from it instead of
storing them:

    P  = exp(t − lse)                        (0 where masked)
    dP = dO · Vᵀ
    dT = P ⊙ (dP − rowsum(dO ⊙ O))           softmax's backward, D = rowsum(dO ⊙ O) per row
    dS = score_mod'(s) · dT                  the `score_mod_grad` region, per element
    dV = Pᵀ · dO,   dQ = scale · dS · K,   dK = scale · dSᵀ · Q

and each captured tensor's gradient is the sum, over every score element, of the
capture-site adjoints `score_mod_grad` yields, scattered at the indices it read. The
derivative region comes from `differentiate_score_mod` (autodiff/regions.py), which
rejects a score_mod it cannot differentiate. Captures the normalizer's finalize reads
(a sink's logit) take their gradient through lse: `differentiate_statistic` derives the
`stat_grad` region from finalize (see `attn.flash_grad`).

Which backward a normalizer has is read off its regions, never its name
(autodiff/normalizer.py): softmax's when they compute online softmax, elementwise
weights otherwise where the math allows. For each `attn.flash` with one, the pass
inserts `attn.flash_grad` right after it, reading its `out` and statistic; the incoming
gradient becomes a new argument `%dout` of the enclosing function, appended after the
others, and dq, dk, dv and the captures' gradients are returned after the existing
results. Other normalizers are left alone, or with `strict=true` the pass fails naming
the part.

Attention over packed sequences or a KV cache (`layout` on attn.flash) gets an attn.flash_grad
with the same layout and metadata operands; a paged cache has no backward, and the pass fails
naming it.

Linear attention (`attn.recurrence`, `attn.recurrent_chunk`) has its backward in closed
form (the reverse state scan and per-chunk dq/dk/dv/dG, see chunk_backward_kernels.py):
the pass marks each such op `backward`, and convert-attn-to-tile adds those kernels.

Precondition: `attn.flash` ops (run attn-fuse, and attn-block-mask for block skipping).

Before:
```mlir
func.func @attention(%q: tensor<?x4x?x64xbf16>, %k: ..., %v: ..., %slopes: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v captures(%slopes : tensor<64xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<64xf32>):
    %0 = tensor.extract %slopes_1[%h] : tensor<64xf32>
    ...
    attn.yield %5 : f32
  } ... {normalizer = "softmax", ...} : ...
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}
```
After:
```mlir
func.func @attention(%q: ..., %k: ..., %v: ..., %slopes: tensor<64xf32>, %dout: tensor<?x4x?x64xbf16>)
    -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>) {
  %out, %lse = attn.flash ...
  %dq, %dk, %dv, %dslopes = attn.flash_grad %q, %k, %v, %out, %lse, %dout captures(%slopes : tensor<64xf32>)
      score_mod {...} mask_mod {...} score_mod_grad {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<64xf32>, %grad: f32):
    ...
    %dslopes_1 = arith.mulf %grad, %2 : f32
    attn.yield %grad, %dslopes_1, %h : f32, f32, index
  } classify {...} {scale = 0.125 : f32, capture_sites = [0 : i64], block_mask = "none"} : ...
  func.return %out, %lse, %dq, %dk, %dv, %dslopes : ...
}
```
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
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
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from attnc.autodiff.normalizer import normalizer_backward
from attnc.autodiff.regions import differentiate_score_mod, differentiate_statistic, float_capture_sites
from attnc.dialect import attn


@dataclass(frozen=True)
class DeriveFlashGrad(RewritePattern):
    """Inserts the `attn.flash_grad` of an `attn.flash` and threads dout and the gradients through its function."""

    strict: bool = False
    captures: tuple[int, ...] | None = None

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: attn.FlashOp, rewriter: PatternRewriter) -> None:
        if op.layout is not None and op.layout.data == "paged":
            raise PassFailedException(
                'attn-autodiff cannot differentiate attention over a paged KV cache (layout "paged"); '
                "packed sequences and a contiguous cache have gradients"
            )
        if any(isinstance(use.operation, attn.FlashGradOp) for use in op.out.uses):
            return  # already derived
        try:
            form = normalizer_backward(op)
        except PassFailedException:
            if self.strict:
                raise
            return
        if form.probabilities == "softmax" and not op.stats:
            raise PassFailedException("attn-autodiff needs the softmax row statistic (lse) among attn.flash's results")
        fn = op.parent_op()
        if not isinstance(fn, func.FuncOp):
            raise PassFailedException("attn-autodiff needs attn.flash directly inside a func.func, to add dout to it")
        ret = fn.get_return_op()
        if ret is None or len(fn.body.blocks) != 1:
            raise PassFailedException(f"attn-autodiff needs @{fn.sym_name.data} to be one block ending in func.return")

        for index in self.captures or ():
            if not 0 <= index < len(op.captures):
                raise PassFailedException(
                    f"attn-autodiff: captures={index} names no captured tensor; attn.flash has {len(op.captures)}"
                )
        grad_region = differentiate_score_mod(form.weights, self.captures)
        sites = float_capture_sites(form.weights, self.captures)
        initial_state = [a.value.data for a in op.init.data]
        through_stat = (
            differentiate_statistic(op.finalize, 0, initial_state, self.captures)
            if form.probabilities == "softmax"
            else None
        )
        block = fn.body.blocks[0]
        dout = rewriter.insert_block_argument(block, len(block.args), op.out.type)
        dout.name_hint = "dout"
        capture_grad_types: list[Attribute] = []
        for capture in op.captures:
            assert isinstance(capture.type, TensorType)
            capture_grad_types.append(TensorType(f32, capture.type.get_shape()))
        attributes = _grad_attributes(op, form.probabilities, form.stat is not None, sites)
        stat_grad = Region()
        if through_stat is not None:
            stat_grad, stat_sites = through_stat
            attributes["stat_sites"] = ArrayAttr([IntegerAttr(s, i64) for s in stat_sites])
        grad = attn.FlashGradOp.build(
            operands=[
                op.q,
                op.k,
                op.v,
                op.out,
                dout,
                list(op.sequences),
                [] if form.stat is None else [op.stats[form.stat]],
                list(op.captures),
            ],
            attributes=attributes,
            regions=[form.weights, op.mask_mod.clone(), grad_region, op.classify.clone(), stat_grad],
            result_types=[op.q.type, op.k.type, op.v.type, capture_grad_types],
        )
        for result, name in zip(
            grad.results, ["dq", "dk", "dv", *(f"d{c.name_hint or 'capture'}" for c in op.captures)]
        ):
            result.name_hint = name
        rewriter.insert(grad, InsertPoint.after(op))
        rewriter.replace(ret, func.ReturnOp(*ret.arguments, *grad.results))
        _update_signature(fn)
        rewriter.notify_op_modified(fn)


def _grad_attributes(op: attn.FlashOp, probabilities: str, has_stat: bool, sites: list[int]) -> dict[str, Attribute]:
    """attn.flash_grad's attributes: how it recomputes the weights, its capture sites, and the forward's
    block mask and layout."""
    attributes: dict[str, Attribute] = {
        "scale": op.scale,
        "probabilities": StringAttr(probabilities),
        "capture_sites": ArrayAttr([IntegerAttr(s, i64) for s in sites]),
    }
    if probabilities == "elementwise" and has_stat:
        attributes["row_scale"] = StringAttr("inverse")
    if op.block_mask is not None:
        attributes["block_mask"] = op.block_mask
    if op.layout is not None:
        attributes["layout"] = op.layout
    return attributes


def _update_signature(fn: func.FuncOp) -> None:
    """The function type from its block and return; per-argument/result attributes get empty entries."""
    fn.update_function_type()
    if fn.arg_attrs is not None:
        missing = len(fn.args) - len(fn.arg_attrs.data)
        fn.arg_attrs = ArrayAttr([*fn.arg_attrs.data, *[DictionaryAttr({})] * missing])
    if fn.res_attrs is not None:
        missing = len(fn.function_type.outputs.data) - len(fn.res_attrs.data)
        fn.res_attrs = ArrayAttr([*fn.res_attrs.data, *[DictionaryAttr({})] * missing])


@dataclass(frozen=True)
class AttnAutodiffPass(ModulePass):
    """Derives attn.flash_grad (dq, dk, dv, capture gradients) for each attn.flash whose normalizer has a derivable backward.

    `captures` lists the captured tensors that get gradients (positions among attn.flash's
    captures, e.g. `attn-autodiff{captures=0,2}`); the default is every float capture. The
    others are constants to the derivative, and their gradient results stay zero: the
    runtime asks only for the tensors that require grad, which spares the kernels the
    reductions and atomics of the rest.
    """

    name = "attn-autodiff"
    strict: bool = False
    captures: tuple[int, ...] | None = None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for leftover in op.walk():
            if isinstance(leftover, (attn.QKOp, attn.PVOp)):
                raise PassFailedException("attn-autodiff requires a fused attention op; run attn-fuse first")
        walker = PatternRewriteWalker(
            GreedyRewritePatternApplier([DeriveFlashGrad(self.strict, self.captures)]), apply_recursively=False
        )
        walker.rewrite_module(op)
        for rec in op.walk():
            if isinstance(rec, attn.RecurrenceOp | attn.RecurrentChunkOp):
                # Linear attention's backward is known in closed form (chunk_backward_kernels.py):
                # the op is marked, and convert-attn-to-tile adds its gradient kernels.
                rec.attributes["backward"] = UnitAttr()


__all__ = ["AttnAutodiffPass", "DeriveFlashGrad"]
