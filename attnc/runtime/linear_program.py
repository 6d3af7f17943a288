"""What the runtime keeps for one linear-attention variant: its compiled kernels per signature.

The frontend traces the feature maps and hands the runtime a `LinearProgram`: a function
that builds the logical module (one `attn.recurrence`) for a `LinearSignature`, the gate
kind and the chunk size. The custom ops (linear_autograd.py) name it by `name`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from xdsl.dialects.builtin import ModuleOp

from attnc.runtime.attention import device_target
from attnc.runtime.compiler import CompiledLinear, compile_linear


@dataclass(frozen=True)
class LinearSignature:
    """What the logical IR of a linear-attention call depends on (batch and length stay dynamic)."""

    heads_qk: int
    heads: int
    dim_k: int
    dim_v: int
    dtype: str  # float16 | bfloat16 | float32
    scale: float
    has_initial: bool
    varlen: bool


_PROGRAMS: dict[str, LinearProgram] = {}
_NEXT = itertools.count()


def program(name: str) -> LinearProgram:
    """The program a custom op names."""
    return _PROGRAMS[name]


class LinearProgram:
    """One linear-attention variant as the runtime runs it."""

    def __init__(self, build: Callable[[LinearSignature], ModuleOp], gate: str, chunk_size: int):
        self.build = build
        self.gate = gate  # none | head | scalar | vector
        self.chunk_size = chunk_size
        self.name = f"attnc_linear{next(_NEXT)}"
        _PROGRAMS[self.name] = self
        self._compiled: dict[tuple[LinearSignature, str, bool], CompiledLinear] = {}

    def compile(self, sig: LinearSignature, target: str, backward: bool) -> CompiledLinear:
        """The kernels for `target` ("cpu", "cuda:90", ...); the warm path is one dictionary lookup."""
        key = (sig, target, backward)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = compile_linear(self.build(sig), target, self.chunk_size, backward)
            self._compiled[key] = compiled
        return compiled

    def compiled_for(
        self,
        q: torch.Tensor,
        v: torch.Tensor,
        has_initial: bool,
        varlen: bool,
        scale: float,
        backward: bool,
    ) -> tuple[CompiledLinear, bool]:
        """The kernels for these inputs, and whether they run upcast (bf16 on the CPU: triton#11584)."""
        upcast = q.device.type == "cpu" and q.dtype == torch.bfloat16
        dtype = torch.float32 if upcast else q.dtype
        sig = LinearSignature(
            heads_qk=q.shape[1],
            heads=v.shape[1],
            dim_k=q.shape[3],
            dim_v=v.shape[3],
            dtype=str(dtype).removeprefix("torch."),
            scale=scale,
            has_initial=has_initial,
            varlen=varlen,
        )
        return self.compile(sig, device_target(q.device), backward), upcast


__all__ = ["LinearProgram", "LinearSignature", "program"]
