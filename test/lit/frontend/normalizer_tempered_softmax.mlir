// RUN: attnc compile %S/../../../examples/tempered_softmax.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// A user-defined Normalizer is traced into the same attn.online_rowscale as the
// built-ins: its class's name, state and statistics, and the temperature tensor
// it reads as a capture of both regions.
// CHECK-LABEL: func.func @attention(
// CHECK-SAME:    %q: {{.*}}, %k: {{.*}}, %v: {{.*}}, %[[TEMP_ARG:[a-z_0-9]+]]: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
// CHECK-NEXT:    %[[SCORES:.*]] = attn.qk %q, %k
// CHECK:         %[[KEEP:.*]] = attn.mask_mod %[[SCORES]]
// CHECK:         %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[SCORES]] mask(%[[KEEP]] : tensor<{{.*}}xi1>) captures(%[[TEMP_ARG]] : tensor<64xf32>) update {

// update: score / temperature[h], then the online softmax in natural exp.
// CHECK-NEXT:    ^bb0(%[[S:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %[[H:[a-z_0-9]+]]: index, %[[M:[a-z_0-9]+]]: f32, %[[L:[a-z_0-9]+]]: f32, %[[TEMP:[a-z_0-9]+]]: tensor<64xf32>):
// CHECK-NEXT:      %[[T:.*]] = tensor.extract %[[TEMP]][%[[H]]] : tensor<64xf32>
// CHECK-NEXT:      %[[ST:.*]] = arith.divf %[[S]], %[[T]] : f32
// CHECK-NEXT:      %[[TILE_MAX:.*]] = attn.row_max %[[ST]] : f32
// CHECK-NEXT:      %[[M_NEW:.*]] = arith.maximumf %[[M]], %[[TILE_MAX]] : f32
// CHECK:           %[[PROB:.*]] = math.exp %{{.*}} : f32
// CHECK:           %[[ALPHA:.*]] = math.exp %{{.*}} : f32
// CHECK-NEXT:      %[[L_SCALED:.*]] = arith.mulf %[[L]], %[[ALPHA]] : f32
// CHECK-NEXT:      %[[TILE_SUM:.*]] = attn.row_sum %[[PROB]] : f32
// CHECK-NEXT:      %[[L_NEW:.*]] = arith.addf %[[L_SCALED]], %[[TILE_SUM]] : f32
// CHECK-NEXT:      attn.yield %[[PROB]], %[[ALPHA]], %[[M_NEW]], %[[L_NEW]] : f32, f32, f32, f32

// finalize: acc / l (1 for an empty row) and lse = m + log l; the temperature is
// a capture here too, unread.
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^bb0(%[[ACC:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %{{[a-z_0-9]+}}: index, %[[MF:[a-z_0-9]+]]: f32, %[[LF:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: tensor<64xf32>):
// CHECK-NOT:       tensor.extract
// CHECK:           %[[L_SAFE:.*]] = arith.select %{{.*}}, %{{.*}}, %[[LF]] : f32
// CHECK-NEXT:      %[[O:.*]] = arith.divf %[[ACC]], %[[L_SAFE]] : f32
// CHECK-NEXT:      %[[LOG_L:.*]] = math.log %[[LF]] : f32
// CHECK-NEXT:      %[[LSE_F:.*]] = arith.addf %[[MF]], %[[LOG_L]] : f32
// CHECK-NEXT:      attn.yield %[[O]], %[[LSE_F]] : f32, f32
// CHECK-NEXT:    } {normalizer = "tempered_softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32}
// CHECK-NEXT:    %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]], %[[LSE]] : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
