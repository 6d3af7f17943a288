// RUN: attnc compile %S/../../../examples/prefix_lm.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// CHECK-LABEL: func.func @attention(
// CHECK:         %[[SCORES:.*]] = attn.qk %q, %k
// CHECK-NEXT:    %[[KEEP:.*]] = attn.mask_mod %[[SCORES]] {
// CHECK-NEXT:    ^bb0(%{{.*}}: index, %{{.*}}: index, %[[Q:[a-z_0-9]+]]: index, %[[KV:[a-z_0-9]+]]: index):
// CHECK-NEXT:      %[[N:.*]] = arith.constant 64 : index
// CHECK-NEXT:      %[[PREFIX:.*]] = arith.cmpi slt, %[[KV]], %[[N]] : index
// CHECK-NEXT:      %[[CAUSAL:.*]] = arith.cmpi sge, %[[Q]], %[[KV]] : index
// CHECK-NEXT:      %[[EITHER:.*]] = arith.ori %[[PREFIX]], %[[CAUSAL]] : i1
// CHECK-NEXT:      attn.yield %[[EITHER]] : i1
// CHECK:         %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[SCORES]] mask(%[[KEEP]] : {{.*}}) update {
// CHECK:         attn.pv %[[P]], %v
