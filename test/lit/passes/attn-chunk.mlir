// RUN: attn-opt %s -p 'attn-chunk{chunk-size=32}' --split-input-file | filecheck %s
// RUN: attn-opt %s -p attn-chunk --split-input-file | filecheck %s --check-prefix=DEFAULT
// RUN: not attn-opt %s -p 'attn-chunk{chunk-size=24}' 2>&1 | filecheck %s --check-prefix=BAD

// attn-chunk turns the logical recurrence into its chunked form: operands, gate,
// initial state and flags carry over; chunk_size is added (64 by default).

// CHECK-LABEL: func.func @retnet
// CHECK-NEXT:    %[[O:.*]], %[[S:.*]] = attn.recurrent_chunk %q, %k, %v gate(%g : tensor<2xf32>) initial(%h0 : tensor<?x2x16x16xf32>) {gate = "head", scale = 2.500000e-01 : f32, backward, chunk_size = 32 : i64}
// CHECK-NEXT:    func.return %[[O]], %[[S]]
// DEFAULT-LABEL: func.func @retnet
// DEFAULT:         chunk_size = 64 : i64
func.func @retnet(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>, %g: tensor<2xf32>, %h0: tensor<?x2x16x16xf32>) -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>) {
  %o, %s = attn.recurrence %q, %k, %v gate(%g : tensor<2xf32>) initial(%h0 : tensor<?x2x16x16xf32>) {gate = "head", scale = 0.25 : f32, backward} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return %o, %s : tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>
}

// -----

// CHECK-LABEL: func.func @gla
// CHECK-NOT:     attn.recurrence
// CHECK:         attn.recurrent_chunk %q, %k, %v gate(%g : tensor<?x2x?x16xf32>) {gate = "vector", scale = 2.500000e-01 : f32, varlen, chunk_size = 32 : i64}
func.func @gla(%q: tensor<1x2x?x16xbf16>, %k: tensor<1x2x?x16xbf16>, %v: tensor<1x2x?x16xbf16>, %g: tensor<?x2x?x16xf32>) -> tensor<1x2x?x16xbf16> {
  %o, %s = attn.recurrence %q, %k, %v gate(%g : tensor<?x2x?x16xf32>) {gate = "vector", scale = 0.25 : f32, varlen} : tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16> -> (tensor<1x2x?x16xbf16>, tensor<?x2x16x16xf32>)
  func.return %o : tensor<1x2x?x16xbf16>
}

// BAD: attn-chunk: chunk-size must be a power of two of at least 16, but got 24
