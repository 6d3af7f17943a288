"""GPU tests run many at a time (`pytest -n 16`); each worker's CPU references then use one thread.

Sixteen workers with torch's default of one thread per core oversubscribe the CPU, and the
float64 recurrences (hundreds of small ops) slow down by orders of magnitude."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
