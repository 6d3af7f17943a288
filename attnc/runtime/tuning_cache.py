"""The tuners' winners on disk, `$ATTNC_CACHE_DIR/autotune.json`: one JSON object from a key
string (kernel, shape bucket, device) to a launch configuration (a list of ints), shared by
every process that uses the cache directory.

A later process reads the winner instead of compiling and timing every candidate again.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnc.runtime import config as settings


def _path() -> Path:
    return settings.cache_dir() / "autotune.json"


def _load() -> dict[str, Any]:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def lookup(key: str) -> list[int] | None:
    """The configuration stored under `key`, if any (an unreadable or malformed entry counts as none)."""
    value = _load().get(key)
    if isinstance(value, list) and all(isinstance(x, int) for x in value):
        return value
    return None


def remember(key: str, config: Sequence[int]) -> None:
    """Adds one entry; a lock file keeps processes sharing the cache from dropping each other's entries."""
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _load()
        data[key] = [int(x) for x in config]
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".autotune.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)


__all__ = ["lookup", "remember"]
