"""How many ranges split decoding cuts each sequence's keys into (FlashAttention's heuristic): none
while the (sequence, kv head, query block) programs already fill the GPU; otherwise the smallest
count whose waves use the SMs within 85 % as well as the best count does.

A paged cache reads a page id before each key block, a dependent load that one program per SM
cannot hide: it splits into at least PAGED_WAVES waves, keeping PAGED_MIN_KEYS keys per split (measured on the H200: bench/probe_splits.py, bench/RESULTS.md)."""

from __future__ import annotations

import math

import torch

MAX_SPLITS = 128
PAGED_WAVES = 4
PAGED_MIN_KEYS = 4096
_SMS: dict[int, int] = {}


def sm_count(device: torch.device) -> int:
    """The device's streaming multiprocessors (1 on the CPU), looked up once per device."""
    if device.type != "cuda":
        return 1
    index = device.index if device.index is not None else torch.cuda.current_device()
    found = _SMS.get(index)
    if found is None:
        found = _SMS[index] = torch.cuda.get_device_properties(index).multi_processor_count
    return found


def choose_splits(programs: int, key_blocks: int, sms: int, paged_block_n: int = 0) -> int:
    """Splits for `programs` programs over `key_blocks` key blocks each, on `sms` SMs; a paged cache
    gives its key block size, `paged_block_n`."""
    chosen = _filling_splits(programs, key_blocks, sms)
    if paged_block_n:
        waves = -(-PAGED_WAVES * sms // programs)
        chosen = max(chosen, min(waves, key_blocks * paged_block_n // PAGED_MIN_KEYS, MAX_SPLITS))
    return chosen


def _filling_splits(programs: int, key_blocks: int, sms: int) -> int:
    if programs >= 0.8 * sms or key_blocks <= 1:
        return 1
    limit = min(MAX_SPLITS, sms, key_blocks)

    def blocks_per(s: int) -> int:
        return -(-key_blocks // s)

    def eligible(s: int) -> bool:  # a count that changes no split's length only costs combining
        return s == 1 or blocks_per(s) != blocks_per(s - 1)

    def efficiency(s: int) -> float:
        waves = programs * s / sms
        return waves / math.ceil(waves)

    best = max(efficiency(s) for s in range(1, limit + 1) if eligible(s))
    return next(s for s in range(1, limit + 1) if eligible(s) and efficiency(s) >= 0.85 * best)


__all__ = ["MAX_SPLITS", "choose_splits", "sm_count"]
