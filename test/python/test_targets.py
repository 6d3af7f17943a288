"""Triton compatibility layer: loading, interpreting and cross-compiling a kernel."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType

import pytest
import torch
import triton
import triton.language as tl
from triton.runtime.jit import JITFunction

from attnc.runtime.cache import load_kernel_module
from attnc.runtime.targets import Target, cross_compile, interpreted

# A hand-written tiled matmul, C = scale * A @ B, in the shape the emitter produces: a
# module of its own with a @jit helper, constexpr tiles and masks for ragged edges.
MATMUL_SOURCE = """\
import triton
import triton.language as tl


@triton.jit
def _scaled(acc, scale):
    return acc * scale


@triton.jit
def matmul_kernel(
    a_ptr, b_ptr, c_ptr, M, N, K, scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + rk
        a = tl.load(a_ptr + rm[:, None] * K + ks[None, :],
                    mask=(rm[:, None] < M) & (ks[None, :] < K), other=0.0)
        b = tl.load(b_ptr + ks[:, None] * N + rn[None, :],
                    mask=(ks[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc)
    acc = _scaled(acc, scale)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc.to(c_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))
"""

SIGNATURE = {
    "a_ptr": "*bf16",
    "b_ptr": "*bf16",
    "c_ptr": "*fp32",
    "M": "i32",
    "N": "i32",
    "K": "i32",
    "scale": "fp32",
}
TILES = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}


@pytest.fixture(scope="module")
def matmul_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return load_kernel_module(MATMUL_SOURCE, "attnc_test_matmul", tmp_path_factory.mktemp("k"))


def test_load_kernel_module_imports_source_from_file(matmul_module: ModuleType) -> None:
    """The kernel is importable, its file holds the source and Triton can read it."""
    path = Path(matmul_module.__file__ or "")
    assert path.read_text() == MATMUL_SOURCE
    assert isinstance(matmul_module.matmul_kernel, JITFunction)
    assert "tl.dot(a, b, acc)" in inspect.getsource(matmul_module.matmul_kernel.fn)
    assert not list(path.parent.glob("*.tmp"))


def test_load_kernel_module_rewrites_only_changed_source(tmp_path: Path) -> None:
    """Same source: same module, file untouched; new source: file and module replaced."""
    first = load_kernel_module("VALUE = 1\n", "attnc_test_rewrite", tmp_path)
    mtime = (tmp_path / "attnc_test_rewrite.py").stat().st_mtime_ns
    assert load_kernel_module("VALUE = 1\n", "attnc_test_rewrite", tmp_path) is first
    assert (tmp_path / "attnc_test_rewrite.py").stat().st_mtime_ns == mtime
    second = load_kernel_module("VALUE = 22\n", "attnc_test_rewrite", tmp_path)
    assert (second.VALUE, (tmp_path / "attnc_test_rewrite.py").read_text()) == (22, "VALUE = 22\n")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_interpreted_matmul_matches_torch(matmul_module: ModuleType, dtype: torch.dtype) -> None:
    """The interpreted kernel computes scale * A @ B on ragged CPU shapes."""
    M, N, K, scale = 70, 45, 100, 0.37
    a = torch.randn(M, K).to(dtype)
    b = torch.randn(K, N).to(dtype)
    c = torch.full((M, N), float("nan"))
    grid = (triton.cdiv(M, 32), triton.cdiv(N, 32))
    kernel = interpreted(matmul_module.matmul_kernel)
    kernel[grid](a, b, c, M, N, K, scale, BLOCK_M=32, BLOCK_N=32, BLOCK_K=16, num_warps=4)
    expected = scale * (a.double() @ b.double())
    assert ((c.double() - expected).norm() / expected.norm()).item() < 1e-5


def test_interpreted_leaves_triton_language_untouched(matmul_module: ModuleType) -> None:
    """After an interpreted launch the compiler sees triton.language as before."""
    modules = (tl, tl.core, tl.math)
    before = [dict(vars(module)) for module in modules]
    call = JITFunction.__call__
    a, b, c = torch.randn(16, 16), torch.randn(16, 16), torch.empty(16, 16)
    interpreted(matmul_module.matmul_kernel)[(1, 1)](a, b, c, 16, 16, 16, 1.0, **TILES)
    assert JITFunction.__call__ is call
    for module, old in zip(modules, before, strict=True):
        changed = [name for name, value in old.items() if vars(module).get(name) is not value]
        assert not changed, f"{module.__name__} still patched: {changed}"


@pytest.mark.parametrize(
    ("spec", "binary", "matrix_op"),
    [
        ("cuda:80", "cubin", "nvidia_mma<{versionMajor = 2"),
        ("cuda:90", "cubin", "nvidia_mma<{versionMajor = 3"),
        ("hip:gfx90a", "hsaco", "amd_mfma<{version = 2"),
        ("hip:gfx942", "hsaco", "amd_mfma<{version = 3"),
    ],
)
def test_cross_compile_emits_binary_and_matrix_ops(
    matmul_module: ModuleType, spec: str, binary: str, matrix_op: str
) -> None:
    """A bf16 dot compiles to the target's binary through its matrix-core layout."""
    asm = cross_compile(matmul_module.matmul_kernel, SIGNATURE, TILES, Target.parse(spec))
    assert isinstance(asm[binary], bytes) and len(asm[binary]) > 0
    assert matrix_op in str(asm["ttgir"])


def test_cross_compile_sm90_uses_warpgroup_mma(matmul_module: ModuleType) -> None:
    """On sm_90 a 64x64 bf16 tile with 4 warps becomes a Hopper warpgroup MMA (wgmma)."""
    asm = cross_compile(matmul_module.matmul_kernel, SIGNATURE, TILES, Target.parse("cuda:90"))
    assert "ttng.warp_group_dot" in str(asm["ttgir"])
    assert "wgmma.mma_async" in str(asm["ptx"])


def test_cross_compile_specializes_as_a_launch_does(matmul_module: ModuleType) -> None:
    """Pointers and sizes divisible by 16, as a launch on contiguous tensors has them: the K loop's loads
    are pipelined (cp.async on sm_90), as they are on the GPU; without, nothing is known and nothing is."""
    target = Target.parse("cuda:90")
    kernel = matmul_module.matmul_kernel
    specialized = cross_compile(kernel, SIGNATURE, TILES, target, num_stages=3)
    plain = cross_compile(kernel, SIGNATURE, TILES, target, num_stages=3, specialize=False)
    assert "async_copy_global_to_local" in str(specialized["ttgir"])
    assert "async_copy_global_to_local" not in str(plain["ttgir"])


def test_cross_compile_rejects_unnamed_parameter(matmul_module: ModuleType) -> None:
    """A parameter missing from both signature and constexprs is named in the error."""
    signature = {name: ty for name, ty in SIGNATURE.items() if name != "scale"}
    with pytest.raises(ValueError, match=r"missing \['scale'\]"):
        cross_compile(matmul_module.matmul_kernel, signature, TILES, Target.parse("cuda:80"))


@pytest.mark.parametrize("spec", ["cuda:80", "cuda:90", "hip:gfx90a", "hip:gfx942"])
def test_target_parse_round_trips(spec: str) -> None:
    """A target string parses to Triton's GPUTarget and prints back unchanged."""
    target = Target.parse(spec)
    gpu = target.gpu_target()
    assert str(target) == spec
    assert (gpu.backend, str(gpu.arch), gpu.warp_size) == (
        target.backend,
        spec.split(":")[1],
        32 if target.backend == "cuda" else 64,
    )


@pytest.mark.parametrize("spec", ["cuda:75", "cuda:sm90", "cuda", "hip:gfx1100", "rocm:gfx942", ""])
def test_target_parse_rejects_unknown(spec: str) -> None:
    """Anything but a supported `backend:arch` is a ValueError listing the choices."""
    with pytest.raises(ValueError, match=r"target '.*'; expected one of cuda:80, .*hip:gfx942"):
        Target.parse(spec)


@pytest.mark.gpu
def test_target_current_and_compiled_next_to_interpreted(matmul_module: ModuleType) -> None:
    """On a GPU: compiled and interpreted launches of one kernel agree, in one process."""
    assert str(Target.current()) in {"cuda:80", "cuda:86", "cuda:89", "cuda:90"}
    M, N, K = 200, 130, 96
    a, b = torch.randn(M, K, dtype=torch.float16), torch.randn(K, N, dtype=torch.float16)
    expected = 0.5 * (a.double() @ b.double())
    grid = (triton.cdiv(M, 64), triton.cdiv(N, 64))
    kernel = matmul_module.matmul_kernel
    for _ in range(2):
        compiled = torch.empty(M, N, device="cuda")
        kernel[grid](a.cuda(), b.cuda(), compiled, M, N, K, 0.5, **TILES)
        on_cpu = torch.empty(M, N)
        interpreted(kernel)[grid](a, b, on_cpu, M, N, K, 0.5, **TILES)
        # What TRITON_INTERPRET asks of CUDA tensors: copied to the host and back.
        forced = torch.empty(M, N, device="cuda")
        interpreted(kernel)[grid](a.cuda(), b.cuda(), forced, M, N, K, 0.5, **TILES)
        for out in (compiled.cpu(), on_cpu, forced.cpu()):
            assert ((out.double() - expected).norm() / expected.norm()).item() < 1e-3
