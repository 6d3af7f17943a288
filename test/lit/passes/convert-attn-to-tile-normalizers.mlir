// RUN: attn-opt %s -p convert-attn-to-tile --split-input-file | filecheck %s
// RUN: attnc compile %S/../../../examples/sigmoid.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit triton | filecheck %s --check-prefix=SIG-TRITON
// RUN: attnc compile %S/../../../examples/retention.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit triton | filecheck %s --check-prefix=RET-TRITON

// convert-attn-to-tile on normalizers other than softmax: the loops carry the
// accumulator and exactly the normalizer's state, nothing else. The inputs are
// `attnc compile examples/{sigmoid,retention}.py --emit flash` (renamed @sigmoid,
// @retention); the Triton checks compile the same examples to the end.

// Sigmoid: no state. The loops carry only acc (and the next key block), update is
// elementwise (no row reduction), alpha = 1 so acc is never rescaled, and finalize
// is the cast of acc. No statistic, so no stats pointer and no second store.
// CHECK-LABEL: tile.func @sigmoid_fwd(
// CHECK-SAME:      %{{[a-z_0-9]+}}: !tile.ptr<bf16>, %{{[a-z_0-9]+}}: !tile.ptr<bf16>, %{{[a-z_0-9]+}}: !tile.ptr<bf16>, %[[OUT_PTR:[a-z_0-9]+]]: !tile.ptr<bf16>, %{{[a-z_0-9]+}}: i32,
// CHECK:         %[[ACC0:.*]] = tile.full ["BLOCK_M", "HEAD_DIM_V"] 0.0 : tensor<128x64xf32>
// CHECK-NOT:     tile.full ["BLOCK_M"]
// CHECK:         %[[ACC1:.*]], %{{.*}} = scf.for %{{.*}} iter_args(%[[ACC_IT:[a-z_0-9]+]] = %[[ACC0]], %{{[a-z_0-9]+}} = %{{[a-z_0-9]+}}) -> (tensor<128x64xf32>, i32) : i32 {
// CHECK-NOT:       tile.reduce
// CHECK:           arith.constant {attnc.comment = "normalizer update (sigmoid)"} -1.44269502 : f32
// CHECK-NOT:       tile.reduce
// CHECK:           %[[E:.*]] = math.exp2 %{{.*}} : tensor<128x128xf32>
// CHECK:           %[[DEN:.*]] = arith.addf %{{.*}}, %[[E]] : tensor<128x128xf32>
// CHECK:           %[[P:.*]] = arith.divf %{{.*}}, %[[DEN]] : tensor<128x128xf32>
// CHECK-NOT:       %[[ACC_IT]]
// CHECK:           %[[PC:.*]] = tile.cast %[[P]] : tensor<128x128xf32> to tensor<128x128xbf16>
// CHECK-NEXT:      %[[ACC_NEXT:.*]] = tile.dot %[[PC]], %{{.*}} acc %[[ACC_IT]]
// CHECK-NEXT:      scf.yield %[[ACC_NEXT]], %{{.*}} : tensor<128x64xf32>, i32
// CHECK-NEXT:    } {attnc.comment = "full key blocks"}

// The partial blocks: a masked score reads as -inf (sigmoid 0), and p is zeroed.
// CHECK:         %[[ACC2:.*]], %{{.*}} = scf.for %{{.*}} iter_args(%[[ACC_IT2:[a-z_0-9]+]] = %[[ACC1]], %{{[a-z_0-9]+}} = %{{[a-z_0-9]+}}) -> (tensor<128x64xf32>, i32) : i32 {
// CHECK:           %[[KEEP:.*]] = arith.andi %{{.*}}, %{{.*}} : tensor<128x128xi1>
// CHECK-NEXT:      %[[NEG_INF:.*]] = arith.constant 0xff800000 : f32
// CHECK-NEXT:      %[[FILL:.*]] = tile.splat %[[NEG_INF]]
// CHECK-NEXT:      %[[MASKED:.*]] = tile.select %[[KEEP]], %{{.*}}, %[[FILL]] : tensor<128x128xf32>
// CHECK-NEXT:      %[[C:.*]] = arith.constant {attnc.comment = "normalizer update (sigmoid)"} -1.44269502 : f32
// CHECK-NEXT:      %[[C_T:.*]] = tile.splat %[[C]]
// CHECK-NEXT:      %{{.*}} = arith.mulf %[[MASKED]], %[[C_T]] : tensor<128x128xf32>
// CHECK-NOT:       tile.reduce
// CHECK:           %[[P2:.*]] = arith.divf %{{.*}}, %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[ZEROS:.*]] = tile.splat %[[ZERO]]
// CHECK-NEXT:      %[[P2_KEPT:.*]] = tile.select %[[KEEP]], %[[P2]], %[[ZEROS]] : tensor<128x128xf32>
// CHECK-NOT:       %[[ACC_IT2]]
// CHECK:           %[[PC2:.*]] = tile.cast %[[P2_KEPT]] : tensor<128x128xf32> to tensor<128x128xbf16>
// CHECK-NEXT:      %[[ACC_DOT2:.*]] = tile.dot %[[PC2]], %{{.*}} acc %[[ACC_IT2]]
// CHECK:           %[[ACC_NEXT2:.*]] = tile.select %{{.*}}, %{{.*}}, %[[ACC_DOT2]] : tensor<128x64xf32>
// CHECK-NEXT:      scf.yield %[[ACC_NEXT2]], %{{.*}} : tensor<128x64xf32>, i32
// CHECK-NEXT:    } {attnc.comment = "part key blocks"}

// finalize: the output is acc itself.
// CHECK-NEXT:    %[[OUT:.*]] = tile.cast %[[ACC2]] {attnc.comment = "normalizer finalize (sigmoid)"} : tensor<128x64xf32> to tensor<128x64xbf16>
// CHECK:         %[[OUT_PTRS:.*]] = tile.addptr %{{.*}}
// CHECK-NEXT:    %[[ROW_OK:.*]] = tile.broadcast
// CHECK-NEXT:    tile.store %[[OUT_PTRS]], %[[OUT]] mask %[[ROW_OK]]
// CHECK-NEXT:    tile.return

func.func @sigmoid(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %out = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    %cst = arith.constant 8.31776619 : f32
    %0 = arith.subf %score, %cst : f32
    attn.yield %0 : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index):
    %1 = arith.cmpi sge, %q_idx_1, %kv_idx_1 : index
    attn.yield %1 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index):
    %cst_1 = arith.constant -1.44269502 : f32
    %2 = arith.mulf %score_1, %cst_1 : f32
    %3 = math.exp2 %2 : f32
    %cst_2 = arith.constant 1.000000e+00 : f32
    %4 = arith.addf %cst_2, %3 : f32
    %p = arith.divf %cst_2, %4 : f32
    attn.yield %p, %cst_2 : f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index):
    attn.yield %acc : f32
  } classify {
  ^bb0(%b_4: index, %h_4: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %5 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %5 : index
    %kv_last = arith.subi %kv_hi, %5 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } {scale = 1.250000e-01 : f32, normalizer = "sigmoid", state = [], init = [], masked_score = 0xff800000 : f32, block_mask = "affine", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>)
  func.return %out : tensor<?x4x?x64xbf16>
}

// -----

// Retention: one state value per row, d = Σ|s|. The loops carry acc and d; update
// adds the row sum of |s| to d and uses the score as p; alpha = 1 so acc is never
// rescaled; finalize divides by max(d, 1) and stores that as the statistic.
// CHECK-LABEL: tile.func @retention_fwd(
// CHECK-SAME:      %[[OUT_PTR:[a-z_0-9]+]]: !tile.ptr<bf16>, %[[STAT_PTR:[a-z_0-9]+]]: !tile.ptr<f32>, %[[CAP_PTR:[a-z_0-9]+]]: !tile.ptr<f32>, %{{[a-z_0-9]+}}: i32,
// CHECK:         %[[ACC0:.*]] = tile.full ["BLOCK_M", "HEAD_DIM_V"] 0.0 : tensor<128x64xf32>
// CHECK-NEXT:    %[[D0:.*]] = tile.full ["BLOCK_M"] 0.0 : tensor<128xf32>
// CHECK-NOT:     tile.full ["BLOCK_M"]
// CHECK:         %[[ACC1:.*]], %[[D1:.*]], %{{.*}} = scf.for %{{.*}} iter_args(%[[ACC_IT:[a-z_0-9]+]] = %[[ACC0]], %[[D_IT:[a-z_0-9]+]] = %[[D0]], %{{[a-z_0-9]+}} = %{{[a-z_0-9]+}}) -> (tensor<128x64xf32>, tensor<128xf32>, i32) : i32 {
// The decay reads log2_gamma[h] through the capture pointer.
// CHECK:           %{{.*}} = tile.addptr %[[CAP_PTR]], %{{.*}} : !tile.ptr<f32>, i64 -> !tile.ptr<f32>
// CHECK:           %[[DECAY:.*]] = math.exp2 %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:      %[[S:.*]] = arith.mulf %{{.*}}, %[[DECAY]] : tensor<128x128xf32>
// CHECK-NEXT:      %[[ABS:.*]] = math.absf %[[S]] {attnc.comment = "normalizer update (retention)"} : tensor<128x128xf32>
// CHECK-NEXT:      %[[SUM:.*]] = tile.reduce sum %[[ABS]] axis 1 : tensor<128x128xf32> -> tensor<128xf32>
// CHECK-NEXT:      %[[D_NEXT:.*]] = arith.addf %[[D_IT]], %[[SUM]] : tensor<128xf32>
// CHECK-NOT:       %[[ACC_IT]]
// CHECK:           %[[PC:.*]] = tile.cast %[[S]] : tensor<128x128xf32> to tensor<128x128xbf16>
// CHECK-NEXT:      %[[ACC_NEXT:.*]] = tile.dot %[[PC]], %{{.*}} acc %[[ACC_IT]]
// CHECK-NEXT:      scf.yield %[[ACC_NEXT]], %[[D_NEXT]], %{{.*}} : tensor<128x64xf32>, tensor<128xf32>, i32
// CHECK-NEXT:    } {attnc.comment = "full key blocks"}

// The partial blocks: a masked score reads as 0.0 (it adds nothing to d), and p is zeroed.
// CHECK:         %[[ACC2:.*]], %[[D2:.*]], %{{.*}} = scf.for %{{.*}} iter_args(%[[ACC_IT2:[a-z_0-9]+]] = %[[ACC1]], %[[D_IT2:[a-z_0-9]+]] = %[[D1]], %{{[a-z_0-9]+}} = %{{[a-z_0-9]+}}) -> (tensor<128x64xf32>, tensor<128xf32>, i32) : i32 {
// CHECK:           %[[KEEP:.*]] = arith.andi %{{.*}}, %{{.*}} : tensor<128x128xi1>
// CHECK-NEXT:      %[[MASKED_SCORE:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[FILL:.*]] = tile.splat %[[MASKED_SCORE]]
// CHECK-NEXT:      %[[MASKED:.*]] = tile.select %[[KEEP]], %{{.*}}, %[[FILL]] : tensor<128x128xf32>
// CHECK-NEXT:      %[[ABS2:.*]] = math.absf %[[MASKED]] {attnc.comment = "normalizer update (retention)"} : tensor<128x128xf32>
// CHECK-NEXT:      %[[SUM2:.*]] = tile.reduce sum %[[ABS2]] axis 1 : tensor<128x128xf32> -> tensor<128xf32>
// CHECK-NEXT:      %[[D_NEXT2:.*]] = arith.addf %[[D_IT2]], %[[SUM2]] : tensor<128xf32>
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[ZEROS:.*]] = tile.splat %[[ZERO]]
// CHECK-NEXT:      %[[P2:.*]] = tile.select %[[KEEP]], %[[MASKED]], %[[ZEROS]] : tensor<128x128xf32>
// CHECK-NOT:       %[[ACC_IT2]]
// CHECK:           %[[PC2:.*]] = tile.cast %[[P2]] : tensor<128x128xf32> to tensor<128x128xbf16>
// CHECK-NEXT:      %[[ACC_DOT2:.*]] = tile.dot %[[PC2]], %{{.*}} acc %[[ACC_IT2]]
// CHECK:           %[[ACC_NEXT2:.*]] = tile.select %{{.*}}, %{{.*}}, %[[ACC_DOT2]] : tensor<128x64xf32>
// CHECK-NEXT:      scf.yield %[[ACC_NEXT2]], %[[D_NEXT2]], %{{.*}} : tensor<128x64xf32>, tensor<128xf32>, i32
// CHECK-NEXT:    } {attnc.comment = "part key blocks"}

// finalize: out = acc * (1 / max(d, 1)); max(d, 1) is stored as the statistic.
// CHECK-NEXT:    %[[ONE:.*]] = arith.constant {attnc.comment = "normalizer finalize (retention)"} 1.000000e+00 : f32
// CHECK-NEXT:    %[[ONES:.*]] = tile.splat %[[ONE]] ["BLOCK_M"]
// CHECK-NEXT:    %[[DENOM:.*]] = arith.maxnumf %[[D2]], %[[ONES]] : tensor<128xf32>
// CHECK-NEXT:    %[[ONES2:.*]] = tile.splat %[[ONE]] ["BLOCK_M"]
// CHECK-NEXT:    %[[INV:.*]] = arith.divf %[[ONES2]], %[[DENOM]] : tensor<128xf32>
// CHECK-NEXT:    %[[INV_COL:.*]] = tile.expand_dims %[[INV]] 1
// CHECK-NEXT:    %[[INV_T:.*]] = tile.broadcast %[[INV_COL]] ["BLOCK_M", "HEAD_DIM_V"]
// CHECK-NEXT:    %[[OUT:.*]] = arith.mulf %[[ACC2]], %[[INV_T]] : tensor<128x64xf32>
// CHECK-NEXT:    %[[OUT_C:.*]] = tile.cast %[[OUT]] : tensor<128x64xf32> to tensor<128x64xbf16>
// CHECK:         tile.store %{{.*}}, %[[OUT_C]] mask %{{.*}}
// CHECK:         %[[STAT_PTRS:.*]] = tile.addptr %[[STAT_PTR]], %{{.*}}
// CHECK-NEXT:    tile.store %[[STAT_PTRS]], %[[DENOM]] mask %{{.*}} : tensor<128x!tile.ptr<f32>>, tensor<128xf32>
// CHECK-NEXT:    tile.return

func.func @retention(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %log2_gamma: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %denominator = attn.flash %q, %k, %v captures(%log2_gamma : tensor<64xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %log2_gamma_1: tensor<64xf32>):
    %0 = arith.subi %q_idx, %kv_idx : index
    %1 = tensor.extract %log2_gamma_1[%h] : tensor<64xf32>
    %2 = arith.index_cast %0 : index to i64
    %3 = arith.sitofp %2 : i64 to f32
    %4 = arith.mulf %3, %1 : f32
    %5 = math.exp2 %4 : f32
    %6 = arith.mulf %score, %5 : f32
    attn.yield %6 : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %log2_gamma_2: tensor<64xf32>):
    %7 = arith.cmpi sge, %q_idx_1, %kv_idx_1 : index
    attn.yield %7 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %d: f32, %log2_gamma_3: tensor<64xf32>):
    %8 = math.absf %score_1 : f32
    %9 = attn.row_sum %8 : f32
    %d_new = arith.addf %d, %9 : f32
    %cst = arith.constant 1.000000e+00 : f32
    attn.yield %score_1, %cst, %d_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %d_1: f32, %log2_gamma_4: tensor<64xf32>):
    %cst_1 = arith.constant 1.000000e+00 : f32
    %denominator_1 = arith.maxnumf %d_1, %cst_1 : f32
    %10 = arith.divf %cst_1, %denominator_1 : f32
    %out_1 = arith.mulf %acc, %10 : f32
    attn.yield %out_1, %denominator_1 : f32, f32
  } classify {
  ^bb0(%b_4: index, %h_4: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %11 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %11 : index
    %kv_last = arith.subi %kv_hi, %11 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } {scale = 1.250000e-01 : f32, normalizer = "retention", state = ["d"], init = [0.000000e+00 : f32], masked_score = 0.000000e+00 : f32, block_mask = "affine", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %denominator : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// The Triton kernel of examples/sigmoid.py: acc is the only loop state; a masked
// score reads as -inf and its p is zeroed; the output is acc, cast.
// SIG-TRITON-LABEL: def attention_fwd(
// SIG-TRITON-NOT:     stat0_ptr
// SIG-TRITON:         acc = tl.zeros((BLOCK_M, HEAD_DIM_V), dtype=tl.float32)
// SIG-TRITON-NEXT:    table_row =
// SIG-TRITON:         # full key blocks
// SIG-TRITON-NEXT:    for {{.*}} in range(num_full):
// SIG-TRITON-NOT:       tl.max
// SIG-TRITON-NOT:       tl.sum
// The bias and the halving fold into one multiply-add on the raw product: qk·(scale/2) − log(n)/2.
// SIG-TRITON:           # normalizer update (sigmoid)
// SIG-TRITON-NEXT:      [[ASM:asm]] = tl.inline_asm_elementwise("tanh.approx.f32 {{.*}}", [qk * (scale * 0.5) - 4.158883], {{.*}})
// SIG-TRITON-NEXT:      [[P:p]] = 0.5 + 0.5 * [[ASM]]
// SIG-TRITON-NOT:       acc *
// SIG-TRITON:           acc = tl.dot([[P]].to(tl.bfloat16), {{.*}}, acc)
// SIG-TRITON:         # part key blocks
// SIG-TRITON-NOT:       tl.max
// SIG-TRITON-NOT:       tl.sum
// SIG-TRITON:           keep = (q_idx >= kv_idx) & col_ok
// SIG-TRITON:           [[MASKED:[a-z_0-9]+]] = tl.where(keep, {{.*}}, float("-inf"))
// SIG-TRITON-NEXT:      # normalizer update (sigmoid)
// SIG-TRITON-NEXT:      [[ASM1:asm_[0-9]+]] = tl.inline_asm_elementwise("tanh.approx.f32 {{.*}}", [[[MASKED]] * 0.5], {{.*}})
// SIG-TRITON-NEXT:      [[P1:p_[0-9]+]] = 0.5 + 0.5 * [[ASM1]]
// SIG-TRITON-NEXT:      [[P2:p_[0-9]+]] = tl.where(keep, [[P1]], 0.0)
// SIG-TRITON-NOT:       acc *
// SIG-TRITON:           [[ACC:acc_[0-9]+]] = tl.dot([[P2]].to(tl.bfloat16), {{.*}}, acc)
// SIG-TRITON-NEXT:      acc = tl.where({{.*}}, float("nan"), [[ACC]])
// SIG-TRITON:         # normalizer finalize (sigmoid)
// SIG-TRITON-NEXT:    out = acc.to(tl.bfloat16)
// SIG-TRITON:         tl.store(out_ptrs, out, mask=row_ok)
// SIG-TRITON-NOT:     tl.store

// The Triton kernel of examples/retention.py: acc and d are the loop state; d sums
// |s| per row; a masked score reads as 0.0; out = acc / max(d, 1), and max(d, 1)
// is stored.
// RET-TRITON-LABEL: def attention_fwd(
// RET-TRITON:         acc = tl.zeros((BLOCK_M, HEAD_DIM_V), dtype=tl.float32)
// RET-TRITON-NEXT:    d = tl.zeros((BLOCK_M,), dtype=tl.float32)
// RET-TRITON-NEXT:    table_row =
// RET-TRITON:         # full key blocks
// RET-TRITON-NEXT:    for {{.*}} in range(num_full):
// RET-TRITON:           # score_mod
// RET-TRITON:           [[S:[a-z_0-9]+]] = score * tl.exp2(
// RET-TRITON-NEXT:      # normalizer update (retention)
// RET-TRITON:           [[ABS:[a-z_0-9]+]] = tl.abs([[S]])
// RET-TRITON:           [[SUM:[a-z_0-9]+]] = tl.sum([[ABS]], axis=1)
// RET-TRITON:           d = d + [[SUM]]
// RET-TRITON-NOT:       acc *
// RET-TRITON:           acc = tl.dot([[S]].to(tl.bfloat16), {{.*}}, acc)
// RET-TRITON:         # part key blocks
// RET-TRITON:           keep = (q_idx >= kv_idx) & col_ok
// RET-TRITON:           [[MASKED:[a-z_0-9]+]] = tl.where(keep, {{.*}}, 0.0)
// RET-TRITON-NEXT:      # normalizer update (retention)
// RET-TRITON:           [[ABS1:[a-z_0-9]+]] = tl.abs([[MASKED]])
// RET-TRITON:           [[SUM1:[a-z_0-9]+]] = tl.sum([[ABS1]], axis=1)
// RET-TRITON:           d = d + [[SUM1]]
// RET-TRITON:           [[P:[a-z_0-9]+]] = tl.where(keep, [[MASKED]], 0.0)
// RET-TRITON-NOT:       acc *
// RET-TRITON:           [[ACC:acc_[0-9]+]] = tl.dot([[P]].to(tl.bfloat16), {{.*}}, acc)
// RET-TRITON-NEXT:      acc = tl.where({{.*}}, float("nan"), [[ACC]])
// RET-TRITON:         # normalizer finalize (retention)
// RET-TRITON-NEXT:    denominator = tl.maximum(d, 1.0)
// RET-TRITON-NEXT:    out = acc * (1.0 / denominator)[:, None]
// RET-TRITON:         tl.store(out_ptrs, {{.*}}, mask=row_ok)
// RET-TRITON:         tl.store(stat0_ptr + stat_rows, denominator, mask=rows_in_bounds)
