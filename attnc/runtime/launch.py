"""Launching generated kernels on torch tensors: CUDA tensors run compiled, CPU tensors interpreted.

Kernels take their arguments by name (dialect/kernel_params.py spells them); `set_strides`
and `set_captures` fill in the names a tensor's pointer, strides and sizes go by.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import torch

from attnc.dialect import kernel_params
from attnc.runtime.targets import interpreted

_PARAMS: dict[int, tuple[str, ...]] = {}
_INTERPRETED: dict[int, Any] = {}


@dataclass(frozen=True)
class LaunchConfig:
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


class Launched(NamedTuple):
    """A compiled launch as it ran: Triton's handle, the grid and the arguments in parameter order."""

    handle: Any
    grid: tuple[int, ...]
    values: tuple[Any, ...]


def _params(kernel: Any) -> tuple[str, ...]:
    names = _PARAMS.get(id(kernel))
    if names is None:
        names = tuple(inspect.signature(getattr(kernel, "fn", kernel)).parameters)
        _PARAMS[id(kernel)] = names
    return names


def run_kernel(
    kernel: Any,
    grid: tuple[int, ...],
    args: dict[str, Any],
    device: torch.device,
    config: LaunchConfig | None,
    record: list[Launched] | None = None,
) -> Any:
    """Run a generated kernel, compiled on CUDA or in Triton's interpreter on the CPU; returns Triton's handle.
    `record` collects what ran, for replay.py."""
    names = _params(kernel)
    kwargs = {k: args[k] for k in names}
    if device.type == "cpu":
        runner = _INTERPRETED.get(id(kernel))
        if runner is None:
            runner = _INTERPRETED[id(kernel)] = interpreted(kernel)
        return runner[grid](**kwargs)
    if config is not None:
        kwargs["num_warps"] = config.num_warps
        kwargs["num_stages"] = config.num_stages
    if device.index is not None and device.index != torch.cuda.current_device():
        with torch.cuda.device(device):  # Triton launches on the current device
            handle = kernel[grid](**kwargs)
    else:
        handle = kernel[grid](**kwargs)
    if record is not None:
        record.append(Launched(handle, grid, tuple(args[k] for k in names)))
    return handle


def run_fitting(
    kernel: Any,
    grid: tuple[int, ...],
    args: dict[str, Any],
    device: torch.device,
    config: LaunchConfig,
    record: list[Launched] | None = None,
) -> LaunchConfig:
    """`run_kernel`, stepping `num_stages` down while the compiled kernel does not fit the device.

    Software pipelining keeps `num_stages` copies of each loop-carried load in shared
    memory; a captured tensor read per score (`bias[h, q_idx, kv_idx]`) adds a whole
    BLOCK_M × BLOCK_N tile per stage. Returns the configuration that ran, for reuse.
    """
    from triton.runtime.errors import OutOfResources

    while True:
        try:
            run_kernel(kernel, grid, args, device, config, record)
            return config
        except OutOfResources:
            if config.num_stages <= 1:
                raise
            config = replace(config, num_stages=config.num_stages - 1)


def cdiv(a: int, b: int) -> int:
    """⌈a / b⌉ on host ints, for grids on the warm path: `triton.cdiv` is a constexpr function in recent
    Triton releases and costs microseconds a call."""
    return -(-a // b)


def set_strides(args: dict[str, Any], name: str, t: torch.Tensor, dims: str = "bhsd") -> None:
    """`stride_<name>_<dim>` for each of `t`'s dimensions, named by `dims`."""
    for dim, stride in zip(dims, t.stride()):
        args[kernel_params.stride(name, dim)] = stride


def set_capture_shapes(args: dict[str, Any], captures: list[torch.Tensor]) -> None:
    """Each captured tensor's strides and sizes (a kernel takes the sizes of the dimensions it guards)."""
    for i, tensor in enumerate(captures):
        for j, (stride, size) in enumerate(zip(tensor.stride(), tensor.shape)):
            args[kernel_params.capture_stride(i, j)] = stride
            args[kernel_params.capture_size(i, j)] = size


def set_captures(args: dict[str, Any], captures: list[torch.Tensor], grads: list[torch.Tensor] | None = None) -> None:
    """Each captured tensor's pointer, strides and sizes (and its gradient's pointer and strides, when given)."""
    set_capture_shapes(args, captures)
    for i, tensor in enumerate(captures):
        args[kernel_params.capture_ptr(i)] = tensor
    for i, grad in enumerate(grads or ()):
        args[kernel_params.capture_grad_ptr(i)] = grad
        for j, stride in enumerate(grad.stride()):
            args[kernel_params.capture_grad_stride(i, j)] = stride
