"""tune._fastest on the CPU with a stand-in for do_bench: a candidate whose output disagrees with the
default's (NaN, or far off) never wins, however fast; close outputs (other rounding) may."""

from __future__ import annotations

import pytest
import torch
import triton.testing

from attnc.runtime import tune


@pytest.fixture
def fake_timing(monkeypatch):
    """do_bench runs the launch once and reports the time each candidate is given."""
    times: dict[tuple[int, ...], float] = {}
    current: list[tuple[int, ...]] = []

    def do_bench(fn, **kwargs):
        fn()
        return times[current[-1]]

    monkeypatch.setattr(triton.testing, "do_bench", do_bench)
    return times, current


def _run(outputs: dict[tuple[int, ...], torch.Tensor], current: list[tuple[int, ...]]):
    def run(config: tuple[int, ...]):
        current.append(config)
        return outputs[config].clone(), [outputs[config][:, 0].clone()]

    return run


def test_a_fast_wrong_candidate_never_wins(fake_timing):
    times, current = fake_timing
    good = torch.randn(4, 8)
    nan = good.clone()
    nan[1, 2] = float("nan")
    outputs = {(1,): good, (2,): nan, (3,): good + 1.0, (4,): good + 1e-6}
    times.update({(1,): 3.0, (2,): 1.0, (3,): 1.5, (4,): 2.0})
    best = tune._fastest((1,), [(1,), (2,), (3,), (4,)], _run(outputs, current), None)
    assert best == (4,)  # (2,) has a NaN the default has not, (3,) is off by 1: both refused


def test_the_default_wins_when_every_other_candidate_is_wrong(fake_timing):
    times, current = fake_timing
    good = torch.randn(4, 8)
    outputs = {(1,): good, (2,): torch.full_like(good, float("nan"))}
    times.update({(1,): 3.0, (2,): 1.0})
    assert tune._fastest((1,), [(1,), (2,)], _run(outputs, current), None) == (1,)
