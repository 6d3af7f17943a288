"""Warm calls replayed through Triton's launcher: the launches a call made, with this call's tensors.

`JITFunction.run` binds and specializes every argument on every launch, tens of microseconds of host
time, more than a decode kernel lasts. A call whose shapes, strides and integers repeat (the decode
path's key holds all of them) can instead keep the compiled kernels and their arguments in parameter
order, and swap in the new tensors: the inputs, and fresh outputs and scratch like the first call's.

A kernel was specialized on its first arguments, 16-byte alignment of pointers included: a replay
refuses (returns None) when an input that was aligned then is not now, and the caller takes the full
path, which compiles the variant it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from attnc.runtime.launch import Launched


class _BoundLaunch:
    """One compiled launch: its runner and arguments, and which of them each call replaces (by slot)."""

    __slots__ = ("runner", "slots", "values")

    def __init__(self, launched: Launched, slot_of: dict[int, int]):
        self.runner = launched.handle[(*launched.grid, 1, 1)[:3]]  # the launcher takes three grid sizes
        self.values = list(launched.values)
        self.slots = [(i, slot_of[id(v)]) for i, v in enumerate(launched.values) if isinstance(v, torch.Tensor)]

    def __call__(self, tensors: list[torch.Tensor]) -> None:
        values = self.values.copy()
        for i, slot in self.slots:
            values[i] = tensors[slot]
        self.runner(*values)


class Replay:
    """The launches of one call, to run again on new inputs of the same shapes, strides and dtypes."""

    def __init__(
        self,
        launched: Sequence[Launched],
        inputs: Sequence[torch.Tensor],
        outputs: Sequence[torch.Tensor],
    ):
        slot_of = {id(t): i for i, t in enumerate(inputs)}
        made: list[torch.Tensor] = []  # outputs first, then scratch, each allocated afresh per call
        for t in [*outputs, *(v for launch in launched for v in launch.values if isinstance(v, torch.Tensor))]:
            if id(t) not in slot_of:
                slot_of[id(t)] = len(inputs) + len(made)
                made.append(t)
        self.num_outputs = len(outputs)
        self.made = [(tuple(t.shape), t.dtype, t.device) for t in made]
        self.aligned = [t.data_ptr() % 16 == 0 for t in inputs]
        device = inputs[0].device
        self.device_index = (
            (torch.cuda.current_device() if device.index is None else device.index) if device.type == "cuda" else None
        )
        self.launches = [_BoundLaunch(launch, slot_of) for launch in launched]

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
        """The outputs; None when an input lost the alignment the kernels were specialized on, or another
        device is current (Triton launches on the current device's stream)."""
        if self.device_index is not None and torch.cuda.current_device() != self.device_index:
            return None
        for t, aligned in zip(inputs, self.aligned):
            if aligned and t.data_ptr() % 16:
                return None
        made = [torch.empty(shape, dtype=dtype, device=device) for shape, dtype, device in self.made]
        tensors = [*inputs, *made]
        for launch in self.launches:
            launch(tensors)
        return made[: self.num_outputs]


def replay_of(launched: Sequence[Launched], inputs: Sequence[Any], outputs: Sequence[torch.Tensor]) -> Replay | None:
    """A Replay of `launched`; None when nothing launched, a launch was not a compiled one, an input is
    given twice (k is v: a later call's k and v could not be told apart) or a made tensor is a view."""
    if not launched or not all(hasattr(launch.handle, "function") for launch in launched):
        return None
    if len({id(t) for t in inputs}) != len(inputs):
        return None
    given = {id(t) for t in inputs}
    made = [v for launch in launched for v in launch.values if isinstance(v, torch.Tensor) and id(v) not in given]
    if not all(t.is_contiguous() and t.storage_offset() == 0 for t in [*outputs, *made]):
        return None
    return Replay(launched, inputs, outputs)


__all__ = ["Replay", "replay_of"]
