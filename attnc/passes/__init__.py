"""The attnc passes, by flag. `attn-opt --help` lists them with their options; pipeline.py runs them in order."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.passes import ModulePass


def _attn_fuse() -> type[ModulePass]:
    from attnc.passes.attn_fuse import AttnFusePass

    return AttnFusePass


def _attn_block_mask() -> type[ModulePass]:
    from attnc.passes.attn_block_mask import AttnBlockMaskPass

    return AttnBlockMaskPass


def _attn_guard_captures() -> type[ModulePass]:
    from attnc.passes.attn_guard_captures import AttnGuardCapturesPass

    return AttnGuardCapturesPass


def _attn_tile() -> type[ModulePass]:
    from attnc.passes.attn_tile import AttnTilePass

    return AttnTilePass


def _convert_attn_to_tile() -> type[ModulePass]:
    from attnc.passes.convert_attn_to_tile import ConvertAttnToTilePass

    return ConvertAttnToTilePass


def _attn_autodiff() -> type[ModulePass]:
    from attnc.passes.attn_autodiff import AttnAutodiffPass

    return AttnAutodiffPass


def _attn_split() -> type[ModulePass]:
    from attnc.passes.attn_split import AttnSplitPass

    return AttnSplitPass


def _attn_instrument() -> type[ModulePass]:
    from attnc.passes.attn_instrument import AttnInstrumentPass

    return AttnInstrumentPass


def _attn_chunk() -> type[ModulePass]:
    from attnc.passes.attn_chunk import AttnChunkPass

    return AttnChunkPass


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "attn-fuse": _attn_fuse,
    "attn-block-mask": _attn_block_mask,
    "attn-split": _attn_split,
    "attn-guard-captures": _attn_guard_captures,
    "attn-tile": _attn_tile,
    "convert-attn-to-tile": _convert_attn_to_tile,
    "attn-autodiff": _attn_autodiff,
    "attn-chunk": _attn_chunk,
    "attn-instrument": _attn_instrument,
}
