// RUN: attn-opt %s -t triton | filecheck %s

// A tiled matmul: an scf.for over K carries the accumulator, which prints as one
// Python name from its tl.zeros through tl.dot to the store.

// CHECK-LABEL: def matmul(
// CHECK-NEXT:      a_ptr,
// CHECK:           stride_bn,
// CHECK-NEXT:      BLOCK_M: tl.constexpr,
// CHECK-NEXT:      BLOCK_N: tl.constexpr,
// CHECK-NEXT:      BLOCK_K: tl.constexpr,
// CHECK-NEXT:  ):
// CHECK:           a_ptrs = a_ptr + a_offs
// CHECK:           b_ptrs = b_ptr + b_offs
// CHECK-NEXT:      acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
// CHECK-NEXT:      for k0 in range(0, K, BLOCK_K):
// CHECK-NEXT:          a_step = k0 * stride_ak
// CHECK-NEXT:          a_ptrs_k = a_ptrs + a_step
// CHECK-NEXT:          b_step = k0 * stride_bk
// CHECK-NEXT:          b_ptrs_k = b_ptrs + b_step
// CHECK-NEXT:          a = tl.load(a_ptrs_k)
// CHECK-NEXT:          b = tl.load(b_ptrs_k)
// CHECK-NEXT:          # acc += a @ b
// CHECK-NEXT:          acc = tl.dot(a, b, acc)
// CHECK-NEXT:      c = acc.to(tl.float16)
// CHECK:           tl.store(c_ptrs, c)

tile.func @matmul(%a_ptr: !tile.ptr<f16>, %b_ptr: !tile.ptr<f16>, %c_ptr: !tile.ptr<f16>, %K: i32, %stride_am: i32, %stride_ak: i32, %stride_bk: i32, %stride_bn: i32) constexprs {BLOCK_M = 64, BLOCK_N = 64, BLOCK_K = 32} {
  %pid_m = tile.program_id 0
  %pid_n = tile.program_id 1
  %bm = tile.constexpr "BLOCK_M" : i32
  %bn = tile.constexpr "BLOCK_N" : i32
  %bk = tile.constexpr "BLOCK_K" : i32
  %m0 = arith.muli %pid_m, %bm : i32
  %n0 = arith.muli %pid_n, %bn : i32
  %m0_v = tile.splat %m0 ["BLOCK_M"] : i32 -> tensor<64xi32>
  %lane_m = tile.arange ["BLOCK_M"] : tensor<64xi32>
  %offs_m = arith.addi %m0_v, %lane_m : tensor<64xi32>
  %n0_v = tile.splat %n0 ["BLOCK_N"] : i32 -> tensor<64xi32>
  %lane_n = tile.arange ["BLOCK_N"] : tensor<64xi32>
  %offs_n = arith.addi %n0_v, %lane_n : tensor<64xi32>
  %offs_k = tile.arange ["BLOCK_K"] : tensor<32xi32>
  %rows = tile.expand_dims %offs_m 1 : tensor<64xi32> -> tensor<64x1xi32>
  %sam = tile.splat %stride_am ["BLOCK_M", "1"] : i32 -> tensor<64x1xi32>
  %a_row = arith.muli %rows, %sam : tensor<64x1xi32>
  %k_cols = tile.expand_dims %offs_k 0 : tensor<32xi32> -> tensor<1x32xi32>
  %sak = tile.splat %stride_ak ["1", "BLOCK_K"] : i32 -> tensor<1x32xi32>
  %a_col = arith.muli %k_cols, %sak : tensor<1x32xi32>
  %a_row_b = tile.broadcast %a_row ["BLOCK_M", "BLOCK_K"] : tensor<64x1xi32> -> tensor<64x32xi32>
  %a_col_b = tile.broadcast %a_col ["BLOCK_M", "BLOCK_K"] : tensor<1x32xi32> -> tensor<64x32xi32>
  %a_offs = arith.addi %a_row_b, %a_col_b : tensor<64x32xi32>
  %a_ptrs = tile.addptr %a_ptr, %a_offs : !tile.ptr<f16>, tensor<64x32xi32> -> tensor<64x32x!tile.ptr<f16>>
  %k_rows = tile.expand_dims %offs_k 1 : tensor<32xi32> -> tensor<32x1xi32>
  %sbk = tile.splat %stride_bk ["BLOCK_K", "1"] : i32 -> tensor<32x1xi32>
  %b_row = arith.muli %k_rows, %sbk : tensor<32x1xi32>
  %cols = tile.expand_dims %offs_n 0 : tensor<64xi32> -> tensor<1x64xi32>
  %sbn = tile.splat %stride_bn ["1", "BLOCK_N"] : i32 -> tensor<1x64xi32>
  %b_col = arith.muli %cols, %sbn : tensor<1x64xi32>
  %b_row_b = tile.broadcast %b_row ["BLOCK_K", "BLOCK_N"] : tensor<32x1xi32> -> tensor<32x64xi32>
  %b_col_b = tile.broadcast %b_col ["BLOCK_K", "BLOCK_N"] : tensor<1x64xi32> -> tensor<32x64xi32>
  %b_offs = arith.addi %b_row_b, %b_col_b : tensor<32x64xi32>
  %b_ptrs = tile.addptr %b_ptr, %b_offs : !tile.ptr<f16>, tensor<32x64xi32> -> tensor<32x64x!tile.ptr<f16>>
  %zero = tile.full ["BLOCK_M", "BLOCK_N"] 0.0 : tensor<64x64xf32>
  %c0 = arith.constant 0 : i32
  %acc = scf.for %k0 = %c0 to %K step %bk iter_args(%acc_i = %zero) -> (tensor<64x64xf32>) : i32 {
    %a_step = arith.muli %k0, %stride_ak : i32
    %a_ptrs_k = tile.addptr %a_ptrs, %a_step : tensor<64x32x!tile.ptr<f16>>, i32 -> tensor<64x32x!tile.ptr<f16>>
    %b_step = arith.muli %k0, %stride_bk : i32
    %b_ptrs_k = tile.addptr %b_ptrs, %b_step : tensor<32x64x!tile.ptr<f16>>, i32 -> tensor<32x64x!tile.ptr<f16>>
    %a = tile.load %a_ptrs_k : tensor<64x32x!tile.ptr<f16>> -> tensor<64x32xf16>
    %b = tile.load %b_ptrs_k : tensor<32x64x!tile.ptr<f16>> -> tensor<32x64xf16>
    %acc_next = tile.dot %a, %b acc %acc_i {attnc.comment = "acc += a @ b"} : tensor<64x32xf16>, tensor<32x64xf16> -> tensor<64x64xf32>
    scf.yield %acc_next : tensor<64x64xf32>
  }
  %c = arith.truncf %acc : tensor<64x64xf32> to tensor<64x64xf16>
  %c_rows = arith.muli %rows, %sam : tensor<64x1xi32>
  %c_rows_b = tile.broadcast %c_rows ["BLOCK_M", "BLOCK_N"] : tensor<64x1xi32> -> tensor<64x64xi32>
  %c_cols = tile.broadcast %cols ["BLOCK_M", "BLOCK_N"] : tensor<1x64xi32> -> tensor<64x64xi32>
  %c_offs = arith.addi %c_rows_b, %c_cols : tensor<64x64xi32>
  %c_ptrs = tile.addptr %c_ptr, %c_offs : !tile.ptr<f16>, tensor<64x64xi32> -> tensor<64x64x!tile.ptr<f16>>
  tile.store %c_ptrs, %c : tensor<64x64x!tile.ptr<f16>>, tensor<64x64xf16>
  tile.return
}
