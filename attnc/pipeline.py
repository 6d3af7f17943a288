"""The named pipelines: the one place that lists attnc's passes in order.

Each pipeline is a tuple of pass instances run through xDSL's `PassPipeline`. Its
callback verifies the module after every pass (a pass that leaves invalid IR is named
at once) and records the IR of the stages users can ask for: `c.ir(stage)`,
`la.ir(..., stage)` and `ATTNC_DUMP` show these texts.

| pipeline          | passes                                                           | stages               |
|-------------------|------------------------------------------------------------------|----------------------|
| softmax           | attn-fuse, attn-block-mask, attn-split, attn-guard-captures, attn-tile, convert-... | attn, flash, tile |
| softmax-backward  | attn-fuse, attn-block-mask, attn-autodiff, attn-split, attn-guard-captures, attn-tile, convert-... | attn, flash, tile |
| linear            | attn-chunk, attn-tile, convert-attn-to-tile                      | attn, chunk, tile    |
| linear-backward   | attn-chunk, attn-autodiff, attn-tile, convert-attn-to-tile       | attn, chunk, tile    |

`softmax` takes `instrument`, which runs attn-instrument before the lowering (Proton scopes around the
forward kernels' stages; compiling them needs Proton's instrumentation backend started and
`triton.profiler.language.enable_semantic("triton")`, on a GPU target). The softmax pipelines take `debug`, which has the kernels report an out-of-range captured-tensor read
(attn-guard-captures{report=true}) instead of reading 0. They take the logical chain `attn.qk → … → attn.pv`, the linear ones an
`attn.recurrence`; both end in the tile dialect, which `lowering/` prints as Triton.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, scf, tensor
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.exceptions import PassFailedException

from attnc.dialect import attn
from attnc.dialect.tile import Tile
from attnc.passes.attn_autodiff import AttnAutodiffPass
from attnc.passes.attn_block_mask import AttnBlockMaskPass
from attnc.passes.attn_chunk import AttnChunkPass
from attnc.passes.attn_fuse import AttnFusePass
from attnc.passes.attn_guard_captures import AttnGuardCapturesPass
from attnc.passes.attn_instrument import AttnInstrumentPass
from attnc.passes.attn_split import AttnSplitPass
from attnc.passes.attn_tile import AttnTilePass
from attnc.passes.convert_attn_to_tile import ConvertAttnToTilePass


def make_context() -> Context:
    """A context with every dialect attnc's IR uses."""
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, math.Math, scf.Scf, tensor.Tensor, attn.Attn, Tile):
        ctx.load_dialect(dialect)
    return ctx


@dataclass(frozen=True)
class Pipeline:
    """Passes in order, and which pass's output each user-visible stage is."""

    name: str
    passes: tuple[ModulePass, ...]
    stages: Mapping[str, str]  # stage name → the flag of the pass after which it is recorded

    def spec(self) -> str:
        """The `attn-opt -p` spelling of this pipeline."""
        return ",".join(str(p.pipeline_pass_spec()) for p in self.passes)

    def run(self, module: ModuleOp, observe: Mapping[str, Callable[[ModuleOp], None]] | None = None) -> dict[str, str]:
        """Applies the passes to `module` in place; returns the IR text of each stage ("attn" is the input).

        `observe` maps a pass flag to a function that reads the module right after that pass.
        """
        recorded = {"attn": str(module) + "\n"}
        wanted = {flag: stage for stage, flag in self.stages.items()}
        observers = observe or {}

        def after_each(done: ModulePass | None, op: ModuleOp, _next: ModulePass | None) -> None:
            if done is None:
                return
            op.verify()
            if done.name in wanted:
                recorded[wanted[done.name]] = str(op) + "\n"
            if done.name in observers:
                observers[done.name](op)

        PassPipeline(self.passes, after_each).apply(make_context(), module)
        return recorded


def softmax(
    target: str, tile: Mapping[str, int] | None = None, debug: bool = False, instrument: bool = False
) -> Pipeline:
    """Softmax-style attention, forward only: fuse, classify the mask, allow split decoding, guard captured reads, tile, lower."""
    if instrument and target == "cpu":
        raise ValueError("instrument: Proton's scopes need a GPU target; Triton's interpreter cannot run them")
    return Pipeline(
        "softmax",
        (
            AttnFusePass(),
            AttnBlockMaskPass(),
            AttnSplitPass(),
            AttnGuardCapturesPass(report=debug),
            AttnTilePass(target=target, **(tile or {})),
            *((AttnInstrumentPass(),) if instrument else ()),
            ConvertAttnToTilePass(),
        ),
        {"flash": "attn-tile", "tile": "convert-attn-to-tile"},
    )


def softmax_backward(
    target: str,
    grad_captures: tuple[int, ...] | None = None,
    tile: Mapping[str, int] | None = None,
    debug: bool = False,
) -> Pipeline:
    """Softmax-style attention with its derived backward (dQ, dK/dV and captured tensors' gradients).

    `grad_captures` names the captured tensors that get gradients (None: every float capture).
    """
    return Pipeline(
        "softmax-backward",
        (
            AttnFusePass(),
            AttnBlockMaskPass(),
            AttnAutodiffPass(strict=True, captures=grad_captures),
            AttnSplitPass(),
            AttnGuardCapturesPass(report=debug),
            AttnTilePass(target=target, **(tile or {})),
            ConvertAttnToTilePass(),
        ),
        {"flash": "attn-tile", "tile": "convert-attn-to-tile"},
    )


def linear(target: str, chunk_size: int = 64) -> Pipeline:
    """Linear attention, forward only: chunk the recurrence, tile, lower."""
    return Pipeline(
        "linear",
        (AttnChunkPass(chunk_size=chunk_size), AttnTilePass(target=target), ConvertAttnToTilePass()),
        {"chunk": "attn-tile", "tile": "convert-attn-to-tile"},
    )


def linear_backward(target: str, chunk_size: int = 64) -> Pipeline:
    """Linear attention with its backward kernels."""
    return Pipeline(
        "linear-backward",
        (
            AttnChunkPass(chunk_size=chunk_size),
            AttnAutodiffPass(),
            AttnTilePass(target=target),
            ConvertAttnToTilePass(),
        ),
        {"chunk": "attn-tile", "tile": "convert-attn-to-tile"},
    )


PIPELINES: dict[str, Callable[[str], Pipeline]] = {
    "softmax": softmax,
    "softmax-backward": softmax_backward,
    "linear": linear,
    "linear-backward": linear_backward,
}


def backward_problem(module: ModuleOp) -> str | None:
    """Why attn-autodiff cannot derive the backward of `module`'s attention (a message naming the part), or None.

    Runs attn-fuse and attn-autodiff{strict} on `module`, which is changed in place.
    """
    ctx = make_context()
    AttnFusePass().apply(ctx, module)
    try:
        AttnAutodiffPass(strict=True).apply(ctx, module)
    except PassFailedException as e:
        return str(e)
    return None


__all__ = [
    "PIPELINES",
    "Pipeline",
    "backward_problem",
    "linear",
    "linear_backward",
    "make_context",
    "softmax",
    "softmax_backward",
]
