// RUN: attn-opt %s -t triton | filecheck %s

// A guarded gather as attnc's kernels do it in debug mode: the index is asserted in
// range, then loaded under the same mask. The kernel is compiled with Triton's debug
// option, without which Triton drops tl.device_assert.

// CHECK:       @triton.jit(debug=True)
// CHECK-NEXT:  def gather(table_ptr, i, n):
// CHECK-NEXT:      in_range = (i >= 0) & (i < n)
// CHECK-NEXT:      tl.device_assert(in_range, "captured tensor 'table' is read outside its shape at dimension 0")
// CHECK-NEXT:      x = tl.load(table_ptr + i, mask=in_range, other=0.0)
// CHECK-NEXT:      tl.store(table_ptr, x)
// CHECK-NOT:   {{.}}

tile.func @gather(%table_ptr: !tile.ptr<f32>, %i: i32, %n: i32) attributes {debug} {
  %zero = arith.constant 0 : i32
  %0 = tile.cmpi sge, %i, %zero : i32
  %1 = tile.cmpi slt, %i, %n : i32
  %in_range = arith.andi %0, %1 : i1
  tile.device_assert %in_range, "captured tensor 'table' is read outside its shape at dimension 0" : i1
  %2 = tile.addptr %table_ptr, %i : !tile.ptr<f32>, i32 -> !tile.ptr<f32>
  %x = tile.load %2 mask %in_range other 0.0 : !tile.ptr<f32> -> f32
  tile.store %table_ptr, %x : !tile.ptr<f32>, f32
  tile.return
}
