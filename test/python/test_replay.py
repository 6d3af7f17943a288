"""runtime/replay.py on the CPU, with a stand-in for Triton's compiled kernel: which arguments a replay
swaps, what it allocates afresh, and when it refuses."""

from __future__ import annotations

from typing import Any

import torch

from attnc.runtime.launch import Launched
from attnc.runtime.replay import replay_of


class FakeCompiled:
    """Records launches the way `CompiledKernel[grid](*args)` takes them."""

    function = object()

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], tuple[Any, ...]]] = []

    def __getitem__(self, grid: tuple[int, ...]):
        return lambda *args: self.calls.append((grid, args))


def test_replay_swaps_inputs_and_allocates_outputs_and_shared_scratch():
    split, combine = FakeCompiled(), FakeCompiled()
    q, k, out, scratch = torch.zeros(4), torch.zeros(8), torch.zeros(2, 3), torch.zeros(5)
    launched = [
        Launched(split, (7,), (q, k, scratch, 16, 64)),
        Launched(combine, (2, 3), (scratch, out, 16)),
    ]
    replay = replay_of(launched, [q, k], [out])
    assert replay is not None
    q2, k2 = torch.ones(4), torch.ones(8)
    made = replay([q2, k2])
    assert made is not None and len(made) == 1
    assert made[0].shape == (2, 3) and made[0] is not out
    (grid_a, args_a), (grid_b, args_b) = split.calls[0], combine.calls[0]
    assert grid_a == (7, 1, 1) and grid_b == (2, 3, 1)
    assert args_a[0] is q2 and args_a[1] is k2 and args_a[3:] == (16, 64)
    assert args_a[2] is args_b[0] and args_a[2] is not scratch  # scratch: fresh, and one tensor for both
    assert args_b[1] is made[0] and args_b[2] == 16


def test_replay_refuses_what_it_cannot_replay():
    kernel = FakeCompiled()
    q, out = torch.zeros(16), torch.zeros(4)
    replay = replay_of([Launched(kernel, (1,), (q, out))], [q], [out])
    assert replay is not None
    assert replay([torch.zeros(17)[1:]]) is None  # was 16-byte aligned, is not now
    assert replay_of([], [q], [out]) is None
    assert replay_of([Launched(object(), (1,), (q, out))], [q], [out]) is None  # interpreted: no compiled handle
    assert replay_of([Launched(kernel, (1,), (q, q, out))], [q, q], [out]) is None  # one tensor given twice
    view = torch.zeros(8)[2:6]
    assert replay_of([Launched(kernel, (1,), (q, view))], [q], [view]) is None
