// RUN: attnc compile %S/../../../examples/softcap.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --backward --emit triton | filecheck %s
// RUN: attnc compile %S/../../../examples/softcap.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --backward --emit flash | filecheck %s --check-prefix=FLASH

// `attnc compile --backward` runs attn-autodiff between attn-block-mask and attn-tile:
// the flash stage holds the derived attn.flash_grad next to the attn.flash, with
// attn-tile's launch of each backward kernel, and the Triton source gains the dQ and
// dK/dV kernels after the forward ones.

// FLASH-LABEL: func.func @attention(
// FLASH-SAME:      %[[DOUT:[a-z_0-9]+]]: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
// FLASH:         %[[OUT:[^ ,]+]], %[[LSE:[^ ,]+]] = attn.flash %q, %k, %v score_mod {
// FLASH:         %[[DQ:[^ ,]+]], %[[DK:[^ ,]+]], %[[DV:[^ ,]+]] = attn.flash_grad %q, %k, %v, %[[OUT]], %[[DOUT]] stat(%[[LSE]] : {{[^)]*}}) score_mod {
// FLASH:         } score_mod_grad {
// FLASH:           math.tanh
// FLASH:         } {{{.*}}block_mask = "affine", dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64{{.*}}}
// FLASH-NEXT:    func.return %[[OUT]], %[[LSE]], %[[DQ]], %[[DK]], %[[DV]] :

// CHECK:       @triton.jit
// CHECK-NEXT:  def attention_block_table(
// CHECK:       @triton.jit
// CHECK-NEXT:  def attention_fwd(

// dQ: P recomputed from the saved logsumexp, dS = P ⊙ (dP − δ), then the tanh
// derivative, 30·(1 − tanh²(s/30))/30 with tanh spelled 2·sigmoid(2x) − 1; the
// partial key blocks zero dS outside the causal mask.
// CHECK:       @triton.jit
// CHECK-NEXT:  def attention_bwd_dq(
// CHECK:           dout_ptr,
// CHECK:           lse_ptr,
// CHECK-NEXT:      dlse_ptr,
// CHECK-NEXT:      delta_ptr,
// CHECK-NEXT:      dq_ptr,
// CHECK:           lse = tl.load(lse_ptr + stat_rows, mask={{.*}}, other=float("inf"))
// CHECK-NEXT:      lse_log2 = lse * 1.442695
// CHECK-NEXT:      # delta = rowsum(dO * O) - dlse, stored for the dK/dV kernel
// CHECK:           dout_dot_out = tl.sum(dout.to(tl.float32) * out.to(tl.float32), axis=1)
// CHECK-NEXT:      delta = dout_dot_out - dlse
// CHECK-NEXT:      tl.store(delta_ptr + stat_rows, delta, mask={{.*}})
// CHECK:           # full key blocks
// CHECK:             qk = tl.dot(q, {{.*}})
// CHECK-NEXT:        score = qk * scale
// CHECK-NEXT:        # score_mod, recomputed
// CHECK-NEXT:        asm = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [score / 30.0], dtype=tl.float32, is_pure=True, pack=1)
// CHECK-NEXT:        # probabilities from the saved logsumexp, in base 2: one multiply-add per score
// CHECK-NEXT:        p = tl.exp2(30.0 * asm * 1.442695 - lse_log2[:, None])
// CHECK:             dp = tl.dot(dout, {{.*}})
// CHECK-NEXT:        ds_mod = p * (dp - delta[:, None])
// CHECK-NEXT:        # score_mod, differentiated
// CHECK-NEXT:        [[T:asm_[0-9]+]] = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [score / 30.0], dtype=tl.float32, is_pure=True, pack=1)
// CHECK-NEXT:        dscore = ds_mod * 30.0 * (1.0 - [[T]] * [[T]]) / 30.0
// CHECK-NEXT:        dq = tl.dot(dscore.to(tl.bfloat16), k, dq)
// CHECK:           # part key blocks
// CHECK:             keep = (q_idx >= kv_idx) & {{.*}}
// CHECK:             [[DSCORE:dscore_[0-9]+]] = {{.*}} * 30.0 * (1.0 - {{.*}}) / 30.0
// CHECK-NEXT:        ds = tl.where(keep, [[DSCORE]], 0.0)
// CHECK-NEXT:        dq = tl.dot(ds.to(tl.bfloat16), {{.*}}, dq)
// CHECK:           tl.store(dq_ptrs, (dq * scale).to(tl.bfloat16), mask=row_ok)

// dK/dV: per query head of the kv head's group and query block, dV += Pᵀ dO and
// dK += dSᵀ Q, the same tanh derivative in between.
// CHECK:       @triton.jit
// CHECK-NEXT:  def attention_bwd_dkdv(
// CHECK:           # query heads of this kv head
// CHECK-NEXT:      for [[I:i[_0-9]*]] in range(group):
// CHECK-NEXT:          h = kv_h * group + [[I]]
// CHECK:               # full query blocks
// CHECK:                 p = tl.exp2(30.0 * asm * 1.442695 - lse_log2[None, :])
// CHECK-NEXT:            dv = tl.dot(p.to(tl.bfloat16), dout, dv)
// CHECK:                 ds_mod = p * (dp_t - delta[None, :])
// CHECK-NEXT:            # score_mod, differentiated
// CHECK-NEXT:            [[T2:asm_[0-9]+]] = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [score / 30.0], dtype=tl.float32, is_pure=True, pack=1)
// CHECK-NEXT:            dscore = ds_mod * 30.0 * (1.0 - [[T2]] * [[T2]]) / 30.0
// CHECK-NEXT:            dk = tl.dot(dscore.to(tl.bfloat16), q, dk)
// CHECK:               # part query blocks
// CHECK:                 dk = tl.dot({{.*}}, dk)
// CHECK:           tl.store(dk_ptrs, (dk * scale).to(tl.bfloat16), mask=col_ok)
// CHECK:           tl.store(dv_ptrs, dv.to(tl.bfloat16), mask=col_ok)
