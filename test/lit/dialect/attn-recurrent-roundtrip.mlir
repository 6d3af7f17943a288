// RUN: attn-opt %s | attn-opt | filecheck %s
// RUN: attn-opt %s --print-op-generic | attn-opt | filecheck %s

// The linear-attention ops print and parse back: every gate kind, an initial
// state, q/k with fewer heads than v, the varlen and backward flags, feature-map
// regions, and the chunked form with the tile attributes attn-tile adds.

// CHECK-LABEL: func.func @gates
func.func @gates(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x4x?x32xbf16>, %gh: tensor<4xf32>, %gs: tensor<?x4x?xf32>, %gv: tensor<?x4x?x64xf32>, %h0: tensor<?x4x64x32xf32>) {
  // CHECK-NEXT: %{{.*}}, %{{.*}} = attn.recurrence %q, %k, %v {gate = "none", scale = 1.250000e-01 : f32} : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x32xbf16> -> (tensor<?x4x?x32xbf16>, tensor<?x4x64x32xf32>)
  %o0, %s0 = attn.recurrence %q, %k, %v {gate = "none", scale = 0.125 : f32} : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x32xbf16> -> (tensor<?x4x?x32xbf16>, tensor<?x4x64x32xf32>)
  // CHECK-NEXT: attn.recurrence %q, %k, %v gate(%gh : tensor<4xf32>) {gate = "head"
  %o1, %s1 = attn.recurrence %q, %k, %v gate(%gh : tensor<4xf32>) {gate = "head", scale = 0.125 : f32} : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x32xbf16> -> (tensor<?x4x?x32xbf16>, tensor<?x4x64x32xf32>)
  // CHECK-NEXT: attn.recurrence %q, %k, %v gate(%gs : tensor<?x4x?xf32>) initial(%h0 : tensor<?x4x64x32xf32>) {gate = "scalar", scale = 1.250000e-01 : f32, backward}
  %o2, %s2 = attn.recurrence %q, %k, %v gate(%gs : tensor<?x4x?xf32>) initial(%h0 : tensor<?x4x64x32xf32>) {gate = "scalar", scale = 0.125 : f32, backward} : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x32xbf16> -> (tensor<?x4x?x32xbf16>, tensor<?x4x64x32xf32>)
  // CHECK-NEXT: attn.recurrence %q, %k, %v gate(%gv : tensor<?x4x?x64xf32>) {gate = "vector", scale = 1.250000e-01 : f32, varlen}
  %o3, %s3 = attn.recurrence %q, %k, %v gate(%gv : tensor<?x4x?x64xf32>) {gate = "vector", scale = 0.125 : f32, varlen} : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x32xbf16> -> (tensor<?x4x?x32xbf16>, tensor<?x4x64x32xf32>)
  // CHECK-NEXT: attn.recurrent_chunk %q, %k, %v gate(%gs : tensor<?x4x?xf32>) {gate = "scalar", scale = 1.250000e-01 : f32, chunk_size = 64 : i64, block_k = 64 : i64, block_v = 32 : i64}
  %o4, %s4 = attn.recurrent_chunk %q, %k, %v gate(%gs : tensor<?x4x?xf32>) {gate = "scalar", scale = 0.125 : f32, chunk_size = 64 : i64, block_k = 64 : i64, block_v = 32 : i64} : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x32xbf16> -> (tensor<?x4x?x32xbf16>, tensor<?x4x64x32xf32>)
  // CHECK-NEXT: attn.recurrence %q, %k, %v q_map {
  // CHECK-NEXT: ^bb0(%x: f32):
  // CHECK-NEXT:   %[[E:.*]] = math.exp %x : f32
  // CHECK-NEXT:   attn.yield %[[E]] : f32
  // CHECK-NEXT: } k_map {
  // CHECK:      } {gate = "none"
  %o5, %s5 = attn.recurrence %q, %k, %v q_map {
  ^bb0(%x: f32):
    %e = math.exp %x : f32
    attn.yield %e : f32
  } k_map {
  ^bb0(%y: f32):
    %m = arith.mulf %y, %y : f32
    attn.yield %m : f32
  } {gate = "none", scale = 0.125 : f32} : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x32xbf16> -> (tensor<?x4x?x32xbf16>, tensor<?x4x64x32xf32>)
  func.return
}
