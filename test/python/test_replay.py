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
    packed_metadata = object()

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], tuple[Any, ...]]] = []  # through the launcher, `run`
        self.runner_calls: list[tuple[tuple[int, ...], tuple[Any, ...]]] = []  # through Triton's runner

    def __getitem__(self, grid: tuple[int, ...]):
        return lambda *args, stream=None: self.runner_calls.append((grid, args))

    def run(self, x: int, y: int, z: int, stream: int, function: Any, metadata: Any, *rest: Any) -> None:
        assert function is self.function and metadata is self.packed_metadata
        launch_metadata, enter_hook, exit_hook, *args = rest
        self.calls.append(((x, y, z), tuple(args)))


def test_replay_swaps_inputs_and_lays_out_outputs_and_shared_scratch():
    split, combine = FakeCompiled(), FakeCompiled()
    q, k = torch.zeros(4), torch.zeros(8)
    out, stat, scratch = torch.zeros(2, 3, dtype=torch.bfloat16), torch.zeros(3), torch.zeros(5)
    launched = [
        Launched(split, (7,), (q, k, scratch, 16, 64)),
        Launched(combine, (2, 3), (scratch, out, stat, 16)),
    ]
    replay = replay_of(launched, [q, k], [out, stat])
    assert replay is not None
    q2, k2 = torch.ones(4), torch.ones(8)
    made = replay([q2, k2])
    assert made is not None and len(made) == 2
    new_out, new_stat = made
    assert new_out.shape == (2, 3) and new_out.dtype == torch.bfloat16 and new_out.data_ptr() != out.data_ptr()
    assert new_stat.shape == (3,) and new_stat.dtype == torch.float32
    (grid_a, args_a), (grid_b, args_b) = split.calls[0], combine.calls[0]
    assert grid_a == (7, 1, 1) and grid_b == (2, 3, 1)
    assert args_a[:2] == (q2.data_ptr(), k2.data_ptr()) and args_a[3:] == (16, 64)
    assert args_b[1:] == (new_out.data_ptr(), new_stat.data_ptr(), 16)
    # scratch: one pointer for both launches, of its own (not the outputs'), 16-byte aligned
    assert args_a[2] == args_b[0]
    assert args_a[2] % 16 == 0 and args_a[2] not in (new_out.data_ptr(), new_stat.data_ptr())
    assert not split.runner_calls and not combine.runner_calls  # no launch hook: straight to the launcher


def test_replay_takes_tritons_runner_when_a_launch_hook_is_set(monkeypatch):
    from triton import knobs

    kernel = FakeCompiled()
    q, out = torch.zeros(16), torch.zeros(4)
    replay = replay_of([Launched(kernel, (1,), (q, out))], [q], [out])
    assert replay is not None
    monkeypatch.setattr(knobs.runtime, "launch_enter_hook", lambda metadata: None)
    assert replay([q]) is not None
    assert len(kernel.runner_calls) == 1 and not kernel.calls


def test_replay_refuses_what_it_cannot_replay():
    kernel = FakeCompiled()
    q, out = torch.zeros(16), torch.zeros(4)
    replay = replay_of([Launched(kernel, (1,), (q, out))], [q], [out])
    assert replay is not None
    assert replay([torch.zeros(17)[1:]]) is None  # was 16-byte aligned, is not now
    assert replay_of([], [q], [out]) is None
    assert replay_of([Launched(object(), (1,), (q, out))], [q], [out]) is None  # interpreted: no compiled handle
    twice = replay_of([Launched(kernel, (1,), (q, q, out))], [q, q], [out])  # k is v
    assert twice is not None
    other = torch.zeros(16)
    assert twice([other, torch.zeros(16)]) is None  # ... but not now: the slots would be ambiguous
    made = twice([other, other])
    assert made is not None and kernel.calls[-1][1][:2] == (other.data_ptr(), other.data_ptr())
    assert replay_of([Launched(kernel, (1,), (q, out))], [q, out], [out]) is None  # an output that is an input
    view = torch.zeros(8)[2:6]
    assert replay_of([Launched(kernel, (1,), (q, view))], [q], [view]) is None
