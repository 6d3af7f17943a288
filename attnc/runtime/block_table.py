"""Block tables: for each query block, the key blocks that are full and those that are partial.

The generated `*_block_table` kernel writes one class per tile (0 empty, 1 partial,
2 full); here they are compacted into FlexAttention-style lists. Tables are cached: those
of masks that read no tensor ("none", "affine") by shape, "runtime" ones also by the very
captured tensors they read and their version counters, so an in-place update of a
document-id tensor builds a new table and an unchanged one reuses the old. Writes that bypass
version counting (`t.data[...] = ...`, a custom kernel's, DLPack) are not seen: bump the
version (an in-place torch op) or pass a new tensor. Inference tensors have no version counter;
their tables are rebuilt on every call.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.launch import cdiv, set_captures

# Tables by shape (and captured tensors), with the tensors they were built from; bounded, oldest first out.
_CACHE: OrderedDict[tuple[Any, ...], tuple[BlockTables, list[torch.Tensor]]] = OrderedDict()
CACHE_SIZE = 256


@dataclass(frozen=True)
class BlockTables:
    full_num: torch.Tensor  # [Bt, Ht, NQ] int32
    full_idx: torch.Tensor  # [Bt, Ht, NQ, NKV] int32
    part_num: torch.Tensor
    part_idx: torch.Tensor
    stride_b: int
    stride_h: int
    num_kv_blocks: int  # the length of each row of the index lists
    classes: torch.Tensor  # [Bt, Ht, NQ, NKV]: 0 empty, 1 partial, 2 full

    def transposed(self) -> BlockTables:
        """Per key block, the query blocks that see it: the table the dK/dV kernel walks."""
        classes = self.classes.transpose(-1, -2).contiguous()
        return _from_classes(classes)


def _compact(classes: torch.Tensor, which: int) -> tuple[torch.Tensor, torch.Tensor]:
    chosen = classes == which
    num = chosen.sum(dim=-1, dtype=torch.int32)
    # A stable sort puts the chosen blocks first, in ascending order.
    idx = torch.argsort((~chosen).to(torch.int8), dim=-1, stable=True).to(torch.int32)
    return num.contiguous(), idx.contiguous()


def _from_classes(classes: torch.Tensor) -> BlockTables:
    """Compacts [Bt, Ht, rows, columns] tile classes into per-row lists of full and partial blocks."""
    table_b, table_h, rows, columns = classes.shape
    full_num, full_idx = _compact(classes, 2)
    part_num, part_idx = _compact(classes, 1)
    return BlockTables(
        full_num,
        full_idx,
        part_num,
        part_idx,
        stride_b=table_h * rows if table_b > 1 else 0,
        stride_h=rows if table_h > 1 else 0,
        num_kv_blocks=columns,
        classes=classes,
    )


def block_tables(
    compiled: CompiledVariant,
    launch: Any,
    block_m: int,
    block_n: int,
    batch: int,
    heads: int,
    seq_q: int,
    seq_kv: int,
    captures: list[torch.Tensor],
    device: torch.device,
) -> BlockTables:
    """The block table for one launch configuration; `launch(kernel, grid, **args)` runs a kernel."""
    info = compiled.info
    table_b = batch if info.table_uses_b else 1
    table_h = heads if info.table_uses_h else 1
    static = info.block_mask != "runtime"
    key: tuple[Any, ...] = (info.key, block_m, block_n, table_b, table_h, seq_q, seq_kv, str(device))
    reusable = static or not any(c.is_inference() for c in captures)  # inference tensors count no versions
    if not static:  # a mask that reads tensors: the same tensors, unmodified since (their version counters)
        key += tuple((id(c), c.data_ptr(), c._version) for c in captures) if reusable else (object(),)
    found = _CACHE.get(key)
    if found is not None and all(a is b for a, b in zip(found[1], captures)):
        _CACHE.move_to_end(key)
        return found[0]
    num_q, num_kv = cdiv(seq_q, block_m), cdiv(seq_kv, block_n)
    classes = torch.empty(table_b * table_h * num_q * num_kv, dtype=torch.int32, device=device)
    args: dict[str, Any] = {
        "class_ptr": classes,
        "seq_q": seq_q,
        "seq_kv": seq_kv,
        "num_heads": heads,
        "table_heads": table_h,
        "BLOCK_M": block_m,
        "BLOCK_N": block_n,
    }
    if not static:
        set_captures(args, captures)
    launch(compiled.block_table, (num_q, num_kv, table_b * table_h), args)
    tables = _from_classes(classes.view(table_b, table_h, num_q, num_kv))
    if not reusable:
        return tables
    _CACHE[key] = (tables, [] if static else list(captures))
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return tables
