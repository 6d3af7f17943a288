"""Warm calls replayed through Triton's launcher: the launches a call made, with this call's tensors.

`JITFunction.run` binds and specializes every argument on every launch, tens of microseconds of host
time, more than a decode kernel lasts. A call whose shapes, strides and integers repeat (the decode
path's key holds all of them) can instead keep the compiled kernels and their arguments in parameter
order, and swap in this call's pointers: the inputs', and those of fresh outputs and scratch laid out
like the first call's, one allocation per dtype.

A kernel was specialized on its first arguments, 16-byte alignment of pointers included: a replay
refuses (returns None) when an input that was aligned then is not now, and the caller takes the full
path, which compiles the variant it needs. With a launch hook set (Proton), launches go through
Triton's runner, which reports them.
"""

from __future__ import annotations

import math
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
        self.args = list(launched.values)
        self.slots = [(i, slot_of[id(v)]) for i, v in enumerate(launched.values) if isinstance(v, torch.Tensor)]

    def __call__(self, pointers: list[int], stream: int) -> None:
        args = self.args.copy()
        for i, slot in self.slots:
            args[i] = pointers[slot]
        if knobs.runtime.launch_enter_hook is not None or knobs.runtime.launch_exit_hook is not None:
            self.handle[self.grid](*args, stream=stream)
            return
        self.run(*self.grid, stream, self.function, self.metadata, None, None, None, *args)


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
        # one buffer per dtype; each made tensor at an aligned offset in its dtype's buffer
        self.places: list[tuple[int, int, tuple[int, ...]]] = []  # (buffer, element offset, shape)
        sizes: dict[torch.dtype, int] = {}
        for t in made:
            if t.dtype not in sizes:
                sizes[t.dtype] = 0
            step = _ALIGN // t.element_size()
            offset = -(-sizes[t.dtype] // step) * step
            sizes[t.dtype] = offset + t.numel()
            self.places.append((list(sizes).index(t.dtype), offset, tuple(t.shape)))
        counts = [sum(1 for t in made if t.dtype == dtype) for dtype in sizes]
        # a dtype with one tensor (out, mostly) is allocated in its own shape
        self.buffers = [
            (dtype, shape if count == 1 else (size,))
            for (dtype, size), count, shape in zip(sizes.items(), counts, [_first_shape(made, d) for d in sizes])
        ]
        self.num_outputs = len(outputs)
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
        buffers = [torch.empty(shape, dtype=dtype, device=self.device) for dtype, shape in self.buffers]
        bases = [(b.data_ptr(), b.element_size()) for b in buffers]
        for index, offset, _ in self.places:
            base, size = bases[index]
            pointers.append(base + offset * size)
        stream = 0
        if self.device_index is not None:
            stream = driver.active.get_current_stream(self.device_index)  # pyright: ignore[reportAttributeAccessIssue]
        for launch in self.launches:
            launch(pointers, stream)
        outputs = []
        for index, offset, shape in self.places[: self.num_outputs]:
            buffer = buffers[index]
            own = buffer.shape == shape
            outputs.append(buffer if own else buffer[offset : offset + math.prod(shape)].view(shape))
        return outputs


def _first_shape(made: list[torch.Tensor], dtype: torch.dtype) -> tuple[int, ...]:
    return next(tuple(t.shape) for t in made if t.dtype == dtype)


def replay_of(launched: Sequence[Launched], inputs: Sequence[Any], outputs: Sequence[torch.Tensor]) -> Replay | None:
    """A Replay of `launched`; None when nothing launched, a launch was not a compiled one or a made
    tensor is a view. An input given twice (k is v) replays only calls that give it twice again."""
    if not launched or not all(hasattr(launch.handle, "function") for launch in launched):
        return None
    given = {id(t) for t in inputs}
    made = [v for launch in launched for v in launch.values if isinstance(v, torch.Tensor) and id(v) not in given]
    if not all(t.is_contiguous() and t.storage_offset() == 0 for t in [*outputs, *made]):
        return None
    return Replay(launched, inputs, outputs)


__all__ = ["Replay", "replay_of"]
