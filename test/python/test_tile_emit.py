"""Tile IR → Triton source → Triton's interpreter on CPU tensors, against float64 torch."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch
import triton
from xdsl.builder import Builder
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, scf
from xdsl.dialects.builtin import ModuleOp, f32, i32, i64
from xdsl.ir import Operation, SSAValue
from xdsl.parser import Parser
from xdsl.rewriter import InsertPoint

from attnc.dialect import tile
from attnc.lowering.triton import emit_triton
from attnc.runtime.cache import load_kernel_module
from attnc.runtime.targets import Target, cross_compile, interpreted


def _parse(source: str) -> ModuleOp:
    ctx = Context()
    for dialect in (
        builtin.Builtin,
        arith.Arith,
        math.Math,
        scf.Scf,
        func.Func,
        tile.Tile,
    ):
        ctx.load_dialect(dialect)
    module = Parser(ctx, source).parse_module()
    module.verify()
    return module


def _load(module: ModuleOp, tmp_path: Path) -> ModuleType:
    """Emit `module` and import it from a file (triton.jit reads the source)."""
    return load_kernel_module(emit_triton(module), f"tile_emit_{tmp_path.name}", tmp_path)


def _rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    return ((x.double() - ref).norm() / ref.norm()).item()


def _vadd_module(block: int) -> ModuleOp:
    """Vector add with a bound mask, built with the op builders."""
    ptr = tile.PtrType(f32)
    kernel = tile.FuncOp(
        "vadd",
        ["x_ptr", "y_ptr", "out_ptr", "n"],
        [ptr, ptr, ptr, i32],
        {"BLOCK": block},
    )
    x_ptr, y_ptr, out_ptr, n = kernel.body.block.args
    b = Builder(InsertPoint.at_end(kernel.body.block))

    def named(op: Operation, name: str) -> SSAValue:
        b.insert(op)
        op.results[0].name_hint = name
        return op.results[0]

    pid = named(tile.ProgramIdOp(0), "pid")
    size = named(tile.ConstexprOp("BLOCK"), "block")
    start = named(arith.MuliOp(pid, size), "start")
    start_v = named(tile.SplatOp(start, ["BLOCK"], [block]), "start_v")
    lane = named(tile.ArangeOp("BLOCK", block), "lane")
    offs = named(arith.AddiOp(start_v, lane), "offs")
    n_v = named(tile.SplatOp(n, ["BLOCK"], [block]), "n_v")
    mask = named(tile.CmpIOp(offs, n_v, "slt"), "mask")
    x = named(tile.LoadOp(named(tile.AddPtrOp(x_ptr, offs), "x_ptrs"), mask, 0.0), "x")
    y = named(tile.LoadOp(named(tile.AddPtrOp(y_ptr, offs), "y_ptrs"), mask, 0.0), "y")
    out = named(arith.AddfOp(x, y), "out")
    b.insert(tile.StoreOp(named(tile.AddPtrOp(out_ptr, offs), "out_ptrs"), out, mask))
    b.insert(tile.ReturnOp())
    module = ModuleOp([kernel])
    module.verify()
    return module


def test_tile_emit_vadd_matches_torch(tmp_path: Path) -> None:
    """A vector add built with the builders runs in the interpreter on ragged sizes."""
    kernels = _load(_vadd_module(128), tmp_path)
    n = 1000
    x, y = torch.randn(n), torch.randn(n)
    out = torch.full((n + 8,), float("nan"))
    interpreted(kernels.vadd)[(triton.cdiv(n, 128),)](x, y, out, n, BLOCK=128)
    assert _rel_err(out[:n], x.double() + y.double()) < 1e-6
    assert out[n:].isnan().all(), "the mask let a store past n through"


MATMUL = """
tile.func @matmul(%a_ptr: !tile.ptr<f32>, %b_ptr: !tile.ptr<f32>, %c_ptr: !tile.ptr<f32>,
                  %M: i32, %N: i32, %K: i32, %stride_am: i32, %stride_ak: i32,
                  %stride_bk: i32, %stride_bn: i32, %stride_cm: i32, %stride_cn: i32)
    constexprs {BLOCK_M = 32, BLOCK_N = 32, BLOCK_K = 16} {
  %pid_m = tile.program_id 0
  %pid_n = tile.program_id 1
  %bm = tile.constexpr "BLOCK_M" : i32
  %bn = tile.constexpr "BLOCK_N" : i32
  %bk = tile.constexpr "BLOCK_K" : i32
  %m0 = arith.muli %pid_m, %bm : i32
  %n0 = arith.muli %pid_n, %bn : i32
  %m0_v = tile.splat %m0 ["BLOCK_M"] : i32 -> tensor<32xi32>
  %lane_m = tile.arange ["BLOCK_M"] : tensor<32xi32>
  %offs_m = arith.addi %m0_v, %lane_m : tensor<32xi32>
  %n0_v = tile.splat %n0 ["BLOCK_N"] : i32 -> tensor<32xi32>
  %lane_n = tile.arange ["BLOCK_N"] : tensor<32xi32>
  %offs_n = arith.addi %n0_v, %lane_n : tensor<32xi32>
  %offs_k = tile.arange ["BLOCK_K"] : tensor<16xi32>
  %rows = tile.expand_dims %offs_m 1 : tensor<32xi32> -> tensor<32x1xi32>
  %cols = tile.expand_dims %offs_n 0 : tensor<32xi32> -> tensor<1x32xi32>
  %k_cols = tile.expand_dims %offs_k 0 : tensor<16xi32> -> tensor<1x16xi32>
  %k_rows = tile.expand_dims %offs_k 1 : tensor<16xi32> -> tensor<16x1xi32>
  %M_v = tile.splat %M ["BLOCK_M", "1"] : i32 -> tensor<32x1xi32>
  %row_ok = tile.cmpi slt, %rows, %M_v : tensor<32x1xi32>
  %N_v = tile.splat %N ["1", "BLOCK_N"] : i32 -> tensor<1x32xi32>
  %col_ok = tile.cmpi slt, %cols, %N_v : tensor<1x32xi32>
  %sam = tile.splat %stride_am ["BLOCK_M", "1"] : i32 -> tensor<32x1xi32>
  %a_row = arith.muli %rows, %sam : tensor<32x1xi32>
  %sak = tile.splat %stride_ak ["1", "BLOCK_K"] : i32 -> tensor<1x16xi32>
  %a_col = arith.muli %k_cols, %sak : tensor<1x16xi32>
  %a_row_b = tile.broadcast %a_row ["BLOCK_M", "BLOCK_K"] : tensor<32x1xi32> -> tensor<32x16xi32>
  %a_col_b = tile.broadcast %a_col ["BLOCK_M", "BLOCK_K"] : tensor<1x16xi32> -> tensor<32x16xi32>
  %a_offs = arith.addi %a_row_b, %a_col_b : tensor<32x16xi32>
  %a_ptrs = tile.addptr %a_ptr, %a_offs : !tile.ptr<f32>, tensor<32x16xi32> -> tensor<32x16x!tile.ptr<f32>>
  %sbk = tile.splat %stride_bk ["BLOCK_K", "1"] : i32 -> tensor<16x1xi32>
  %b_row = arith.muli %k_rows, %sbk : tensor<16x1xi32>
  %sbn = tile.splat %stride_bn ["1", "BLOCK_N"] : i32 -> tensor<1x32xi32>
  %b_col = arith.muli %cols, %sbn : tensor<1x32xi32>
  %b_row_b = tile.broadcast %b_row ["BLOCK_K", "BLOCK_N"] : tensor<16x1xi32> -> tensor<16x32xi32>
  %b_col_b = tile.broadcast %b_col ["BLOCK_K", "BLOCK_N"] : tensor<1x32xi32> -> tensor<16x32xi32>
  %b_offs = arith.addi %b_row_b, %b_col_b : tensor<16x32xi32>
  %b_ptrs = tile.addptr %b_ptr, %b_offs : !tile.ptr<f32>, tensor<16x32xi32> -> tensor<16x32x!tile.ptr<f32>>
  %row_ok_a = tile.broadcast %row_ok ["BLOCK_M", "BLOCK_K"] : tensor<32x1xi1> -> tensor<32x16xi1>
  %col_ok_b = tile.broadcast %col_ok ["BLOCK_K", "BLOCK_N"] : tensor<1x32xi1> -> tensor<16x32xi1>
  %zero = tile.full ["BLOCK_M", "BLOCK_N"] 0.0 : tensor<32x32xf32>
  %c0 = arith.constant 0 : i32
  %acc = scf.for %k0 = %c0 to %K step %bk iter_args(%acc_i = %zero) -> (tensor<32x32xf32>) : i32 {
    %k0_c = tile.splat %k0 ["1", "BLOCK_K"] : i32 -> tensor<1x16xi32>
    %k_c = arith.addi %k0_c, %k_cols : tensor<1x16xi32>
    %K_c = tile.splat %K ["1", "BLOCK_K"] : i32 -> tensor<1x16xi32>
    %k_ok_c = tile.cmpi slt, %k_c, %K_c : tensor<1x16xi32>
    %k_ok_a = tile.broadcast %k_ok_c ["BLOCK_M", "BLOCK_K"] : tensor<1x16xi1> -> tensor<32x16xi1>
    %a_mask = arith.andi %row_ok_a, %k_ok_a : tensor<32x16xi1>
    %k0_r = tile.splat %k0 ["BLOCK_K", "1"] : i32 -> tensor<16x1xi32>
    %k_r = arith.addi %k0_r, %k_rows : tensor<16x1xi32>
    %K_r = tile.splat %K ["BLOCK_K", "1"] : i32 -> tensor<16x1xi32>
    %k_ok_r = tile.cmpi slt, %k_r, %K_r : tensor<16x1xi32>
    %k_ok_b = tile.broadcast %k_ok_r ["BLOCK_K", "BLOCK_N"] : tensor<16x1xi1> -> tensor<16x32xi1>
    %b_mask = arith.andi %k_ok_b, %col_ok_b : tensor<16x32xi1>
    %a_step = arith.muli %k0, %stride_ak : i32
    %a_ptrs_k = tile.addptr %a_ptrs, %a_step : tensor<32x16x!tile.ptr<f32>>, i32 -> tensor<32x16x!tile.ptr<f32>>
    %b_step = arith.muli %k0, %stride_bk : i32
    %b_ptrs_k = tile.addptr %b_ptrs, %b_step : tensor<16x32x!tile.ptr<f32>>, i32 -> tensor<16x32x!tile.ptr<f32>>
    %a = tile.load %a_ptrs_k mask %a_mask other 0.0 : tensor<32x16x!tile.ptr<f32>> -> tensor<32x16xf32>
    %b = tile.load %b_ptrs_k mask %b_mask other 0.0 : tensor<16x32x!tile.ptr<f32>> -> tensor<16x32xf32>
    %acc_next = tile.dot %a, %b acc %acc_i precision ieee : tensor<32x16xf32>, tensor<16x32xf32> -> tensor<32x32xf32>
    scf.yield %acc_next : tensor<32x32xf32>
  }
  %scm = tile.splat %stride_cm ["BLOCK_M", "1"] : i32 -> tensor<32x1xi32>
  %c_row = arith.muli %rows, %scm : tensor<32x1xi32>
  %scn = tile.splat %stride_cn ["1", "BLOCK_N"] : i32 -> tensor<1x32xi32>
  %c_col = arith.muli %cols, %scn : tensor<1x32xi32>
  %c_row_b = tile.broadcast %c_row ["BLOCK_M", "BLOCK_N"] : tensor<32x1xi32> -> tensor<32x32xi32>
  %c_col_b = tile.broadcast %c_col ["BLOCK_M", "BLOCK_N"] : tensor<1x32xi32> -> tensor<32x32xi32>
  %c_offs = arith.addi %c_row_b, %c_col_b : tensor<32x32xi32>
  %c_ptrs = tile.addptr %c_ptr, %c_offs : !tile.ptr<f32>, tensor<32x32xi32> -> tensor<32x32x!tile.ptr<f32>>
  %row_ok_c = tile.broadcast %row_ok ["BLOCK_M", "BLOCK_N"] : tensor<32x1xi1> -> tensor<32x32xi1>
  %col_ok_c = tile.broadcast %col_ok ["BLOCK_M", "BLOCK_N"] : tensor<1x32xi1> -> tensor<32x32xi1>
  %c_mask = arith.andi %row_ok_c, %col_ok_c : tensor<32x32xi1>
  tile.store %c_ptrs, %acc mask %c_mask : tensor<32x32x!tile.ptr<f32>>, tensor<32x32xf32>
  tile.return
}
"""


def test_tile_emit_matmul_matches_torch(tmp_path: Path) -> None:
    """A K loop carrying its accumulator through tl.dot matches a float64 matmul."""
    kernels = _load(_parse(MATMUL), tmp_path)
    m, n, k = 45, 70, 37
    a, b = torch.randn(m, k), torch.randn(k, n)
    b_t = torch.randn(n, k).t()  # a non-contiguous operand: strides (1, k)
    c = torch.empty(m, n)
    grid = (triton.cdiv(m, 32), triton.cdiv(n, 32))
    for rhs in (b, b_t):
        interpreted(kernels.matmul)[grid](
            a, rhs, c, m, n, k, *a.stride(), *rhs.stride(), *c.stride(),
            BLOCK_M=32, BLOCK_N=32, BLOCK_K=16,
        )  # fmt: skip
        assert _rel_err(c, a.double() @ rhs.double()) < 1e-6


def test_tile_emit_matmul_updates_accumulator_in_place() -> None:
    """The loop-carried accumulator is one Python name from init through tl.dot."""
    source = emit_triton(_parse(MATMUL))
    assert "    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)\n" in source
    assert '        acc = tl.dot(a, b, acc, input_precision="ieee")\n' in source
    assert "tl.store(c_ptrs, acc, mask=c_mask)" in source


ELEMENTWISE = """
tile.func @tanh_kernel(%x_ptr: !tile.ptr<f32>, %y_ptr: !tile.ptr<f32>, %n: i32)
    constexprs {BLOCK = 256} {
  %pid = tile.program_id 0
  %block = tile.constexpr "BLOCK" : i32
  %start = arith.muli %pid, %block : i32
  %start_v = tile.splat %start ["BLOCK"] : i32 -> tensor<256xi32>
  %lane = tile.arange ["BLOCK"] : tensor<256xi32>
  %offs = arith.addi %start_v, %lane : tensor<256xi32>
  %n_v = tile.splat %n ["BLOCK"] : i32 -> tensor<256xi32>
  %mask = tile.cmpi slt, %offs, %n_v : tensor<256xi32>
  %x_ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f32>, tensor<256xi32> -> tensor<256x!tile.ptr<f32>>
  %x = tile.load %x_ptrs mask %mask other 0.0 : tensor<256x!tile.ptr<f32>> -> tensor<256xf32>
  %y = math.tanh %x : tensor<256xf32>
  %y_ptrs = tile.addptr %y_ptr, %offs : !tile.ptr<f32>, tensor<256xi32> -> tensor<256x!tile.ptr<f32>>
  tile.store %y_ptrs, %y mask %mask : tensor<256x!tile.ptr<f32>>, tensor<256xf32>
  tile.return
}

tile.func @int_div(%a_ptr: !tile.ptr<i32>, %b_ptr: !tile.ptr<i32>, %q_ptr: !tile.ptr<i32>,
                   %n: i32) constexprs {BLOCK = 64} {
  %offs = tile.arange ["BLOCK"] : tensor<64xi32>
  %n_v = tile.splat %n ["BLOCK"] : i32 -> tensor<64xi32>
  %mask = tile.cmpi slt, %offs, %n_v : tensor<64xi32>
  %a_ptrs = tile.addptr %a_ptr, %offs : !tile.ptr<i32>, tensor<64xi32> -> tensor<64x!tile.ptr<i32>>
  %b_ptrs = tile.addptr %b_ptr, %offs : !tile.ptr<i32>, tensor<64xi32> -> tensor<64x!tile.ptr<i32>>
  %a = tile.load %a_ptrs mask %mask other 0 : tensor<64x!tile.ptr<i32>> -> tensor<64xi32>
  %b = tile.load %b_ptrs mask %mask other 1 : tensor<64x!tile.ptr<i32>> -> tensor<64xi32>
  %div = arith.divsi %a, %b : tensor<64xi32>
  %rem = arith.remsi %a, %b : tensor<64xi32>
  %floor = arith.floordivsi %a, %b : tensor<64xi32>
  %ceil = arith.ceildivsi %a, %b : tensor<64xi32>
  %c4 = arith.constant 4 : i32
  %four = tile.splat %c4 ["BLOCK"] : i32 -> tensor<64xi32>
  %row = arith.muli %offs, %four : tensor<64xi32>
  %c1 = arith.constant 1 : i32
  %p0 = tile.addptr %q_ptr, %row : !tile.ptr<i32>, tensor<64xi32> -> tensor<64x!tile.ptr<i32>>
  tile.store %p0, %div mask %mask : tensor<64x!tile.ptr<i32>>, tensor<64xi32>
  %p1 = tile.addptr %p0, %c1 : tensor<64x!tile.ptr<i32>>, i32 -> tensor<64x!tile.ptr<i32>>
  tile.store %p1, %rem mask %mask : tensor<64x!tile.ptr<i32>>, tensor<64xi32>
  %p2 = tile.addptr %p1, %c1 : tensor<64x!tile.ptr<i32>>, i32 -> tensor<64x!tile.ptr<i32>>
  tile.store %p2, %floor mask %mask : tensor<64x!tile.ptr<i32>>, tensor<64xi32>
  %p3 = tile.addptr %p2, %c1 : tensor<64x!tile.ptr<i32>>, i32 -> tensor<64x!tile.ptr<i32>>
  tile.store %p3, %ceil mask %mask : tensor<64x!tile.ptr<i32>>, tensor<64xi32>
  tile.return
}

tile.func @fib(%out_ptr: !tile.ptr<f32>, %n: i32) {
  %one = arith.constant 1.0 : f32
  %two = arith.constant 2.0 : f32
  %c0 = arith.constant 0 : i32
  %c1 = arith.constant 1 : i32
  %a, %b = scf.for %i = %c0 to %n step %c1 iter_args(%x = %one, %y = %two) -> (f32, f32) : i32 {
    %s = arith.addf %x, %y : f32
    scf.yield %y, %s : f32, f32
  }
  %ten = arith.constant 10.0 : f32
  %big = arith.cmpf ogt, %a, %ten : f32
  %r = scf.if %big -> (f32) {
    %neg = arith.negf %a : f32
    scf.yield %neg : f32
  } else {
    scf.yield %b : f32
  }
  tile.store %out_ptr, %r : !tile.ptr<f32>, f32
  tile.return
}
"""


def test_tile_emit_tanh_matches_torch(tmp_path: Path) -> None:
    """math.tanh, written with tl.sigmoid, matches torch.tanh to f32 rounding."""
    kernels = _load(_parse(ELEMENTWISE), tmp_path)
    x = torch.cat([torch.randn(1500) * 4, torch.tensor([0.0, 1e-6, -1e-3, 15.0, -15.0])])
    y = torch.empty_like(x)
    interpreted(kernels.tanh_kernel)[(triton.cdiv(x.numel(), 256),)](x, y, x.numel(), BLOCK=256)
    ref = torch.tanh(x.double())
    assert _rel_err(y, ref) < 1e-6
    assert (y.double() - ref).abs().max().item() < 1e-6


def test_tile_emit_integer_division_rounds_like_mlir(tmp_path: Path) -> None:
    """divsi/remsi truncate, floordivsi/ceildivsi round down/up, negatives included."""
    kernels = _load(_parse(ELEMENTWISE), tmp_path)
    n = 60
    a = torch.randint(-1000, 1000, (n,), dtype=torch.int32)
    b = torch.randint(1, 30, (n,), dtype=torch.int32) * (torch.randint(0, 2, (n,)) * 2 - 1)
    b = b.to(torch.int32)
    q = torch.zeros(n, 4, dtype=torch.int32)
    interpreted(kernels.int_div)[(1,)](a, b, q, n, BLOCK=64)
    expected = []
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        trunc = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        expected.append([trunc, x - trunc * y, x // y, -(-x // y)])
    assert q.tolist() == expected


def test_tile_emit_scalar_loop_and_if(tmp_path: Path) -> None:
    """Scalar iter args swap through a tuple assignment; scf.if assigns its result."""
    kernels = _load(_parse(ELEMENTWISE), tmp_path)
    out = torch.zeros(1)
    for steps in (0, 1, 2, 5):
        interpreted(kernels.fib)[(1,)](out, steps)
        x, y = 1.0, 2.0
        for _ in range(steps):
            x, y = y, x + y
        assert out.item() == (-x if x > 10 else y)


def test_tile_emit_missing_rule_names_the_op() -> None:
    """An op without a rule raises NotImplementedError naming it."""
    module = _parse(
        """
        tile.func @k(%x: f32) {
          %y = math.cos %x : f32
          %z = math.atan %y : f32
          tile.return
        }
        """
    )
    with pytest.raises(NotImplementedError, match="no Triton rule for 'math.atan'"):
        emit_triton(module)


def test_tile_emit_cross_compiles_with_unit_strides(tmp_path: Path) -> None:
    """The kernels compile for sm_90 and gfx942, also when a stride of 1 is a constexpr."""
    # Triton specializes an int argument equal to 1 into a constexpr: the printer must
    # not call tensor methods on parameters.
    kernels = _load(_parse(MATMUL + ELEMENTWISE), tmp_path)
    ints = ["M", "N", "K", "stride_am", "stride_bk", "stride_cm"]
    unit = ["stride_ak", "stride_bn", "stride_cn"]
    launches = {
        kernels.matmul: (
            {"a_ptr": "*fp32", "b_ptr": "*fp32", "c_ptr": "*fp32"} | dict.fromkeys(ints, "i32"),
            dict.fromkeys(unit, 1) | {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16},
        ),
        kernels.tanh_kernel: (
            {"x_ptr": "*fp32", "y_ptr": "*fp32", "n": "i32"},
            {"BLOCK": 256},
        ),
        kernels.int_div: (
            {"a_ptr": "*i32", "b_ptr": "*i32", "q_ptr": "*i32", "n": "i32"},
            {"BLOCK": 64},
        ),
        kernels.fib: ({"out_ptr": "*fp32"}, {"n": 1}),
    }
    for target in (Target.parse("cuda:90"), Target.parse("hip:gfx942")):
        for kernel, (signature, constexprs) in launches.items():
            asm = cross_compile(kernel, signature, constexprs, target)
            assert "cubin" in asm or "hsaco" in asm


def test_int_to_float_skips_only_a_sign_extension():
    """i32 → i64 → f32 converts once from i32; i16 → bf16 → f32 keeps the bf16 rounding step."""
    from xdsl.dialects.builtin import bf16, i16

    from attnc.conversion.kernel_builder import KernelBuilder

    kb = KernelBuilder("k", [("x_ptr", KernelBuilder.ptr_type(i16))], {"B": 16})
    x = kb.load(kb.addptr(kb.arg("x_ptr"), kb.arange("B")), None, None, "x")
    widened = kb.cast(kb.cast(x, i32), i64, "widened")
    direct = kb.cast(widened, f32, "direct")
    assert direct.owner.operands[0] is widened.owner.operands[0]  # the i64 step is skipped
    rounded = kb.cast(kb.cast(x, bf16, "h"), f32, "y")
    assert rounded.owner.operands[0].type.element_type == bf16  # the bf16 step stays
