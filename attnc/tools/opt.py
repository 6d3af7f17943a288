"""attn-opt: the mlir-opt of attnc, a small xDSLOptMain subclass.

attn-opt f.mlir -p 'attn-fuse,attn-block-mask,attn-tile{block-m=64},convert-attn-to-tile' -t triton
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import DiagnosticException
from xdsl.xdsl_opt_main import xDSLOptMain

from attnc.passes import PASSES


def _print_triton(module: ModuleOp, output: IO[str]) -> None:
    from attnc.lowering.triton import print_triton

    print_triton(module, output)


def _attn_dialect():
    from attnc.dialect.attn import Attn

    return Attn


def _tile_dialect():
    from attnc.dialect.tile import Tile

    return Tile


def pass_help() -> str:
    """One entry per attnc pass: its flag, the first line of its docstring, its options and defaults."""
    lines = ["attnc passes (options in braces, e.g. attn-tile{block-m=64 block-n=64}):"]
    for flag, factory in PASSES.items():
        cls = factory()
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {flag:22} {summary}")
        for field in dataclasses.fields(cls):
            option = field.name.replace("_", "-")
            default = f'"{field.default}"' if isinstance(field.default, str) else field.default
            lines.append(f"      {option}={default}")
    lines.append("")
    lines.append("attnc pipelines (what the Python API runs; -p takes the spelling shown, shown for cuda:90):")
    from attnc.pipeline import PIPELINES

    for name, make in PIPELINES.items():
        summary = (make.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {name:22} {summary}")
        lines.append(f"      -p '{make('cuda:90').spec()}'")
    return "\n".join(lines)


class AttnOptMain(xDSLOptMain):
    """xDSL's opt driver with the attn and tile dialects, the attnc passes and the triton target."""

    def register_all_dialects(self) -> None:
        super().register_all_dialects()
        self.ctx.register_dialect("attn", _attn_dialect)
        self.ctx.register_dialect("tile", _tile_dialect)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        for flag, factory in PASSES.items():
            self.register_pass(flag, factory)

    def register_all_targets(self) -> None:
        super().register_all_targets()
        self.available_targets["triton"] = _print_triton

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        plain_help = arg_parser.format_help
        # Imported only for --help: listing the options loads every pass module.
        arg_parser.format_help = lambda: plain_help() + "\n" + pass_help() + "\n"


def main(args: Sequence[str] | None = None) -> None:
    try:
        driver = AttnOptMain(description="attnc modular optimizer driver", args=args)
    except ValueError as e:  # unknown pass names and bad pass options
        print(f"attn-opt: error: {e}", file=sys.stderr)
        sys.exit(1)
    try:
        driver.run()
    except DiagnosticException as e:  # a pass that cannot handle its input, or IR that does not verify
        print(f"attn-opt: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
