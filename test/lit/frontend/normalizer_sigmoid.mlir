// RUN: attnc compile %S/../../../examples/sigmoid.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// Sigmoid attention: the bias -log(4096) is a score_mod; the normalizer has no
// state and no statistics, so the function returns the output alone.
// CHECK-LABEL: func.func @attention(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
// CHECK:         %[[MOD:.*]] = attn.score_mod
// CHECK:           %[[LOG_N:.*]] = arith.constant 8.31776619 : f32
// CHECK-NEXT:      %[[BIASED:.*]] = arith.subf %{{.*}}, %[[LOG_N]] : f32
// CHECK-NEXT:      attn.yield %[[BIASED]] : f32
// CHECK:         %[[KEEP:.*]] = attn.mask_mod %[[MOD]]
// CHECK:         %[[P:.*]] = attn.online_rowscale %[[MOD]] mask(%[[KEEP]] : tensor<{{.*}}xi1>) update {

// update: p = 0.5 + 0.5·tanh(score/2) (one tanh.approx on NVIDIA), alpha = 1, no state in or out.
// CHECK-NEXT:    ^bb0(%[[S:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %{{[a-z_0-9]+}}: index):
// CHECK-NEXT:      %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-NEXT:      %[[S2:.*]] = arith.mulf %[[S]], %[[HALF]] : f32
// CHECK-NEXT:      %[[T:.*]] = math.tanh %[[S2]] : f32
// CHECK-NEXT:      %[[HT:.*]] = arith.mulf %[[HALF]], %[[T]] : f32
// CHECK-NEXT:      %[[SIG:.*]] = arith.addf %[[HALF]], %[[HT]] : f32
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      attn.yield %[[SIG]], %[[ONE]] : f32, f32
// CHECK-NOT:       attn.row_

// finalize: the accumulator is the output.
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^bb0(%[[ACC:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %{{[a-z_0-9]+}}: index):
// CHECK-NEXT:      attn.yield %[[ACC]] : f32

// A masked score reads as -inf, whose sigmoid is 0.
// CHECK-NEXT:    } {normalizer = "sigmoid", state = [], init = [], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>)
// CHECK-NEXT:    %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]] : tensor<?x4x?x64xbf16>
