// RUN: attnc compile %S/../../../examples/relu.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// ReLU attention: no score_mod, no state, no statistics.
// CHECK-LABEL: func.func @attention(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
// CHECK-NEXT:    %[[SCORES:.*]] = attn.qk %q, %k
// CHECK-NOT:     attn.score_mod
// CHECK:         %[[KEEP:.*]] = attn.mask_mod %[[SCORES]]
// CHECK:         %[[P:.*]] = attn.online_rowscale %[[SCORES]] mask(%[[KEEP]] : tensor<{{.*}}xi1>) update {

// update: p = max(score, 0), alpha = 1.
// CHECK-NEXT:    ^bb0(%[[S:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %{{[a-z_0-9]+}}: index):
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[RELU:.*]] = arith.maxnumf %[[S]], %[[ZERO]] : f32
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      attn.yield %[[RELU]], %[[ONE]] : f32, f32
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^bb0(%[[ACC:[a-z_0-9]+]]: f32, %{{[a-z_0-9]+}}: index, %{{[a-z_0-9]+}}: index):
// CHECK-NEXT:      attn.yield %[[ACC]] : f32

// A masked score reads as -inf; max(-inf, 0) = 0.
// CHECK-NEXT:    } {normalizer = "relu", state = [], init = [], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>)
// CHECK-NEXT:    %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]] : tensor<?x4x?x64xbf16>
