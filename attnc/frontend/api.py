"""The user-facing API: `attnc.attention(score_mod=, mask_mod=)` and `attnc.compile(...)`."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from attnc.dialect.attn import NormalizerSpec
from attnc.frontend.build import Signature, build_module
from attnc.frontend.normalizer import Normalizer, trace_normalizer
from attnc.frontend.normalizers import resolve_normalizer
from attnc.frontend.trace import TracedRegion, trace_mask_mod, trace_score_mod
from attnc.runtime.autograd import register
from attnc.runtime.compiler import CompiledVariant, compile_module
from attnc.runtime.launch import LaunchConfig, PreparedLaunch
from attnc.runtime.targets import Target, cross_compile

DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}
MIN_HEAD_DIM, MAX_HEAD_DIM = 16, 256


@dataclass(frozen=True)
class Shape:
    """The sizes `attnc compile --shape B,Hq,Hkv,Sq,Skv,D,Dv` names."""

    batch: int
    q_heads: int
    kv_heads: int
    seq_q: int
    seq_kv: int
    head_dim: int
    head_dim_v: int


def _check_inputs(q: Any, k: Any, v: Any) -> Shape:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, but got {type(t).__name__}")
    layouts = {"q": "[B, Hq, Sq, D]", "k": "[B, Hkv, Skv, D]", "v": "[B, Hkv, Skv, Dv]"}
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise ValueError(f"{name} must have 4 dimensions {layouts[name]}, but got shape {tuple(t.shape)}")
        if t.dtype not in DTYPES:
            raise TypeError(f"{name} must be float16, bfloat16 or float32, but got {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share one dtype, but got {q.dtype}, {k.dtype} and {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k and v must be on one device, but got {q.device}, {k.device} and {v.device}")
    if q.device.type not in ("cpu", "cuda"):
        raise ValueError(f"q must be on a CPU or CUDA device, but got {q.device}")
    b, hq, sq, d = q.shape
    if k.shape[0] != b or v.shape[0] != b:
        raise ValueError(f"k and v must have batch {b} like q, but got {k.shape[0]} and {v.shape[0]}")
    hkv, skv = k.shape[1], k.shape[2]
    if v.shape[1] != hkv or v.shape[2] != skv:
        raise ValueError(f"v must have {hkv} heads and length {skv} like k, but got shape {tuple(v.shape)}")
    if hkv == 0 or hq % hkv:
        raise ValueError(f"q heads ({hq}) must be a multiple of k/v heads ({hkv})")
    if k.shape[3] != d:
        raise ValueError(f"k must have head dim {d} like q, but got {k.shape[3]}")
    dv = v.shape[3]
    for name, dim in (("q/k head dim", d), ("v head dim", dv)):
        if not MIN_HEAD_DIM <= dim <= MAX_HEAD_DIM:
            raise ValueError(f"{name} must be between {MIN_HEAD_DIM} and {MAX_HEAD_DIM}, but got {dim}")
    return Shape(b, hq, hkv, sq, skv, d, dv)


def interpretable(captures: list[torch.Tensor]) -> list[torch.Tensor]:
    """Captured tensors as Triton's interpreter can read them: bf16 as fp32 (triton#11584), read at each call
    so that in-place updates of the originals are seen; other tensors as they are."""
    if not any(c.dtype == torch.bfloat16 and c.device.type == "cpu" for c in captures):
        return captures
    return [c.float() if c.dtype == torch.bfloat16 and c.device.type == "cpu" else c for c in captures]


class PlanCache(OrderedDict):
    """Prepared launches by shape, the most recent kept: a model that sees many lengths stays bounded."""

    SIZE = 128

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.SIZE:
            self.popitem(last=False)


def _check_scale(scale: Any) -> None:
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise TypeError(f"scale must be a float or None, but got {type(scale).__name__}")


class Attention:
    """An attention variant; call it on q, k, v. Traces and compiles once per dtype and head shape."""

    def __init__(
        self,
        score_mod: Callable[..., Any] | None = None,
        mask_mod: Callable[..., Any] | None = None,
        normalizer: str | Normalizer = "softmax",
    ):
        for name, fn in (("score_mod", score_mod), ("mask_mod", mask_mod)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, but got {type(fn).__name__}")
        self.score_mod = score_mod
        self.mask_mod = mask_mod
        self.normalizer = resolve_normalizer(normalizer)
        self._traced: tuple[TracedRegion | None, TracedRegion | None, NormalizerSpec] | None = None
        self._variants: dict[tuple[Any, ...], CompiledVariant] = {}
        self._backward_problem: str | None = None
        self._backward_checked = False
        self._plans: PlanCache = PlanCache()
        # Traced now, not at the first call: a torch.compile'd caller must find nothing left to trace.
        self._capture_list = self.captures()
        self._name = register(self)

    def _trace(self) -> tuple[TracedRegion | None, TracedRegion | None, NormalizerSpec]:
        if self._traced is None:
            score = trace_score_mod(self.score_mod) if self.score_mod is not None else None
            mask = trace_mask_mod(self.mask_mod) if self.mask_mod is not None else None
            self._traced = (score, mask, trace_normalizer(self.normalizer))
        return self._traced

    def backward_problem(self) -> str | None:
        """Why attn-autodiff cannot derive this variant's backward (a message naming the part), or None."""
        if not self._backward_checked:
            from xdsl.utils.exceptions import PassFailedException

            from attnc.passes.attn_autodiff import AttnAutodiffPass
            from attnc.passes.attn_fuse import AttnFusePass
            from attnc.runtime.compiler import make_context

            score, mask, spec = self._trace()
            module, _ = build_module(Signature("float32", 1, 1, 16, 16, 0.25), score, mask, spec)
            ctx = make_context()
            AttnFusePass().apply(ctx, module)
            try:
                AttnAutodiffPass(strict=True).apply(ctx, module)
            except PassFailedException as e:
                self._backward_problem = str(e)
            self._backward_checked = True
        return self._backward_problem

    def captures(self) -> list[torch.Tensor]:
        """The tensors the mods and the normalizer read, in kernel-argument order."""
        score, mask, spec = self._trace()
        found: list[torch.Tensor] = []
        for tensors in (score.captures if score else [], mask.captures if mask else [], spec.captures):
            for t in tensors:
                assert isinstance(t, torch.Tensor)
                if not any(t is c for c in found):
                    found.append(t)
        return found

    def compile(
        self,
        shape: Shape,
        dtype: torch.dtype,
        target: str,
        scale: float | None = None,
        backward: bool = False,
        grad_captures: tuple[int, ...] | None = None,
    ) -> CompiledVariant:
        """Compile for `target` ("cpu", "cuda:90", "hip:gfx942", ...) without running; `backward` adds dQ, dK/dV
        and the gradients of the captured tensors `grad_captures` names (None: all)."""
        scale = float(shape.head_dim**-0.5) if scale is None else float(scale)
        sig = Signature(DTYPES[dtype], shape.q_heads, shape.kv_heads, shape.head_dim, shape.head_dim_v, scale)
        key = (sig, target, backward, grad_captures)
        compiled = self._variants.get(key)
        if compiled is None:
            score, mask, spec = self._trace()
            problem = self.backward_problem() if backward else None
            if problem is not None:
                raise NotImplementedError(problem)
            module, _ = build_module(sig, score, mask, spec)
            device_target = "cpu" if target == "cpu" else str(Target.parse(target))
            compiled = compile_module(module, device_target, backward=backward, grad_captures=grad_captures)
            self._variants[key] = compiled
        return compiled

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None, return_lse: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        try:
            key = (q.shape, k.shape, v.shape, q.dtype, k.dtype, v.dtype, q.device, k.device, v.device,
                   q.stride(), k.stride(), v.stride(), scale,
                   tuple((c.shape, c.stride(), c.dtype) for c in self._capture_list))  # fmt: skip
        except AttributeError:
            key = None
        captures = self._capture_list
        training = torch.is_grad_enabled() and (
            any(getattr(t, "requires_grad", False) for t in (q, k, v)) or any(c.requires_grad for c in captures)
        )
        if training and self.backward_problem() is not None:
            raise NotImplementedError(
                f"{self.backward_problem()} (call under torch.no_grad() or pass tensors that do not require grad)"
            )
        if training or torch.compiler.is_compiling():
            if not torch.compiler.is_compiling():
                _check_inputs(q, k, v)
                _check_scale(scale)
            # One opaque custom op with a registered backward: autograd and torch.compile both see it.
            encoded = math.nan if scale is None else float(scale)  # the op's schema has no Optional[float]
            out, stat = torch.ops.attnc.attention(self._name, q, k, v, captures, encoded)
            if return_lse:
                return out, (stat if self._num_stats() else None)
            return out
        plan = self._plans.get(key) if key is not None else None
        if plan is None:
            plan = self._plan(q, k, v, scale)
            self._plans[key] = plan
        launch, upcast, plan_captures = plan
        plan_captures = interpretable(plan_captures)
        if upcast:
            out, stats = launch.run(q.float(), k.float(), v.float(), plan_captures)
            out = out.to(q.dtype)
        else:
            out, stats = launch.run(q, k, v, plan_captures)
        if return_lse:
            # The normalizer's row statistics: softmax's logsumexp, retention's denominator, ...
            return out, (stats[0] if len(stats) == 1 else tuple(stats) if stats else None)
        return out

    def _num_stats(self) -> int:
        return self._trace()[2].num_stats

    def _plan_for(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        scale: float | None,
        backward: bool,
        grad_captures: tuple[int, ...] | None = None,
    ) -> tuple[PreparedLaunch, bool, list[torch.Tensor]]:
        """The prepared launch for these shapes (forward-only or with the backward kernels), cached."""
        key = ("backward" if backward else "forward", grad_captures, q.shape, k.shape, v.shape, q.dtype, q.device,
               q.stride(), k.stride(), v.stride(), scale)  # fmt: skip
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(q, k, v, scale, backward=backward, grad_captures=grad_captures)
            self._plans[key] = plan
        return plan

    def _plan(
        self,
        q: Any,
        k: Any,
        v: Any,
        scale: float | None,
        backward: bool = False,
        grad_captures: tuple[int, ...] | None = None,
    ) -> tuple[PreparedLaunch, bool, list[torch.Tensor]]:
        """Checks the inputs, compiles (or finds) the kernels and prepares the launch for these shapes."""
        shape = _check_inputs(q, k, v)
        _check_scale(scale)
        captures = self.captures()
        for i, t in enumerate(captures):
            if t.device != q.device:
                raise ValueError(
                    f"captured tensor {i} (shape {tuple(t.shape)}) is on {t.device}, but q is on {q.device}"
                )
        device = q.device
        dtype = q.dtype
        upcast = device.type == "cpu" and dtype == torch.bfloat16
        if upcast:
            # Triton's interpreter keeps bf16 as raw bits (triton#11584): run the fp32 kernel.
            dtype = torch.float32
        if device.type == "cuda":
            with torch.cuda.device(device):
                target = str(Target.current())
        else:
            target = "cpu"
        compiled = self.compile(shape, dtype, target, scale, backward, grad_captures)
        info = compiled.info
        config = LaunchConfig(info.block_m, info.block_n, info.num_warps, info.num_stages)
        run_q, run_k, run_v = (t.float() for t in (q, k, v)) if upcast else (q, k, v)
        if device.type == "cuda":
            from attnc.runtime.autotune import tuned_config

            config = tuned_config(compiled, run_q, run_k, run_v, captures, config)
        launch = PreparedLaunch(compiled, run_q, run_k, run_v, interpretable(captures), config)
        return launch, upcast, captures  # the originals: converted at each call, so in-place updates are seen


def attention(
    score_mod: Callable[..., Any] | None = None,
    mask_mod: Callable[..., Any] | None = None,
    normalizer: str | Normalizer = "softmax",
) -> Attention:
    """An attention variant with FlexAttention's `score_mod(score, b, h, q_idx, kv_idx)` and
    `mask_mod(b, h, q_idx, kv_idx)`; call the result on q [B, Hq, Sq, D], k [B, Hkv, Skv, D],
    v [B, Hkv, Skv, Dv]."""
    return Attention(score_mod, mask_mod, normalizer)


class CompiledAttention:
    """Every stage of one compiled variant: `ir(stage)`, `triton_source()`, `asm(stage, kernel)`."""

    KERNELS = ("forward", "block_table", "backward_dq", "backward_dkdv")

    def __init__(self, compiled: CompiledVariant, target: str):
        self.compiled = compiled
        self.target = target

    def ir(self, stage: str = "attn") -> str:
        """The IR as the frontend builds it ("attn"), after fuse/block-mask/[autodiff/]tile ("flash"), or lowered
        ("tile"); compiled with the backward, "flash" holds the attn.flash_grad op and "tile" its two kernels."""
        if stage not in ("attn", "flash", "tile"):
            raise ValueError(f"unknown IR stage '{stage}'; expected attn, flash or tile")
        return self.compiled.stages[stage]

    def triton_source(self) -> str:
        return self.compiled.stages["triton"]

    def asm(self, stage: str, kernel: str = "forward") -> str | bytes:
        """Triton's output for `stage` (ttir, ttgir, llir, ptx, cubin, amdgcn, hsaco) of one kernel, cross-compiled.

        `kernel` is "forward", "block_table", or, when compiled with `backward=True`, "backward_dq" or
        "backward_dkdv".
        """
        if kernel not in self.KERNELS:
            raise ValueError(f"unknown kernel '{kernel}'; expected one of {', '.join(self.KERNELS)}")
        if self.target == "cpu":
            raise ValueError("the cpu target runs in Triton's interpreter and has no binary; pick a GPU target")
        info = self.compiled.info
        name: str = getattr(info, kernel)
        if not name:
            raise ValueError(f"kernel '{kernel}' exists only when compiled with backward=True")
        fn = getattr(self.compiled.kernels, name)
        stages = cross_compile(
            fn,
            info.signatures[name],
            info.constexprs[name],
            Target.parse(self.target),
            num_warps=info.num_warps,
            num_stages=info.num_stages,
        )
        if stage not in stages:
            raise ValueError(f"target {self.target} has no stage '{stage}'; it has {', '.join(stages)}")
        return stages[stage]


def compile(
    score_mod: Callable[..., Any] | None = None,
    mask_mod: Callable[..., Any] | None = None,
    *,
    shape: Shape,
    dtype: torch.dtype = torch.bfloat16,
    target: str = "cuda:90",
    scale: float | None = None,
    normalizer: str | Normalizer = "softmax",
    backward: bool = False,
) -> CompiledAttention:
    """Compile a variant for a target without running it, to look at every stage.

    With `backward`, attn-autodiff derives the gradient too and the kernels include dQ and dK/dV
    (a normalizer whose backward cannot be derived raises NotImplementedError naming the part).
    """
    if dtype not in DTYPES:
        raise TypeError(f"dtype must be float16, bfloat16 or float32, but got {dtype}")
    attn = Attention(score_mod, mask_mod, normalizer)
    return CompiledAttention(attn.compile(shape, dtype, target, scale, backward), target)
