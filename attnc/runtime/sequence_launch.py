"""The forward launch of packed, cached and paged sequences (sequences.py): one program per query block
of each (sequence, head), no block table.

A `SequenceLaunch` serves every call whose lengths round up to the same powers of two; the call's
exact longest lengths go to the kernel as `seq_q`/`seq_kv` (the grid and the clamps).
"""

from __future__ import annotations

from typing import Any

import torch

from attnc.dialect import kernel_params
from attnc.dialect.attn_sequences import LAYOUTS
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.launch import LaunchConfig, cdiv, run_fitting, set_strides
from attnc.runtime.sequences import Sequences


class SequenceLaunch:
    """Everything about a launch over sequences that depends only on shapes."""

    def __init__(
        self,
        compiled: CompiledVariant,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        captures: list[torch.Tensor],
        config: LaunchConfig,
        seqs: Sequences,
    ):
        info = compiled.info
        heads = q.shape[1]
        self.compiled = compiled
        self.device = q.device
        self.config = config
        self.heads = heads
        self.out_shape = (q.shape[0], heads, q.shape[2], v.shape[3])
        self.stat_shape = (q.shape[0], heads, q.shape[2])
        self.stat_names = [kernel_params.stat_ptr(i) for i in range(info.num_stats)]
        self.capture_names = [kernel_params.capture_ptr(i) for i in range(len(captures))]
        self.meta_names = [f"{name}_ptr" for name, _ in LAYOUTS[seqs.layout]]
        constexprs = info.constexprs[info.forward]
        args: dict[str, Any] = {
            "num_heads": heads,
            "group": heads // k.shape[1],
            "scale": info.scale,
            "BLOCK_M": config.block_m,
            "BLOCK_N": config.block_n,
            "HEAD_DIM": constexprs["HEAD_DIM"],
            "HEAD_DIM_V": constexprs["HEAD_DIM_V"],
        }
        if seqs.layout == "paged":
            args[kernel_params.PAGE_SIZE] = constexprs[kernel_params.PAGE_SIZE]
            args["num_pages"] = k.shape[0]
            set_strides(args, "block_table", seqs.meta[1], "bp")
        if seqs.layout == "packed":
            args["q_rows"], args["kv_rows"] = q.shape[2], k.shape[2]
        set_strides(args, "q", q)
        set_strides(args, "k", k)
        set_strides(args, "v", v)
        set_strides(args, "out", torch.empty(self.out_shape, device="meta"))  # contiguous
        for i, tensor in enumerate(captures):
            for j, stride in enumerate(tensor.stride()):
                args[kernel_params.capture_stride(i, j)] = stride
        self.args = args

    def run(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, captures: list[torch.Tensor], seqs: Sequences
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = torch.empty(self.out_shape, dtype=v.dtype, device=self.device)
        stats = [torch.empty(self.stat_shape, dtype=torch.float32, device=self.device) for _ in self.stat_names]
        if seqs.count == 0 or seqs.max_q == 0:
            out.zero_()  # rows no sequence owns
            for stat in stats:
                stat.zero_()
            return out, stats
        args = dict(self.args)
        args["q_ptr"], args["k_ptr"], args["v_ptr"], args["out_ptr"] = q, k, v, out
        args["seq_q"], args["seq_kv"] = seqs.max_q, seqs.max_k
        for name, stat in zip(self.stat_names, stats):
            args[name] = stat
        for name, tensor in zip(self.capture_names, captures):
            args[name] = tensor
        for name, tensor in zip(self.meta_names, seqs.meta):
            args[name] = tensor
        grid = (cdiv(seqs.max_q, self.config.block_m), seqs.count * self.heads)
        self.config = run_fitting(self.compiled.forward, grid, args, self.device, self.config)
        return out, stats


__all__ = ["SequenceLaunch"]
