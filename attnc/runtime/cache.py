"""What attnc keeps on disk under `$ATTNC_CACHE_DIR` (default `~/.cache/attnc`), and its keys.

- `kernels/attnc_<key>.py`: a generated kernel module; `kernels/attnc_<key>.json`: the IR of
  every stage and the facts the launcher needs. The key (its first 24 hex digits in the file
  names) is the sha256 of attnc's version and sources, the logical IR, the pipeline with its
  options and the target.
- `autotune.json`: the tuner's winners, one JSON object from a key string (family, kernel,
  shape, device) to a launch configuration (a list of ints), shared by every process.

Every file is written whole or not at all (`write_atomically`); a file that cannot be read
or does not hold what it should is a miss, rewritten on the way. When `$ATTNC_CACHE_DIR`
cannot be written, attnc warns once and keeps going: kernels go to a private temporary
directory for the process, and tuning results stay in memory. Triton keeps its own
binary cache.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from attnc import __version__
from attnc.runtime import config


@functools.cache
def compiler_fingerprint() -> str:
    """attnc's version and a hash of its own sources, so that a changed pass never reuses a stale kernel."""
    digest = hashlib.sha256(__version__.encode())
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(logical_ir: str, target: str, options: dict[str, Any]) -> str:
    text = json.dumps(
        {"compiler": compiler_fingerprint(), "ir": logical_ir, "target": target, "options": options}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


_FALLBACK: dict[Path, Path] = {}  # an unusable cache directory → this process's temporary stand-in


def _usable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)


def kernel_dir() -> Path:
    """`$ATTNC_CACHE_DIR/kernels`, or, when that cannot be written, a temporary directory for this process."""
    wanted = config.cache_dir() / "kernels"
    stand_in = _FALLBACK.get(wanted)
    if stand_in is not None:
        return stand_in
    if _usable(wanted):
        return wanted
    stand_in = _FALLBACK[wanted] = Path(tempfile.mkdtemp(prefix="attnc-kernels-"))
    warnings.warn(
        f"ATTNC_CACHE_DIR: cannot write {wanted}; this process keeps its kernels in {stand_in} and its tuning "
        "results in memory",
        RuntimeWarning,
        stacklevel=2,
    )
    return stand_in


def cache_is_usable() -> bool:
    """Whether `$ATTNC_CACHE_DIR` takes files (else kernel_dir() has warned and stands in)."""
    return config.cache_dir() / "kernels" not in _FALLBACK


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` by `text` so that readers never see a partial file; no temporary file is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`; None when it is missing, unreadable, not UTF-8, not JSON or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return data if isinstance(data, dict) else None


_LOAD_LOCK = threading.RLock()


def load_kernel_module(source: str, module_name: str, directory: Path) -> ModuleType:
    """Write generated kernel source to `directory/<module_name>.py` and import it.

    Triton reads a kernel's source with `inspect.getsource`, so the source must live in
    a real file. The file is replaced atomically and only when its content differs, so
    concurrent processes sharing a cache see either the old or the new file. The module
    is executed from `source` itself rather than through a `.pyc`: a bytecode cache
    validated by mtime could serve a stale kernel if the file changed within a second.
    """
    if not module_name.isidentifier():
        raise ValueError(f"kernel module name {module_name!r} is not a Python identifier")
    with _LOAD_LOCK:  # another thread must never see a module whose source has not finished running
        loaded = sys.modules.get(module_name)
        if loaded is not None and getattr(loaded, "__attnc_source__", None) == source:
            return loaded
        path = _kernel_file(directory / f"{module_name}.py", source)
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None, f"cannot make an import spec for {path}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            exec(compile(source, str(path), "exec"), module.__dict__)
        except BaseException:
            del sys.modules[module_name]
            raise
        module.__attnc_source__ = source  # type: ignore[attr-defined]
        return module


def _kernel_file(path: Path, source: str) -> Path:
    """`path` holding `source` (rewritten when it holds anything else), or, when `path` cannot be a file
    (a directory stands there), a fresh file beside it."""
    try:
        if path.read_bytes() == source.encode():
            return path
    except OSError:
        pass
    try:
        write_atomically(path, source)
        return path
    except OSError:
        fd, spare = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}.", suffix=".py")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(source)
        return Path(spare)


def _tuning_path() -> Path:
    return config.cache_dir() / "autotune.json"


def stored_config(key: str) -> tuple[int, ...] | None:
    """The launch configuration stored under `key`, if any (a malformed entry counts as none)."""
    value = (read_json(_tuning_path()) or {}).get(key)
    if isinstance(value, list) and value and all(isinstance(x, int) for x in value):
        return tuple(value)
    return None


def store_config(key: str, launch_config: Sequence[int]) -> None:
    """Adds one entry; a lock file keeps processes sharing the cache from dropping each other's entries.
    Nothing is stored when the cache directory cannot be written (the tuner keeps its winners in memory)."""
    kernel_dir()  # warns once if the directory is unusable
    if not cache_is_usable():
        return
    path = _tuning_path()
    try:
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = read_json(path) or {}
            data[key] = [int(x) for x in launch_config]
            write_atomically(path, json.dumps(data))
    except OSError as e:
        warnings.warn(f"ATTNC_CACHE_DIR: cannot store a tuning result in {path}: {e}", RuntimeWarning, stacklevel=2)


__all__ = [
    "cache_is_usable",
    "cache_key",
    "compiler_fingerprint",
    "kernel_dir",
    "load_kernel_module",
    "read_json",
    "store_config",
    "stored_config",
    "write_atomically",
]
