"""Where attnc meets Triton's version-sensitive API: interpreting and cross-compiling.

Triton's public surface moves between releases; everything version-sensitive lives here
so the rest of attnc sees one API. Checked against triton 3.6.0 and 3.9.0 (numpy 2.4):

* Cross-compiling. `triton.compile(ASTSource(fn, signature, constexprs), target=
  GPUTarget(...), options=...)` builds NVIDIA and AMD binaries on a machine without a
  GPU. Both releases take the same form: every parameter in `signature`, constexpr
  parameters typed `"constexpr"`, their values in `constexprs` keyed by parameter name
  (index tuples `(i,)` also work). What does differ is floating-point fusion: 3.6
  fuses by default, 3.9 fuses but warns that 3.10 will stop. We always pass
  `enable_fp_fusion=True`, so both give the same code and neither warns.
  `asm` holds `source, ttir, ttgir, llir` and then `ptx, cubin` (cuda) or
  `amdgcn, hsaco` (hip); the binaries are bytes, the rest text.

* Interpreting in a process that also runs compiled kernels. `TRITON_INTERPRET=1` is
  all or nothing: it is read when `@triton.jit` runs, so it turns every kernel, and
  Triton's own standard library (`tl.zeros`, `tl.max`, `tl.cdiv`... are `@jit`
  functions made when `triton.language` is imported), into interpreted functions.
  Wrapping one kernel in `triton.runtime.interpreter.InterpretedFunction` is not enough:
  its first call of a `@jit` helper raises "Cannot call @triton.jit'd outside of the
  scope of a kernel", and had it worked, Triton's device-call path patches
  `triton.language.core` for the interpreter and never undoes it, which would break the
  next compilation. `InterpretedKernel` therefore, for the duration of one launch,
  routes `JITFunction.__call__` to the interpreter and undoes every patch it or the
  interpreter made. Its launch syntax is Triton's: `k[grid](*args, BLOCK=64)`.
  Launches hold a lock, as the patches are process-wide: do not compile kernels on
  another thread while one runs.

* Assertions in the interpreter. Its builder's options say `debug=False`, under which
  `tl.device_assert` does nothing (both releases); a kernel made `@triton.jit(debug=True)`
  runs with those options set to debug for the duration of its launch, so a failed
  assertion raises as it stops a compiled debug kernel. `cross_compile` passes the
  kernel's `debug` on to Triton likewise.

* Interpreter bugs worked around: on 3.6 an integer argument used as a Python int
  (`range(0, K, BLOCK)`) fails with numpy >= 2.4, since the interpreter converts a
  1-element array with `int()`; we patch in 3.9's `int(data.squeeze())`.
  Not worked around (both releases): the interpreter keeps bfloat16 as its uint16 bit
  pattern, so `tl.dot` and arithmetic on bf16 values compute garbage (triton issues
  #11584, #10945). Interpreted kernels must cast bf16 to fp32 before computing, or
  the runtime must hand them fp16/fp32 tensors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime import interpreter as _interpreter
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction, KernelInterface

__all__ = [
    "InterpretedKernel",
    "Target",
    "cross_compile",
    "interpreted",
]


def _python_function(fn: object) -> Callable[..., Any]:
    """The plain Python function behind a kernel object, or the function itself."""
    if isinstance(fn, (JITFunction, InterpretedFunction, InterpretedKernel)):
        return fn.fn
    if callable(fn):
        return fn
    raise TypeError(f"expected a kernel function, got {type(fn).__name__}")


class InterpretedKernel(KernelInterface[Any]):
    """A kernel that runs in Triton's interpreter on CPU tensors, whatever the env says.

    Launched as Triton launches kernels, `k[grid](*args, **constexprs)`; launch options
    meant for the compiler (`num_warps`, `num_stages`) are accepted and ignored. With
    `debug`, its `tl.device_assert`s are checked, as in a kernel compiled with debug.
    """

    def __init__(self, fn: Callable[..., Any], debug: bool = False) -> None:
        self.fn = fn
        self.debug = debug
        self._kernel = InterpretedFunction(fn)

    def run(self, *args: Any, grid: Any, warmup: bool, **kwargs: Any) -> None:
        """Execute every program of `grid` in turn; a warmup compiles nothing, so is a no-op."""
        if warmup:
            return
        # The kernels compute with IEEE infinities on purpose (masked scores are -inf, a state decays
        # by exp(-inf) = 0): numpy's overflow and invalid-value warnings are the GPU's silent results.
        with _INTERPRETER_LOCK, _interpreter_patches(self.debug), numpy.errstate(all="ignore"):
            self._kernel.run(*args, grid=grid, warmup=False, **kwargs)


def interpreted(fn: object) -> InterpretedKernel:
    """The interpreted twin of a kernel: a `@triton.jit` function or a plain function.

    It runs the same Python source as the compiled kernel, on CPU tensors, next to
    compiled kernels in the same process (see the module docstring for how), and checks
    its assertions when the kernel is `@triton.jit(debug=True)`.
    """
    return InterpretedKernel(_python_function(fn), debug=bool(getattr(fn, "debug", False)))


_INTERPRETER_LOCK = threading.RLock()


@functools.cache
def _interpreted_function(fn: Callable[..., Any]) -> InterpretedFunction[Any]:
    """One `InterpretedFunction` per helper, so its AST is rewritten only once."""
    return InterpretedFunction(fn)


def _call_jit_helper(helper: JITFunction[Any], *args: Any, **kwargs: Any) -> Any:
    """`JITFunction.__call__` during an interpreted launch: run the helper interpreted.

    Unlike Triton's own device-call path, the language patches made for the helper's
    module are undone on return.
    """
    scope = _interpreter._patch_lang(helper.fn)
    try:
        return _interpreted_function(helper.fn).rewrite()(*args, **kwargs)
    finally:
        scope.restore()


def _patch_lang_tensor_numpy2(original: Callable[..., None], tensor: type, scope: Any) -> None:
    """Triton 3.6's tensor patches, with 3.9's `__index__` that numpy >= 2.4 accepts."""
    original(tensor, scope)
    scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))


@contextlib.contextmanager
def _interpreter_patches(debug: bool = False) -> Iterator[None]:
    """Make `@jit` helpers callable from interpreted code, with `debug` check `tl.device_assert` (the
    interpreter's options say debug=False, and its device_assert then does nothing); restore everything
    on exit."""
    builder = _interpreter.interpreter_builder
    saved: list[tuple[object, str, object]] = [
        (JITFunction, "__call__", JITFunction.__call__),
        (_interpreter, "_patch_lang_tensor", _interpreter._patch_lang_tensor),
        (builder, "options", builder.options),
    ]
    JITFunction.__call__ = _call_jit_helper  # type: ignore[method-assign, assignment]
    _interpreter._patch_lang_tensor = functools.partial(  # type: ignore[attr-defined]
        _patch_lang_tensor_numpy2, _interpreter._patch_lang_tensor
    )
    if debug:
        builder.options = dataclasses.replace(builder.options, debug=True)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


_INTEGERS = ("i32", "i64", "u32", "u64")

# Per backend: the warp (wavefront) size and the architectures attnc is tested on.
_WARP_SIZE: dict[str, int] = {"cuda": 32, "hip": 64}
_ARCHS: dict[str, tuple[int | str, ...]] = {
    "cuda": (80, 86, 89, 90),
    "hip": ("gfx90a", "gfx942"),
}
_SPELLINGS = ", ".join(f"{backend}:{arch}" for backend, archs in _ARCHS.items() for arch in archs)


@dataclass(frozen=True)
class Target:
    """A GPU to compile for: `cuda:<sm>` (e.g. `cuda:90`) or `hip:<gfx>` (`hip:gfx942`).

    Kernels are tiled per target, so it is part of every cache key; `str()` gives back
    the spelling `parse` reads.
    """

    backend: str
    arch: int | str

    def __post_init__(self) -> None:
        if self.arch not in _ARCHS.get(self.backend, ()):
            raise ValueError(f"unsupported target '{self}'; expected one of {_SPELLINGS}")

    @classmethod
    def parse(cls, spec: str) -> Target:
        """Read `cuda:90` or `hip:gfx942`."""
        backend, sep, arch = spec.strip().partition(":")
        if not sep or not arch:
            raise ValueError(f"malformed target '{spec}'; expected one of {_SPELLINGS}")
        return cls(backend, int(arch) if backend == "cuda" and arch.isdigit() else arch)

    @classmethod
    def current(cls) -> Target:
        """The GPU torch would use now (`torch.cuda.current_device()`)."""
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("no GPU is visible to torch; name a target explicitly")
        if torch.version.hip:
            arch = torch.cuda.get_device_properties().gcnArchName.split(":")[0]
            return cls("hip", arch)
        major, minor = torch.cuda.get_device_capability()
        return cls("cuda", 10 * major + minor)

    @property
    def warp_size(self) -> int:
        """Threads per warp: 32 on NVIDIA, 64 (a wavefront) on the AMD targets here."""
        return _WARP_SIZE[self.backend]

    def gpu_target(self) -> GPUTarget:
        """Triton's description of this target, for `triton.compile(..., target=)`."""
        return GPUTarget(self.backend, self.arch, self.warp_size)

    def __str__(self) -> str:
        return f"{self.backend}:{self.arch}"


def cross_compile(
    fn: JITFunction[Any],
    signature: Mapping[str, str],
    constexprs: Mapping[str, int | float | bool],
    target: Target,
    num_warps: int = 4,
    num_stages: int = 2,
    specialize: bool = True,
) -> dict[str, str | bytes]:
    """Compile `fn` for `target` without its GPU and return every stage Triton produced.

    `signature` types the runtime parameters (`*bf16`, `*fp32`, `i32`, `fp32`...),
    `constexprs` gives the values of the `tl.constexpr` ones; together they name each
    parameter exactly once. Returns Triton's `asm`: `ttir`, `ttgir`, `llir`, then `ptx`
    and `cubin` (cuda) or `amdgcn` and `hsaco` (hip), and `shared`: the shared memory
    one program needs, in bytes (as text).

    `specialize` compiles what a launch on contiguous tensors with sizes in multiples of 16
    compiles: Triton's JIT marks such pointers and integers divisible by 16 and takes an
    integer equal to 1 (the innermost strides, `stride_*_d`) as a constant. Without it,
    nothing is known of the pointers, loads are not vectorized and not pipelined: stages
    that do not show what runs.
    """
    if not isinstance(fn, JITFunction):
        raise TypeError(f"cross_compile needs a @triton.jit function, got {type(fn).__name__}")
    named = [*signature, *constexprs]
    if sorted(named) != sorted(fn.arg_names):
        missing = [name for name in fn.arg_names if name not in named]
        extra = [name for name in named if name not in fn.arg_names or named.count(name) > 1]
        raise ValueError(
            f"signature and constexprs of '{fn.__name__}' must name each parameter once: "
            f"missing {missing}, unknown or repeated {extra}"
        )
    constants = dict(constexprs)
    attrs: dict[tuple[int, ...], list[list[Any]]] = {}
    if specialize:
        for name in signature:
            if name.startswith("stride_") and name.endswith("_d") and signature[name] in _INTEGERS:
                constants[name] = 1
        for i, name in enumerate(fn.arg_names):
            if name not in constants and (signature[name].startswith("*") or signature[name] in _INTEGERS):
                attrs[(i,)] = [["tt.divisibility", 16]]
    full_signature = {name: "constexpr" if name in constants else signature[name] for name in fn.arg_names}
    source = ASTSource(fn=fn, signature=full_signature, constexprs=constants, attrs=attrs)
    options = {"num_warps": num_warps, "num_stages": num_stages, "enable_fp_fusion": True, "debug": bool(fn.debug)}
    kernel = triton.compile(source, target=target.gpu_target(), options=options)
    asm = dict(kernel.asm)
    # Not a stage: the bytes of shared memory one program needs (`metadata.shared`), as text.
    asm["shared"] = str(kernel.metadata.shared)
    return asm
