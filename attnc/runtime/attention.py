"""What the runtime keeps for one softmax-style attention variant: its compiled kernels and its plans.

The frontend traces the user's mods and hands the runtime an `AttentionProgram`: a
function that builds the logical module for a `Signature`, the captured tensors, how
many row statistics the normalizer returns, and a function that checks a call's
inputs. From there the runtime compiles (compiler.py), plans and tunes per shape
(forward.py), launches and differentiates (autograd.py). Nothing here knows how the
module was traced.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from xdsl.dialects.builtin import ModuleOp

from attnc import pipeline
from attnc.runtime import config
from attnc.runtime.capture_bounds import check_capture_reads
from attnc.runtime.compiler import CompiledVariant, compile_attention
from attnc.runtime.forward import PreparedLaunch, tuned_config
from attnc.runtime.launch import LaunchConfig, Launched
from attnc.runtime.replay import replay_of
from attnc.runtime.sequence_launch import SequenceLaunch
from attnc.runtime.sequences import Sequences, debug_checks
from attnc.runtime.targets import Target

DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}


@dataclass(frozen=True)
class Signature:
    """What the logical IR depends on: head counts, head dims, element type and scale (batch and lengths stay
    dynamic)."""

    dtype: str  # "float16" | "bfloat16" | "float32"
    q_heads: int
    kv_heads: int
    head_dim: int
    head_dim_v: int
    scale: float
    layout: str = "dense"  # or "packed", "cache", "paged" (dialect/attn_sequences.py)
    page_size: int = 0  # the paged layout's, static in the IR


@dataclass(frozen=True)
class Plan:
    """A prepared launch for one set of shapes, whether the inputs run upcast (bf16 on the CPU), and the
    captured tensors as given (converted at each call, so in-place updates are seen)."""

    launch: PreparedLaunch | SequenceLaunch
    upcast: bool
    captures: list[torch.Tensor]
    capture_reads: list[dict[str, Any]]

    def run(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        seqs: Sequences | None = None,
        record: list[Launched] | None = None,
        given: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The forward on q, k, v in the caller's dtype: out in that dtype and the row statistics; `record`
        collects the launches of sequences on CUDA (replay.py); `given` are the captured tensors when a
        custom op passed its own (of the plan's shapes), else the program's."""
        held = self.captures if given is None else given
        captures = interpretable(held)
        if seqs is not None:
            assert isinstance(self.launch, SequenceLaunch)
            if self.capture_reads:  # the plan serves many lengths: bound this call's
                check_capture_reads(self.capture_reads, held, _extents(q, seqs))
            if self.upcast:
                out, stats = self.launch.run(q.float(), k.float(), v.float(), captures, seqs)
                return out.to(q.dtype), stats
            return self.launch.run(q, k, v, captures, seqs, record)
        assert isinstance(self.launch, PreparedLaunch)
        if self.upcast:
            out, stats = self.launch.run(q.float(), k.float(), v.float(), captures)
            return out.to(q.dtype), stats
        return self.launch.run(q, k, v, captures)


def _extents(q: torch.Tensor, seqs: Sequences) -> dict[str, int]:
    """How many values each index argument takes: positions of a sequence run up to its key length."""
    return {"b": seqs.count, "h": q.shape[1], "q_idx": max(seqs.max_q, seqs.max_k), "kv_idx": seqs.max_k}


class PlanCache(OrderedDict):
    """Plans by shape, the most recent kept: a model that sees many lengths stays bounded."""

    SIZE = 128

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.SIZE:
            self.popitem(last=False)


def interpretable(captures: list[torch.Tensor]) -> list[torch.Tensor]:
    """Captured tensors as Triton's interpreter can read them: bf16 as fp32 (triton#11584); others as they are."""
    if not any(c.dtype == torch.bfloat16 and c.device.type == "cpu" for c in captures):
        return captures
    return [c.float() if c.dtype == torch.bfloat16 and c.device.type == "cpu" else c for c in captures]


_PROGRAMS: dict[str, AttentionProgram] = {}
_NEXT = itertools.count()


def program(name: str) -> AttentionProgram:
    """The program a custom op names."""
    return _PROGRAMS[name]


_TARGETS: dict[int, str] = {}


def device_target(device: torch.device) -> str:
    """ "cpu" (Triton's interpreter) or the GPU's target, looked up once per device."""
    if device.type != "cuda":
        return "cpu"
    index = device.index if device.index is not None else torch.cuda.current_device()
    target = _TARGETS.get(index)
    if target is None:
        with torch.cuda.device(index):
            target = _TARGETS[index] = str(Target.current())
    return target


class AttentionProgram:
    """One attention variant as the runtime runs it; `name` is how the custom ops refer to it."""

    def __init__(
        self,
        build: Callable[[Signature], ModuleOp],
        captures: list[torch.Tensor],
        num_stats: int,
        check: Callable[[Any, Any, Any, Any], None],
    ):
        self.build = build
        self.captures = captures
        self.num_stats = num_stats
        self.check = check
        self.name = f"attnc{next(_NEXT)}"
        _PROGRAMS[self.name] = self
        self._compiled: dict[tuple[Any, ...], CompiledVariant] = {}
        self._plans = PlanCache()
        self._decoding = PlanCache()  # warm KV-cache calls on CUDA: (plan, sequences) by the call's key
        self._backward_problem: tuple[str | None] | None = None

    def backward_problem(self) -> str | None:
        """Why attn-autodiff cannot derive this variant's backward (a message naming the part), or None."""
        if self._backward_problem is None:
            module = self.build(Signature("float32", 1, 1, 16, 16, 0.25))
            self._backward_problem = (pipeline.backward_problem(module),)
        return self._backward_problem[0]

    def compile(
        self,
        sig: Signature,
        target: str,
        backward: bool = False,
        grad_captures: tuple[int, ...] | None = None,
        debug: bool | None = None,
    ) -> CompiledVariant:
        """The kernels for `target` ("cpu", "cuda:90", ...); `backward` adds dQ, dK/dV and the gradients of the
        captured tensors `grad_captures` names (None: all); `debug` (None: `ATTNC_DEBUG`) has guarded
        captured-tensor reads assert that they are in range."""
        debug = config.debug_reads() if debug is None else debug
        key = (sig, target, backward, grad_captures, debug)
        compiled = self._compiled.get(key)
        if compiled is None:
            if backward and self.backward_problem() is not None:
                raise NotImplementedError(self.backward_problem())
            compiled = compile_attention(self.build(sig), target, backward, grad_captures, debug=debug)
            self._compiled[key] = compiled
        return compiled

    def forward(
        self,
        q: Any,
        k: Any,
        v: Any,
        scale: float | None,
        seqs: Sequences | None = None,
        given: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """out and the row statistics, without autograd: the warm path is one dictionary lookup and a launch;
        `given`: the captured tensors a custom op was passed."""
        return self._plan_for(q, k, v, scale, seqs).run(q, k, v, seqs, given=given)

    def _plan_for(self, q: Any, k: Any, v: Any, scale: float | None, seqs: Sequences | None) -> Plan:
        try:
            key = (q.shape, k.shape, v.shape, q.dtype, k.dtype, v.dtype, q.device, k.device, v.device,
                   q.stride(), k.stride(), v.stride(), scale,
                   tuple((c.shape, c.stride(), c.dtype) for c in self.captures),
                   seqs.key() if seqs is not None else None)  # fmt: skip
        except AttributeError:  # not tensors: the check names the argument
            self.check(q, k, v, scale)
            raise
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = self._plan(q, k, v, scale, seqs=seqs)
        return found

    def decode(
        self,
        q: Any,
        k: Any,
        v: Any,
        scale: float | None,
        cache_seqlens: Any,
        block_table: Any,
        num_splits: Any,
        check: Callable[[], Sequences],
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Attention over a KV cache. On CUDA, a warm call is one dictionary lookup and the launch: its key holds
        every shape, dtype, device and stride the checks read, and the lengths and pages are read only by the
        kernels. Otherwise (and when first seen) `check()` checks the call and describes its sequences."""
        try:
            key = (q.shape, k.shape, v.shape, q.dtype, k.dtype, v.dtype, q.device, k.device, v.device,
                   q.stride(), k.stride(), v.stride(), scale, num_splits,
                   tuple((t.shape, t.stride(), t.dtype, t.device) for t in (cache_seqlens, block_table) if t is not None),
                   tuple((c.shape, c.stride(), c.dtype) for c in self.captures))  # fmt: skip
        except AttributeError:  # not tensors: the check names the argument
            key = None
        found = self._decoding.get(key) if key is not None else None
        meta = (cache_seqlens,) if block_table is None else (cache_seqlens, block_table)
        if found is not None:
            plan, template, replay = found
            if replay is not None:
                made = replay([q, k, v, *meta, *self.captures])
                if made is not None:
                    return made[0], made[1:]
            return plan.run(q, k, v, replace(template, meta=meta))
        seqs = check()
        plan = self._plan_for(q, k, v, scale, seqs)
        if key is None or q.device.type != "cuda" or debug_checks():
            return plan.run(q, k, v, seqs)
        launched: list[Launched] = []
        out, stats = plan.run(q, k, v, seqs, record=launched)
        # devices differ: Triton launched under a device guard, which a replay does not take
        same_device = q.device.index in (None, torch.cuda.current_device())
        replay = replay_of(launched, [q, k, v, *seqs.meta, *self.captures], [out, *stats]) if same_device else None
        self._decoding[key] = (plan, replace(seqs, meta=()), replay)  # not this call's lengths and pages
        return out, stats

    def plan(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        scale: float | None,
        backward: bool,
        grad_captures: tuple[int, ...] | None = None,
        seqs: Sequences | None = None,
    ) -> Plan:
        """The plan for these shapes (forward-only or with the backward kernels), cached; `seqs` for packed
        sequences or a cache."""
        key = ("backward" if backward else "forward", grad_captures, q.shape, k.shape, v.shape, q.dtype, k.dtype,
               v.dtype, q.device, k.device, v.device, q.stride(), k.stride(), v.stride(), scale,
               tuple((c.shape, c.stride(), c.dtype) for c in self.captures),
               seqs.key() if seqs is not None else None)  # fmt: skip
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = self._plan(q, k, v, scale, backward, grad_captures, seqs)
        return found

    def _plan(
        self,
        q: Any,
        k: Any,
        v: Any,
        scale: float | None,
        backward: bool = False,
        grad_captures: tuple[int, ...] | None = None,
        seqs: Sequences | None = None,
    ) -> Plan:
        """Checks the inputs, compiles (or finds) the kernels and prepares the launch for these shapes.

        `ATTNC_DEBUG` is read here (by `compile`), once per plan: the warm path reads no environment."""
        if seqs is None:
            self.check(q, k, v, scale)
        for i, t in enumerate(self.captures):
            if t.device != q.device:
                raise ValueError(
                    f"captured tensor {i} (shape {tuple(t.shape)}) is on {t.device}, but q is on {q.device}"
                )
        upcast = q.device.type == "cpu" and q.dtype == torch.bfloat16
        # Triton's interpreter keeps bf16 as raw bits (triton#11584): the CPU runs the fp32 kernel.
        dtype = torch.float32 if upcast else q.dtype
        resolved = float(q.shape[3] ** -0.5) if scale is None else float(scale)
        layout = ("dense", 0) if seqs is None else (seqs.layout, seqs.page_size)
        sig = Signature(DTYPES[dtype], q.shape[1], k.shape[1], q.shape[3], v.shape[3], resolved, *layout)
        compiled = self.compile(sig, device_target(q.device), backward, grad_captures)
        info = compiled.info
        config = LaunchConfig(info.block_m, info.block_n, info.num_warps, info.num_stages)
        run_q, run_k, run_v = (t.float() for t in (q, k, v)) if upcast else (q, k, v)
        captures = interpretable(self.captures)
        if seqs is not None:
            launch = SequenceLaunch(compiled, run_q, run_k, run_v, captures, config, seqs)
            return Plan(launch, upcast, self.captures, info.capture_reads)
        extents = {"b": q.shape[0], "h": q.shape[1], "q_idx": q.shape[2], "kv_idx": k.shape[2]}
        check_capture_reads(info.capture_reads, self.captures, extents)
        if q.device.type == "cuda":
            config = tuned_config(compiled, run_q, run_k, run_v, captures, config)
        return Plan(PreparedLaunch(compiled, run_q, run_k, run_v, captures, config), upcast, self.captures, [])


__all__ = ["DTYPES", "AttentionProgram", "Plan", "Signature", "device_target", "interpretable", "program"]
