// RUN: attnc compile %S/../../../examples/retention.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// RetNet retention: the decay gamma[h]^(q - kv) is a score_mod reading the captured
// log2_gamma; the normalizer keeps one state value per row, d = sum |s|, and returns
// the statistic max(d, 1).
// CHECK-LABEL: func.func @attention(%q: {{.*}}, %k: {{.*}}, %v: {{.*}}, %log2_gamma: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
// CHECK:         %[[MOD:.*]] = attn.score_mod %{{.*}} captures(%log2_gamma : tensor<64xf32>) {
// CHECK-NEXT:    ^bb0(%[[S0:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %[[H:[a-z_0-9]+]]: index, %[[Q:[a-z_0-9]+]]: index, %[[KV:[a-z_0-9]+]]: index, %[[LG:[a-z_0-9]+]]: tensor<64xf32>):
// CHECK-NEXT:      %[[DIST:.*]] = arith.subi %[[Q]], %[[KV]] : index
// CHECK-NEXT:      %[[LOG2G:.*]] = tensor.extract %[[LG]][%[[H]]] : tensor<64xf32>
// CHECK:           %[[FDIST:.*]] = arith.sitofp %{{.*}} : i64 to f32
// CHECK-NEXT:      %[[EXPONENT:.*]] = arith.mulf %[[FDIST]], %[[LOG2G]] : f32
// CHECK-NEXT:      %[[DECAY:.*]] = math.exp2 %[[EXPONENT]] : f32
// CHECK-NEXT:      %[[DECAYED:.*]] = arith.mulf %[[S0]], %[[DECAY]] : f32
// CHECK-NEXT:      attn.yield %[[DECAYED]] : f32
// CHECK:         %[[KEEP:.*]] = attn.mask_mod %[[MOD]]
// CHECK:         %[[P:.*]], %[[DENOM:.*]] = attn.online_rowscale %[[MOD]] mask(%[[KEEP]] : tensor<{{.*}}xi1>) update {

// update: p is the score itself, alpha = 1, d grows by the row sum of |s|.
// CHECK-NEXT:    ^bb0(%[[S:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %{{[a-z_0-9]+}}: index, %[[D:[a-z_0-9]+]]: f32):
// CHECK-NEXT:      %[[ABS:.*]] = math.absf %[[S]] : f32
// CHECK-NEXT:      %[[SUM:.*]] = attn.row_sum %[[ABS]] : f32
// CHECK-NEXT:      %[[D_NEW:.*]] = arith.addf %[[D]], %[[SUM]] : f32
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      attn.yield %[[S]], %[[ONE]], %[[D_NEW]] : f32, f32, f32

// finalize: out = acc / max(d, 1), and max(d, 1) is the statistic.
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^bb0(%[[ACC:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %{{[a-z_0-9]+}}: index, %[[D_FINAL:[a-z_0-9]+]]: f32):
// CHECK-NEXT:      %[[ONE_F:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      %[[DEN:.*]] = arith.maxnumf %[[D_FINAL]], %[[ONE_F]] : f32
// CHECK-NEXT:      %[[INV:.*]] = arith.divf %[[ONE_F]], %[[DEN]] : f32
// CHECK-NEXT:      %[[O:.*]] = arith.mulf %[[ACC]], %[[INV]] : f32
// CHECK-NEXT:      attn.yield %[[O]], %[[DEN]] : f32, f32

// A masked score reads as 0, so it adds nothing to d.
// CHECK-NEXT:    } {normalizer = "retention", state = ["d"], init = [0.000000e+00 : f32], masked_score = 0.000000e+00 : f32, held_constant = [0 : i64]} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
// CHECK-NEXT:    %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]], %[[DENOM]] : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
