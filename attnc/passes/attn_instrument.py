"""attn-instrument: time the stages of each attention kernel with Proton's in-kernel scopes.

Marks every `attn.flash` with `instrument`; convert-attn-to-tile then brackets the stages of its
forward kernels (dense, packed, cached, paged and the decoding splits) with `tile.scope_enter` /
`tile.scope_exit`, which the triton target prints as `triton.profiler.language` calls
(`pl.enter_scope("qk")`):

    load_k, qk, score_mod, mask, update, load_v, pv   in each key block
    epilogue                                          the normalizer's finalize and the stores

Proton's instrumentation backend records a timestamp at each one (`proton.start(...,
backend="instrumentation")`). Nothing else runs it: kernels of a module this pass has not
touched carry no scope. The scopes do not fence the software pipeliner, which may hoist a
block's loads into the previous iteration: read `load_k` and `load_v` as issue time.
The backward and the linear-attention chunk kernels are not instrumented yet.

Precondition: `attn.flash` ops (run attn-fuse first), before convert-attn-to-tile.

Before: `%o, %lse = attn.flash ... {tile = #attn.tile<128x64>, ...}`
After:  `%o, %lse = attn.flash ... {tile = #attn.tile<128x64>, instrument, ...}`
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, UnitAttr
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from attnc.dialect import attn


@dataclass(frozen=True)
class AttnInstrumentPass(ModulePass):
    """Marks each attn.flash for Proton scopes around its forward kernels' stages (loads, QK, mods, update, PV)."""

    name = "attn-instrument"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        found = False
        for flash in op.walk():
            if isinstance(flash, (attn.QKOp, attn.PVOp)):
                raise PassFailedException("attn-instrument requires a fused attention op; run attn-fuse first")
            if isinstance(flash, attn.RecurrenceOp | attn.RecurrentChunkOp):
                raise PassFailedException("attn-instrument: linear attention's chunk kernels are not instrumented yet")
            if isinstance(flash, attn.FlashOp):
                flash.attributes["instrument"] = UnitAttr()
                found = True
        if not found:
            raise PassFailedException("attn-instrument found no attn.flash to instrument")


__all__ = ["AttnInstrumentPass"]
