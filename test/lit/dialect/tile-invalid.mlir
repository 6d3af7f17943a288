// RUN: attn-opt %s --parsing-diagnostics --verify-diagnostics --split-input-file | filecheck %s

tile.func @k(%x_ptr: !tile.ptr<f32>) constexprs {BLOCK = 16} {
  %offs = tile.arange ["BLOCK"] : tensor<16xi32>
  %ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f32>, tensor<16xi32> -> tensor<16x!tile.ptr<f32>>
  %x = tile.load %ptrs : tensor<16x!tile.ptr<f32>> -> tensor<16xf32>
  %y = tile.dot %x, %x : tensor<16xf32>, tensor<16xf32> -> tensor<16x16xf32>
  tile.return
}
// CHECK: 'tile.dot' op expected operands of rank 2, but got 1

// -----

tile.func @k(%a: tensor<16x32xf16>) {
  tile.return
}
// CHECK: 'tile.func' op expected scalar parameters, but got tensor<16x32xf16>

// -----

tile.func @k() constexprs {BLOCK = 16} {
  %a = tile.full ["BLOCK", "32"] 1.0 : tensor<16x32xf16>
  %b = tile.full ["BLOCK", "32"] 1.0 : tensor<16x32xf16>
  %c = tile.dot %a, %b : tensor<16x32xf16>, tensor<16x32xf16> -> tensor<16x32xf32>
  tile.return
}
// CHECK: 'tile.dot' op expected a MxK times a KxN tile, but got 16x32 times 16x32

// -----

tile.func @k(%n: i32) {
  %x = tile.load %n : i32 -> f32
  tile.return
}
// CHECK: 'tile.load' op expected a pointer operand, but got i32

// -----

tile.func @k(%p: !tile.ptr<f32>) constexprs {BLOCK = 16, HALF = 8} {
  %offs = tile.arange ["BLOCK"] : tensor<16xi32>
  %ptrs = tile.addptr %p, %offs : !tile.ptr<f32>, tensor<16xi32> -> tensor<16x!tile.ptr<f32>>
  %mask = "tile.full"() <{dims = ["HALF"], value = true}> : () -> tensor<8xi1>
  %x = "tile.load"(%ptrs, %mask) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<16x!tile.ptr<f32>>, tensor<8xi1>) -> tensor<16xf32>
  tile.return
}
// CHECK: 'tile.load' op expected mask of type tensor<16xi1>, but got tensor<8xi1>

// -----

tile.func @k(%p: !tile.ptr<f32>) constexprs {BLOCK = 16} {
  %offs = tile.arange ["BLOCK"] : tensor<16xi32>
  %ptrs = tile.addptr %p, %offs : !tile.ptr<f32>, tensor<16xi32> -> tensor<16x!tile.ptr<f32>>
  %x = tile.full ["BLOCK"] 1.0 : tensor<16xbf16>
  tile.store %ptrs, %x : tensor<16x!tile.ptr<f32>>, tensor<16xbf16>
  tile.return
}
// CHECK: 'tile.store' op expected value of type tensor<16xf32>, but got tensor<16xbf16>

// -----

tile.func @k() constexprs {BLOCK = 16} {
  %offs = tile.arange ["BLOCK"] : tensor<16xi32>
  %e = tile.expand_dims %offs 2 : tensor<16xi32> -> tensor<16x1xi32>
  tile.return
}
// CHECK: 'tile.expand_dims' op expected axis 0 or 1, but got 2

// -----

tile.func @k() constexprs {BLOCK = 16} {
  %offs = tile.arange ["BLOCK_X"] : tensor<16xi32>
  tile.return
}
// CHECK: 'tile.arange' op expected dim "BLOCK_X" to be a constexpr of @k

// -----

tile.func @k() constexprs {BLOCK = 16} {
  %z = tile.full ["BLOCK"] 0.0 : tensor<16x16xf32>
  tile.return
}
// CHECK: 'tile.full' op expected 2 dims for tensor<16x16xf32>, but got 1

// -----

tile.func @k(%n: i32) {
  %v = tile.splat %n ["8"] : i32 -> tensor<16xi32>
  tile.return
}
// CHECK: 'tile.splat' op expected dim "8" to equal the nominal size 16

// -----

tile.func @k() constexprs {BLOCK = 16} {
  %b = tile.constexpr "BLOCK_N" : i32
  tile.return
}
// CHECK: 'tile.constexpr' op expected "BLOCK_N" to be a constexpr of @k

// -----

tile.func @k() constexprs {BLOCK = 16} {
  %x = tile.full ["BLOCK", "BLOCK"] 1.0 : tensor<16x16xbf16>
  %m = tile.reduce max %x axis 1 : tensor<16x16xbf16> -> tensor<16xbf16>
  tile.return
}
// CHECK: 'tile.reduce' op expected result type tensor<16xf32>, but got tensor<16xbf16>

// -----

tile.func @k() constexprs {BLOCK = 16} {
  %x = tile.full ["BLOCK", "2"] 1.0 : tensor<16x2xf32>
  %b = tile.broadcast %x ["BLOCK", "BLOCK"] : tensor<16x2xf32> -> tensor<16x16xf32>
  tile.return
}
// CHECK: 'tile.broadcast' op cannot broadcast 16x2 to 16x16

// -----

tile.func @k(%p: !tile.ptr<f32>, %o: f32) {
  %q = tile.addptr %p, %o : !tile.ptr<f32>, f32 -> !tile.ptr<f32>
  tile.return
}
// CHECK: 'tile.addptr' op expected an integer offset, but got f32

// -----

tile.func @k() {
  %pid = tile.program_id 3
  tile.return
}
// CHECK: 'tile.program_id' op expected axis 0, 1 or 2, but got 3

// -----

tile.func @k(%a: i32) {
  %c = tile.cmpi lt, %a, %a : i32
  tile.return
}
// CHECK: 'tile.cmpi' op expected a predicate of eq, ne, slt, sle, sgt, sge, but got lt

// -----

// Triton compares integers signed: no unsigned predicate.

tile.func @k(%a: i32) {
  %c = tile.cmpi ult, %a, %a : i32
  tile.return
}
// CHECK: 'tile.cmpi' op expected a predicate of eq, ne, slt, sle, sgt, sge, but got ult

// -----

tile.func @k(%a: f32) {
  %c = tile.cmpf olt, %a, %a : f32
  %s = "tile.select"(%c, %a, %a) : (i1, f32, f32) -> f32
  %t = tile.full ["4"] 1.0 : tensor<4xf32>
  %u = "tile.select"(%c, %t, %t) : (i1, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  tile.return
}
// CHECK: 'tile.select' op expected a condition of type tensor<4xi1>, but got i1

// -----

tile.func @k(%a: i32, %a2: i32) attributes {arg_names = ["a", "a"]} {
  tile.return
}
// CHECK: 'tile.func' op expected unique parameter names, but "a" repeats

// -----

tile.func @k(%lambda: i32) {
  tile.return
}
// CHECK: 'tile.func' op expected parameter names to be Python identifiers, but got "lambda"

// -----

tile.func @k() constexprs {B = 1, B = 2} {
  tile.return
}
// CHECK: constexpr "B" is defined twice

// -----

tile.func @k(%p: !tile.ptr<tensor<4xf32>>) {
  tile.return
}
// CHECK: 'tile.ptr' expected an integer or float pointee, but got tensor<4xf32>

// -----

tile.func @k(%ok: i1) {
  tile.device_assert %ok, "never checked" : i1
  tile.return
}
// CHECK: 'tile.device_assert' op expected @k to be compiled with debug, or Triton drops the assertion

// -----

tile.func @k(%n: i32) attributes {debug} {
  tile.device_assert %n, "not a condition" : i32
  tile.return
}
// CHECK: 'tile.device_assert' op expected an i1 condition, but got i32

// -----

tile.func @k() {
  tile.scope_enter "load k"
  tile.return
}
// CHECK: 'tile.scope_enter' op expected a scope name of letters, digits and _, but got "load k"
