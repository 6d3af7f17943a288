#!/usr/bin/env bash
# The single test command: lit tests, then pytest. Both always run; the exit status is
# non-zero if either failed. TRITON_INTERPRET is left unset on purpose: the runtime
# picks the interpreter per call (CPU tensors), and setting it would stop the
# cross-compilation tests from compiling anything.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh || exit 1
unset TRITON_INTERPRET
export PATH="$PWD/.venv/bin:$PATH"

lit -v test/lit
lit_status=$?
python -m pytest -q test/python
pytest_status=$?

echo "lit: exit ${lit_status}; pytest: exit ${pytest_status}"
[ "$lit_status" -eq 0 ] && [ "$pytest_status" -eq 0 ]
