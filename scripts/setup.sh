#!/usr/bin/env bash
# Create (or refresh) .venv with attnc installed in editable mode and its test tools.
# Idempotent and non-interactive; safe to run on every test invocation.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { echo "setup: $*" >&2; }

if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
fi
PYTHON=.venv/bin/python

# torch first and pinned: a bare `torch` requirement would pull the multi-GB CUDA build,
# while 2.13.0 resolves to the local CPU build here and satisfies attnc's `torch>=2.5`.
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    say "installing torch 2.13.0 (the CPU build; a few minutes on a fresh machine)"
    "$PYTHON" -m pip install --quiet torch==2.13.0
fi

# Reinstall only when pyproject.toml changed since the last install.
stamp=.venv/.attnc-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
    || ! "$PYTHON" -c "import attnc, lit, filecheck, pytest, ruff, pyright" >/dev/null 2>&1; then
    say "installing attnc (editable) with xdsl, triton and the test tools"
    "$PYTHON" -m pip install --quiet -e '.[test]'
    touch "$stamp"
fi
versions=$("$PYTHON" -c 'from importlib.metadata import version as v; print(", ".join(f"{p} {v(p)}" for p in ("torch", "triton", "xdsl")))')
say "ready: .venv ($versions)"
