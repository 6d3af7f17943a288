"""Tuning launch configurations on the GPU, for every kernel family alike.

The generated kernels are generic in their block sizes, so one source serves every
candidate. The first call per (kernel, shape, device) times each candidate with
`triton.testing.do_bench` and keeps the fastest, in memory and on disk (cache.py), so a
later process compiles only the winner. A candidate that does not fit the GPU (shared
memory, or what Triton's own autotuner skips) is skipped; any other error is raised.
Where a launch returns its outputs, a candidate must first agree with the first one's
(the default's): NaN where it has NaN, and close elsewhere; one that does not never wins
(a miscompiled configuration has been seen returning NaN). Tuning that takes more than a
second says so on stderr. With `ATTNC_AUTOTUNE=0` the default runs untimed.
"""

from __future__ import annotations

import functools
import sys
import time
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

    def timed(candidate: Config) -> Any:
        if reset is not None:
            reset()
        return run(candidate)

    best, best_ms = default, float("inf")
    reference: list[torch.Tensor] | None = None
    distinct = list(dict.fromkeys(candidates))  # each distinct candidate compiled and timed once
    started = time.perf_counter()
    for i, candidate in enumerate(distinct):
        try:
            outputs = _tensors(timed(candidate))
            if reference is None:
                reference = [t.clone() for t in outputs]
            elif not _agree(outputs, reference):
                continue  # a wrong answer never wins, however fast
            measured: Any = triton.testing.do_bench(
                lambda c=candidate: timed(c), warmup=5, rep=20, return_mode="median"
            )
        except _UNFIT:
            continue
        ms = float(measured)  # median without quantiles: one float
        if ms < best_ms:
            best, best_ms = candidate, ms
        _progress(started, i + 1, len(distinct))
    if reset is not None:
        reset()
    return best


def _tensors(result: Any) -> list[torch.Tensor]:
    """The tensors a launch returned (a tensor, or nested tuples and lists of them), in order."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, tuple | list):
        return [t for item in result for t in _tensors(item)]
    return []


def _agree(outputs: list[torch.Tensor], reference: list[torch.Tensor]) -> bool:
    """Same shapes, NaN exactly where the reference has NaN, and close elsewhere (16-bit rounding of
    differently ordered sums)."""
    if len(outputs) != len(reference):
        return False
    for got, want in zip(outputs, reference):
        if got.shape != want.shape:
            return False
        g, w = got.float(), want.float()
        if not torch.equal(torch.isnan(g), torch.isnan(w)):
            return False
        tol = 1e-4 if got.dtype == torch.float32 and want.dtype == torch.float32 else 3e-2
        if not torch.allclose(g, w, rtol=tol, atol=tol, equal_nan=True):
            return False
    return True


def _progress(started: float, done: int, total: int) -> None:
    """A line on stderr once tuning has taken more than a second."""
    elapsed = time.perf_counter() - started
    if elapsed > 1.0:
        end = "\n" if done == total else "\r"
        print(f"attnc: tuning launch configurations, {done}/{total} ({elapsed:.0f} s)", end=end, file=sys.stderr)


__all__ = ["Config", "gpu_name", "tuned", "tuning_key"]
