// RUN: attn-opt %s -t triton | filecheck %s

// A vector add whose last block is cut off by a bound mask. The splats print as the
// scalars themselves, since Triton broadcasts them.

// CHECK:      import triton
// CHECK-NEXT: import triton.language as tl
// CHECK-EMPTY:
// CHECK-EMPTY:
// CHECK-NEXT: @triton.jit
// CHECK-LABEL: def vadd(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
// CHECK-NEXT:    pid = tl.program_id(0)
// CHECK-NEXT:    start = pid * BLOCK
// CHECK-NEXT:    lane = tl.arange(0, BLOCK)
// CHECK-NEXT:    offs = start + lane
// CHECK-NEXT:    mask = offs < n
// CHECK-NEXT:    x_ptrs = x_ptr + offs
// CHECK-NEXT:    x = tl.load(x_ptrs, mask=mask, other=0.0)
// CHECK-NEXT:    y_ptrs = y_ptr + offs
// CHECK-NEXT:    y = tl.load(y_ptrs, mask=mask)
// CHECK-NEXT:    # x + y, masked
// CHECK-NEXT:    out = x + y
// CHECK-NEXT:    out_ptrs = out_ptr + offs
// CHECK-NEXT:    tl.store(out_ptrs, out, mask=mask)
// CHECK-NOT:  {{.}}

tile.func @vadd(%x_ptr: !tile.ptr<f32>, %y_ptr: !tile.ptr<f32>, %out_ptr: !tile.ptr<f32>, %n: i32) constexprs {BLOCK = 1024} {
  %pid = tile.program_id 0
  %block = tile.constexpr "BLOCK" : i32
  %start = arith.muli %pid, %block : i32
  %start_v = tile.splat %start ["BLOCK"] : i32 -> tensor<1024xi32>
  %lane = tile.arange ["BLOCK"] : tensor<1024xi32>
  %offs = arith.addi %start_v, %lane : tensor<1024xi32>
  %n_v = tile.splat %n ["BLOCK"] : i32 -> tensor<1024xi32>
  %mask = tile.cmpi slt, %offs, %n_v : tensor<1024xi32>
  %x_ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f32>, tensor<1024xi32> -> tensor<1024x!tile.ptr<f32>>
  %x = tile.load %x_ptrs mask %mask other 0.0 : tensor<1024x!tile.ptr<f32>> -> tensor<1024xf32>
  %y_ptrs = tile.addptr %y_ptr, %offs : !tile.ptr<f32>, tensor<1024xi32> -> tensor<1024x!tile.ptr<f32>>
  %y = tile.load %y_ptrs mask %mask : tensor<1024x!tile.ptr<f32>> -> tensor<1024xf32>
  %out = arith.addf %x, %y {attnc.comment = "x + y, masked"} : tensor<1024xf32>
  %out_ptrs = tile.addptr %out_ptr, %offs : !tile.ptr<f32>, tensor<1024xi32> -> tensor<1024x!tile.ptr<f32>>
  tile.store %out_ptrs, %out mask %mask : tensor<1024x!tile.ptr<f32>>, tensor<1024xf32>
  tile.return
}
