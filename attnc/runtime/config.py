"""The runtime's settings, read from the environment.

This is the only module in attnc that reads environment variables, so every knob a user
can turn is listed here and nowhere else. Values are read at each call rather than at
import, so a test (or a long-lived process) can change them with ``monkeypatch.setenv``.

| variable          | default          | meaning                                          |
|-------------------|------------------|--------------------------------------------------|
| `ATTNC_CACHE_DIR` | `~/.cache/attnc` | where generated kernels and tuning results live  |
| `TRITON_INTERPRET`| off              | Triton's own: interpret every kernel (not read here) |
| `ATTNC_AUTOTUNE`  | on               | tune launch configs instead of using the default |
| `ATTNC_DUMP`      | off              | print IR and generated source while compiling    |
| `ATTNC_DEBUG`     | off              | a captured-tensor read out of range is an error, not 0 |
"""

from __future__ import annotations

import os
from pathlib import Path

# Triton's own spelling of true (triton.knobs / getenv_bool).
_TRUE = frozenset({"1", "true", "on", "yes"})


def _flag(name: str, default: bool) -> bool:
    """An on/off variable; unset or empty means `default`."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in _TRUE


def cache_dir() -> Path:
    """Directory for generated kernel modules and autotuning results.

    `$ATTNC_CACHE_DIR`, else `~/.cache/attnc`. Not created here: the writer creates it
    when it first has something to put there.
    """
    configured = os.environ.get("ATTNC_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "attnc"


def autotune_enabled() -> bool:
    """Whether to autotune launch configurations (`ATTNC_AUTOTUNE`, on by default).

    Turning it off makes runs reproducible and fast to start: each kernel uses the
    first configuration of its pruned space.
    """
    return _flag("ATTNC_AUTOTUNE", default=True)


def debug_dump() -> bool:
    """Whether to dump each stage's IR and the generated Triton source (`ATTNC_DUMP`)."""
    return _flag("ATTNC_DUMP", default=False)


def debug_reads() -> bool:
    """Whether kernels assert that guarded captured-tensor reads are in range (`ATTNC_DEBUG`).

    Off, a read whose index comes from data and falls outside the tensor reads 0; on, it stops
    the kernel naming the tensor: an error in Triton's interpreter, a device assertion on a GPU.
    """
    return _flag("ATTNC_DEBUG", default=False)
