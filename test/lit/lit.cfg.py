# -*- Python -*-
"""lit configuration for attnc: `.mlir` files driven through attn-opt, `.py` frontend tests.

The tools (`attn-opt`, `attnc`, `filecheck`) are console scripts installed next to the
Python that runs lit, so that directory goes first on PATH: running `.venv/bin/lit`
tests this checkout's tools, whatever else is installed on the machine.
"""

from __future__ import annotations

import os
import sys

import lit.formats

# `config` is injected by lit.
config.name = "attnc"  # noqa: F821
# lit 23 rejects execute_external=True; the internal shell is also portable.
config.test_format = lit.formats.ShTest(execute_external=False)  # noqa: F821
config.suffixes = [".mlir", ".py"]  # noqa: F821
config.excludes = ["lit.cfg.py", "Inputs"]  # noqa: F821
config.test_source_root = os.path.dirname(__file__)  # noqa: F821

scripts_dir = os.path.dirname(sys.executable)
config.environment["PATH"] = os.pathsep.join(  # noqa: F821
    [scripts_dir, config.environment.get("PATH", "")]  # noqa: F821
)
config.substitutions.append(("%python", sys.executable))  # noqa: F821

# lit starts tests in a clean environment; keep what imports and caches depend on.
for name in ("PYTHONPATH", "HOME", "ATTNC_CACHE_DIR", "TRITON_CACHE_DIR"):
    if name in os.environ:
        config.environment[name] = os.environ[name]  # noqa: F821

# Tests that compile generated kernels say `REQUIRES: triton`.
try:
    import triton  # noqa: F401
except ImportError:
    pass
else:
    config.available_features.add("triton")  # noqa: F821
