"""Rebuilding an attn region with a new block signature (shared by the attn passes)."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir import Attribute, Block, Region, SSAValue


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
