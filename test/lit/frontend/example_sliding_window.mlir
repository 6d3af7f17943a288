// RUN: attnc compile %S/../../../examples/sliding_window.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// CHECK-LABEL: func.func @attention(
// CHECK:         %[[SCORES:.*]] = attn.qk %q, %k
// CHECK-NEXT:    %[[KEEP:.*]] = attn.mask_mod %[[SCORES]] {
// CHECK-NEXT:    ^bb0(%{{.*}}: index, %{{.*}}: index, %[[Q:[a-z_0-9]+]]: index, %[[KV:[a-z_0-9]+]]: index):
// CHECK-NEXT:      %[[CAUSAL:.*]] = arith.cmpi sge, %[[Q]], %[[KV]] : index
// CHECK-NEXT:      %[[DIST:.*]] = arith.subi %[[Q]], %[[KV]] : index
// CHECK-NEXT:      %[[W:.*]] = arith.constant 256 : index
// CHECK-NEXT:      %[[IN:.*]] = arith.cmpi slt, %[[DIST]], %[[W]] : index
// CHECK-NEXT:      %[[BOTH:.*]] = arith.andi %[[CAUSAL]], %[[IN]] : i1
// CHECK-NEXT:      attn.yield %[[BOTH]] : i1
// CHECK:         %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[SCORES]] mask(%[[KEEP]] : {{.*}}) update {
// CHECK:         attn.pv %[[P]], %v
