"""Block tables: for each query block, the key blocks that are full and those that are partial.

The generated `*_block_table` kernel writes one class per tile (0 empty, 1 partial,
2 full); here they are compacted into FlexAttention-style lists. Tables of masks
that read no tensor ("none", "affine") depend only on the shape and are cached;
"runtime" tables are rebuilt on every call, since captured tensors may change.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from attnc.runtime.compiler import CompiledVariant
from attnc.runtime.launch import cdiv, set_captures

# Tables of masks that read no tensor, by shape; bounded, oldest first out.
_STATIC_CACHE: OrderedDict[tuple[Any, ...], BlockTables] = OrderedDict()
STATIC_CACHE_SIZE = 256


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
    key = (info.key, block_m, block_n, table_b, table_h, seq_q, seq_kv, str(device))
    if static and key in _STATIC_CACHE:
        _STATIC_CACHE.move_to_end(key)
        return _STATIC_CACHE[key]
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
    if static:
        _STATIC_CACHE[key] = tables
        while len(_STATIC_CACHE) > STATIC_CACHE_SIZE:
            _STATIC_CACHE.popitem(last=False)
    return tables
