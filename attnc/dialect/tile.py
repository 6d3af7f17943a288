"""The `tile` dialect: a tile program whose ops map one to one onto `triton.language`.

Values are scalars (`i1`, `i32`, `i64`, `f16`, `bf16`, `f32`, `!tile.ptr<T>`) or ranked
tensors of them. Tensor shapes in types are nominal (the default tile size); the kernel
itself names its block sizes, so every op that creates a shape carries the symbolic dims
as strings (`["BLOCK_M", "BLOCK_N"]`, or literals such as `"1"`). Elementwise math,
comparisons and conversions are `arith`/`math` ops, control flow is `scf`.

This module is the dialect as users import it; the definitions live by family in
`tile_types` (types, attributes, shape and scalar helpers), `tile_kernel` (the kernel,
its parameters and device assertions), `tile_creation` (making tiles), `tile_memory` (pointers, loads,
stores, atomic adds), `tile_algebra` (dot, reduce, cumsum, trans, multiple_of) and
`tile_arith` (tensor comparisons, select, casts and inline asm) and `tile_profile` (Proton's scopes).
"""

from __future__ import annotations

from xdsl.ir import Dialect

from attnc.dialect.tile_algebra import (
    CumsumOp,
    DotOp,
    MultipleOfOp,
    ReduceOp,
    TransOp,
    dot_result_element_type,
    reduce_result_element_type,
)
from attnc.dialect.tile_arith import (
    CastOp,
    CmpFOp,
    CmpIOp,
    InlineAsmOp,
    SelectOp,
)
from attnc.dialect.tile_creation import (
    ArangeOp,
    BroadcastOp,
    ExpandDimsOp,
    FullOp,
    SplatOp,
)
from attnc.dialect.tile_kernel import (
    ConstexprOp,
    DeviceAssertOp,
    FuncOp,
    NumProgramsOp,
    ProgramIdOp,
    ReturnOp,
)
from attnc.dialect.tile_memory import AddPtrOp, AtomicAddOp, LoadOp, StoreOp
from attnc.dialect.tile_profile import ScopeEnterOp, ScopeExitOp
from attnc.dialect.tile_types import (
    InputPrecision,
    InputPrecisionAttr,
    PtrType,
    ReduceKind,
    ReduceKindAttr,
    element_type_of,
    float_text,
    scalar_attr,
    shape_of,
    with_shape,
)

__all__ = [
    "AddPtrOp",
    "ArangeOp",
    "BroadcastOp",
    "CastOp",
    "CmpFOp",
    "CmpIOp",
    "ConstexprOp",
    "CumsumOp",
    "DeviceAssertOp",
    "DotOp",
    "ExpandDimsOp",
    "FullOp",
    "FuncOp",
    "InlineAsmOp",
    "InputPrecision",
    "InputPrecisionAttr",
    "LoadOp",
    "MultipleOfOp",
    "NumProgramsOp",
    "ProgramIdOp",
    "PtrType",
    "ReduceKind",
    "ReduceKindAttr",
    "ReduceOp",
    "ReturnOp",
    "ScopeEnterOp",
    "ScopeExitOp",
    "SelectOp",
    "SplatOp",
    "StoreOp",
    "AtomicAddOp",
    "Tile",
    "TransOp",
    "dot_result_element_type",
    "element_type_of",
    "float_text",
    "reduce_result_element_type",
    "scalar_attr",
    "shape_of",
    "with_shape",
]

Tile = Dialect(
    "tile",
    [
        FuncOp,
        ReturnOp,
        InlineAsmOp,
        ConstexprOp,
        DeviceAssertOp,
        ProgramIdOp,
        NumProgramsOp,
        ArangeOp,
        FullOp,
        SplatOp,
        ExpandDimsOp,
        BroadcastOp,
        AddPtrOp,
        LoadOp,
        StoreOp,
        AtomicAddOp,
        DotOp,
        ReduceOp,
        CumsumOp,
        TransOp,
        MultipleOfOp,
        CmpIOp,
        CmpFOp,
        SelectOp,
        CastOp,
        ScopeEnterOp,
        ScopeExitOp,
    ],
    [PtrType, ReduceKindAttr, InputPrecisionAttr],
)
