// RUN: attn-opt %s --parsing-diagnostics --verify-diagnostics --split-input-file | filecheck %s

// One case per verifier message of attn.recurrence and attn.recurrent_chunk.

func.func @gate_kind(%q: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>) {
  %o, %s = attn.recurrence %q, %q, %v {gate = "matrix", scale = 1.0 : f32} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected gate to be none, head, scalar or vector, but got matrix

// -----

func.func @gate_shape(%q: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>, %g: tensor<?x2x?xf32>) {
  %o, %s = attn.recurrence %q, %q, %v gate(%g : tensor<?x2x?xf32>) {gate = "vector", scale = 1.0 : f32} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected g of rank 4, but got rank 3

// -----

func.func @gate_heads(%q: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>, %g: tensor<3xf32>) {
  %o, %s = attn.recurrence %q, %q, %v gate(%g : tensor<3xf32>) {gate = "head", scale = 1.0 : f32} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected g of type tensor<2xf32> for gate head, but got tensor<3xf32>

// -----

func.func @gate_missing(%q: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>) {
  %o, %s = attn.recurrence %q, %q, %v {gate = "scalar", scale = 1.0 : f32} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected a gate operand for gate scalar

// -----

func.func @heads_divide(%q: tensor<?x3x?x16xf32>, %v: tensor<?x4x?x16xf32>) {
  %o, %s = attn.recurrence %q, %q, %v {gate = "none", scale = 1.0 : f32} : tensor<?x3x?x16xf32>, tensor<?x3x?x16xf32>, tensor<?x4x?x16xf32> -> (tensor<?x4x?x16xf32>, tensor<?x4x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected the q/k heads (3) to divide the v heads (4)

// -----

func.func @k_shape(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x32xf32>, %v: tensor<?x2x?x16xf32>) {
  %o, %s = attn.recurrence %q, %k, %v {gate = "none", scale = 1.0 : f32} : tensor<?x2x?x16xf32>, tensor<?x2x?x32xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected k of the shape of q, but got tensor<?x2x?x32xf32> and tensor<?x2x?x16xf32>

// -----

func.func @state_type(%q: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>) {
  %o, %s = attn.recurrence %q, %q, %v {gate = "none", scale = 1.0 : f32} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x8xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected final state of type tensor<?x2x16x16xf32>, but got tensor<?x2x16x8xf32>

// -----

func.func @varlen_batch(%q: tensor<2x2x?x16xf32>, %v: tensor<2x2x?x16xf32>) {
  %o, %s = attn.recurrence %q, %q, %v {gate = "none", scale = 1.0 : f32, varlen} : tensor<2x2x?x16xf32>, tensor<2x2x?x16xf32>, tensor<2x2x?x16xf32> -> (tensor<2x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected batch 1 with varlen, but got 2

// -----

func.func @chunk_size(%q: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>) {
  %o, %s = attn.recurrent_chunk %q, %q, %v {gate = "none", scale = 1.0 : f32, chunk_size = 24 : i64} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrent_chunk' op expected chunk_size a power of two of at least 16, but got 24

// -----

func.func @map_signature(%q: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>) {
  %o, %s = attn.recurrence %q, %q, %v q_map {
  ^bb0(%x: f32, %y: f32):
    attn.yield %x : f32
  } {gate = "none", scale = 1.0 : f32} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.recurrence' op expected a q_map region of one block with one f32 argument
