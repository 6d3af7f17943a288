// RUN: attnc compile %S/../../../examples/causal.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s
// RUN: attnc compile %S/../../../examples/causal.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit triton | filecheck %s --check-prefix=TRITON

// CHECK-LABEL: func.func @attention(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>)
// CHECK-NEXT:    %[[SCORES:.*]] = attn.qk %q, %k {scale = 1.250000e-01 : f32}
// CHECK-NEXT:    %[[KEEP:.*]] = attn.mask_mod %[[SCORES]] {
// CHECK-NEXT:    ^bb0(%[[B:[a-z_0-9]+]]: index, %[[H:[a-z_0-9]+]]: index, %[[Q:[a-z_0-9]+]]: index, %[[KV:[a-z_0-9]+]]: index):
// CHECK-NEXT:      %[[C:.*]] = arith.cmpi sge, %[[Q]], %[[KV]] : index
// CHECK-NEXT:      attn.yield %[[C]] : i1
// CHECK-NEXT:    } : tensor<{{.*}}xf32> -> tensor<{{.*}}xi1>
// CHECK-NEXT:    %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[SCORES]] mask(%[[KEEP]] : tensor<{{.*}}xi1>) update {
// CHECK:         } finalize {
// CHECK:         normalizer = "softmax"
// CHECK-NEXT:    %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]], %[[LSE]]

// The kernel loads q once; key blocks wholly below the diagonal run without the
// mask, the blocks it cuts evaluate the comparison, inlined, before the softmax update.
// TRITON:       @triton.jit
// TRITON-NEXT:  def attention_block_table(
// TRITON:       @triton.jit
// TRITON-LABEL: def attention_fwd(
// TRITON:         q = tl.load(
// TRITON:         # full key blocks
// TRITON-NEXT:    for {{.*}} in range(
// TRITON:           tl.dot(q, {{.*}})
// TRITON-NOT:       mask_mod
// TRITON:           acc = tl.dot(
// TRITON:         # part key blocks
// TRITON:           tl.dot(q, {{.*}})
// TRITON:           # mask_mod
// TRITON-NEXT:      keep = (q_idx >= kv_idx) & {{.*}}
// TRITON-NEXT:      {{.*}} = tl.where(keep, {{.*}}, float("-inf"))
// A key the mask hides never turns 0 · inf into NaN: a V tile with NaN or ±inf takes a branch.
// TRITON:           # v holds NaN or ±inf: zero them for the product
// TRITON:           tl.dot(
// TRITON-NEXT:      acc = tl.where({{.*}}, float("nan"), {{.*}})
// TRITON:         tl.store(
