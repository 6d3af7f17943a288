"""attnc: compile an attention variant and look at every stage, or run it against the reference.

    attnc compile examples/softcap.py --shape 2,4,2,128,128,64,64 --emit triton
    attnc compile examples/causal.py --emit attn > causal.mlir
    attn-opt causal.mlir -p attn-fuse,attn-block-mask,attn-tile,convert-attn-to-tile -t triton
    attnc compile examples/causal.py --emit cubin -o causal.cubin
    attnc compile examples/alibi.py --backward --emit ptx --kernel backward_dq
    attnc run examples/alibi.py --device cpu
    attnc run examples/softcap.py --device cpu --backward
    attnc run examples/causal.py --device cpu --shape 2,8,2,4,300,64,64 --cache --page-size 16

A variant file is plain Python that defines `score_mod` and/or `mask_mod` at module
level (FlexAttention's signatures; either may be None) and optionally `normalizer`.
Tensors it keeps at module level (`slopes`, `document_id`) are moved to the run
device before its mods are called, so one file runs on the CPU and on a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import torch

import attnc
from attnc.frontend.api import MAX_HEAD_DIM, MIN_HEAD_DIM
from attnc.frontend.normalizer import Normalizer
from attnc.runtime.targets import Target
from attnc.tools.run_cache import run_cache

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
TARGETS = ("cuda:90", "cuda:80", "hip:gfx942", "hip:gfx90a", "cpu")
IR_STAGES = ("attn", "flash", "tile")
ASM_STAGES = {
    "ttir": ("cuda", "hip"),
    "ttgir": ("cuda", "hip"),
    "llir": ("cuda", "hip"),
    "ptx": ("cuda",),
    "cubin": ("cuda",),
    "amdgcn": ("hip",),
    "hsaco": ("hip",),
}
BINARY_STAGES = ("cubin", "hsaco")
EMITS = (*IR_STAGES, "triton", *ASM_STAGES)
FORWARD_KERNELS = ("forward", "block_table", "forward_split", "combine")
LAYOUTS = ("dense", "packed", "cache", "paged")
KERNELS = (*FORWARD_KERNELS, "backward_dq", "backward_dkdv")
SHAPE_FIELDS = "B,Hq,Hkv,Sq,Skv,D,Dv"
DEFAULT_SHAPE = {"compile": "2,4,2,128,128,64,64", "cpu": "1,2,2,77,133,64,64", "cuda": "4,16,16,2048,2048,128,128"}
# Relative error ‖out − ref‖ / ‖ref‖ above which `attnc run` fails.
TOLERANCE = {torch.bfloat16: 1e-2, torch.float16: 1e-2, torch.float32: 1e-4}
EXCERPT_LINES = 14


class UsageError(Exception):
    """A mistake on the command line or in the variant file: printed as `attnc: error: ...`, exit 2."""


# Errors that are the user's to fix; anything else is a bug in attnc and keeps its traceback.
USER_ERRORS = (UsageError, attnc.TraceError, ValueError, NotImplementedError, OSError)


@dataclass(frozen=True)
class Variant:
    """The mods a variant file defines."""

    path: Path
    module: ModuleType
    score_mod: Callable[..., Any] | None
    mask_mod: Callable[..., Any] | None
    normalizer: str | Normalizer


# ----- parsing the command line


def parse_shape(text: str) -> attnc.Shape:
    """`B,Hq,Hkv,Sq,Skv,D,Dv` → Shape, checked as attnc.attention would check the tensors."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 7 or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise UsageError(f"--shape must be 7 positive integers {SHAPE_FIELDS}, but got '{text}'")
    b, hq, hkv, sq, skv, d, dv = (int(p) for p in parts)
    for name, value in zip(SHAPE_FIELDS.split(","), (b, hq, hkv, sq, skv, d, dv)):
        if value <= 0:
            raise UsageError(f"--shape: {name} must be positive, but got {value}")
    if hq % hkv:
        raise UsageError(f"--shape: Hq ({hq}) must be a multiple of Hkv ({hkv})")
    for name, dim in (("D", d), ("Dv", dv)):
        if not MIN_HEAD_DIM <= dim <= MAX_HEAD_DIM:
            raise UsageError(f"--shape: {name} must be between {MIN_HEAD_DIM} and {MAX_HEAD_DIM}, but got {dim}")
    return attnc.Shape(b, hq, hkv, sq, skv, d, dv)


def _choice(kind: str, choices: Sequence[str]) -> Callable[[str], str]:
    """An argparse type that reports a bad value as our error, listing what is allowed."""

    def check(value: str) -> str:
        if value not in choices:
            raise UsageError(f"unknown {kind} '{value}'; expected one of {', '.join(choices)}")
        return value

    check.__name__ = kind
    return check


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors take our path: `attnc: error: ...` and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="attnc",
        description="Compile attention variants (score_mod / mask_mod in a .py file) and inspect or run them.",
        epilog="A VARIANT.py defines score_mod(score, b, h, q_idx, kv_idx) and/or mask_mod(b, h, q_idx, kv_idx) "
        "at module level (either may be None); see examples/.",
    )
    parser.add_argument("--version", action="version", version=f"attnc {attnc.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{compile,run}", parser_class=_Parser)
    commands.required = True

    comp = commands.add_parser(
        "compile",
        help="compile a variant and print one stage",
        description="Compile a variant for a target and print one stage: the IR before any pass (attn), after "
        "fusion and tiling (flash), in the tile dialect (tile), the Triton kernel source (triton), or Triton's "
        "own output for the target (ttir ... hsaco). With --backward, flash also holds the derived "
        "attn.flash_grad op, and tile and triton the dQ and dK/dV kernels. Cross-compiles; no GPU needed.",
    )
    comp.add_argument("variant", metavar="VARIANT.py", help="Python file defining score_mod and/or mask_mod")
    comp.add_argument("--shape", default=DEFAULT_SHAPE["compile"], help=f"{SHAPE_FIELDS} (default %(default)s)")
    comp.add_argument(
        "--dtype",
        default="bf16",
        type=_choice("dtype", list(DTYPES)),
        metavar="{bf16,fp16,fp32}",
        help="element type of q, k, v (default bf16)",
    )
    comp.add_argument(
        "--target",
        default="cuda:90",
        type=_choice("target", TARGETS),
        metavar="{" + ",".join(TARGETS) + "}",
        help="target to compile for (default cuda:90)",
    )
    comp.add_argument(
        "--emit",
        default="triton",
        type=_choice("stage", EMITS),
        metavar="{" + ",".join(EMITS) + "}",
        help="stage to print (default triton); cubin and hsaco need -o",
    )
    comp.add_argument(
        "--backward",
        action="store_true",
        help="derive the backward too (attn-autodiff) and compile its dQ and dK/dV kernels",
    )
    comp.add_argument(
        "--kernel",
        default="forward",
        type=_choice("kernel", KERNELS),
        metavar="{" + ",".join(KERNELS) + "}",
        help="whose Triton output (ttir ... hsaco) to print: the attention kernel, the block-table kernel, or "
        "with --backward the dQ or the dK/dV kernel (default forward)",
    )
    comp.add_argument(
        "--layout",
        default="dense",
        type=_choice("layout", LAYOUTS),
        metavar="{" + ",".join(LAYOUTS) + "}",
        help="how q, k, v are stored: dense (default), packed sequences, a KV cache, or a paged cache",
    )
    comp.add_argument("--page-size", type=int, default=0, help="the paged layout's page size")
    comp.add_argument("--scale", type=float, default=None, help="score scale (default 1/sqrt(D))")
    comp.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout ('-' forces stdout)")
    comp.set_defaults(handler=cmd_compile)

    run = commands.add_parser(
        "run",
        help="run a variant on random inputs and check it against the float64 reference",
        description="Run a variant on seeded random q, k, v; show each compiler stage, the error against "
        "attnc.attention_reference (float64) and the time per call. With --backward, also run the derived "
        "backward on a random dO and compare dq, dk, dv with float64 autograd through the reference. Exits 1 "
        "if a relative error exceeds 1e-2 (bf16, fp16) or 1e-4 (fp32).",
    )
    run.add_argument("variant", metavar="VARIANT.py", help="Python file defining score_mod and/or mask_mod")
    run.add_argument(
        "--shape",
        default=None,
        help=f"{SHAPE_FIELDS} (default {DEFAULT_SHAPE['cpu']} on cpu, {DEFAULT_SHAPE['cuda']} on cuda)",
    )
    run.add_argument(
        "--dtype",
        default="bf16",
        type=_choice("dtype", list(DTYPES)),
        metavar="{bf16,fp16,fp32}",
        help="element type of q, k, v (default bf16)",
    )
    run.add_argument(
        "--device",
        default=None,
        type=_choice("device", ("cpu", "cuda")),
        metavar="{cpu,cuda}",
        help="where to run (default cuda if available, else cpu)",
    )
    run.add_argument("--scale", type=float, default=None, help="score scale (default 1/sqrt(D))")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    run.add_argument(
        "--backward",
        "--grad",
        action="store_true",
        help="also run the backward and check dq, dk, dv against float64 autograd",
    )
    run.add_argument(
        "--cache",
        action="store_true",
        help="decode over a KV cache of Skv keys: each sequence holds a random number of them (at least Sq) and "
        "the Sq queries are its last positions",
    )
    run.add_argument("--page-size", type=int, default=0, help="with --cache: store the cache in shuffled pages")
    run.add_argument("--num-splits", type=int, default=0, help="with --cache: splits of the keys (0 chooses)")
    run.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare with the float64 reference and fail on a large error (default: --check)",
    )
    run.set_defaults(handler=cmd_run)
    return parser


# ----- loading a variant


def load_variant(path_text: str, device: torch.device | None = None) -> Variant:
    """Import VARIANT.py from its path; with `device`, move its module-level tensors there."""
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"no such variant file: {path_text}")
    name = "attnc_variant_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path_text}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UsageError(f"{e.filename}:{e.lineno}: syntax error: {e.msg}") from e
    except Exception as e:  # the variant's own code failed; say where, without attnc's frames
        frames = traceback.extract_tb(e.__traceback__)
        line = next((f.lineno for f in reversed(frames) if Path(f.filename).resolve() == path.resolve()), None)
        where = f"{path_text}:{line}" if line is not None else path_text
        raise UsageError(f"{where}: importing the variant raised {type(e).__name__}: {e}") from e
    if not hasattr(module, "score_mod") and not hasattr(module, "mask_mod"):
        raise UsageError(
            f"{path_text} defines neither score_mod nor mask_mod; define at least one at module level "
            "(set both to None for plain attention)"
        )
    mods: dict[str, Callable[..., Any] | None] = {}
    for attr in ("score_mod", "mask_mod"):
        fn = getattr(module, attr, None)
        if fn is not None and not callable(fn):
            raise UsageError(f"{path_text}: {attr} must be a function or None, but is {type(fn).__name__}")
        mods[attr] = fn
    normalizer = getattr(module, "normalizer", "softmax")
    if not isinstance(normalizer, (str, Normalizer)):
        raise UsageError(
            f"{path_text}: normalizer must be a name such as 'softmax' or an attnc.Normalizer, "
            f"but is {type(normalizer).__name__}"
        )
    if device is not None:
        # The mods read module globals when called, so rebinding moves their captures.
        holders = [module, *([normalizer] if isinstance(normalizer, Normalizer) else [])]
        for holder in holders:
            for attr, value in list(vars(holder).items()):
                if isinstance(value, torch.Tensor) and value.device != device:
                    setattr(holder, attr, value.to(device))
    return Variant(path, module, mods["score_mod"], mods["mask_mod"], normalizer)


def logical_ir(variant: Variant, shape: attnc.Shape, dtype: torch.dtype, scale: float | None) -> str:
    """The attn IR as the frontend builds it, before any pass.

    Built here rather than through `attnc.compile(...).ir("attn")`, which runs the whole
    pipeline first: a variant that a later pass rejects can still be looked at.
    """
    attn = attnc.attention(variant.score_mod, variant.mask_mod, variant.normalizer)
    return attn.logical_ir(shape, dtype, scale)


# ----- attnc compile


def cmd_compile(args: argparse.Namespace) -> int:
    shape = parse_shape(args.shape)
    dtype = DTYPES[args.dtype]
    stage: str = args.emit
    target: str = args.target
    if stage in ASM_STAGES and target.split(":")[0] not in ASM_STAGES[stage]:
        vendors = " or ".join(ASM_STAGES[stage])
        raise UsageError(f"--emit {stage} needs a {vendors} target, but --target is {target}")
    if stage in BINARY_STAGES and args.output is None:
        raise UsageError(f"--emit {stage} is a binary; write it to a file with -o FILE (or '-o -' for stdout)")
    if args.kernel not in FORWARD_KERNELS and not args.backward:
        raise UsageError(f"--kernel {args.kernel} is a backward kernel; add --backward")
    if (args.layout == "paged") != (args.page_size > 0):
        raise UsageError("--layout paged takes --page-size N (N > 0), and only it does")
    variant = load_variant(args.variant)
    if stage == "attn":
        # Before any pass: the same IR with or without --backward.
        result: str | bytes = logical_ir(variant, shape, dtype, args.scale)
    else:
        compiled = attnc.compile(
            variant.score_mod,
            variant.mask_mod,
            shape=shape,
            dtype=dtype,
            target=target,
            scale=args.scale,
            normalizer=variant.normalizer,
            backward=args.backward,
            layout=args.layout,
            page_size=args.page_size,
        )
        if stage in IR_STAGES:
            result = compiled.ir(stage)
        elif stage == "triton":
            result = compiled.triton_source()
        else:
            result = compiled.asm(stage, kernel=args.kernel)
    write_output(result, args.output)
    return 0


def write_output(result: str | bytes, output: str | None) -> None:
    if output is not None and output != "-":
        mode = "wb" if isinstance(result, bytes) else "w"
        with open(output, mode) as f:
            f.write(result)
        return
    if isinstance(result, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(result)
        sys.stdout.buffer.flush()
        return
    sys.stdout.write(result if result.endswith("\n") else result + "\n")
    sys.stdout.flush()


# ----- attnc run


def pick_device(requested: str | None) -> torch.device:
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch sees no CUDA device")
    return torch.device(requested)


def random_inputs(
    shape: attnc.Shape, dtype: torch.dtype, device: torch.device, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v from N(0, 1), drawn on the CPU so a seed gives the same inputs on every device."""
    gen = torch.Generator().manual_seed(seed)
    sizes = (
        (shape.batch, shape.q_heads, shape.seq_q, shape.head_dim),
        (shape.batch, shape.kv_heads, shape.seq_kv, shape.head_dim),
        (shape.batch, shape.kv_heads, shape.seq_kv, shape.head_dim_v),
    )
    q, k, v = (torch.randn(size, generator=gen).to(device=device, dtype=dtype) for size in sizes)
    return q, k, v


def top_level_ops(ir: str) -> list[str]:
    """The ops in the body of the printed function, in order: the shape of the program at a stage."""
    return re.findall(r"^ {4}(?:%[^=]+= )?(attn\.[a-z_]+)\b", ir, re.MULTILINE)


def triton_excerpt(source: str, kernel: str, hooks: Sequence[str]) -> list[str]:
    """A few lines of `kernel` from the first of `hooks` (comments the emitter writes) that it has."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"def {kernel}(")), 0)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("@triton.jit")), len(lines))
    for hook in hooks:
        found = next((i for i in range(start, end) if re.match(rf"\s*# {hook}\b", lines[i])), None)
        if found is not None:
            return lines[found : min(found + EXCERPT_LINES, end)]
    return lines[start : start + EXCERPT_LINES]


def show_stages(compiled: attnc.CompiledAttention) -> None:
    info = compiled.compiled.info
    attn_ir, flash_ir, tile_ir = (compiled.ir(s) for s in IR_STAGES)
    source = compiled.triton_source()

    def lines(text: str) -> str:
        return f"{len(text.splitlines()):5d} lines"

    print("stages")
    print(f"  attn    {lines(attn_ir)}  {' -> '.join(top_level_ops(attn_ir))}")
    print(
        f"  flash   {lines(flash_ir)}  {' -> '.join(top_level_ops(flash_ir))}: block mask {info.block_mask}, "
        f"tile {info.block_m}x{info.block_n}, num_warps {info.num_warps}, num_stages {info.num_stages}"
    )
    tile_funcs = ", ".join(re.findall(r"tile\.func @(\w+)", tile_ir))
    jit_funcs = ", ".join(re.findall(r"^def (\w+)\(", source, re.MULTILINE))
    print(f"  tile    {lines(tile_ir)}  tile.func {tile_funcs}")
    print(f"  triton  {lines(source)}  @triton.jit {jit_funcs}")
    for line in triton_excerpt(source, info.forward, ("score_mod", "mask_mod", "normalizer")):
        print(f"          | {line}")
    if info.backward_dq:
        print(f"          {info.backward_dq}:")
        for line in triton_excerpt(source, info.backward_dq, ("probabilities from the saved logsumexp",)):
            print(f"          | {line}")


def time_per_call(fn: Callable[[], Any], device: torch.device) -> str:
    if device.type == "cuda":
        import triton.testing

        ms = triton.testing.do_bench(fn, return_mode="median")
        assert isinstance(ms, float)  # one number without `quantiles`
        return f"{ms * 1e3:.1f} us (cuda, triton.testing.do_bench median)"
    calls = 3
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    ms = (time.perf_counter() - start) / calls * 1e3
    return f"{ms:.1f} ms (cpu wall clock, mean of {calls} calls, Triton interpreter)"


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """‖out − ref‖ / ‖ref‖ in float64 (the absolute norm where the reference is all zeros)."""
    diff = out.double() - ref
    ref_norm = ref.norm().item()
    return diff.norm().item() / ref_norm if ref_norm > 0 else diff.norm().item()


def within(rel: float, limit: float) -> bool:
    return math.isfinite(rel) and rel <= limit


def verdict(rel: float, limit: float) -> str:
    return f"(limit {limit:.0e}) {'ok' if within(rel, limit) else 'FAILED'}"


def report_error(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> int:
    """Prints the errors against the reference; 0 when within the dtype's tolerance, else 1."""
    diff = out.double() - ref
    max_abs = diff.abs().max().item() if diff.numel() else 0.0
    rel = relative_error(out, ref)
    limit = TOLERANCE[dtype]
    print(f"  max abs error  {max_abs:.3e}")
    print(f"  rel error      {rel:.3e}  {verdict(rel, limit)}")
    return 0 if within(rel, limit) else 1


def run_backward(
    attn: attnc.Attention,
    variant: Variant,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    args: argparse.Namespace,
) -> int:
    """Backward on a random dO: dq, dk, dv against float64 autograd through the reference; 1 if one is off."""
    gen = torch.Generator().manual_seed(args.seed + 1)
    dout = torch.randn(*q.shape[:3], v.shape[3], generator=gen).to(device=q.device, dtype=q.dtype)
    inputs = [t.detach().clone().requires_grad_() for t in (q, k, v)]

    def grads() -> tuple[torch.Tensor, ...]:
        out = attn(*inputs, scale=args.scale)
        assert isinstance(out, torch.Tensor)
        return torch.autograd.grad(out, inputs, dout)

    computed = grads()
    print("backward")
    status = 0
    if args.check:
        ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
        ref = attnc.attention_reference(
            *ref_inputs,
            score_mod=variant.score_mod,
            mask_mod=variant.mask_mod,
            scale=args.scale,
            normalizer=variant.normalizer,
        )[0]
        expected = torch.autograd.grad(ref, ref_inputs, dout.double())
        limit = TOLERANCE[q.dtype]
        for name, grad, ref_grad in zip(("dq", "dk", "dv"), computed, expected):
            rel = relative_error(grad, ref_grad)
            print(f"  {name} rel error   {rel:.3e}  {verdict(rel, limit)}")
            if not within(rel, limit):
                status = 1
    print(f"  time per call  {time_per_call(grads, q.device)}, forward + backward")
    return status


def cmd_run(args: argparse.Namespace) -> int:
    if (args.page_size or args.num_splits) and not args.cache:
        raise UsageError("--page-size and --num-splits go with --cache")
    if args.page_size < 0 or args.num_splits < 0:
        raise UsageError("--page-size and --num-splits must not be negative")
    if args.cache and args.backward:
        raise UsageError("--backward checks dense inputs; drop --cache to check gradients")
    device = pick_device(args.device)
    shape = parse_shape(args.shape or DEFAULT_SHAPE[device.type])
    if args.cache and shape.seq_q > shape.seq_kv:
        raise UsageError(
            f"--cache needs Sq <= Skv (the queries are a sequence's last positions), but --shape has "
            f"Sq={shape.seq_q} and Skv={shape.seq_kv}"
        )
    dtype = DTYPES[args.dtype]
    variant = load_variant(args.variant, device)
    target = "cpu" if device.type == "cpu" else str(Target.current())
    scale = shape.head_dim**-0.5 if args.scale is None else args.scale

    dims = ", ".join(f"{k}={v}" for k, v in zip(SHAPE_FIELDS.split(","), vars(shape).values()))
    print(f"attnc run {args.variant}")
    print(f"  shape   {dims}; {args.dtype}; scale {scale:.6g}")
    where = f"target {target}"
    if device.type == "cpu":
        # attnc.attention hands the interpreter fp32 for bf16 (Triton keeps bf16 as raw bits there).
        where = "Triton interpreter" + ("; bf16 computed in fp32" if dtype == torch.bfloat16 else "")
    print(f"  device  {device.type} ({where})")
    compiled = attnc.compile(
        variant.score_mod,
        variant.mask_mod,
        shape=shape,
        dtype=dtype,
        target=target,
        scale=args.scale,
        normalizer=variant.normalizer,
        backward=args.backward,
        layout=("paged" if args.page_size else "cache") if args.cache else "dense",
        page_size=args.page_size,
    )
    show_stages(compiled)

    q, k, v = random_inputs(shape, dtype, device, args.seed)
    attn = attnc.attention(variant.score_mod, variant.mask_mod, variant.normalizer)
    if args.cache:

        def report(out: torch.Tensor, ref: torch.Tensor) -> int:
            return report_error(out, ref, dtype)

        return run_cache(attn, variant, q, k, v, args, report, lambda fn: time_per_call(fn, device))
    with torch.no_grad():
        out = attn(q, k, v, scale=args.scale)
        assert isinstance(out, torch.Tensor)
        print("result")
        status = 0
        if args.check:
            ref = attnc.attention_reference(
                q,
                k,
                v,
                score_mod=variant.score_mod,
                mask_mod=variant.mask_mod,
                scale=args.scale,
                normalizer=variant.normalizer,
            )[0]
            status = report_error(out, ref, dtype)
        print(f"  time per call  {time_per_call(lambda: attn(q, k, v, scale=args.scale), device)}")
    if args.backward:
        status = max(status, run_backward(attn, variant, q, k, v, args))
    return status


# ----- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """The `attnc` console script: 0 ok, 1 the check failed, 2 a user error."""
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except BrokenPipeError:
        # `attnc compile ... | head`: the reader left. Python's documented recipe: point
        # stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except USER_ERRORS as e:
        sys.stdout.flush()
        print(f"attnc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
