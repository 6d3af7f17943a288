// RUN: attnc compile %S/../../../examples/document_mask.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s

// The document ids are a captured int32 tensor, read at both indices.
// CHECK-LABEL: func.func @attention(%q: {{.*}}, %k: {{.*}}, %v: {{.*}}, %document_id: tensor<16384xi32>)
// CHECK:         %[[SCORES:.*]] = attn.qk %q, %k
// CHECK-NEXT:    %[[KEEP:.*]] = attn.mask_mod %[[SCORES]] captures(%document_id : tensor<16384xi32>) {
// CHECK-NEXT:    ^bb0(%{{.*}}: index, %{{.*}}: index, %[[Q:[a-z_0-9]+]]: index, %[[KV:[a-z_0-9]+]]: index, %[[DOC:[a-z_0-9]+]]: tensor<16384xi32>):
// CHECK-NEXT:      %[[DQ:.*]] = tensor.extract %[[DOC]][%[[Q]]] : tensor<16384xi32>
// CHECK-NEXT:      %[[DKV:.*]] = tensor.extract %[[DOC]][%[[KV]]] : tensor<16384xi32>
// CHECK-NEXT:      %[[SAME:.*]] = arith.cmpi eq, %[[DQ]], %[[DKV]] : i32
// CHECK-NEXT:      attn.yield %[[SAME]] : i1
// CHECK:         %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[SCORES]] mask(%[[KEEP]] : {{.*}}) update {
// CHECK:         attn.pv %[[P]], %v
