"""The forward launch of packed, cached and paged sequences (sequences.py): one program per query block
of each (sequence, head), no block table.

A `SequenceLaunch` serves every call whose lengths round up to the same powers of two; the call's
exact longest lengths go to the kernel as `seq_q`/`seq_kv` (the grid and the clamps).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from attnc.dialect import kernel_params
from attnc.dialect.attn_sequences import LAYOUTS, packed_slots
from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.decode_splits import MAX_SPLITS, choose_splits, sm_count
from attnc.runtime.forward import forward_args
from attnc.runtime.launch import LaunchConfig, Launched, cdiv, run_fitting, run_kernel, set_strides
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
        self.config = _fit_rows(config, _bucket(seqs.max_q) * (heads // k.shape[1] if info.pack_gqa else 1))
        self.heads = heads
        self.out_shape = (q.shape[0], heads, q.shape[2], v.shape[3])
        self.stat_shape = (q.shape[0], heads, q.shape[2])
        self.stat_names = [kernel_params.stat_ptr(i) for i in range(info.num_stats)]
        self.capture_names = [kernel_params.capture_ptr(i) for i in range(len(captures))]
        self.meta_names = [f"{name}_ptr" for name, _ in LAYOUTS[seqs.layout]]
        self.group = heads // k.shape[1]
        self.packed = info.pack_gqa
        self.num_state = info.num_state
        self.head_dim_v = v.shape[3]
        self.sms = sm_count(q.device)
        constexprs = info.constexprs[info.forward]
        args = forward_args(compiled, q, k, v, captures, self.config, self.out_shape)
        if seqs.layout == "paged":
            args[kernel_params.PAGE_SIZE] = constexprs[kernel_params.PAGE_SIZE]
            args["num_pages"] = k.shape[0]
            set_strides(args, "block_table", seqs.meta[1], "bp")
        if seqs.layout == "packed":
            args["q_rows"], args["kv_rows"], args["num_seqs"] = q.shape[2], k.shape[2], seqs.count
        self.args = args

    def run(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        captures: list[torch.Tensor],
        seqs: Sequences,
        record: list[Launched] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """out and the row statistics; `seqs.num_splits` 0 chooses, 1 runs unsplit, n splits each sequence's
        keys n ways (where the variant can merge splits: attn-split). `record` collects the launches."""
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
        rows, programs = seqs.max_q, seqs.count * self.heads
        if self.packed:  # a program per kv head, its query heads packed into the rows
            rows, programs = seqs.max_q * self.group, seqs.count * (self.heads // self.group)
        grid = (programs, cdiv(rows, self.config.block_m))  # (sequence, head) programs on axis 0
        if seqs.layout == "packed":  # slots of query blocks (sequence_rows.packed_slot) by heads
            grid = (packed_slots(q.shape[2], seqs.count, self.config.block_m), self.heads)
        splits = self._splits(seqs.num_splits, grid, seqs)
        if splits == 1:
            self.config = run_fitting(self.compiled.forward, grid, args, self.device, self.config, record)
            return out, stats
        self._run_split(args, (*grid, splits), splits, out, stats, record)
        return out, stats

    def _splits(self, requested: int, grid: tuple[int, int], seqs: Sequences) -> int:
        if not self.compiled.info.split_forward:
            return 1  # its normalizer has no merge: unsplit, whatever was asked
        key_blocks = cdiv(seqs.max_k, self.config.block_n)
        if requested:  # at most MAX_SPLITS, as FlashAttention's: more only costs partial buffers
            return max(1, min(requested, key_blocks, MAX_SPLITS))
        paged_block_n = self.config.block_n if seqs.layout == "paged" else 0
        return choose_splits(grid[0] * grid[1], key_blocks, self.sms, paged_block_n)

    def _run_split(
        self,
        args: dict[str, Any],
        grid: tuple[int, ...],
        splits: int,
        out: torch.Tensor,
        stats: list[torch.Tensor],
        record: list[Launched] | None,
    ) -> None:
        """The split forward, then the combine that merges the splits and finalizes."""
        part_rows = out.shape[0] * out.shape[1] * out.shape[2]
        f32 = {"dtype": torch.float32, "device": self.device}
        part = {"part_acc_ptr": torch.empty((splits, part_rows, self.head_dim_v), **f32)}
        for i in range(self.num_state):
            part[f"part_state{i}_ptr"] = torch.empty((splits, part_rows), **f32)
        sizes = {"part_rows": part_rows, "num_splits": splits}
        args.update(part, **sizes)
        kernels = self.compiled.kernels
        info = self.compiled.info
        self.config = run_fitting(getattr(kernels, info.split_forward), grid, args, self.device, self.config, record)
        rows_per_program = info.constexprs[info.combine]["BLOCK_M"]
        combine = {**part, **sizes, "BLOCK_M": rows_per_program, "HEAD_DIM_V": args["HEAD_DIM_V"]}
        for name in ("out_ptr", *self.stat_names, *self.capture_names, "seq_q", "num_heads"):
            combine[name] = args[name]
        for key, value in args.items():
            if key.startswith(("stride_out_", "cap")):
                combine[key] = value
        combine_grid = (cdiv(part_rows, rows_per_program),)
        run_kernel(getattr(kernels, info.combine), combine_grid, combine, self.device, None, record)


def _fit_rows(config: LaunchConfig, rows: int) -> LaunchConfig:
    """Decoding owns few query rows per program: a tile of at most the next power of two of them (16 at
    least, tl.dot's smallest), and 4 warps for 64 rows or fewer."""
    if rows >= config.block_m:
        return config
    block_m = max(16, _bucket(rows))
    return replace(config, block_m=block_m, num_warps=min(config.num_warps, 4))


def _bucket(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


__all__ = ["SequenceLaunch"]
