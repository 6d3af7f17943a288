"""attn-opt: the mlir-opt of attnc, a small xDSLOptMain subclass.

attn-opt f.mlir -p 'attn-fuse,attn-block-mask,attn-tile{block-m=64},convert-attn-to-tile' -t triton
attn-opt f.mlir --pass-pipeline='builtin.module(attn-fuse,attn-tile{block-m=64})' --time-passes

`--help` lists attnc's passes and pipelines first; `--list-passes` every pass xDSL registers too.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from collections.abc import Sequence
from typing import IO, NoReturn

from xdsl.dialects import scf
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, Region, SSAValue
from xdsl.irdl.dominance import DominanceInfo
from xdsl.parser import Parser
from xdsl.parser.core import ForwardDeclaredValue
from xdsl.passes import ModulePass
from xdsl.traits import IsolatedFromAbove
from xdsl.utils.exceptions import (
    ArgSpecParseError,
    DiagnosticException,
    ParseError,
    VerifyException,
)
from xdsl.utils.lexer import Input, Span
from xdsl.utils.mlir_lexer import MLIRLexer
from xdsl.xdsl_opt_main import xDSLOptMain

from attnc.passes import PASSES

# xDSL 0.74 matches string literals with `(x+|y)*"`, which backtracks exponentially on
# an unterminated string; one character (or escape) per step matches the same strings
# and fails in linear time.
MLIRLexer._unescaped_characters_regex = re.compile(  # pyright: ignore[reportPrivateUsage]
    r'"(?:[^"\\\n\v\f]|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*"'
)


def verify_dominance(op: Operation) -> None:
    """Check that every operand's definition dominates its use; xDSL 0.74 does not.

    A value is visible after its op in its block, in the blocks that block dominates,
    and in the regions nested in later ops, up to an op isolated from above.
    """
    for region in op.regions:
        _verify_region(region, set[SSAValue]())


def _verify_region(region: Region, outer: set[SSAValue]) -> None:
    dominance = DominanceInfo(region) if len(region.blocks) > 1 else None
    for block in region.blocks:
        visible = outer | set(block.args)
        for other in region.blocks:
            if dominance is not None and dominance.strictly_dominates(other, block):
                visible |= {*other.args, *(r for o in other.ops for r in o.results)}
        for op in block.ops:
            for i, operand in enumerate(op.operands):
                if operand not in visible:
                    raise VerifyException(f"'{op.name}' op operand #{i} does not dominate this use")
            inner = set[SSAValue]() if op.has_trait(IsolatedFromAbove) else visible
            for nested in op.regions:
                _verify_region(nested, inner)
            visible.update(op.results)


def verify_if_yields(op: Operation) -> None:
    """Check that each `scf.if` region yields its results' types; xDSL 0.74 does not."""
    for nested in op.walk():
        if not isinstance(nested, scf.IfOp):
            continue
        expected = [r.type for r in nested.results]
        for region in nested.regions:
            if not region.blocks or region.block.last_op is None:
                continue
            got = [v.type for v in region.block.last_op.operands]
            if got != expected:
                raise VerifyException(
                    f"'scf.if' op expected its regions to yield ({', '.join(map(str, expected))}), "
                    f"but got ({', '.join(map(str, got))})"
                )


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

    def register_all_frontends(self) -> None:
        super().register_all_frontends()
        self.available_frontends["mlir"] = self.parse_mlir

    def get_input_stream(self) -> tuple[IO[bytes], str]:
        """The input file, read as MLIR whatever its extension (as mlir-opt does)."""
        try:
            stream, _ = super().get_input_stream()
        except OSError as e:
            raise InputError(f"{self.get_input_name()}: cannot read: {e.strerror}") from e
        return stream, "mlir"

    def parse_mlir(self, stream: IO[bytes]) -> ModuleOp:
        """xDSL's MLIR frontend, with its Python errors on bad input turned into ParseErrors."""
        source = stream.read()
        name = self.get_input_name()
        try:
            text = source.decode()
        except UnicodeDecodeError as e:
            span = Span(e.start, e.end, Input(source, name))
            raise ParseError(span, f"invalid UTF-8 byte 0x{source[e.start]:02x}") from e
        parser = Parser(self.ctx, text, name)
        try:
            module = parser.parse_module(not self.args.no_implicit_module)
        except OverflowError:  # xDSL packs a literal into its type without a range check
            parser.raise_error("literal does not fit its type")
        except RecursionError:
            parser.raise_error("nesting too deep")
        # xDSL leaves a forward reference to a value of an inner region unresolved.
        for op in module.walk():
            for i, operand in enumerate(op.operands):
                if isinstance(operand, ForwardDeclaredValue):
                    raise VerifyException(f"'{op.name}' op operand #{i} is used but never defined")
        return module

    def setup_pipeline(self) -> None:
        """xDSL's pipeline, verifying dominance and scf.if's yields wherever xDSL verifies the module, from
        `-p` or mlir-opt's `--pass-pipeline`; `--time-passes` times each pass (not the verification)."""
        if self.args.pass_pipeline is not None:
            if self.args.passes:
                raise ValueError("give the passes once: -p or --pass-pipeline, not both")
            self.args.passes = unwrap_pipeline(self.args.pass_pipeline)
        # xDSL's own report goes to stdout, read as each pass runs: off for good, ours is on stderr
        self.timing = timing = self.args.time_passes
        self.args.time_passes = False
        super().setup_pipeline()
        verify = self.pipeline.callback
        self.pass_times: list[tuple[str, float]] = []
        started = [0.0]

        def callback(previous: ModulePass | None, module: ModuleOp, next_pass: ModulePass | None) -> None:
            if previous is not None and timing:
                self.pass_times.append((previous.name, time.perf_counter() - started[0]))
            if verify is not None:
                verify(previous, module, next_pass)
            if not self.args.disable_verify:
                verify_dominance(module)
                verify_if_yields(module)
            started[0] = time.perf_counter()

        self.pipeline = dataclasses.replace(self.pipeline, callback=callback)

    def run(self) -> None:
        if self.args.list_passes:
            print("\n".join(sorted(self.available_passes)))
            return
        super().run()
        if self.timing:
            print(time_report(self.pass_times), file=sys.stderr)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        for flag, factory in PASSES.items():
            self.register_pass(flag, factory)

    def register_all_targets(self) -> None:
        super().register_all_targets()
        self.available_targets["triton"] = _print_triton

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        for action in arg_parser._actions:  # pyright: ignore[reportPrivateUsage]
            if action.dest == "passes":  # xDSL lists its ~150 passes here: attnc's come first, above
                action.help = "comma-separated passes, options in braces (attnc's above; --list-passes: all)"
            if action.dest == "time_passes":
                action.help = "print each pass's wall time on stderr after the run"
        arg_parser.add_argument(
            "--pass-pipeline",
            help="mlir-opt's spelling of -p: 'builtin.module(attn-fuse,attn-tile{block-m=64})'",
        )
        arg_parser.add_argument("--list-passes", action="store_true", help="list every registered pass and exit")
        plain_help = arg_parser.format_help

        def help_text() -> str:
            # Imported only for --help: listing the options loads every pass module.
            usage = arg_parser.format_usage()
            return usage + "\n" + pass_help() + "\n\n" + plain_help().removeprefix(usage).lstrip("\n")

        arg_parser.format_help = help_text


def unwrap_pipeline(spec: str) -> str:
    """-p's spelling of an mlir-opt `--pass-pipeline`: `builtin.module(a,b{x=1})` (or `any(...)`) → `a,b{x=1}`."""
    text = spec.strip()
    for anchor in ("builtin.module(", "any("):
        if text.startswith(anchor):
            if not text.endswith(")"):
                raise ValueError(f"--pass-pipeline: '{spec}' opens '{anchor}' but does not close it")
            return unwrap_pipeline(text[len(anchor) : -1])
    return text


def time_report(times: list[tuple[str, float]]) -> str:
    """mlir-opt's execution time report: each pass's wall time and its share."""
    total = sum(seconds for _, seconds in times)
    lines = [
        "===" + "-" * 73 + "===",
        "... Execution time report ...".center(79).rstrip(),
        "===" + "-" * 73 + "===",
        f"  Total Execution Time: {total:.4f} seconds",
        "",
        "  ----Wall Time----  ----Name----",
    ]
    for name, seconds in times:
        share = 100.0 * seconds / total if total else 0.0
        lines.append(f"  {seconds:8.4f} ({share:5.1f}%)  {name}")
    lines.append(f"  {total:8.4f} (100.0%)  Total")
    return "\n".join(lines)


def option_spelling(message: str) -> str:
    """xDSL names pass options by their Python fields (`block_m`); help and the pass specs spell them `block-m`."""
    return re.sub(r'"([a-z0-9]+(?:_[a-z0-9]+)+)"', lambda m: '"' + m.group(1).replace("_", "-") + '"', message)


class InputError(Exception):
    """The input file cannot be read."""


def main(args: Sequence[str] | None = None) -> None:
    """Run attn-opt; every failure ends in one `attn-opt: error:` line and exit status 1."""
    try:
        driver = AttnOptMain(description="attnc modular optimizer driver", args=args)
    except (ValueError, ArgSpecParseError) as e:  # unknown or malformed pass specs
        _fail(option_spelling(str(e)))
    try:
        driver.run()
    except (ParseError, InputError, DiagnosticException) as e:
        # Bad input, IR that does not verify, a pass or the target refusing its input.
        _fail(str(e))
    except NotImplementedError as e:  # a known gap, named by the op
        _fail(f"not implemented: {e}")
    except OSError as e:  # the output file
        _fail(f"{e.filename}: {e.strerror}")
    except RecursionError:
        _fail("IR nested too deeply")
    except Exception as e:  # a bug in attnc: still one line, and a distinct status
        print(f"attn-opt: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)


def _fail(message: str) -> NoReturn:
    print(f"attn-opt: error: {message}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
