// RUN: attnc compile %S/../../../examples/plain.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// Plain softmax attention: no score_mod, no mask_mod, so no mask operand either.

// CHECK-LABEL: func.func @attention(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
// CHECK-NEXT:    %[[SCORES:.*]] = attn.qk %q, %k {scale = 1.250000e-01 : f32}
// CHECK-NOT:     attn.score_mod
// CHECK-NOT:     attn.mask_mod
// CHECK-NEXT:    %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[SCORES]] update {
// CHECK:           attn.row_max
// CHECK:           attn.row_sum
// CHECK:         } finalize {
// CHECK:         normalizer = "softmax"
// CHECK-NEXT:    %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]], %[[LSE]]
