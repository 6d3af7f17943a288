#!/usr/bin/env bash
# The main job on a fresh machine: set up, then compile ALiBi-causal, run it (CUDA when
# present, else Triton's interpreter on the CPU), check it against float64 PyTorch and
# show each stage of the pipeline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/attnc run examples/alibi.py
