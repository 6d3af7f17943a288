"""Tuning launch configurations on the GPU, for every kernel family alike.

The generated kernels are generic in their block sizes, so one source serves every
candidate. The first call per (kernel, shape, device) times each candidate with
`triton.testing.do_bench` and keeps the fastest, in memory and on disk (cache.py), so a
later process compiles only the winner. A candidate that does not fit the GPU (shared
memory, or what Triton's own autotuner skips) is skipped; any other error is raised. With
`ATTNC_AUTOTUNE=0` the default runs untimed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from triton.compiler.errors import CompileTimeAssertionFailure
from triton.runtime.errors import OutOfResources, PTXASError

from attnc.runtime import cache, config

Config = tuple[int, ...]

_MEMORY: dict[str, Config] = {}


@functools.cache
def _gpu_name(index: int) -> str:
    return torch.cuda.get_device_name(index)


def gpu_name(device: torch.device) -> str:
    """The GPU's name, looked up once per device: part of every tuned launch's key."""
    return _gpu_name(device.index if device.index is not None else torch.cuda.current_device())


def tuning_key(family: str, compiled_key: str, kernel: str, shape: Sequence[Any], device: torch.device) -> str:
    """`family|compiled key|kernel|shape...|GPU`: the one key format of autotune.json (the compiled key covers
    attnc's sources, the IR, the pipeline and the target)."""
    return "|".join(map(str, (family, compiled_key[:24], kernel, *shape, gpu_name(device))))


def tuned(
    key: str,
    default: Config,
    candidates: Callable[[], Sequence[Config]],
    run: Callable[[Config], Any],
    reset: Callable[[], Any] | None = None,
) -> Config:
    """The fastest of `candidates()` for `key` (`default` when tuning is off or none runs); `run(config)`
    launches once. `candidates` is called only when neither memory nor disk holds a winner.

    `reset` restores what a launch accumulates into, before every timed launch and after
    the last, so the real launch that follows starts clean.
    """
    if not config.autotune_enabled():
        return default
    hit = _MEMORY.get(key)
    if hit is None:
        hit = cache.stored_config(key)
        if hit is None or len(hit) != len(default):
            hit = _fastest(default, candidates() or [default], run, reset)
            cache.store_config(key, hit)
        _MEMORY[key] = hit
    return hit


# What Triton's own autotuner skips: a configuration this GPU or compiler cannot take.
_UNFIT = (OutOfResources, CompileTimeAssertionFailure, PTXASError)


def _fastest(
    default: Config, candidates: Sequence[Config], run: Callable[[Config], Any], reset: Callable[[], Any] | None
) -> Config:
    import triton.testing

    def timed(candidate: Config) -> None:
        if reset is not None:
            reset()
        run(candidate)

    best, best_ms = default, float("inf")
    for candidate in dict.fromkeys(candidates):  # each distinct candidate compiled and timed once
        try:
            measured: Any = triton.testing.do_bench(
                lambda c=candidate: timed(c), warmup=5, rep=20, return_mode="median"
            )
        except _UNFIT:
            continue
        ms = float(measured)  # median without quantiles: one float
        if ms < best_ms:
            best, best_ms = candidate, ms
    if reset is not None:
        reset()
    return best


__all__ = ["Config", "gpu_name", "tuned", "tuning_key"]
