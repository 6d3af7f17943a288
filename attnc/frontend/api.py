"""The user-facing API: `attnc.attention(score_mod=, mask_mod=)` and `attnc.compile(...)`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import attnc.runtime.autograd  # noqa: F401  (registers the attnc::attention custom ops)
import attnc.runtime.sequence_autograd  # noqa: F401  (registers attnc::attention_sequences and its backward)
from attnc.dialect.attn import NormalizerSpec
from attnc.dialect.attn_sequences import LAYOUTS
from attnc.frontend.build import build_module
from attnc.frontend.checks import MAX_HEAD_DIM, MIN_HEAD_DIM, check_scale, check_stored, check_tensors
from attnc.frontend.normalizer import Normalizer, trace_normalizer
from attnc.frontend.normalizers import resolve_normalizer
from attnc.frontend.trace import TracedRegion, trace_mask_mod, trace_score_mod
from attnc.runtime.attention import DTYPES, AttentionProgram, Signature, program
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.sequences import check_num_splits, sequences
from attnc.runtime.targets import Target, cross_compile


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
    check_tensors({"q": "[B, Hq, Sq, D]", "k": "[B, Hkv, Skv, D]", "v": "[B, Hkv, Skv, Dv]"}, {"q": q, "k": k, "v": v})
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


@torch.compiler.assume_constant_result
def backward_problem_of(name: str) -> str | None:
    """Why the program `name` has no backward (a message naming the part), or None. It runs passes, which
    dynamo cannot trace: under torch.compile the answer is found eagerly and taken as a constant."""
    return program(name).backward_problem()


class Attention:
    """An attention variant; call it on q, k, v. Traces once, compiles once per dtype and head shape."""

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
        # Traced now, not at the first call: a torch.compile'd caller must find nothing left to trace.
        score = trace_score_mod(score_mod) if score_mod is not None else None
        mask = trace_mask_mod(mask_mod) if mask_mod is not None else None
        spec = trace_normalizer(self.normalizer)
        self._traced: tuple[TracedRegion | None, TracedRegion | None, NormalizerSpec] = (score, mask, spec)
        self.program = AttentionProgram(self._build, self.captures(), spec.num_stats, _check_call)

    def _build(self, sig: Signature) -> Any:
        score, mask, spec = self._traced
        module, _ = build_module(sig, score, mask, spec)
        return module

    def backward_problem(self) -> str | None:
        """Why attn-autodiff cannot derive this variant's backward (a message naming the part), or None."""
        return self.program.backward_problem()

    def captures(self) -> list[torch.Tensor]:
        """The tensors the mods and the normalizer read, in kernel-argument order."""
        score, mask, spec = self._traced
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
        layout: str = "dense",
        page_size: int = 0,
    ) -> CompiledVariant:
        """Compile for `target` ("cpu", "cuda:90", "hip:gfx942", ...) without running; `backward` adds dQ, dK/dV
        and the gradients of the captured tensors `grad_captures` names (None: all). `layout` ("packed", "cache",
        "paged" with its `page_size`) compiles the serving form instead of dense q, k, v."""
        device_target = "cpu" if target == "cpu" else str(Target.parse(target))
        sig = _signature(shape, dtype, scale, layout, page_size)
        return self.program.compile(sig, device_target, backward, grad_captures)

    def logical_ir(self, shape: Shape, dtype: torch.dtype, scale: float | None = None) -> str:
        """The attn IR as the frontend builds it, before any pass (what `attnc compile --emit attn` prints)."""
        return str(self._build(_signature(shape, dtype, scale))) + "\n"

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        scale: float | None = None,
        return_lse: bool = False,
        *,
        cu_seqlens_q: torch.Tensor | None = None,
        cu_seqlens_k: torch.Tensor | None = None,
        max_seqlen_q: int | None = None,
        max_seqlen_k: int | None = None,
        cache_seqlens: torch.Tensor | None = None,
        block_table: torch.Tensor | None = None,
        num_splits: int = 0,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """out [B, Hq, Sq, Dv] (and with `return_lse` the normalizer's row statistics) for dense q, k, v.

        Serving layouts, FlashAttention's keywords in attnc's layout: packed sequences (`cu_seqlens_q`,
        `cu_seqlens_k`, optional `max_seqlen_q`/`max_seqlen_k` as Python ints), a KV cache
        (`cache_seqlens`) or a paged one (`cache_seqlens` and `block_table`), whose keys decoding may
        split across programs (`num_splits`: 0 chooses, 1 none, n); see the README's "Serving".
        """
        program = self.program
        training = torch.is_grad_enabled() and (
            any(getattr(t, "requires_grad", False) for t in (q, k, v)) or any(c.requires_grad for c in program.captures)
        )
        layout_args = (cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, cache_seqlens, block_table, num_splits)
        if any(a is not None for a in layout_args[:-1]):
            return self._call_sequences(q, k, v, scale, return_lse, training, layout_args)
        if num_splits != 0:
            check_num_splits(num_splits)
            if num_splits > 1:
                raise ValueError("num_splits splits the keys of a KV cache; it goes with cache_seqlens")
        problem = backward_problem_of(program.name) if training else None
        if problem is not None:
            raise NotImplementedError(
                f"{problem} (call under torch.no_grad() or pass tensors that do not require grad)"
            )
        if training or torch.compiler.is_compiling():
            check_scale(scale)  # plain Python, also under torch.compile: NaN below stands for the default
            if not torch.compiler.is_compiling():
                _check_call(q, k, v, scale)
            # One opaque custom op with a registered backward: autograd and torch.compile both see it.
            encoded = math.nan if scale is None else float(scale)  # the op's schema has no Optional[float]
            out, stat = torch.ops.attnc.attention(program.name, q, k, v, program.captures, encoded)
            if return_lse:
                return out, (stat if program.num_stats else None)
            return out
        out, stats = program.forward(q, k, v, scale)
        if return_lse:
            # The normalizer's row statistics: softmax's logsumexp, retention's denominator, ...
            return out, (stats[0] if len(stats) == 1 else tuple(stats) if stats else None)
        return out

    def _call_sequences(
        self, q: Any, k: Any, v: Any, scale: Any, return_lse: bool, training: bool, layout_args: tuple[Any, ...]
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        cu_q, cu_k, max_q, max_k, lens, table, num_splits = layout_args
        compiling = torch.compiler.is_compiling()

        def checked() -> Any:
            check_stored(q, k, v, block_table=table is not None)
            check_scale(scale)
            return sequences(q, k, v, *layout_args)

        if not (training or compiling) and lens is not None and all(a is None for a in layout_args[:4]):
            # decoding: a warm call on CUDA skips the tensor checks its plan already made (AttentionProgram.decode)
            check_scale(scale)
            check_num_splits(num_splits)
            out, stats = self.program.decode(q, k, v, scale, lens, table, num_splits, checked)
            return _with_stats(out, stats) if return_lse else out
        # Checked here when eager; under torch.compile the op checks its metadata when it runs.
        check_stored(q, k, v, block_table=table is not None)
        check_scale(scale)
        seqs = None if compiling else sequences(q, k, v, *layout_args)
        if training:
            self._check_backward(table is not None)
        if seqs is not None and seqs.layout == "packed":
            max_q, max_k = seqs.max_q, seqs.max_k  # found once: the op and its backward need not look again
        if training or compiling:
            # One opaque custom op with a registered backward: autograd and torch.compile both see it.
            if compiling and cu_q is not None and (max_q is None or max_k is None):
                raise ValueError(
                    "under torch.compile, packed sequences need max_seqlen_q and max_seqlen_k as Python ints "
                    "(finding them would read cu_seqlens on the host)"
                )
            meta = [cu_q, cu_k] if cu_q is not None else [lens] if table is None else [lens, table]
            layout = "packed" if cu_q is not None else "cache" if table is None else "paged"
            encoded = math.nan if scale is None else float(scale)
            out, stat = torch.ops.attnc.attention_sequences(
                self.program.name, q, k, v, meta, layout, -1 if max_q is None else max_q,
                -1 if max_k is None else max_k, num_splits, self.program.captures, encoded,
            )  # fmt: skip
            stats = [stat] if self.program.num_stats else []
        else:
            out, stats = self.program.forward(q, k, v, scale, seqs)
        return _with_stats(out, stats) if return_lse else out

    def _check_backward(self, paged: bool) -> None:
        """Raises NotImplementedError, naming the part, when a call that needs gradients cannot have them."""
        hint = "call under torch.no_grad() or pass tensors that do not require grad"
        if paged:
            raise NotImplementedError(
                "the backward of attention over a paged KV cache is not implemented (packed sequences and a "
                f"contiguous cache have one); {hint}"
            )
        problem = backward_problem_of(self.program.name)
        if problem is not None:
            raise NotImplementedError(f"{problem} ({hint})")


def _with_stats(out: torch.Tensor, stats: list[torch.Tensor]) -> tuple[torch.Tensor, Any]:
    """out and the normalizer's row statistics: the one there is, a tuple of several, or None."""
    return out, (stats[0] if len(stats) == 1 else tuple(stats) if stats else None)


def _signature(
    shape: Shape, dtype: torch.dtype, scale: float | None, layout: str = "dense", page_size: int = 0
) -> Signature:
    if layout not in ("dense", *LAYOUTS):
        raise ValueError(f"unknown layout '{layout}'; expected dense, {', '.join(LAYOUTS)}")
    if (layout == "paged") != (page_size > 0):
        raise ValueError(f"page_size must be positive for the paged layout and 0 otherwise, but got {page_size}")
    resolved = float(shape.head_dim**-0.5) if scale is None else float(scale)
    heads, dims = (shape.q_heads, shape.kv_heads), (shape.head_dim, shape.head_dim_v)
    return Signature(DTYPES[dtype], *heads, *dims, resolved, layout, page_size)


def _check_call(q: Any, k: Any, v: Any, scale: Any) -> None:
    _check_inputs(q, k, v)
    check_scale(scale)


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

    # kernel → the KernelInfo field naming it
    KERNELS = {
        "forward": "forward",
        "block_table": "block_table",
        "forward_split": "split_forward",
        "combine": "combine",
        "backward_dq": "backward_dq",
        "backward_dkdv": "backward_dkdv",
    }

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

        `kernel` is "forward", "block_table" (dense), "forward_split" and "combine" (split decoding over a
        cache), or, when compiled with `backward=True`, "backward_dq" or "backward_dkdv".
        """
        if kernel not in self.KERNELS:
            raise ValueError(f"unknown kernel '{kernel}'; expected one of {', '.join(self.KERNELS)}")
        if self.target == "cpu":
            raise ValueError("the cpu target runs in Triton's interpreter and has no binary; pick a GPU target")
        info = self.compiled.info
        name: str = getattr(info, self.KERNELS[kernel])
        if not name:
            needs = {
                "block_table": "dense attention (serving layouts classify blocks in the forward)",
                "forward_split": "a KV cache whose normalizer can merge splits",
                "combine": "a KV cache whose normalizer can merge splits",
            }.get(kernel)
            if needs is None:
                raise ValueError(f"kernel '{kernel}' exists only when compiled with backward=True")
            raise ValueError(f"kernel '{kernel}' exists only with {needs}")
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
    layout: str = "dense",
    page_size: int = 0,
) -> CompiledAttention:
    """Compile a variant for a target without running it, to look at every stage.

    With `backward`, attn-autodiff derives the gradient too and the kernels include dQ and dK/dV
    (a normalizer whose backward cannot be derived raises NotImplementedError naming the part).
    `layout` compiles a serving form: "packed", "cache" or "paged" (with `page_size`).
    """
    if dtype not in DTYPES:
        raise TypeError(f"dtype must be float16, bfloat16 or float32, but got {dtype}")
    attn = Attention(score_mod, mask_mod, normalizer)
    compiled = attn.compile(shape, dtype, target, scale, backward, layout=layout, page_size=page_size)
    return CompiledAttention(compiled, target)
