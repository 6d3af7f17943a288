"""Warm calls replayed through Triton's launcher: the launches a call made, with this call's tensors.

`JITFunction.run` binds and specializes every argument on every launch, tens of microseconds of host
time, more than a decode kernel lasts. A call whose shapes, strides and integers repeat (the decode
path's key holds all of them) can instead keep the compiled kernels and their arguments in parameter
order, and swap in this call's pointers: the inputs', fresh outputs', and scratch laid out like the
first call's, one allocation per dtype.

A kernel was specialized on its first arguments, 16-byte alignment of pointers included: a replay
refuses (returns None) when an input that was aligned then is not now, and the caller takes the full
path, which compiles the variant it needs. With a launch hook set (Proton), launches go through
Triton's runner, which reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from triton import knobs
from triton.runtime.driver import driver

from attnc.runtime.launch import Launched

_ALIGN = 16  # bytes: a made tensor's offset in its dtype's buffer keeps the alignment Triton specialized on


class _BoundLaunch:
    """One compiled launch: Triton's launcher and the arguments, and which of them each call replaces."""

    __slots__ = ("args", "function", "grid", "handle", "metadata", "run", "slots")

    def __init__(self, launched: Launched, slot_of: dict[int, int]):
        self.handle = launched.handle
        self.grid = (*launched.grid, 1, 1)[:3]  # the launcher takes three grid sizes
        self.handle[self.grid]  # loads the binary (Triton's _init_handles)
        self.run = self.handle.run
        self.function = self.handle.function
        self.metadata = self.handle.packed_metadata
        self.slots = [(i, slot_of[id(v)]) for i, v in enumerate(launched.values) if isinstance(v, torch.Tensor)]
        # every tensor is replaced at each call: keep none of the first call's (its KV cache among them)
        self.args: list[Any] = [None if isinstance(v, torch.Tensor) else v for v in launched.values]

    def __call__(self, pointers: list[int], stream: int) -> None:
        args = self.args.copy()
        for i, slot in self.slots:
            args[i] = pointers[slot]
        if _hooked(knobs.runtime.launch_enter_hook) or _hooked(knobs.runtime.launch_exit_hook):
            self.handle[self.grid](*args, stream=stream)  # Triton's runner: builds the hooks' metadata
            return
        self.run(*self.grid, stream, self.function, self.metadata, None, None, None, *args)


def _hooked(hook: Any) -> bool:
    """Whether a launch hook is set: None or an empty HookChain (Triton 3.9's default) is not."""
    return hook is not None and bool(getattr(hook, "calls", True))


class Replay:
    """The launches of one call, to run again on new inputs of the same shapes, strides and dtypes."""

    def __init__(self, launched: Sequence[Launched], inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]):
        slot_of: dict[int, int] = {}
        self.same: list[tuple[int, int]] = []  # inputs that were one tensor (k is v), and must be again
        for i, t in enumerate(inputs):
            if id(t) in slot_of:
                self.same.append((i, slot_of[id(t)]))
            else:
                slot_of[id(t)] = i
        made: list[torch.Tensor] = []  # outputs first, then scratch, laid out afresh per call
        for t in [*outputs, *(v for launch in launched for v in launch.values if isinstance(v, torch.Tensor))]:
            if id(t) not in slot_of:
                slot_of[id(t)] = len(inputs) + len(made)
                made.append(t)
        device = inputs[0].device
        self.device = device
        self.device_index = None
        if device.type == "cuda":
            self.device_index = torch.cuda.current_device() if device.index is None else device.index
        self.outputs = [(tuple(t.shape), t.dtype) for t in made[: len(outputs)]]
        # scratch: one buffer per dtype, each tensor at an aligned offset in its dtype's buffer
        self.places: list[tuple[int, int]] = []  # (buffer, element offset)
        sizes: dict[torch.dtype, int] = {}
        for t in made[len(outputs) :]:
            step = _ALIGN // t.element_size()
            offset = -(-sizes.get(t.dtype, 0) // step) * step
            sizes[t.dtype] = offset + t.numel()
            self.places.append((list(sizes).index(t.dtype), offset))
        self.scratch = list(sizes.items())
        self.aligned = [t.data_ptr() % _ALIGN == 0 for t in inputs]
        self.launches = [_BoundLaunch(launch, slot_of) for launch in launched]

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
        """The outputs; None when an input lost the alignment the kernels were specialized on, inputs that
        were one tensor are not now, or another device is current (Triton launches on its stream)."""
        if self.device_index is not None and torch.cuda.current_device() != self.device_index:
            return None
        for i, j in self.same:
            if inputs[i] is not inputs[j]:
                return None
        pointers = [t.data_ptr() for t in inputs]
        for pointer, aligned in zip(pointers, self.aligned):
            if aligned and pointer % _ALIGN:
                return None
        outputs = [torch.empty(shape, dtype=dtype, device=self.device) for shape, dtype in self.outputs]
        pointers += [t.data_ptr() for t in outputs]
        scratch = [torch.empty(size, dtype=dtype, device=self.device) for dtype, size in self.scratch]
        bases = [(b.data_ptr(), b.element_size()) for b in scratch]
        for index, offset in self.places:
            base, size = bases[index]
            pointers.append(base + offset * size)
        stream = 0
        if self.device_index is not None:
            stream = driver.active.get_current_stream(self.device_index)  # pyright: ignore[reportAttributeAccessIssue]
        for launch in self.launches:
            launch(pointers, stream)
        return outputs


def replay_of(launched: Sequence[Launched], inputs: Sequence[Any], outputs: Sequence[torch.Tensor]) -> Replay | None:
    """A Replay of `launched`; None when nothing launched, a launch was not a compiled one, an output is
    not a tensor of its own or a made tensor is a view. An input given twice (k is v) replays only calls
    that give it twice again. Every other tensor the launches take is scratch, written before it is read."""
    if not launched or not all(hasattr(launch.handle, "function") for launch in launched):
        return None
    given = {id(t) for t in inputs}
    if len({id(t) for t in outputs}) != len(outputs) or any(id(t) in given for t in outputs):
        return None  # an output that is an input, or given twice, would not be a fresh tensor of its own
    made = [v for launch in launched for v in launch.values if isinstance(v, torch.Tensor) and id(v) not in given]
    if not all(t.is_contiguous() and t.storage_offset() == 0 for t in [*outputs, *made]):
        return None
    return Replay(launched, inputs, outputs)


__all__ = ["Replay", "replay_of"]
