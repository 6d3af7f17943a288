"""attn-opt on malformed input: one diagnostic and exit 1, or output; never a traceback.

The fuzz test mutates the lit inputs (truncation, deleted and duplicated lines, swapped
tokens, random and non-UTF-8 bytes) and runs each through a pipeline in-process.
ATTNC_FUZZ_N sets the number of mutations (150 by default; a few thousand locally).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
from pathlib import Path

import pytest

from attnc.tools.opt import main

LIT = Path(__file__).resolve().parents[1] / "lit"
SOURCES = sorted(p for p in LIT.rglob("*.mlir") if p.parent.name != "frontend")
FULL = "attn-fuse,attn-block-mask,attn-split,attn-guard-captures,attn-tile,convert-attn-to-tile"
PIPELINES: list[list[str]] = [
    [],
    ["-p", FULL, "-t", "triton"],
    ["-p", "convert-attn-to-tile"],
    ["-t", "triton"],
    [
        "-p",
        "attn-fuse,attn-block-mask,attn-autodiff,attn-split,attn-guard-captures,attn-tile,convert-attn-to-tile",
        "-t",
        "triton",
    ],
    ["-p", "attn-chunk,attn-tile,convert-attn-to-tile", "-t", "triton"],
]
TOKEN = re.compile(rb"%[\w.$-]+|\^\w+|[\w.]+|[^\s\w]")
FUZZ_N = int(os.environ.get("ATTNC_FUZZ_N", "150"))


def run_opt(argv: list[str]) -> tuple[int, str, str]:
    """attn-opt in-process: its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            status = 0
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def _mutate(rng: random.Random, source: bytes) -> bytes:
    lines = source.split(b"\n")
    tokens = [m.group() for m in TOKEN.finditer(source)]
    match rng.randrange(8):
        case 0:
            return source[: rng.randrange(len(source) + 1)]
        case 1:
            del lines[rng.randrange(len(lines))]
        case 2:
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines)), lines[i])
        case 3:
            i, j = sorted(rng.sample(range(len(lines)), 2))
            lines[i], lines[j] = lines[j], lines[i]
        case 4 | 5:
            spans = list(TOKEN.finditer(source))
            m = rng.choice(spans)
            return source[: m.start()] + rng.choice(tokens) + source[m.end() :]
        case 6:
            at = rng.randrange(len(source) + 1)
            return source[:at] + rng.randbytes(rng.randrange(1, 8)) + source[at:]
        case _:
            at = rng.randrange(len(source))
            return source[:at] + source[at + rng.randrange(1, 40) :]
    return b"\n".join(lines)


def _check(tmp_path: Path, name: str, text: bytes, argv: list[str]) -> int:
    path = tmp_path / name
    path.write_bytes(text)
    status, out, err = run_opt([str(path), "--split-input-file", *argv])
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    assert status in (0, 1), (argv, status, err)
    if status:
        assert err.startswith("attn-opt: error: "), err
    return status


def test_opt_fuzz_mutated_lit_inputs_give_diagnostics(tmp_path: Path) -> None:
    """Seeded mutations of the lit inputs end in output or one diagnostic, never a traceback."""
    rng = random.Random(13)
    counts = [0, 0]
    for i in range(FUZZ_N):
        source = rng.choice(SOURCES)
        text = _mutate(rng, source.read_bytes())
        counts[_check(tmp_path, f"m{i}.mlir", text, rng.choice(PIPELINES))] += 1
    assert counts[1], "no mutation was rejected: the mutations are too mild"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
@pytest.mark.parametrize("argv", [[], ["-p", FULL, "-t", "triton"]], ids=["plain", "full"])
def test_opt_lit_inputs_as_they_are(source: Path, argv: list[str]) -> None:
    """Each lit input, unmodified, through attn-opt: output or one diagnostic."""
    for split in ([], ["--split-input-file"]):
        status, _, err = run_opt([str(source), *split, *argv])
        assert "Traceback" not in err and "internal error" not in err, err
        assert status in (0, 1), err


def _error(tmp_path: Path, text: str | bytes, argv: tuple[str, ...] = ()) -> str:
    path = tmp_path / "in.mlir"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    status, out, err = run_opt([str(path), *argv])
    assert status == 1, (out, err)
    assert err.startswith("attn-opt: error: ") and "Traceback" not in err, err
    return err.removeprefix("attn-opt: error: ")


def test_opt_empty_input(tmp_path: Path) -> None:
    """An empty file is a parse error with its position."""
    assert _error(tmp_path, "").startswith(f"{tmp_path / 'in.mlir'}:1:1")


def test_opt_non_utf8_input(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are a parse error that names the byte."""
    err = _error(tmp_path, b"func.func @f() {\n  \xff\xfe\n}\n")
    assert re.match(r".*in\.mlir:2:3", err) and "invalid UTF-8 byte 0xff" in err, err


def test_opt_deep_nesting(tmp_path: Path) -> None:
    """Nesting deeper than the parser's recursion is a parse error, not a RecursionError."""
    assert "nesting too deep" in _error(tmp_path, "builtin.module {" * 2000 + "}" * 2000)


def test_opt_literal_too_wide_for_its_type(tmp_path: Path) -> None:
    """An f32 bit pattern given to an f16 constant is a parse error."""
    text = "func.func @f() {\n  %c = arith.constant 0xff800000 : f16\n  func.return\n}\n"
    assert "literal does not fit its type" in _error(tmp_path, text)


def test_opt_missing_file_and_directory(tmp_path: Path) -> None:
    """A missing input file or a directory cannot be read."""
    for path, reason in [(tmp_path / "none.mlir", "No such file"), (tmp_path, "Is a directory")]:
        status, _, err = run_opt([str(path)])
        assert status == 1 and err.startswith(f"attn-opt: error: {path}: cannot read: {reason}"), err


def test_opt_malformed_pass_spec(tmp_path: Path) -> None:
    """An unterminated pass option is a diagnostic with its position in the spec."""
    err = _error(tmp_path, "", ("-p", "attn-tile{target="))
    assert "pass-pipeline:1:18" in err, err


def test_opt_unterminated_string_fails_at_once(tmp_path: Path) -> None:
    """An unterminated string before more text is a parse error, not an exponential regex match."""
    text = '%a = "test.op"() {s = "' + "abc " * 10 + '} : () -> ()\n"'
    assert "closing string literal" in _error(tmp_path, text)


def test_opt_use_before_definition(tmp_path: Path) -> None:
    """A value used before its definition fails verification, before any lowering reads it."""
    text = """\
tile.func @k(%x: !tile.ptr<f32>) constexprs {BLOCK = 64} {
  %offs = arith.addi %lane, %lane : tensor<64xi32>
  %lane = tile.arange ["BLOCK"] : tensor<64xi32>
  tile.return
}
"""
    err = _error(tmp_path, text, ("-t", "triton"))
    assert err == "'arith.addi' op operand #0 does not dominate this use\n", err


def test_opt_use_from_another_region(tmp_path: Path) -> None:
    """A loop body that reads a value defined after the loop fails verification."""
    text = """\
func.func @f(%n: index) {
  %c0 = arith.constant 0 : index
  scf.for %i = %c0 to %n step %c0 {
    %inner = arith.addi %i, %late : index
  }
  %late = arith.constant 1 : index
  func.return
}
"""
    assert "'arith.addi' op operand #1 does not dominate this use" in _error(tmp_path, text)


def test_opt_unlowered_ir_to_triton(tmp_path: Path) -> None:
    """-t triton on IR that convert-attn-to-tile has not lowered names the pass to run."""
    text = "func.func @f() {\n  func.return\n}\n"
    err = _error(tmp_path, text, ("-t", "triton"))
    assert err.startswith("'func.func' op is not tile IR") and "run convert-attn-to-tile first" in err, err


def test_opt_unsigned_compare_is_refused() -> None:
    """attn-block-mask.mlir's @unsigned mask through the full pipeline: refused, naming arith.cmpi."""
    status, _, err = run_opt(
        [str(LIT / "passes" / "attn-block-mask.mlir"), "--split-input-file", "-p", FULL, "-t", "triton"]
    )
    assert status == 1, err
    assert "cannot lower 'arith.cmpi' with unsigned predicate uge" in err, err


def test_opt_if_without_yield(tmp_path: Path) -> None:
    """An scf.if branch that yields nothing for its result fails verification, not the emitter."""
    text = """\
tile.func @k(%x: f32) {
  %ten = arith.constant 10.0 : f32
  %big = arith.cmpf ogt, %x, %ten : f32
  %r = scf.if %big -> (f32) {
    %neg = arith.negf %x : f32
  } else {
    scf.yield %x : f32
  }
  tile.return
}
"""
    err = _error(tmp_path, text, ("-t", "triton"))
    assert err == "'scf.if' op expected its regions to yield (f32), but got ()\n", err


def test_opt_forward_reference_into_a_region(tmp_path: Path) -> None:
    """A forward reference to a value of an inner region, which xDSL leaves unresolved: a diagnostic."""
    lines = (LIT / "lowering" / "control-flow.mlir").read_text().splitlines()
    assert lines[47].strip().startswith("%c1 =") and lines[52].strip().startswith("%next =")
    lines[47], lines[52] = lines[52], lines[47]
    assert "op operand #2 is used but never defined" in _error(tmp_path, "\n".join(lines), ("--split-input-file",))
