// RUN: attnc compile %S/../../../examples/sinks.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// Softmax with sinks: the sink logits are a function argument captured by the
// normalizer; update is the base-2 online softmax, finalize adds exp(sinks[h]) to
// the denominator.
// CHECK-LABEL: func.func @attention(
// CHECK-SAME:    %q: {{.*}}, %k: {{.*}}, %v: {{.*}}, %[[SINKS_ARG:[a-z_0-9]+]]: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
// CHECK-NEXT:    %[[SCORES:.*]] = attn.qk %q, %k
// CHECK-NOT:     attn.score_mod
// CHECK:         %[[KEEP:.*]] = attn.mask_mod %[[SCORES]]
// CHECK:         %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[SCORES]] mask(%[[KEEP]] : tensor<{{.*}}xi1>) captures(%[[SINKS_ARG]] : tensor<64xf32>) update {

// update: running max m and sum l of score * log2(e); the sinks are not read.
// CHECK-NEXT:    ^bb0(%[[S:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %{{[a-z_0-9]+}}: index, %[[M:[a-z_0-9]+]]: f32, %[[L:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: tensor<64xf32>):
// CHECK-NEXT:      %[[LOG2E:.*]] = arith.constant 1.44269502 : f32
// CHECK-NEXT:      %[[S2:.*]] = arith.mulf %[[S]], %[[LOG2E]] : f32
// CHECK-NEXT:      %[[TILE_MAX:.*]] = attn.row_max %[[S2]] : f32
// CHECK-NEXT:      %[[M_NEW:.*]] = arith.maxnumf %[[M]], %[[TILE_MAX]] : f32
// CHECK-NOT:       tensor.extract
// CHECK:           %[[PROB:.*]] = math.exp2 %{{.*}} : f32
// CHECK:           %[[ALPHA:.*]] = math.exp2 %{{.*}} : f32
// CHECK-NEXT:      %[[L_SCALED:.*]] = arith.mulf %[[L]], %[[ALPHA]] : f32
// CHECK-NEXT:      %[[TILE_SUM:.*]] = attn.row_sum %[[PROB]] : f32
// CHECK-NEXT:      %[[L_NEW:.*]] = arith.addf %[[L_SCALED]], %[[TILE_SUM]] : f32
// CHECK-NEXT:      attn.yield %[[PROB]], %[[ALPHA]], %[[M_NEW]], %[[L_NEW]] : f32, f32, f32, f32

// finalize reads sinks[h]: out = acc 2^(m - top) / (l 2^(m - top) + 2^(sink log2 e - top)).
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^bb0(%[[ACC:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %[[H:[a-z_0-9]+]]: index, %[[MF:[a-z_0-9]+]]: f32, %[[LF:[a-z_0-9]+]]: f32, %[[SINKS:[a-z_0-9]+]]: tensor<64xf32>):
// CHECK-NEXT:      %[[SINK:.*]] = tensor.extract %[[SINKS]][%[[H]]] : tensor<64xf32>
// CHECK-NEXT:      %[[LOG2E_F:.*]] = arith.constant 1.44269502 : f32
// CHECK-NEXT:      %[[SINK2:.*]] = arith.mulf %[[SINK]], %[[LOG2E_F]] : f32
// CHECK-NEXT:      %[[TOP:.*]] = arith.maxnumf %[[MF]], %[[SINK2]] : f32
// CHECK:           %[[ROW_SCALE:.*]] = math.exp2 %{{.*}} : f32
// CHECK:           %[[DEN:.*]] = arith.addf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT:      %[[RATIO:.*]] = arith.divf %[[ROW_SCALE]], %[[DEN]] : f32
// CHECK-NEXT:      %[[O:.*]] = arith.mulf %[[ACC]], %[[RATIO]] : f32
// CHECK-NEXT:      %[[LOG_DEN:.*]] = math.log2 %[[DEN]] : f32
// CHECK-NEXT:      %[[LSE2:.*]] = arith.addf %[[TOP]], %[[LOG_DEN]] : f32
// CHECK-NEXT:      %[[LN2:.*]] = arith.constant 0.693147182 : f32
// CHECK-NEXT:      %[[LSE_F:.*]] = arith.mulf %[[LSE2]], %[[LN2]] : f32
// CHECK-NEXT:      attn.yield %[[O]], %[[LSE_F]] : f32, f32
// CHECK-NEXT:    } {normalizer = "softmax_with_sinks", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32}
// CHECK-NEXT:    %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]], %[[LSE]] : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
