// RUN: attnc compile %S/../../../examples/alibi.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s
// RUN: attnc compile %S/../../../examples/alibi.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit triton | filecheck %s --check-prefix=TRITON

// The captured slopes become a function argument and a score_mod capture.
// CHECK-LABEL: func.func @attention(%q: {{.*}}, %k: {{.*}}, %v: {{.*}}, %slopes: tensor<64xf32>)
// CHECK-NEXT:    %[[SCORES:.*]] = attn.qk %q, %k
// CHECK-NEXT:    %[[MOD:.*]] = attn.score_mod %[[SCORES]] captures(%slopes : tensor<64xf32>) {
// CHECK-NEXT:    ^bb0(%[[S:[a-z_0-9]+]]: f32, %[[B:[a-z_0-9]+]]: index, %[[H:[a-z_0-9]+]]: index, %[[Q:[a-z_0-9]+]]: index, %[[KV:[a-z_0-9]+]]: index, %[[SL:[a-z_0-9]+]]: tensor<64xf32>):
// CHECK-NEXT:      %[[SLOPE:.*]] = tensor.extract %[[SL]][%[[H]]] : tensor<64xf32>
// CHECK-NEXT:      %[[DIST:.*]] = arith.subi %[[KV]], %[[Q]] : index
// CHECK:           %[[FDIST:.*]] = arith.sitofp %{{.*}} : i64 to f32
// CHECK-NEXT:      %[[BIAS:.*]] = arith.mulf %[[SLOPE]], %[[FDIST]] : f32
// CHECK-NEXT:      %[[SUM:.*]] = arith.addf %[[S]], %[[BIAS]] : f32
// CHECK-NEXT:      attn.yield %[[SUM]] : f32
// CHECK-NOT:     attn.mask_mod
// CHECK:         %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[MOD]] update {
// CHECK:         %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]], %[[LSE]]

// The slopes arrive as a pointer and a stride; the score_mod loads slopes[h].
// TRITON:       @triton.jit
// TRITON-NEXT:  def attention_block_table(
// TRITON:       @triton.jit
// TRITON-LABEL: def attention_fwd(
// TRITON:         [[CAP:cap[0-9]+]]_ptr,
// TRITON:         [[CAP]]_stride0,
// TRITON:         # full key blocks
// TRITON:           tl.dot(q, {{.*}})
// TRITON:           # score_mod
// TRITON:           [[SLOPE:[a-z_0-9]+]] = tl.load([[CAP]]_ptr + {{.*}})
// TRITON-NEXT:      {{.*}} = score + [[SLOPE]] * {{.*}}.to(tl.float32)
// TRITON:           acc = tl.dot(
