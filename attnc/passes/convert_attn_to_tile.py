"""convert-attn-to-tile: lower each tiled attention op into tile-dialect kernels.

The kernels come from the builders in attnc/conversion/, each generic in its block
sizes. An `attn.flash` becomes two (flash_kernels.py), or only the forward when it reads
packed, cached or paged sequences (`layout`), which classifies its key blocks itself; with
a `merge` region (attn-split) also `<fn>_fwd_split` and `<fn>_combine`
(flash_combine_kernel.py), the two kernels of split decoding:

- `<fn>_block_table` classifies one (query block, key block) tile per program as
  empty (0), partial (1) or full (2): by the symbolic `classify` region for an
  "affine" mask (a few scalar ops per tile), by the sequence bounds alone for
  "none", or by evaluating the mask over the tile's elements for "runtime". The
  runtime compacts the classes into per-row lists of full and partial key blocks.
- `<fn>_fwd` is the flash forward (FlashAttention-2): one program per query block
  and (batch, head); it walks the full key blocks without any mask, then the
  partial ones with the mask and the sequence bounds, running the normalizer's
  update per tile and its finalize at the end. Empty tiles are never visited.

An `attn.flash_grad` beside it adds `<fn>_bwd_dq` and `<fn>_bwd_dkdv`
(flash_backward_kernels.py; over packed sequences or a KV cache, flash_backward_sequences.py,
which classify their blocks themselves too).

A read of a captured tensor marked `attn.guard` (attn-guard-captures) becomes a load
masked by 0 <= index < size in the listed dimensions, the sizes kernel parameters
`cap{i}_size{j}`; with `attn.guard_report` a `tile.device_assert` precedes it and its
kernel is compiled with Triton's debug option. Gradient scatters listed in
`capture_site_guards`/`stat_site_guards` are masked alike.

An `attn.recurrent_chunk` (linear attention) becomes `<fn>_chunk_state` (the state
scan over chunks) and `<fn>_chunk_output` (per chunk, inter- plus intra-chunk
output), chunk_kernels.py. A vector gate adds `<fn>_chunk_cumsum` before the scan
and `<fn>_chunk_scores` after it, and has an output kernel of its own
(chunk_vector_kernels.py). With `backward` set, `<fn>_chunk_state_grad` (the reverse
scan of the state's gradient) and `<fn>_chunk_grad` (dq, dk, dv per chunk) follow
(chunk_backward_kernels.py); a vector gate has `<fn>_chunk_dv` and `<fn>_chunk_dqkg`
in place of the latter (chunk_vector_backward_kernels.py).

Precondition: per function, one `attn.flash` (and its `attn.flash_grad`, if any) with
`block_mask` and `tile` set, or one `attn.recurrent_chunk` with its key and value
blocks set (run attn-fuse, attn-block-mask and attn-tile first; attn-chunk and
attn-tile for a recurrence).

Before:
```mlir
%o, %lse = attn.flash %q, %k, %v score_mod {...} mask_mod {...} update {...} finalize {...}
    classify {...} {block_mask = "affine", tile = #attn.tile<128x64>, ...} : ...
```
After (abridged):
```mlir
tile.func @attention_block_table(...) constexprs {BLOCK_M = 128, BLOCK_N = 64} { ... }
tile.func @attention_fwd(%q_ptr: !tile.ptr<bf16>, ...) constexprs {BLOCK_M = 128, BLOCK_N = 64, ...} {
  %pid_m = tile.program_id 0 : i32
  ...
  %acc_1, %m_1, %l_1 = scf.for %i = %c0 to %n_full step %c1 iter_args(...) { ... tile.dot ... }
  ...
}
```
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from attnc.conversion.flash_backward_kernels import build_dkdv_kernel, build_dq_kernel
from attnc.conversion.flash_backward_sequences import build_dkdv_sequences_kernel, build_dq_sequences_kernel
from attnc.conversion.flash_combine_kernel import COMBINE_ROWS, build_combine_kernel
from attnc.conversion.flash_kernels import build_block_table_kernel, build_forward_kernel
from attnc.dialect import attn
from attnc.dialect.attn_grad import FlashGradOp
from attnc.dialect.tile import FuncOp as TileFuncOp


@dataclass(frozen=True)
class ConvertAttnToTilePass(ModulePass):
    """Lowers each tiled attn.flash (with its attn.flash_grad) and attn.recurrent_chunk into tile-dialect kernels."""

    name = "convert-attn-to-tile"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        funcs = [f for f in op.body.block.ops if isinstance(f, func.FuncOp)]
        for fn in funcs:
            recurrent = [o for o in fn.walk() if isinstance(o, attn.RecurrentChunkOp)]
            if recurrent:
                _lower_recurrent(op, fn, recurrent)
                continue
            flashes = [o for o in fn.walk() if isinstance(o, attn.FlashOp)]
            if not flashes:
                continue
            if len(flashes) > 1:
                raise PassFailedException(
                    f"convert-attn-to-tile expects one attn.flash per function, but @{fn.sym_name.data} has {len(flashes)}"
                )
            flash = flashes[0]
            if flash.block_mask is None:
                raise PassFailedException("convert-attn-to-tile requires block_mask; run attn-block-mask first")
            if flash.tile is None:
                raise PassFailedException("convert-attn-to-tile requires tile sizes; run attn-tile first")
            name = fn.sym_name.data
            # packed, cached and paged sequences classify their blocks inside the forward
            table = [build_block_table_kernel(flash, f"{name}_block_table")] if flash.layout is None else []
            kernels = [*table, build_forward_kernel(flash, f"{name}_fwd")]
            if flash.merge.blocks and flash.layout is not None and flash.layout.data in ("cache", "paged"):
                # split decoding: the split forward and its combine
                kernels.append(build_forward_kernel(flash, f"{name}_fwd_split", split=True))
                kernels.append(build_combine_kernel(flash, f"{name}_combine", COMBINE_ROWS))
            for grad in [o for o in fn.walk() if isinstance(o, FlashGradOp)]:
                kernels += _backward_kernels(grad, name)
            for kernel in kernels:
                op.body.block.insert_op_before(kernel, fn)
            fn.detach()
            fn.erase()
        for leftover in op.walk():
            if leftover.dialect_name() == "attn":
                raise PassFailedException(f"convert-attn-to-tile cannot lower '{leftover.name}'; run attn-fuse first")


def _backward_kernels(grad: FlashGradOp, name: str) -> list[TileFuncOp]:
    """dQ and dK/dV of an attn.flash_grad: walking block tables when dense, sequences otherwise."""
    if grad.launch("dq") is None:
        raise PassFailedException("convert-attn-to-tile requires tile sizes; run attn-tile first")
    if grad.layout is None:
        return [build_dq_kernel(grad, f"{name}_bwd_dq"), build_dkdv_kernel(grad, f"{name}_bwd_dkdv")]
    if grad.layout.data == "paged":
        raise PassFailedException("convert-attn-to-tile cannot lower the backward of a paged KV cache")
    return [build_dq_sequences_kernel(grad, f"{name}_bwd_dq"), build_dkdv_sequences_kernel(grad, f"{name}_bwd_dkdv")]


def _lower_recurrent(module: ModuleOp, fn: func.FuncOp, ops: list[attn.RecurrentChunkOp]) -> None:
    from attnc.conversion import chunk_vector_kernels
    from attnc.conversion.chunk_kernels import build_output_kernel, build_state_kernel

    if len(ops) > 1:
        raise PassFailedException(
            f"convert-attn-to-tile expects one attn.recurrent_chunk per function, but @{fn.sym_name.data} has {len(ops)}"
        )
    rec = ops[0]
    if "block_k" not in rec.attributes:
        raise PassFailedException("convert-attn-to-tile requires tile sizes; run attn-tile first")
    name = fn.sym_name.data
    kernels = []
    if rec.gate.data == "vector":
        kernels += [
            chunk_vector_kernels.build_cumsum_kernel(rec, f"{name}_chunk_cumsum"),
            build_state_kernel(rec, f"{name}_chunk_state"),
            chunk_vector_kernels.build_scores_kernel(rec, f"{name}_chunk_scores"),
            chunk_vector_kernels.build_output_kernel(rec, f"{name}_chunk_output"),
        ]
    else:
        kernels += [build_state_kernel(rec, f"{name}_chunk_state"), build_output_kernel(rec, f"{name}_chunk_output")]
    if rec.backward is not None:
        from attnc.conversion.chunk_backward_kernels import build_grad_kernel, build_state_grad_kernel

        kernels.append(build_state_grad_kernel(rec, f"{name}_chunk_state_grad"))
        if rec.gate.data == "vector":
            from attnc.conversion import chunk_vector_backward_kernels as vector_grads

            kernels += [
                vector_grads.build_dv_kernel(rec, f"{name}_chunk_dv"),
                vector_grads.build_dqkg_kernel(rec, f"{name}_chunk_dqkg"),
            ]
        else:
            kernels.append(build_grad_kernel(rec, f"{name}_chunk_grad"))
    for kernel in kernels:
        module.body.block.insert_op_before(kernel, fn)
    fn.detach()
    fn.erase()


__all__ = ["ConvertAttnToTilePass"]
