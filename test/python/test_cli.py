"""The `attnc` command line: compile to each kind of output, run on the CPU, user errors."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import attnc
from attnc.tools.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SMALL = "1,2,1,40,70,32,32"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "attnc-cache"))


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Runs `attnc argv`, expects a user error, returns its one message."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    messages = [line for line in err.splitlines() if line.startswith("attnc: error: ")]
    assert len(messages) == 1, err
    return messages[0].removeprefix("attnc: error: ")


def test_cli_compile_emit_attn_is_the_logical_ir(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--emit attn prints the frontend's IR, the same text the compiled variant records as its first stage."""
    argv = [
        "compile",
        str(EXAMPLES / "softcap.py"),
        "--shape",
        "2,4,2,128,128,64,64",
        "--emit",
        "attn",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for op in (
        "attn.qk",
        "attn.score_mod",
        "math.tanh",
        "attn.mask_mod",
        "attn.online_rowscale",
        "attn.pv",
    ):
        assert op in printed
    mods = runpy.run_path(str(EXAMPLES / "softcap.py"))
    shape = attnc.Shape(2, 4, 2, 128, 128, 64, 64)
    compiled = attnc.compile(mods["score_mod"], mods["mask_mod"], shape=shape, target="cuda:90")
    assert printed == compiled.ir("attn")


def test_cli_compile_emit_triton_to_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-o writes the stage to the file and nothing to stdout."""
    out = tmp_path / "alibi_kernel.py"
    assert main(["compile", str(EXAMPLES / "alibi.py"), "--emit", "triton", "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    source = out.read_text()
    assert "@triton.jit" in source and "tl.dot(" in source


def test_cli_compile_binary_needs_output(capsys: pytest.CaptureFixture[str]) -> None:
    """A cubin is not printed on stdout unless asked for with -o."""
    message = _error(capsys, ["compile", str(EXAMPLES / "causal.py"), "--emit", "cubin"])
    assert "binary" in message and "-o" in message


def test_cli_compile_binary_stage_must_fit_the_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """hsaco needs an AMD target; the mistake is reported before compiling."""
    message = _error(
        capsys,
        ["compile", str(EXAMPLES / "causal.py"), "--emit", "hsaco", "-o", "x.hsaco"],
    )
    assert message == "--emit hsaco needs a hip target, but --target is cuda:90"


@pytest.mark.parametrize(
    ("example", "dtype"), [("causal", "bf16"), ("alibi", "fp32"), ("retention", "fp32"), ("sinks", "fp16")]
)
def test_cli_run_cpu_matches_reference(example: str, dtype: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`attnc run` on the CPU shows the stages and passes its check against the float64 reference."""
    argv = [
        "run",
        str(EXAMPLES / f"{example}.py"),
        "--shape",
        SMALL,
        "--dtype",
        dtype,
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for stage in ("attn ", "flash ", "tile ", "triton "):
        assert f"\n  {stage}" in out
    assert "attn.qk -> " in out
    assert "rel error" in out and " ok" in out
    assert "time per call" in out


def test_cli_run_exits_1_on_a_wrong_result(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A result far from the reference fails the check with exit code 1."""

    def wrong_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **_: object) -> tuple[torch.Tensor, None]:
        return torch.ones(*q.shape[:3], v.shape[3], dtype=torch.float64), None

    monkeypatch.setattr(attnc, "attention_reference", wrong_reference)
    argv = [
        "run",
        str(EXAMPLES / "plain.py"),
        "--shape",
        SMALL,
        "--dtype",
        "fp32",
        "--device",
        "cpu",
    ]
    assert main(argv) == 1
    assert "FAILED" in capsys.readouterr().out


def test_cli_compile_backward_emits_the_gradient_kernels(capsys: pytest.CaptureFixture[str]) -> None:
    """--backward adds attn.flash_grad to the flash stage and the dQ, dK/dV kernels to the Triton source."""
    variant = str(EXAMPLES / "alibi.py")
    assert main(["compile", variant, "--backward", "--emit", "triton"]) == 0
    source = capsys.readouterr().out
    assert "def attention_fwd(" in source
    assert "def attention_bwd_dq(" in source and "def attention_bwd_dkdv(" in source
    assert "tl.atomic_add(" in source  # the slopes' gradient
    assert main(["compile", variant, "--backward", "--emit", "flash"]) == 0
    assert "attn.flash_grad" in capsys.readouterr().out
    assert main(["compile", variant, "--emit", "triton"]) == 0
    assert "_bwd_" not in capsys.readouterr().out


def test_cli_compile_backward_kernel_asm(capsys: pytest.CaptureFixture[str]) -> None:
    """--kernel backward_dq / backward_dkdv pick the kernel whose Triton IR is printed."""
    variant = str(EXAMPLES / "causal.py")
    printed = {}
    for kernel in ("forward", "backward_dq", "backward_dkdv"):
        assert main(["compile", variant, "--shape", SMALL, "--backward", "--emit", "ttir", "--kernel", kernel]) == 0
        printed[kernel] = capsys.readouterr().out
    assert "tt.func public @attention_bwd_dq(" in printed["backward_dq"]
    assert "tt.func public @attention_bwd_dkdv(" in printed["backward_dkdv"]
    assert "tt.func public @attention_fwd(" in printed["forward"]


def test_cli_compile_backward_kernel_needs_backward(capsys: pytest.CaptureFixture[str]) -> None:
    """A backward kernel without --backward is a usage error, reported before compiling."""
    message = _error(capsys, ["compile", str(EXAMPLES / "causal.py"), "--emit", "ttir", "--kernel", "backward_dq"])
    assert message == "--kernel backward_dq is a backward kernel; add --backward"


def test_compile_asm_backward_kernel_without_backward() -> None:
    """CompiledAttention.asm names the missing backward instead of failing on an empty kernel name."""
    shape = attnc.Shape(1, 2, 1, 40, 70, 32, 32)
    compiled = attnc.compile(None, None, shape=shape, target="cuda:90")
    with pytest.raises(ValueError, match="'backward_dkdv' exists only when compiled with backward=True"):
        compiled.asm("ttir", kernel="backward_dkdv")
    with pytest.raises(ValueError, match="unknown kernel 'dq'"):
        compiled.asm("ttir", kernel="dq")


def test_cli_run_backward_cpu_matches_autograd(capsys: pytest.CaptureFixture[str]) -> None:
    """`attnc run --backward` checks dq, dk, dv against float64 autograd through the reference."""
    argv = ["run", str(EXAMPLES / "causal.py"), "--device", "cpu", "--backward", "--dtype", "fp32"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "attn.flash -> attn.flash_grad" in out
    assert "attention_bwd_dq, attention_bwd_dkdv" in out
    backward = out[out.index("\nbackward\n") :]
    for grad in ("dq", "dk", "dv"):
        assert re.search(rf"\n  {grad} rel error +\d\.\d+e[-+]\d+  \(limit 1e-04\) ok\n", backward), backward
    assert "time per call" in backward


def test_cli_run_backward_exits_1_on_a_wrong_gradient(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gradient far from float64 autograd fails the check with exit code 1, the forward passing."""
    reference = attnc.attention_reference

    def doubled_reference(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, lse = reference(q, k, v, **kwargs)
        # Same value, twice the gradient: out + (out − out.detach()).
        return out + (out - out.detach()), lse

    monkeypatch.setattr(attnc, "attention_reference", doubled_reference)
    argv = ["run", str(EXAMPLES / "plain.py"), "--shape", SMALL, "--dtype", "fp32", "--device", "cpu", "--grad"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    result, backward = out.split("\nbackward\n")
    assert "rel error" in result and "FAILED" not in result
    assert backward.count("FAILED") == 3


def test_cli_backward_of_a_normalizer_that_cannot_be_derived(capsys: pytest.CaptureFixture[str]) -> None:
    """--backward with a normalizer whose weights read its running state (the tempered softmax example)
    is a clean error naming the part."""
    for command in ("compile", "run"):
        argv = [command, str(EXAMPLES / "tempered_softmax.py"), "--backward", "--shape", SMALL]
        if command == "run":
            argv += ["--device", "cpu"]
        message = _error(capsys, argv)
        assert "its update's probabilities read the running state" in message


def test_cli_backward_of_sigmoid_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """attnc run --backward checks the sigmoid normalizer's derived gradients against float64 autograd."""
    assert main(["run", str(EXAMPLES / "sigmoid.py"), "--backward", "--shape", SMALL, "--device", "cpu"]) == 0
    assert "backward" in capsys.readouterr().out


def test_cli_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    """A variant path that does not exist is named in the error."""
    assert _error(capsys, ["compile", "no/such/variant.py"]) == "no such variant file: no/such/variant.py"


def test_cli_file_without_mods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file defining neither score_mod nor mask_mod is an error naming the file."""
    variant = tmp_path / "typo.py"
    variant.write_text("def causal(b, h, q_idx, kv_idx):\n    return q_idx >= kv_idx\n")
    message = _error(capsys, ["compile", str(variant), "--emit", "attn"])
    assert message.startswith(f"{variant} defines neither score_mod nor mask_mod")


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (
            "1,2,3",
            "--shape must be 7 positive integers B,Hq,Hkv,Sq,Skv,D,Dv, but got '1,2,3'",
        ),
        (
            "1,2,2,64,64,64,x",
            "--shape must be 7 positive integers B,Hq,Hkv,Sq,Skv,D,Dv, but got '1,2,2,64,64,64,x'",
        ),
        ("1,4,3,64,64,64,64", "--shape: Hq (4) must be a multiple of Hkv (3)"),
        ("1,2,2,0,64,64,64", "--shape: Sq must be positive, but got 0"),
        ("1,2,2,64,64,8,64", "--shape: D must be between 16 and 256, but got 8"),
    ],
)
def test_cli_bad_shape(shape: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed or impossible --shape is reported in one line."""
    assert _error(capsys, ["compile", str(EXAMPLES / "causal.py"), "--shape", shape]) == expected


def test_cli_unknown_stage(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --emit lists the stages there are."""
    message = _error(capsys, ["compile", str(EXAMPLES / "causal.py"), "--emit", "sass"])
    assert message.startswith("unknown stage 'sass'; expected one of attn, flash, tile, triton")


def test_cli_trace_error_points_at_the_user_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mod that cannot be traced reports the user's file and line, without a traceback."""
    variant = tmp_path / "branchy.py"
    variant.write_text(
        "def mask_mod(b, h, q_idx, kv_idx):\n    if q_idx >= kv_idx:\n        return True\n    return False\n"
    )
    message = _error(capsys, ["compile", str(variant), "--emit", "attn"])
    assert message.startswith(f"{variant}:2:")


def test_cli_variant_that_raises_on_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A variant file whose own code raises is reported at its line, without attnc's traceback."""
    variant = tmp_path / "broken.py"
    variant.write_text("import math\n\nscale = math.sqrt(-1)\nscore_mod = None\n")
    message = _error(capsys, ["compile", str(variant), "--emit", "attn"])
    assert message == f"{variant}:3: importing the variant raised ValueError: math domain error"


def test_cli_unknown_attribute_of_a_traced_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An attribute a traced value lacks is a trace error at the user's line, not an AttributeError."""
    variant = tmp_path / "attr.py"
    variant.write_text("def score_mod(score, b, h, q_idx, kv_idx):\n    return score.softcapped\n")
    message = _error(capsys, ["compile", str(variant), "--emit", "attn"])
    assert message.startswith(f"{variant}:2:12: a traced value has no attribute `softcapped`")
    assert not hasattr(attnc.frontend.proxy.Proxy.__new__(attnc.frontend.proxy.Proxy), "softcapped")


def test_cli_console_entry_exit_status(tmp_path: Path) -> None:
    """`python -m attnc.tools.cli` exits 0 on success and 2 on a user error, printing no traceback."""
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "attnc.tools.cli",
            "compile",
            str(EXAMPLES / "prefix_lm.py"),
            "--emit",
            "attn",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "attn.mask_mod" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "attnc.tools.cli", "run", str(tmp_path / "missing.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith(f"attnc: error: no such variant file: {tmp_path / 'missing.py'}")
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("page", ["0", "16"])
def test_cli_run_decode_over_a_cache(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`attnc run --cache` decodes over a ragged KV cache (paged with --page-size) and checks the reference."""
    argv = ["run", str(EXAMPLES / "causal.py"), "--device", "cpu", "--shape", "2,4,2,3,70,32,32", "--dtype", "fp32"]
    argv += ["--cache", "--num-splits", "2"] + (["--page-size", page] if page != "0" else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cache_seqlens [70," in out and ("pages of 16" in out) == (page == "16")
    assert re.search(r"rel error +\S+ +\(limit 1e-04\) ok", out)


def test_cli_compile_serving_layouts(capsys: pytest.CaptureFixture[str]) -> None:
    """--layout compiles the serving form: the paged forward takes the page table; its combine cross-compiles."""
    assert main(["compile", str(EXAMPLES / "causal.py"), "--layout", "paged", "--page-size", "16"]) == 0
    source = capsys.readouterr().out
    assert "block_table_ptr" in source and "def attention_combine(" in source
    assert _error(capsys, ["compile", str(EXAMPLES / "causal.py"), "--layout", "paged"]).startswith(
        "--layout paged takes --page-size N"
    )
    assert _error(capsys, ["run", str(EXAMPLES / "causal.py"), "--page-size", "16"]) == (
        "--page-size and --num-splits go with --cache"
    )
