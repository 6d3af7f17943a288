// RUN: attnc compile %S/../../../examples/softcap.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | filecheck %s
// RUN: attnc compile %S/../../../examples/softcap.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit triton | filecheck %s --check-prefix=TRITON

// CHECK-LABEL: func.func @attention(
// CHECK-NEXT:    %[[SCORES:.*]] = attn.qk %q, %k {scale = 1.250000e-01 : f32}
// CHECK-NEXT:    %[[MOD:.*]] = attn.score_mod %[[SCORES]] {
// CHECK-NEXT:    ^bb0(%[[S:[a-z_0-9]+]]: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index):
// CHECK-NEXT:      %[[CAP:.*]] = arith.constant 3.000000e+01 : f32
// CHECK-NEXT:      %[[DIV:.*]] = arith.divf %[[S]], %[[CAP]] : f32
// CHECK-NEXT:      %[[TANH:.*]] = math.tanh %[[DIV]] : f32
// CHECK-NEXT:      %[[MUL:.*]] = arith.mulf %[[CAP]], %[[TANH]] : f32
// CHECK-NEXT:      attn.yield %[[MUL]] : f32
// CHECK:         %[[KEEP:.*]] = attn.mask_mod %[[MOD]] {
// CHECK:           arith.cmpi sge
// CHECK:         %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[MOD]] mask(%[[KEEP]] : {{.*}}) update {
// CHECK:         %[[OUT:.*]] = attn.pv %[[P]], %v
// CHECK-NEXT:    func.return %[[OUT]], %[[LSE]]

// The score_mod is inlined between q kᵀ and the softmax update; tanh is spelled
// 2·sigmoid(2x) − 1.
// TRITON:       @triton.jit
// TRITON-NEXT:  def attention_block_table(
// TRITON:       @triton.jit
// TRITON-LABEL: def attention_fwd(
// TRITON:         # full key blocks
// TRITON:           qk = tl.dot(q, {{.*}})
// TRITON-NEXT:      score = qk * scale
// TRITON-NEXT:      # score_mod
// TRITON-NEXT:      asm = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [score / 30.0], dtype=tl.float32, is_pure=True, pack=1)
// TRITON-NEXT:      modified = 30.0 * asm
// TRITON:           acc = tl.dot(
// TRITON:         # part key blocks
// TRITON:           # score_mod
// TRITON:           [[ASM:asm_[0-9]+]] = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [{{.*}} / 30.0], dtype=tl.float32, is_pure=True, pack=1)
// TRITON-NEXT:      [[MOD:modified_[0-9]+]] = 30.0 * [[ASM]]
// TRITON:           # mask_mod
// TRITON:           {{.*}} = tl.where(keep, [[MOD]], float("-inf"))
