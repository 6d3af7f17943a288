// RUN: attn-opt %s -p convert-attn-to-tile --split-input-file | filecheck %s
// RUN: attn-opt %s -p convert-attn-to-tile --split-input-file | filecheck %s --check-prefix=ATOMICS

// convert-attn-to-tile lowers an attn.flash_grad next to its attn.flash into two more
// kernels, FlashAttention-2 style: @<fn>_bwd_dq (one program per query block, loops
// over the key blocks) and @<fn>_bwd_dkdv (one program per key block and kv head,
// loops over the query heads of its group, then over the query blocks). Both
// recompute P from the saved logsumexp; the dQ kernel, launched first, computes
// δ = rowsum(dO ⊙ O) − dlse and stores it for the dK/dV kernel. dQ, dK and dV are
// stored once, in the inputs' dtype.
// Full blocks run without the mask, partial blocks with it, as in the forward.

// ALiBi as `attnc compile examples/alibi.py --emit attn | attn-opt -p
// attn-fuse,attn-block-mask,attn-autodiff,attn-tile` prints it: no mask (block mask
// "none", so every block is partial only at the sequence end), tiles of 128x128,
// the captured slopes read at slopes[h], whose gradient (kv_idx − q_idx)·dS the
// score_mod_grad region yields with the index h.

// dQ: per key block, S = QKᵀ (dot 1), the score_mod recomputed, P = exp2((S' − lse)·log2 e),
// dP = dO Vᵀ (dot 2), dS = P ⊙ (dP − δ); the slopes' gradient goes to slopes[h] by
// atomics; dQ += dS K (the dq dot), scaled once at the store.
// CHECK-LABEL: tile.func @attention_bwd_dq(
// CHECK-SAME:      %[[OUT_PTR:[^:]*]]: !tile.ptr<bf16>, %{{[^:]*}}: !tile.ptr<bf16>, %[[LSE_PTR:[^:]*]]: !tile.ptr<f32>, %[[DLSE_PTR:[^:]*]]: !tile.ptr<f32>,
// CHECK-SAME:      %[[DELTA_PTR:[^:]*]]: !tile.ptr<f32>, %[[DQ_PTR:[^:]*]]: !tile.ptr<bf16>,
// CHECK-SAME:      %[[CAP:[^:]*]]: !tile.ptr<f32>, %{{[^:]*}}: i32, %[[CAPGRAD:[^:]*]]: !tile.ptr<f32>, %[[CAPGRAD_STRIDE:[^:]*]]: i32,
// CHECK-SAME:      %[[SCALE:[^:]*]]: f32, %[[FULL_NUM:[^:]*]]: !tile.ptr<i32>, %{{[^:]*}}: !tile.ptr<i32>, %[[PART_NUM:[^:]*]]: !tile.ptr<i32>,
// CHECK-SAME:      constexprs {BLOCK_M = 128, BLOCK_N = 128, HEAD_DIM = 64, HEAD_DIM_V = 64}
// CHECK:         %[[PID_BH:.*]] = tile.program_id 1
// CHECK:         %[[H:.*]] = arith.remsi %[[PID_BH]], %{{.*}} : i32
// CHECK:         %[[Q:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:         %[[DOUT:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:         %[[OUT:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:         %[[LSE_PTRS:.*]] = tile.addptr %[[LSE_PTR]], %[[ROWS:.*]] : !tile.ptr<f32>, tensor<128xi64> -> tensor<128x!tile.ptr<f32>>
// CHECK-NEXT:    %[[LSE:.*]] = tile.load %[[LSE_PTRS]] mask %[[ROWS_IN:.*]] other inf : tensor<128x!tile.ptr<f32>> -> tensor<128xf32>
// CHECK:         %[[LSE2:.*]] = arith.mulf %[[LSE]], %{{.*}} : tensor<128xf32>
// CHECK-NEXT:    %[[DLSE_PTRS:.*]] = tile.addptr %[[DLSE_PTR]], %[[ROWS]] {attnc.comment = "delta = rowsum(dO * O) - dlse, stored for the dK/dV kernel"}
// CHECK-NEXT:    %[[DLSE:.*]] = tile.load %[[DLSE_PTRS]] mask %[[ROWS_IN]] other 0.0 : tensor<128x!tile.ptr<f32>> -> tensor<128xf32>
// CHECK-NEXT:    %[[DOUT_F:.*]] = tile.cast %[[DOUT]] : tensor<128x64xbf16> to tensor<128x64xf32>
// CHECK-NEXT:    %[[OUT_F:.*]] = tile.cast %[[OUT]] : tensor<128x64xbf16> to tensor<128x64xf32>
// CHECK-NEXT:    %[[DO_O:.*]] = arith.mulf %[[DOUT_F]], %[[OUT_F]] : tensor<128x64xf32>
// CHECK-NEXT:    %[[ROWSUM_DO_O:.*]] = tile.reduce sum %[[DO_O]] axis 1 : tensor<128x64xf32> -> tensor<128xf32>
// CHECK-NEXT:    %[[DELTA:.*]] = arith.subf %[[ROWSUM_DO_O]], %[[DLSE]] : tensor<128xf32>
// CHECK-NEXT:    %[[DELTA_PTRS:.*]] = tile.addptr %[[DELTA_PTR]], %[[ROWS]] : !tile.ptr<f32>, tensor<128xi64> -> tensor<128x!tile.ptr<f32>>
// CHECK-NEXT:    tile.store %[[DELTA_PTRS]], %[[DELTA]] mask %[[ROWS_IN]] : tensor<128x!tile.ptr<f32>>, tensor<128xf32>
// CHECK:         %[[DQ0:.*]] = tile.full ["BLOCK_M", "HEAD_DIM"] 0.0 : tensor<128x64xf32>
// CHECK-NEXT:    %[[FULL_PTR:.*]] = tile.addptr %[[FULL_NUM]], %{{.*}}
// CHECK-NEXT:    %[[NUM_FULL:.*]] = tile.load %[[FULL_PTR]] : !tile.ptr<i32> -> i32

// The full key blocks: K and V loaded without a mask; no mask_mod, no select on P.
// CHECK:         %[[DQ1:.*]] = scf.for %{{.*}} = %{{.*}} to %[[NUM_FULL]] step %{{.*}} iter_args(%[[DQ_ACC:[^ ]*]] = %[[DQ0]]) -> (tensor<128x64xf32>) : i32 {
// CHECK:           %[[K:.*]] = tile.load %{{.*}} : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:           %[[V:.*]] = tile.load %{{.*}} : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK-NEXT:      %[[KT:.*]] = tile.trans %[[K]] : tensor<128x64xbf16> -> tensor<64x128xbf16>
// CHECK-NEXT:      %[[QK:.*]] = tile.dot %[[Q]], %[[KT]] : tensor<128x64xbf16>, tensor<64x128xbf16> -> tensor<128x128xf32>
// CHECK-NEXT:      %[[KV_IDX:.*]] = tile.expand_dims %{{.*}} 0 : tensor<128xi32> -> tensor<1x128xi32>
// CHECK:           %[[S:.*]] = arith.mulf %[[QK]], %{{.*}} : tensor<128x128xf32>
// The score_mod, recomputed: slopes[h] · (kv_idx − q_idx) added to the score.
// CHECK-NEXT:      %[[H64:.*]] = tile.cast %[[H]] {attnc.comment = "score_mod, recomputed"} : i32 to i64
// CHECK:           %[[SLOPE_PTR:.*]] = tile.addptr %[[CAP]], %{{.*}} : !tile.ptr<f32>, i64 -> !tile.ptr<f32>
// CHECK-NEXT:      %[[SLOPE:.*]] = tile.load %[[SLOPE_PTR]] : !tile.ptr<f32> -> f32
// CHECK:           %[[BIAS:.*]] = arith.mulf %{{.*}}, %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:      %[[S_MOD:.*]] = arith.addf %[[S]], %[[BIAS]] : tensor<128x128xf32>
// P from the saved logsumexp, in base 2.
// CHECK-NEXT:      %[[LOG2E:.*]] = arith.constant {attnc.comment = "probabilities from the saved logsumexp, in base 2: one multiply-add per score"} 1.44269502 : f32
// CHECK-NEXT:      %[[LOG2E_T:.*]] = tile.splat %[[LOG2E]] ["BLOCK_M", "BLOCK_N"] : f32 -> tensor<128x128xf32>
// CHECK-NEXT:      %[[S2:.*]] = arith.mulf %[[S_MOD]], %[[LOG2E_T]] : tensor<128x128xf32>
// CHECK-NEXT:      %[[LSE2_COL:.*]] = tile.expand_dims %[[LSE2]] 1 : tensor<128xf32> -> tensor<128x1xf32>
// CHECK-NEXT:      %[[LSE2_T:.*]] = tile.broadcast %[[LSE2_COL]] ["BLOCK_M", "BLOCK_N"] : tensor<128x1xf32> -> tensor<128x128xf32>
// CHECK-NEXT:      %[[X:.*]] = arith.subf %[[S2]], %[[LSE2_T]] : tensor<128x128xf32>
// CHECK-NEXT:      %[[P:.*]] = math.exp2 %[[X]] : tensor<128x128xf32>
// CHECK-NEXT:      %[[VT:.*]] = tile.trans %[[V]] : tensor<128x64xbf16> -> tensor<64x128xbf16>
// CHECK-NEXT:      %[[DP:.*]] = tile.dot %[[DOUT]], %[[VT]] : tensor<128x64xbf16>, tensor<64x128xbf16> -> tensor<128x128xf32>
// CHECK-NEXT:      %[[DELTA_COL:.*]] = tile.expand_dims %[[DELTA]] 1 : tensor<128xf32> -> tensor<128x1xf32>
// CHECK-NEXT:      %[[DELTA_T:.*]] = tile.broadcast %[[DELTA_COL]] ["BLOCK_M", "BLOCK_N"] : tensor<128x1xf32> -> tensor<128x128xf32>
// CHECK-NEXT:      %[[DP_C:.*]] = arith.subf %[[DP]], %[[DELTA_T]] : tensor<128x128xf32>
// CHECK-NEXT:      %[[DS:.*]] = arith.mulf %[[P]], %[[DP_C]] : tensor<128x128xf32>
// score_mod_grad: dscore is dS itself (the bias does not depend on s); the slope's
// adjoint (kv_idx − q_idx)·dS is added into dslopes[h], rows past seq_q masked.
// CHECK-NEXT:      %[[KV_T:.*]] = tile.broadcast %[[KV_IDX]] ["BLOCK_M", "BLOCK_N"] {attnc.comment = "score_mod, differentiated"} : tensor<1x128xi32> -> tensor<128x128xi32>
// CHECK-NEXT:      %[[Q_T:.*]] = tile.broadcast %{{.*}} ["BLOCK_M", "BLOCK_N"] : tensor<128x1xi32> -> tensor<128x128xi32>
// CHECK-NEXT:      %[[DIST:.*]] = arith.subi %[[KV_T]], %[[Q_T]] : tensor<128x128xi32>
// CHECK-NEXT:      %[[DISTF:.*]] = tile.cast %[[DIST]] : tensor<128x128xi32> to tensor<128x128xf32>
// CHECK-NEXT:      %[[DSLOPES:.*]] = arith.mulf %[[DS]], %[[DISTF]] : tensor<128x128xf32>
// CHECK-NEXT:      %[[GH:.*]] = tile.cast %[[H]] : i32 to i64
// CHECK-NEXT:      %[[GSTRIDE:.*]] = tile.cast %[[CAPGRAD_STRIDE]] : i32 to i64
// CHECK-NEXT:      %[[GOFF:.*]] = arith.muli %[[GH]], %[[GSTRIDE]] : i64
// slopes[h] is one element for the whole tile: the rows past seq_q are zeroed, the
// tile is summed, and one scalar atomic adds it.
// CHECK:           %[[DSLOPES_OK:.*]] = tile.select %{{.*}}, %[[DSLOPES]], %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:      %[[GPTR:.*]] = tile.addptr %[[CAPGRAD]], %[[GOFF]] : !tile.ptr<f32>, i64 -> !tile.ptr<f32>
// CHECK-NEXT:      %[[ROWSUM:.*]] = tile.reduce sum %[[DSLOPES_OK]] axis 1 : tensor<128x128xf32> -> tensor<128xf32>
// CHECK-NEXT:      %[[DCAP:.*]] = tile.reduce sum %[[ROWSUM]] axis 0 : tensor<128xf32> -> f32
// CHECK-NEXT:      tile.atomic_add %[[GPTR]], %[[DCAP]] : !tile.ptr<f32>, f32
// CHECK-NEXT:      %[[DS_C:.*]] = tile.cast %[[DS]] : tensor<128x128xf32> to tensor<128x128xbf16>
// CHECK-NEXT:      %[[DQ2:.*]] = tile.dot %[[DS_C]], %[[K]] acc %[[DQ_ACC]] : tensor<128x128xbf16>, tensor<128x64xbf16> -> tensor<128x64xf32>
// CHECK-NEXT:      scf.yield %[[DQ2]] : tensor<128x64xf32>
// CHECK-NEXT:    } {attnc.comment = "full key blocks"}

// The partial key blocks: bounds-checked loads; the kept set (mask_mod and the
// sequence bound) zeroes P and dS outside it and masks the atomics.
// CHECK-NEXT:    %[[PART_PTR:.*]] = tile.addptr %[[PART_NUM]], %{{.*}}
// CHECK-NEXT:    %[[NUM_PART:.*]] = tile.load %[[PART_PTR]] : !tile.ptr<i32> -> i32
// CHECK:         %[[DQ3:.*]] = scf.for %{{.*}} = %{{.*}} to %[[NUM_PART]] step %{{.*}} iter_args(%[[DQ_ACC2:[^ ]*]] = %[[DQ1]]) -> (tensor<128x64xf32>) : i32 {
// CHECK:           %[[K2:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:           %[[V2:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK-NEXT:      %[[KT2:.*]] = tile.trans %[[K2]]
// CHECK-NEXT:      %[[QK2:.*]] = tile.dot %[[Q]], %[[KT2]] : tensor<128x64xbf16>, tensor<64x128xbf16> -> tensor<128x128xf32>
// CHECK:           %[[KEEP:.*]] = arith.andi %{{.*}}, %{{.*}} : tensor<1x128xi1>
// CHECK:           %[[P2:.*]] = math.exp2 %{{.*}} : tensor<128x128xf32>
// CHECK:           %[[KEEP_T:.*]] = tile.broadcast %[[KEEP]] ["BLOCK_M", "BLOCK_N"] : tensor<1x128xi1> -> tensor<128x128xi1>
// CHECK:           %[[P2_KEPT:.*]] = tile.select %[[KEEP_T]], %[[P2]], %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:      %[[VT2:.*]] = tile.trans %[[V2]]
// CHECK-NEXT:      %[[DP2:.*]] = tile.dot %[[DOUT]], %[[VT2]] : tensor<128x64xbf16>, tensor<64x128xbf16> -> tensor<128x128xf32>
// CHECK:           %[[DS2:.*]] = arith.mulf %[[P2_KEPT]], %{{.*}} : tensor<128x128xf32>
// CHECK:           %[[DSLOPES2:.*]] = arith.mulf %[[DS2]], %{{.*}} : tensor<128x128xf32>
// CHECK:           %[[DS2_KEPT:.*]] = tile.select %{{.*}}, %[[DS2]], %{{.*}} : tensor<128x128xf32>
// CHECK:           %[[GMASK:.*]] = arith.andi %{{.*}}, %{{.*}} : tensor<128x128xi1>
// CHECK:           %[[DSLOPES2_OK:.*]] = tile.select %[[GMASK]], %[[DSLOPES2]], %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:      %[[GPTR2:.*]] = tile.addptr %[[CAPGRAD]], %{{.*}} : !tile.ptr<f32>, i64 -> !tile.ptr<f32>
// CHECK-NEXT:      %[[ROWSUM2:.*]] = tile.reduce sum %[[DSLOPES2_OK]] axis 1 : tensor<128x128xf32> -> tensor<128xf32>
// CHECK-NEXT:      %[[DCAP2:.*]] = tile.reduce sum %[[ROWSUM2]] axis 0 : tensor<128xf32> -> f32
// CHECK-NEXT:      tile.atomic_add %[[GPTR2]], %[[DCAP2]] : !tile.ptr<f32>, f32
// CHECK-NEXT:      %[[DS2_C:.*]] = tile.cast %[[DS2_KEPT]] : tensor<128x128xf32> to tensor<128x128xbf16>
// CHECK-NEXT:      %[[DQ4:.*]] = tile.dot %[[DS2_C]], %[[K2]] acc %[[DQ_ACC2]] : tensor<128x128xbf16>, tensor<128x64xbf16> -> tensor<128x64xf32>
// CHECK-NEXT:      scf.yield %[[DQ4]] : tensor<128x64xf32>
// CHECK-NEXT:    } {attnc.comment = "part key blocks"}
// dQ = scale · Σ dS K, stored in the inputs' dtype (bf16).
// CHECK:         %[[DQ_BASE:.*]] = tile.addptr %[[DQ_PTR]], %{{.*}} : !tile.ptr<bf16>, i64 -> !tile.ptr<bf16>
// CHECK-NEXT:    %[[SCALE_T:.*]] = tile.splat %[[SCALE]] ["BLOCK_M", "HEAD_DIM"] : f32 -> tensor<128x64xf32>
// CHECK-NEXT:    %[[DQ_SCALED:.*]] = arith.mulf %[[DQ3]], %[[SCALE_T]] : tensor<128x64xf32>
// CHECK-NEXT:    %[[DQ_OUT:.*]] = tile.cast %[[DQ_SCALED]] : tensor<128x64xf32> to tensor<128x64xbf16>
// CHECK:         %[[DQ_PTRS:.*]] = tile.addptr %[[DQ_BASE]], %{{.*}}
// CHECK:         tile.store %[[DQ_PTRS]], %[[DQ_OUT]] mask %{{.*}} : tensor<128x64x!tile.ptr<bf16>>, tensor<128x64xbf16>
// CHECK-NEXT:    tile.return

// dK, dV: K and V of this key block stay in registers; per query head of the group
// and query block, scores are computed transposed (Sᵀ = K Qᵀ) so that dV += Pᵀ dO and
// dK += dSᵀ Q take Pᵀ and dSᵀ from registers with no transpose, summed in-kernel over the group
// (no atomics); dK is scaled once at the store.
// CHECK-LABEL: tile.func @attention_bwd_dkdv(
// CHECK-SAME:      %[[DK_PTR:[^:]*]]: !tile.ptr<bf16>, %[[DV_PTR:[^:]*]]: !tile.ptr<bf16>, %{{[^:]*}}: !tile.ptr<f32>, %{{[^:]*}}: i32,
// CHECK-SAME:      %[[NUM_HEADS:[^:]*]]: i32, %[[GROUP:[^:]*]]: i32, %[[SCALE:[^:]*]]: f32, %[[FULL_NUM:[^:]*]]: !tile.ptr<i32>, %{{[^:]*}}: !tile.ptr<i32>, %[[PART_NUM:[^:]*]]: !tile.ptr<i32>,
// CHECK-SAME:      %[[NUM_Q_BLOCKS:[^:]*]]: i32) constexprs {BLOCK_M = 128, BLOCK_N = 128, HEAD_DIM = 64, HEAD_DIM_V = 64}
// CHECK:         %[[PID_N:.*]] = tile.program_id 0
// CHECK-NEXT:    %[[PID_BH:.*]] = tile.program_id 1
// CHECK-NEXT:    %[[KV_HEADS:.*]] = arith.divsi %[[NUM_HEADS]], %[[GROUP]] : i32
// CHECK-NEXT:    %[[B:.*]] = arith.divsi %[[PID_BH]], %[[KV_HEADS]] : i32
// CHECK-NEXT:    %[[KV_H:.*]] = arith.remsi %[[PID_BH]], %[[KV_HEADS]] : i32
// CHECK:         %[[K:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:         %[[V:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:         %[[DK0:.*]] = tile.full ["BLOCK_N", "HEAD_DIM"] 0.0 : tensor<128x64xf32>
// CHECK-NEXT:    %[[DV0:.*]] = tile.full ["BLOCK_N", "HEAD_DIM_V"] 0.0 : tensor<128x64xf32>

// The outer loop: the query heads h = kv_h·group + i that share this kv head.
// CHECK:         %[[DK_H:[^ ,]*]], %[[DV_H:[^ ,]*]] = scf.for %[[I:[^ ]*]] = %{{.*}} to %[[GROUP]] step %{{.*}} iter_args(%[[DK_ACC_H:[^ ]*]] = %[[DK0]], %[[DV_ACC_H:[^ ]*]] = %[[DV0]]) -> (tensor<128x64xf32>, tensor<128x64xf32>) : i32 {
// CHECK-NEXT:      %[[H0:.*]] = arith.muli %[[KV_H]], %[[GROUP]] : i32
// CHECK-NEXT:      %[[H:.*]] = arith.addi %[[H0]], %[[I]] : i32
// CHECK:           %[[TABLE_ROW:.*]] = arith.addi %{{.*}}, %[[PID_N]] : i32
// CHECK:           %[[FULL_PTR:.*]] = tile.addptr %[[FULL_NUM]], %[[TABLE_ROW]]
// CHECK-NEXT:      %[[NUM_FULL:.*]] = tile.load %[[FULL_PTR]] : !tile.ptr<i32> -> i32

// The inner loops: the query blocks of the transposed block table, full then partial.
// CHECK:           %[[DK1:[^ ,]*]], %[[DV1:[^ ,]*]] = scf.for %{{.*}} = %{{.*}} to %[[NUM_FULL]] step %{{.*}} iter_args(%[[DK_ACC:[^ ]*]] = %[[DK_ACC_H]], %[[DV_ACC:[^ ]*]] = %[[DV_ACC_H]]) -> (tensor<128x64xf32>, tensor<128x64xf32>) : i32 {
// CHECK:             %[[Q:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:             %[[DOUT:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:             %[[LSE:.*]] = tile.load %{{.*}} mask %{{.*}} other inf : tensor<128x!tile.ptr<f32>> -> tensor<128xf32>
// CHECK:             %{{.*}} = arith.mulf %[[LSE]], %{{.*}} : tensor<128xf32>
// CHECK-NEXT:        %{{.*}} = tile.addptr
// CHECK-NEXT:        %[[DELTA:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x!tile.ptr<f32>> -> tensor<128xf32>
// CHECK:             %[[QT:.*]] = tile.trans %[[Q]] : tensor<128x64xbf16> -> tensor<64x128xbf16>
// CHECK-NEXT:        %[[QK:.*]] = tile.dot %[[K]], %[[QT]] : tensor<128x64xbf16>, tensor<64x128xbf16> -> tensor<128x128xf32>
// CHECK:             tile.cast %[[H]] {attnc.comment = "score_mod, recomputed"} : i32 to i64
// CHECK:             %{{.*}} = tile.expand_dims %{{.*}} 0 : tensor<128xf32> -> tensor<1x128xf32>
// CHECK:             %[[P:.*]] = math.exp2 %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:        %[[P_C:.*]] = tile.cast %[[P]] : tensor<128x128xf32> to tensor<128x128xbf16>
// CHECK-NEXT:        %[[DV2:.*]] = tile.dot %[[P_C]], %[[DOUT]] acc %[[DV_ACC]] : tensor<128x128xbf16>, tensor<128x64xbf16> -> tensor<128x64xf32>
// CHECK-NEXT:        %[[DOUTT:.*]] = tile.trans %[[DOUT]] : tensor<128x64xbf16> -> tensor<64x128xbf16>
// CHECK-NEXT:        %[[DP:.*]] = tile.dot %[[V]], %[[DOUTT]] : tensor<128x64xbf16>, tensor<64x128xbf16> -> tensor<128x128xf32>
// CHECK-NEXT:        %{{.*}} = tile.expand_dims %[[DELTA]] 0 : tensor<128xf32> -> tensor<1x128xf32>
// CHECK:             %[[DP_C:.*]] = arith.subf %[[DP]], %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:        %[[DS:.*]] = arith.mulf %[[P]], %[[DP_C]] : tensor<128x128xf32>
// CHECK-NEXT:        %[[DS_C:.*]] = tile.cast %[[DS]] : tensor<128x128xf32> to tensor<128x128xbf16>
// CHECK-NEXT:        %[[DK2:.*]] = tile.dot %[[DS_C]], %[[Q]] acc %[[DK_ACC]] : tensor<128x128xbf16>, tensor<128x64xbf16> -> tensor<128x64xf32>
// CHECK-NEXT:        scf.yield %[[DK2]], %[[DV2]] : tensor<128x64xf32>, tensor<128x64xf32>
// CHECK-NEXT:      } {attnc.comment = "full query blocks"}
// CHECK-NEXT:      %[[PART_PTR:.*]] = tile.addptr %[[PART_NUM]], %[[TABLE_ROW]]
// CHECK-NEXT:      %[[NUM_PART:.*]] = tile.load %[[PART_PTR]] : !tile.ptr<i32> -> i32
// CHECK:           %[[DK3:[^ ,]*]], %[[DV3:[^ ,]*]] = scf.for %{{.*}} = %{{.*}} to %[[NUM_PART]] step %{{.*}} iter_args(%[[DK_ACC2:[^ ]*]] = %[[DK1]], %[[DV_ACC2:[^ ]*]] = %[[DV1]]) -> (tensor<128x64xf32>, tensor<128x64xf32>) : i32 {
// CHECK:             %[[Q2:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:             %[[KEEP:.*]] = arith.andi %{{.*}}, %{{.*}} : tensor<128x128xi1>
// CHECK:             %[[P2:.*]] = math.exp2 %{{.*}} : tensor<128x128xf32>
// CHECK:             %[[P2_KEPT:.*]] = tile.select %[[KEEP]], %[[P2]], %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:        %[[P2_C:.*]] = tile.cast %[[P2_KEPT]]
// CHECK-NEXT:        %[[DV4:.*]] = tile.dot %[[P2_C]], %{{.*}} acc %[[DV_ACC2]] : tensor<128x128xbf16>, tensor<128x64xbf16> -> tensor<128x64xf32>
// CHECK:             %[[DS2:.*]] = tile.select %[[KEEP]], %{{.*}}, %{{.*}} : tensor<128x128xf32>
// CHECK-NEXT:        %[[DS2_C:.*]] = tile.cast %[[DS2]]
// CHECK-NEXT:        %[[DK4:.*]] = tile.dot %[[DS2_C]], %[[Q2]] acc %[[DK_ACC2]] : tensor<128x128xbf16>, tensor<128x64xbf16> -> tensor<128x64xf32>
// CHECK-NEXT:        scf.yield %[[DK4]], %[[DV4]] : tensor<128x64xf32>, tensor<128x64xf32>
// CHECK-NEXT:      } {attnc.comment = "part query blocks"}
// CHECK-NEXT:      scf.yield %[[DK3]], %[[DV3]] : tensor<128x64xf32>, tensor<128x64xf32>
// CHECK-NEXT:    } {attnc.comment = "query heads of this kv head"}
// CHECK:         %[[DK_BASE:.*]] = tile.addptr %[[DK_PTR]], %{{.*}} : !tile.ptr<bf16>, i64 -> !tile.ptr<bf16>
// CHECK:         %[[DV_BASE:.*]] = tile.addptr %[[DV_PTR]], %{{.*}} : !tile.ptr<bf16>, i64 -> !tile.ptr<bf16>
// CHECK-NEXT:    %[[SCALE_T:.*]] = tile.splat %[[SCALE]] ["BLOCK_N", "HEAD_DIM"] : f32 -> tensor<128x64xf32>
// CHECK-NEXT:    %[[DK_SCALED:.*]] = arith.mulf %[[DK_H]], %[[SCALE_T]] : tensor<128x64xf32>
// CHECK-NEXT:    %[[DK_OUT:.*]] = tile.cast %[[DK_SCALED]] : tensor<128x64xf32> to tensor<128x64xbf16>
// CHECK:         %[[DK_PTRS:.*]] = tile.addptr %[[DK_BASE]], %{{.*}}
// CHECK:         tile.store %[[DK_PTRS]], %[[DK_OUT]] mask %{{.*}} : tensor<128x64x!tile.ptr<bf16>>, tensor<128x64xbf16>
// CHECK:         %[[DV_OUT:.*]] = tile.cast %[[DV_H]] : tensor<128x64xf32> to tensor<128x64xbf16>
// CHECK:         %[[DV_PTRS:.*]] = tile.addptr %[[DV_BASE]], %{{.*}}
// CHECK:         tile.store %[[DV_PTRS]], %[[DV_OUT]] mask %{{.*}} : tensor<128x64x!tile.ptr<bf16>>, tensor<128x64xbf16>
// CHECK-NEXT:    tile.return
// CHECK-NOT:     func.func
// CHECK-NOT:     attn.

// Atomics only where the slopes' gradient is scattered: once per key-block loop of
// the dQ kernel; none in the forward or the dK/dV kernel.
// ATOMICS-LABEL: tile.func @attention_block_table(
// ATOMICS-NOT:   tile.atomic_add
// ATOMICS-LABEL: tile.func @attention_fwd(
// ATOMICS-NOT:   tile.atomic_add
// ATOMICS-LABEL: tile.func @attention_bwd_dq(
// ATOMICS:       tile.atomic_add
// ATOMICS-NOT:   tile.atomic_add
// ATOMICS:       } {attnc.comment = "full key blocks"}
// ATOMICS:       tile.atomic_add
// ATOMICS-NOT:   tile.atomic_add
// ATOMICS:       } {attnc.comment = "part key blocks"}
// ATOMICS-NOT:   tile.atomic_add
// ATOMICS-LABEL: tile.func @attention_bwd_dkdv(
// ATOMICS-NOT:   tile.atomic_add
// ATOMICS-LABEL: tile.func @packed_bwd_dq(
// ATOMICS:       tile.atomic_add
// ATOMICS-LABEL: tile.func @packed_bwd_dkdv(
// ATOMICS-NOT:   tile.atomic_add
// ATOMICS:       {{^}}// {{-+$}}

func.func @attention(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %slopes: tensor<64xf32>, %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>) {
  %out, %lse = attn.flash %q, %k, %v captures(%slopes : tensor<64xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<64xf32>):
    %0 = tensor.extract %slopes_1[%h] : tensor<64xf32>
    %1 = arith.subi %kv_idx, %q_idx : index
    %2 = arith.index_cast %1 : index to i64
    %3 = arith.sitofp %2 : i64 to f32
    %4 = arith.mulf %0, %3 : f32
    %5 = arith.addf %score, %4 : f32
    attn.yield %5 : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %6: tensor<64xf32>):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %m: f32, %l: f32, %slopes_2: tensor<64xf32>):
    %cst = arith.constant 1.44269502 : f32
    %7 = arith.mulf %score_1, %cst : f32
    %8 = attn.row_max %7 : f32
    %m_new = arith.maxnumf %m, %8 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %9 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %10 = arith.select %9, %cst_2, %m_new : f32
    %11 = arith.subf %7, %10 : f32
    %p = math.exp2 %11 : f32
    %12 = arith.subf %m, %10 : f32
    %alpha = math.exp2 %12 : f32
    %13 = arith.mulf %l, %alpha : f32
    %14 = attn.row_sum %p : f32
    %l_new = arith.addf %13, %14 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %m_1: f32, %l_1: f32, %slopes_3: tensor<64xf32>):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %15 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %16 = arith.select %15, %cst_4, %l_1 : f32
    %17 = arith.divf %cst_4, %16 : f32
    %out_1 = arith.mulf %acc, %17 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %18 = arith.mulf %m_1, %cst_5 : f32
    %19 = math.log %l_1 : f32
    %lse_1 = arith.addf %18, %19 : f32
    attn.yield %out_1, %lse_1 : f32, f32
  } classify {
  } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "none", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  %dq, %dk, %dv, %dslopes = attn.flash_grad %q, %k, %v, %out, %dout stat(%lse : tensor<?x4x?xf32>) captures(%slopes : tensor<64xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<64xf32>):
    %0 = tensor.extract %slopes_1[%h] : tensor<64xf32>
    %1 = arith.subi %kv_idx, %q_idx : index
    %2 = arith.index_cast %1 : index to i64
    %3 = arith.sitofp %2 : i64 to f32
    %4 = arith.mulf %0, %3 : f32
    %5 = arith.addf %score, %4 : f32
    attn.yield %5 : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %6: tensor<64xf32>):
    %keep = arith.constant true
    attn.yield %keep : i1
  } score_mod_grad {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %q_idx_2: index, %kv_idx_2: index, %slopes_2: tensor<64xf32>, %grad: f32):
    %7 = arith.subi %kv_idx_2, %q_idx_2 : index
    %8 = arith.index_cast %7 : index to i64
    %9 = arith.sitofp %8 : i64 to f32
    %dslopes_1 = arith.mulf %grad, %9 : f32
    attn.yield %grad, %dslopes_1, %h_2 : f32, f32, index
  } classify {
  } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [0 : i64], block_mask = "none", dq_tile = #attn.tile<128x128>, dq_num_warps = 8 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<128x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>)
  func.return %out, %lse, %dq, %dk, %dv, %dslopes : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>
}

// -----

// Packed variable-length sequences (layout "packed", as `attn(q, k, v, cu_seqlens_q=, cu_seqlens_k=)`
// builds it, a bias read at the sequence b, causal): no block table. Each program finds its
// sequence's rows and lengths from cu_seqlens, clamped to the storage, walks only that
// sequence's blocks, and runs the first run of blocks the causal mask keeps whole (full, all of the
// tile kept; found by a scalar pass over the classify region) unmasked and without a branch, so Triton
// pipelines their loads; the other blocks run bounded by the lengths and masked, and those the mask
// empties are skipped (an scf.if on the classify region). Queries sit at positions q_shift + i,
// q_shift = len_k − len_q.

// dQ: one program per query block of a (sequence, head); the layout's metadata takes the
// block table's place at the end of the parameters. Programs are slots of query blocks (axis 0)
// by heads (axis 1), handed out from the last: sequence b owns slots from cu_q[b] // BLOCK_M + b,
// and a slot's sequence is the count of those at or before it, less one, counted a block of
// sequences at a time.
// CHECK-LABEL: tile.func @packed_bwd_dq(
// CHECK-SAME:      %[[SCALE:[^:]*]]: f32, %[[CU_Q:[^:]*]]: !tile.ptr<i32>, %[[CU_K:[^:]*]]: !tile.ptr<i32>, %[[Q_ROWS:[^:]*]]: i32, %[[KV_ROWS:[^:]*]]: i32, %[[NUM_SEQS:[^:]*]]: i32) constexprs {BLOCK_M = 64, BLOCK_N = 64, HEAD_DIM = 64, HEAD_DIM_V = 64}
// CHECK:         %[[BLOCK_N:.*]] = tile.constexpr "BLOCK_N"
// CHECK:         %[[BLOCK_M:.*]] = tile.constexpr "BLOCK_M"
// CHECK:         %[[H:h]] = tile.program_id 1
// CHECK-NEXT:    %[[PID:slot]] = tile.program_id 0
// CHECK-NEXT:    %[[FULL:.*]] = arith.divsi %[[Q_ROWS]], %[[BLOCK_M]] : i32
// CHECK-NEXT:    %[[SLOTS:slots]] = arith.addi %[[FULL]], %[[NUM_SEQS]] : i32
// CHECK:         %[[LAST:.*]] = arith.subi %[[SLOTS]], %{{.*}} : i32
// CHECK-NEXT:    %[[SLOT:slot_1]] = arith.subi %[[LAST]], %[[PID]] : i32
// CHECK:         %[[BEFORE:before]] = scf.for %{{.*}} = %{{.*}} to %[[CHUNKS:chunks]] step %{{.*}} iter_args(%[[SEEN:[^ ]*]] = %{{.*}}) -> (i32) : i32 {
// CHECK:           %[[SEQ:seq_index]] = arith.addi
// CHECK:           %[[EXISTS:.*]] = tile.cmpi sle, %[[SEQ]], %{{.*}} : tensor<64xi32>
// CHECK-NEXT:      %[[STARTS:.*]] = tile.addptr %[[CU_Q]], %[[SEQ]] : !tile.ptr<i32>, tensor<64xi32> -> tensor<64x!tile.ptr<i32>>
// CHECK-NEXT:      %[[LOADED:.*]] = tile.load %[[STARTS]] mask %[[EXISTS]] other 0 : tensor<64x!tile.ptr<i32>> -> tensor<64xi32>
// Offsets are read clamped to [0, total_q]: a wrong cu_seqlens on the device sends no program outside the rows.
// CHECK:           %[[LOW:.*]] = arith.maxsi %[[LOADED]], %{{.*}} : tensor<64xi32>
// CHECK:           %[[START:seq_start]] = arith.minsi %[[LOW]], %{{.*}} : tensor<64xi32>
// CHECK:           %[[FIRSTS:first_slot]] = arith.addi %{{.*}}, %[[SEQ]] : tensor<64xi32>
// CHECK:           %[[AT_OR_BEFORE:.*]] = tile.cmpi sle, %[[FIRSTS]], %{{.*}} : tensor<64xi32>
// CHECK-NEXT:      %[[COUNTED:.*]] = arith.andi %[[EXISTS]], %[[AT_OR_BEFORE]] : tensor<64xi1>
// CHECK:           %[[SUM:.*]] = tile.reduce sum %{{.*}} axis 0 : tensor<64xi32> -> i32
// CHECK-NEXT:      %[[NEXT:.*]] = arith.addi %[[SEEN]], %[[SUM]] : i32
// CHECK-NEXT:      scf.yield %[[NEXT]] : i32
// CHECK-NEXT:    } {attnc.comment = "sequences starting at or before the slot"}
// CHECK:         %[[B:b]] = arith.minsi
// CHECK:         %[[FIRST_ROW:seq_first_row]] = arith.minsi %{{.*}}, %[[Q_ROWS]] : i32
// CHECK:         %[[FIRST:first_slot_[0-9]+]] = arith.addi %{{.*}}, %[[B]] : i32
// CHECK-NEXT:    %[[INDEX:block_in_seq]] = arith.subi %[[SLOT]], %[[FIRST]] : i32
// A slot past its sequence's blocks, or an index outside [0, cdiv(seq_q, BLOCK_M)), gets a block past
// every sequence's rows.
// CHECK:         %[[PAST:block_past]] = arith.divsi
// CHECK:         %[[NONNEG:.*]] = tile.cmpi sge, %[[INDEX]], %{{.*}} : i32
// CHECK-NEXT:    %[[BELOW:.*]] = tile.cmpi slt, %[[INDEX]], %[[PAST]] : i32
// CHECK-NEXT:    %[[INSIDE:.*]] = arith.andi %[[NONNEG]], %[[BELOW]] : i1
// CHECK-NEXT:    %[[PID_M:block_of_slot]] = tile.select %[[INSIDE]], %[[INDEX]], %[[PAST]] : i32
// CHECK:         %{{.*}} = tile.addptr %[[CU_Q]], %[[B]] : !tile.ptr<i32>, i32 -> !tile.ptr<i32>
// CHECK:         %[[Q_START:q_start]] = arith.minsi %{{.*}}, %[[Q_ROWS]] : i32
// CHECK:         %[[K_START:k_start]] = arith.minsi %{{.*}}, %[[KV_ROWS]] : i32
// CHECK:         %[[Q_LEN:q_len]] = arith.minsi %{{.*}}, %{{.*}} : i32
// CHECK:         %[[K_LEN:k_len]] = arith.minsi %{{.*}}, %{{.*}} : i32
// CHECK:         %[[Q_SHIFT:q_shift]] = arith.maxsi %{{.*}}, %{{.*}} : i32
// The statistics of head h start at row h·total_q + q_start.
// CHECK:         %[[H64:.*]] = tile.cast %[[H]] : i32 to i64
// CHECK-NEXT:    %[[TOTAL64:.*]] = tile.cast %[[Q_ROWS]] : i32 to i64
// CHECK-NEXT:    %[[HEAD_ROWS:.*]] = arith.muli %[[H64]], %[[TOTAL64]] : i64
// CHECK-NEXT:    %[[START64:.*]] = tile.cast %[[Q_START]] : i32 to i64
// CHECK-NEXT:    %[[STAT_ROW:stat_row]] = arith.addi %[[HEAD_ROWS]], %[[START64]] : i64
// CHECK:         %[[Q_LO:q_lo]] = arith.muli
// CHECK:         %[[ROWS_IN:rows_in]] = tile.cmpi slt, %[[OFFS_M:[^,]*]], %{{.*}} : tensor<64xi32>
// CHECK-NEXT:    %[[ROW_OK:row_ok]] = tile.expand_dims %[[ROWS_IN]] 1
// CHECK:         %[[STAT_ROWS:stat_rows]] = arith.addi %{{.*}}, %{{.*}} : tensor<64xi64>
// CHECK-NEXT:    %[[LSE_PTRS:.*]] = tile.addptr %{{.*}}, %[[STAT_ROWS]]
// CHECK-NEXT:    %{{.*}} = tile.load %[[LSE_PTRS]] mask %[[ROWS_IN]] other inf
// CHECK:         tile.store %{{.*}}, %{{.*}} mask %[[ROWS_IN]] : tensor<64x!tile.ptr<f32>>, tensor<64xf32>
// q_idx = q_shift + min(offs_m, max(q_len − 1, 0)).
// CHECK:         %[[LAST_Q:.*]] = arith.subi %[[Q_LEN]], %{{.*}} : i32
// CHECK:         %[[LAST_Q0:.*]] = arith.maxsi %[[LAST_Q]], %{{.*}} : i32
// CHECK:         %[[SHIFT_T:.*]] = tile.splat %[[Q_SHIFT]] ["BLOCK_M"]
// CHECK:         %[[Q_IDX:q_idx]] = tile.expand_dims %{{.*}} 1 : tensor<64xi32> -> tensor<64x1xi32>
// The sequence's key blocks, none when this query block is past its queries.
// CHECK:         %[[SUM:.*]] = arith.addi %[[K_LEN]], %[[BLOCK_N]] : i32
// CHECK:         %[[KV_BLOCKS:kv_blocks]] = arith.divsi %{{.*}}, %[[BLOCK_N]] : i32
// CHECK-NEXT:    %[[LIVE:.*]] = tile.cmpi slt, %[[Q_LO]], %[[Q_LEN]] : i32
// CHECK-NEXT:    %{{.*}} = arith.constant 0 : i32
// CHECK-NEXT:    %[[NUM:num_blocks]] = tile.select %[[LIVE]], %[[KV_BLOCKS]], %{{.*}} : i32
// A key block is whole when it is full and the mask keeps its whole tile with this query block (which
// may be partial: its rows past the sequence are zeros, never stored): a scalar pass over the classify
// region finds the first run of them.
// CHECK:         %[[DQ_INIT:dq]] = tile.full ["BLOCK_M", "HEAD_DIM"] 0.0
// CHECK:         %[[RUN_LO:run_lo]], %[[RUN_HI:run_hi]] = scf.for %[[J:[^ ]*]] = %{{.*}} to %[[NUM]] step
// CHECK-NEXT:      %[[PRE_START:start]] = arith.muli %[[J]], %[[BLOCK_N]] : i32
// CHECK:           %[[ALL:all]] = tile.cmpi sle, %{{.*}}, %[[Q_FIRST:q_first]] : i32
// CHECK-NEXT:      %[[KEY_END:.*]] = arith.addi %[[PRE_START]], %[[BLOCK_N]] : i32
// CHECK-NEXT:      %[[KEY_FULL:full]] = tile.cmpi sle, %[[KEY_END]], %[[K_LEN]] : i32
// CHECK-NEXT:      %{{.*}} = arith.andi %[[ALL]], %[[KEY_FULL]] : i1
// CHECK:         } {attnc.comment = "find the first run of whole blocks"}
// CHECK:         %[[RUN_FIRST:run_lo_2]] = tile.select %{{.*}}, %[[RUN_LO]], %[[NUM]] : i32
// CHECK-NEXT:    %[[RUN_END:run_hi_2]] = tile.select %{{.*}}, %[[RUN_HI]], %[[NUM]] : i32
// The run: k and v loaded without a mask, no mask_mod, no branch; the bias's gradient is still added
// from the rows inside the sequence only (row_ok).
// CHECK-NEXT:    %[[DQ_AFTER_WHOLE:.*]] = scf.for %{{.*}} = %[[RUN_FIRST]] to %[[RUN_END]] step %{{.*}} iter_args(%[[DQ_WHOLE:[^ ]*]] = %[[DQ_INIT]]) -> (tensor<64x64xf32>) : i32 {
// CHECK-NOT:       {{scf.if|mask|keep|in_range}}
// CHECK:           %[[K_WHOLE:k]] = tile.load %{{.*}} : tensor<64x64x!tile.ptr<bf16>> -> tensor<64x64xbf16>
// CHECK-NOT:       {{scf.if|mask|keep|in_range}}
// CHECK:           %[[V_WHOLE:v]] = tile.load %{{.*}} : tensor<64x64x!tile.ptr<bf16>> -> tensor<64x64xbf16>
// CHECK-NOT:       {{scf.if|mask|keep|in_range}}
// CHECK:           %[[LIVE_ROWS:.*]] = tile.broadcast %[[ROW_OK]] ["BLOCK_M", "BLOCK_N"]
// CHECK-NEXT:      %{{.*}} = tile.splat
// CHECK-NEXT:      %{{.*}} = tile.select %[[LIVE_ROWS]], %{{.*}}, %{{.*}} : tensor<64x64xf32>
// CHECK:           tile.atomic_add %{{.*}}, %{{.*}} : !tile.ptr<f32>, f32
// CHECK-NOT:       {{scf.if|mask|keep|in_range}}
// CHECK:           %[[DQ_WHOLE_NEW:.*]] = tile.dot %{{.*}}, %[[K_WHOLE]] acc %[[DQ_WHOLE]] : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
// CHECK-NEXT:      scf.yield %[[DQ_WHOLE_NEW]] : tensor<64x64xf32>
// CHECK-NEXT:    } {attnc.comment = "key blocks kept whole"}
// The others, before the run and after it, masked; a block the mask empties is skipped.
// CHECK-NEXT:    %[[BLOCKS_AFTER:.*]] = arith.subi %[[NUM]], %[[RUN_END]] : i32
// CHECK-NEXT:    %[[MASKED:blocks_masked]] = arith.addi %[[RUN_FIRST]], %[[BLOCKS_AFTER]] : i32
// CHECK-NEXT:    %{{.*}} = scf.for %[[I:[^ ]*]] = %{{.*}} to %[[MASKED]] step %{{.*}} iter_args(%[[DQ_ACC:[^ ]*]] = %[[DQ_AFTER_WHOLE]]) -> (tensor<64x64xf32>) : i32 {
// CHECK-NEXT:      %[[INTO_AFTER:.*]] = arith.subi %[[I]], %[[RUN_FIRST]] : i32
// CHECK-NEXT:      %[[AFTER:.*]] = arith.addi %[[RUN_END]], %[[INTO_AFTER]] : i32
// CHECK-NEXT:      %[[IS_BEFORE:.*]] = tile.cmpi slt, %[[I]], %[[RUN_FIRST]] : i32
// CHECK-NEXT:      %[[BLOCK:.*]] = tile.select %[[IS_BEFORE]], %[[I]], %[[AFTER]] : i32
// CHECK-NEXT:      %[[START:start_[0-9]+]] = arith.muli %[[BLOCK]], %[[BLOCK_N]] : i32
// CHECK:           %[[ANY:any]] = tile.cmpi sle, %[[START]], %{{.*}} : i32
// CHECK-NEXT:      %{{.*}} = scf.if %[[ANY]] -> (tensor<64x64xf32>) {
// CHECK:             %[[COLS:cols_[0-9]+]] = arith.addi %{{.*}}, %{{.*}} : tensor<64xi32>
// CHECK-NEXT:        %[[K_LEN_T:.*]] = tile.splat %[[K_LEN]] ["BLOCK_N"]
// CHECK-NEXT:        %[[IN_RANGE:in_range]] = tile.cmpi slt, %[[COLS]], %[[K_LEN_T]] : tensor<64xi32>
// CHECK:             %[[K:k_[0-9]+]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<64x64x!tile.ptr<bf16>> -> tensor<64x64xbf16>
// CHECK:             %[[KV_IDX:kv_idx]] = tile.expand_dims %{{.*}} 0 : tensor<64xi32> -> tensor<1x64xi32>
// CHECK-NEXT:        %[[Q_IDX_T:.*]] = tile.broadcast %[[Q_IDX]] ["BLOCK_M", "BLOCK_N"] {attnc.comment = "mask_mod and the sequence bound"}
// CHECK-NEXT:        %[[KV_IDX_T:.*]] = tile.broadcast %[[KV_IDX]] ["BLOCK_M", "BLOCK_N"]
// CHECK-NEXT:        %[[CAUSAL:.*]] = tile.cmpi sge, %[[Q_IDX_T]], %[[KV_IDX_T]] : tensor<64x64xi32>
// CHECK:             %[[KEEP:keep]] = arith.andi %[[CAUSAL]], %{{.*}} : tensor<64x64xi1>
// The bias read at b, recomputed; its gradient is added at b.
// CHECK-NEXT:        %{{.*}} = tile.cast %[[B]] {attnc.comment = "score_mod, recomputed"} : i32 to i64
// CHECK:             %{{.*}} = tile.cast %[[B]] : i32 to i64
// CHECK:             tile.atomic_add %{{.*}}, %{{.*}} : !tile.ptr<f32>, f32
// CHECK:             %[[DQ_NEW:.*]] = tile.dot %{{.*}}, %[[K]] acc %[[DQ_ACC]] : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
// CHECK-NEXT:        scf.yield %[[DQ_NEW]] : tensor<64x64xf32>
// CHECK-NEXT:      } else {
// CHECK-NEXT:        scf.yield %[[DQ_ACC]] : tensor<64x64xf32>
// CHECK-NEXT:      }{attnc.comment = "skip a block the mask empties"}
// CHECK:         } {attnc.comment = "key blocks the mask cuts or empties"}
// dQ is stored at the sequence's rows of head h.
// CHECK:         %{{.*}} = tile.cast %[[Q_START]] : i32 to i64
// CHECK:         %[[DQ_BASE:dq_base]] = tile.addptr
// CHECK:         tile.store %{{.*}}, %{{.*}} mask %{{.*}} : tensor<64x64x!tile.ptr<bf16>>, tensor<64x64xbf16>
// CHECK-NEXT:    tile.return

// dK/dV: one program per key block of a (sequence, kv head); per query head of the group, the
// query blocks of the sequence, none when this key block is past its keys.
// CHECK-LABEL: tile.func @packed_bwd_dkdv(
// CHECK-SAME:      %[[SCALE:[^:]*]]: f32, %[[CU_Q:[^:]*]]: !tile.ptr<i32>, %[[CU_K:[^:]*]]: !tile.ptr<i32>, %[[Q_ROWS:[^:]*]]: i32, %[[KV_ROWS:[^:]*]]: i32, %[[NUM_SEQS:[^:]*]]: i32) constexprs {BLOCK_M = 64, BLOCK_N = 128, HEAD_DIM = 64, HEAD_DIM_V = 64}
// Slots of key blocks by kv heads, in order (a causal sequence's first keys see the most queries).
// CHECK:         %[[KV_H:kv_h]] = tile.program_id 1
// CHECK-NEXT:    %[[PID:slot]] = tile.program_id 0
// CHECK-NOT:     slots
// CHECK:         %{{.*}} = scf.for
// CHECK:           %{{.*}} = tile.addptr %[[CU_K]], %{{.*}} : !tile.ptr<i32>, tensor<128xi32> -> tensor<128x!tile.ptr<i32>>
// CHECK:           %{{.*}} = tile.cmpi sle, %{{.*}}, %{{.*}} : tensor<128xi32>
// CHECK:         } {attnc.comment = "sequences starting at or before the slot"}
// CHECK:         %[[B:b]] = arith.minsi
// CHECK:         %[[INDEX:block_in_seq]] = arith.subi %[[PID]], %{{.*}} : i32
// CHECK:         %[[FIRST_H:first_h]] = arith.muli %[[KV_H]], %[[GROUP:[^ ]*]] : i32
// CHECK:         %[[Q_LEN:q_len]] = arith.minsi
// CHECK:         %[[K_LEN:k_len]] = arith.minsi
// CHECK:         %[[KV_LO:kv_lo]] = arith.muli
// CHECK:         %[[COL_OK:col_ok]] = tile.expand_dims %{{.*}} 1 : tensor<128xi1> -> tensor<128x1xi1>
// CHECK:         %[[K:k]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:         %[[Q_BLOCKS:q_blocks]] = arith.divsi
// CHECK-NEXT:    %[[LIVE:.*]] = tile.cmpi slt, %[[KV_LO]], %[[K_LEN]] : i32
// CHECK-NEXT:    %{{.*}} = arith.constant 0 : i32
// CHECK-NEXT:    %[[NUM:num_blocks]] = tile.select %[[LIVE]], %[[Q_BLOCKS]], %{{.*}} : i32
// CHECK:         %[[DK_H:[^ ,]*]], %[[DV_H:[^ ,]*]] = scf.for %[[I:[^ ]*]] = %{{.*}} to %[[GROUP]] step
// CHECK-NEXT:      %[[H:h]] = arith.addi %[[FIRST_H]], %[[I]] : i32
// CHECK:           %[[STAT_ROW:stat_row]] = arith.addi
// Per head, the query blocks whole with this key block (full, all of the tile kept): a scalar pass
// finds their first run, which runs with q, dO, lse and δ loaded without a mask and no mask_mod; the
// others run masked, skipping those the mask empties.
// CHECK:           %[[RUN_LO:run_lo]], %[[RUN_HI:run_hi]] = scf.for %[[J:[^ ]*]] = %{{.*}} to %[[NUM]] step
// CHECK-NEXT:        %[[PRE_START:start]] = arith.muli %[[J]], %{{.*}} : i32
// CHECK-NEXT:        %[[Q_FIRST:q_first]] = arith.addi %{{.*}}, %[[PRE_START]] : i32
// CHECK:             %[[ALL:all]] = tile.cmpi sle, %{{.*}}, %[[Q_FIRST]] : i32
// CHECK-NEXT:        %[[QUERY_END:.*]] = arith.addi %[[PRE_START]], %{{.*}} : i32
// CHECK-NEXT:        %[[QUERY_FULL:full]] = tile.cmpi sle, %[[QUERY_END]], %[[Q_LEN]] : i32
// CHECK-NEXT:        %{{.*}} = arith.andi %[[ALL]], %[[QUERY_FULL]] : i1
// CHECK:           } {attnc.comment = "find the first run of whole blocks"}
// CHECK:           %[[RUN_FIRST:run_lo_2]] = tile.select %{{.*}}, %[[RUN_LO]], %[[NUM]] : i32
// CHECK-NEXT:      %[[RUN_END:run_hi_2]] = tile.select %{{.*}}, %[[RUN_HI]], %[[NUM]] : i32
// CHECK-NEXT:      %[[DK_AFTER_WHOLE:[^ ,]*]], %[[DV_AFTER_WHOLE:[^ ,]*]] = scf.for %{{.*}} = %[[RUN_FIRST]] to %[[RUN_END]] step %{{.*}} iter_args(%[[DK_WHOLE:[^ ]*]] = %{{.*}}, %[[DV_WHOLE:[^ ]*]] = %{{.*}}) -> (tensor<128x64xf32>, tensor<128x64xf32>) : i32 {
// CHECK-NOT:         {{scf.if|mask|keep|rows_in}}
// CHECK:             %[[Q_WHOLE:q]] = tile.load %{{.*}} : tensor<64x64x!tile.ptr<bf16>> -> tensor<64x64xbf16>
// CHECK-NOT:         {{scf.if|mask|keep|rows_in}}
// CHECK:             %{{.*}} = tile.load %{{.*}} : tensor<64x!tile.ptr<f32>> -> tensor<64xf32>
// CHECK-NOT:         {{scf.if|mask|keep|rows_in}}
// CHECK:             %[[DV_WHOLE_NEW:.*]] = tile.dot %{{.*}}, %{{.*}} acc %[[DV_WHOLE]]
// CHECK-NOT:         {{scf.if|mask|keep|rows_in}}
// CHECK:             %[[DK_WHOLE_NEW:.*]] = tile.dot %{{.*}}, %[[Q_WHOLE]] acc %[[DK_WHOLE]]
// CHECK-NEXT:        scf.yield %[[DK_WHOLE_NEW]], %[[DV_WHOLE_NEW]] : tensor<128x64xf32>, tensor<128x64xf32>
// CHECK-NEXT:      } {attnc.comment = "query blocks kept whole"}
// CHECK-NEXT:      %[[BLOCKS_AFTER:.*]] = arith.subi %[[NUM]], %[[RUN_END]] : i32
// CHECK-NEXT:      %[[MASKED:blocks_masked]] = arith.addi %[[RUN_FIRST]], %[[BLOCKS_AFTER]] : i32
// CHECK-NEXT:      %{{.*}}, %{{.*}} = scf.for %[[I_M:[^ ]*]] = %{{.*}} to %[[MASKED]] step %{{.*}} iter_args(%[[DK_ACC:[^ ]*]] = %[[DK_AFTER_WHOLE]], %[[DV_ACC:[^ ]*]] = %[[DV_AFTER_WHOLE]]) -> (tensor<128x64xf32>, tensor<128x64xf32>) : i32 {
// CHECK:               %[[START:start_[0-9]+]] = arith.muli
// CHECK:               %[[ANY:any]] = tile.cmpi sle, %[[KV_LO]], %{{.*}} : i32
// CHECK-NEXT:          %{{.*}}, %{{.*}} = scf.if %[[ANY]] -> (tensor<128x64xf32>, tensor<128x64xf32>) {
// CHECK:               %[[ROWS_IN:rows_in]] = tile.cmpi slt
// CHECK:               %[[Q:q_[0-9]+]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<64x64x!tile.ptr<bf16>> -> tensor<64x64xbf16>
// CHECK:               %[[STAT_ROWS:stat_rows_[0-9]+]] = arith.addi
// CHECK:               %[[QK:qk_t_[0-9]+]] = tile.dot %[[K]], %{{.*}} : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
// CHECK:               %[[CAUSAL:.*]] = tile.cmpi sge
// CHECK:               %[[WITH_COLS:.*]] = arith.andi %[[CAUSAL]], %{{.*}} : tensor<128x64xi1>
// CHECK:               %[[KEEP:keep]] = arith.andi %[[WITH_COLS]], %{{.*}} : tensor<128x64xi1>
// CHECK:               %[[DV_NEW:.*]] = tile.dot %{{.*}}, %{{.*}} acc %[[DV_ACC]]
// CHECK:               %[[DK_NEW:.*]] = tile.dot %{{.*}}, %[[Q]] acc %[[DK_ACC]]
// CHECK-NEXT:          scf.yield %[[DK_NEW]], %[[DV_NEW]] : tensor<128x64xf32>, tensor<128x64xf32>
// CHECK-NEXT:        } else {
// CHECK-NEXT:          scf.yield %[[DK_ACC]], %[[DV_ACC]] : tensor<128x64xf32>, tensor<128x64xf32>
// CHECK-NEXT:        }{attnc.comment = "skip a block the mask empties"}
// CHECK:           } {attnc.comment = "query blocks the mask cuts or empties"}
// CHECK:         } {attnc.comment = "query heads of this kv head"}
// dK and dV are stored at the sequence's keys, only those below its length.
// CHECK:         %[[DK_BASE:dk_base]] = tile.addptr
// CHECK:         %[[DK_MASK:.*]] = tile.broadcast %[[COL_OK]] ["BLOCK_N", "HEAD_DIM"]
// CHECK-NEXT:    tile.store %{{.*}}, %{{.*}} mask %[[DK_MASK]] : tensor<128x64x!tile.ptr<bf16>>, tensor<128x64xbf16>
// CHECK:         %[[DV_MASK:.*]] = tile.broadcast %[[COL_OK]] ["BLOCK_N", "HEAD_DIM_V"]
// CHECK-NEXT:    tile.store %{{.*}}, %{{.*}} mask %[[DV_MASK]] : tensor<128x64x!tile.ptr<bf16>>, tensor<128x64xbf16>
// CHECK-NEXT:    tile.return

func.func @packed(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %cu_seqlens_q: tensor<?xi32>, %cu_seqlens_k: tensor<?xi32>, %bias: tensor<8xf32>, %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<8xf32>) {
  %out, %lse = attn.flash %q, %k, %v sequences(%cu_seqlens_q, %cu_seqlens_k : tensor<?xi32>, tensor<?xi32>) captures(%bias : tensor<8xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<8xf32>):
    %0 = tensor.extract %bias_1[%b] : tensor<8xf32>
    %1 = arith.addf %score, %0 : f32
    attn.yield %1 : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %bias_2: tensor<8xf32>):
    %2 = arith.cmpi sge, %q_idx_1, %kv_idx_1 : index
    attn.yield %2 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %m: f32, %l: f32, %bias_3: tensor<8xf32>):
    %cst = arith.constant 1.44269502 : f32
    %3 = arith.mulf %score_1, %cst : f32
    %4 = attn.row_max %3 : f32
    %m_new = arith.maxnumf %m, %4 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %5 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %6 = arith.select %5, %cst_2, %m_new : f32
    %7 = arith.subf %3, %6 : f32
    %p = math.exp2 %7 : f32
    %8 = arith.subf %m, %6 : f32
    %alpha = math.exp2 %8 : f32
    %9 = arith.mulf %l, %alpha : f32
    %10 = attn.row_sum %p : f32
    %l_new = arith.addf %9, %10 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %m_1: f32, %l_1: f32, %bias_4: tensor<8xf32>):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %11 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %12 = arith.select %11, %cst_4, %l_1 : f32
    %13 = arith.divf %cst_4, %12 : f32
    %out_1 = arith.mulf %acc, %13 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %14 = arith.mulf %m_1, %cst_5 : f32
    %15 = math.log %l_1 : f32
    %lse_1 = arith.addf %14, %15 : f32
    attn.yield %out_1, %lse_1 : f32, f32
  } classify {
  ^bb0(%b_4: index, %h_4: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %16 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %16 : index
    %kv_last = arith.subi %kv_hi, %16 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } {layout = "packed", scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64, approx_tanh} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  %dq, %dk, %dv, %dbias = attn.flash_grad %q, %k, %v, %out, %dout sequences(%cu_seqlens_q, %cu_seqlens_k : tensor<?xi32>, tensor<?xi32>) stat(%lse : tensor<?x4x?xf32>) captures(%bias : tensor<8xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<8xf32>):
    %0 = tensor.extract %bias_1[%b] : tensor<8xf32>
    %1 = arith.addf %score, %0 : f32
    attn.yield %1 : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %bias_2: tensor<8xf32>):
    %2 = arith.cmpi sge, %q_idx_1, %kv_idx_1 : index
    attn.yield %2 : i1
  } score_mod_grad {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %q_idx_2: index, %kv_idx_2: index, %bias_3: tensor<8xf32>, %grad: f32):
    attn.yield %grad, %grad, %b_2 : f32, f32, index
  } classify {
  ^bb0(%b_3: index, %h_3: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %3 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %3 : index
    %kv_last = arith.subi %kv_hi, %3 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [0 : i64], block_mask = "affine", layout = "packed", dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64, approx_tanh} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<8xf32>)
  func.return %out, %lse, %dq, %dk, %dv, %dbias : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<8xf32>
}

// -----

// A bias indexed by each key's document id, read from data, as the softmax-backward
// pipeline prints it before convert-attn-to-tile: attn-guard-captures marked the bias
// read (attn.guard) and its gradient's scatter (capture_site_guards). Every kernel that
// reads the bias takes its size, `cap0_size0`, and loads it under 0 <= id < size, reading
// 0 outside; the dQ kernel adds the bias's adjoint only where the id is in range too.

// CHECK-LABEL: tile.func @document_bias_grad_fwd(
// CHECK-SAME:      %[[SIZE:cap0_size0]]: i32
// CHECK:           %[[LO:.*]] = tile.cmpi sge, %[[ID:.*]], %{{.*}} : tensor<1x128xi32>
// CHECK-NEXT:      %[[SV:.*]] = tile.splat %[[SIZE]] ["1", "BLOCK_N"] : i32 -> tensor<1x128xi32>
// CHECK-NEXT:      %[[HI:.*]] = tile.cmpi slt, %[[ID]], %[[SV]] : tensor<1x128xi32>
// CHECK-NEXT:      %[[IN:.*]] = arith.andi %[[LO]], %[[HI]] : tensor<1x128xi1>
// CHECK-NEXT:      %{{.*}} = tile.load %{{.*}} mask %[[IN]] other 0.0 : tensor<1x128x!tile.ptr<f32>> -> tensor<1x128xf32>

// CHECK-LABEL: tile.func @document_bias_grad_bwd_dq(
// CHECK-SAME:      %[[SIZE:cap0_size0]]: i32
// CHECK:           tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<1x64x!tile.ptr<f32>> -> tensor<1x64xf32>
// CHECK:           %[[LO:.*]] = tile.cmpi sge, %[[ID:.*]], %{{.*}} : tensor<1x64xi32>
// CHECK-NEXT:      %[[SV:.*]] = tile.splat %[[SIZE]] ["1", "BLOCK_N"] : i32 -> tensor<1x64xi32>
// CHECK-NEXT:      %[[HI:.*]] = tile.cmpi slt, %[[ID]], %[[SV]] : tensor<1x64xi32>
// CHECK-NEXT:      %[[IN:.*]] = arith.andi %[[LO]], %[[HI]] : tensor<1x64xi1>
// CHECK-NEXT:      %[[ROWS:.*]] = tile.broadcast %row_ok ["BLOCK_M", "BLOCK_N"] : tensor<64x1xi1> -> tensor<64x64xi1>
// CHECK-NEXT:      %[[IN_TILE:.*]] = tile.broadcast %[[IN]] ["BLOCK_M", "BLOCK_N"] : tensor<1x64xi1> -> tensor<64x64xi1>
// CHECK-NEXT:      %[[LIVE:.*]] = arith.andi %[[ROWS]], %[[IN_TILE]] : tensor<64x64xi1>
// CHECK:           %[[G:.*]] = tile.select %[[LIVE]], %{{.*}}, %{{.*}} : tensor<64x64xf32>
// CHECK:           tile.atomic_add %{{.*}}, %[[G]] mask %[[LIVE]] : tensor<64x64x!tile.ptr<f32>>, tensor<64x64xf32>

// CHECK-LABEL: tile.func @document_bias_grad_bwd_dkdv(
// CHECK-SAME:      %{{.*}}: !tile.ptr<f32>, %{{.*}}: i32, %{{.*}}: !tile.ptr<i64>, %{{.*}}: i32, %{{.*}}cap0_size0: i32
// CHECK:           tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x1x!tile.ptr<f32>> -> tensor<128x1xf32>
// CHECK-NOT:       tile.atomic_add
// CHECK:           tile.return

func.func @document_bias_grad(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %bias: tensor<64xf32>, %doc: tensor<128xi64>, %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>, tensor<128xf32>) {
  %out, %lse = attn.flash %q, %k, %v captures(%bias, %doc : tensor<64xf32>, tensor<128xi64>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
    %d = tensor.extract %doc_1[%kv_idx] : tensor<128xi64>
    %i = arith.index_cast %d : i64 to index
    %0 = tensor.extract %bias_1[%i] {attn.guard = array<i64: 0>} : tensor<64xf32>
    %1 = arith.addf %score, %0 : f32
    attn.yield %1 : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %2: tensor<64xf32>, %3: tensor<128xi64>):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %m: f32, %l: f32, %bias_2: tensor<64xf32>, %doc_2: tensor<128xi64>):
    %cst = arith.constant 1.44269502 : f32
    %4 = arith.mulf %score_1, %cst : f32
    %5 = attn.row_max %4 : f32
    %m_new = arith.maxnumf %m, %5 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %6 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %7 = arith.select %6, %cst_2, %m_new : f32
    %8 = arith.subf %4, %7 : f32
    %p = math.exp2 %8 : f32
    %9 = arith.subf %m, %7 : f32
    %alpha = math.exp2 %9 : f32
    %10 = arith.mulf %l, %alpha : f32
    %11 = attn.row_sum %p : f32
    %l_new = arith.addf %10, %11 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %m_1: f32, %l_1: f32, %bias_3: tensor<64xf32>, %doc_3: tensor<128xi64>):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %12 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %13 = arith.select %12, %cst_4, %l_1 : f32
    %14 = arith.divf %cst_4, %13 : f32
    %out_1 = arith.mulf %acc, %14 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %15 = arith.mulf %m_1, %cst_5 : f32
    %16 = math.log %l_1 : f32
    %lse_1 = arith.addf %15, %16 : f32
    attn.yield %out_1, %lse_1 : f32, f32
  } classify {
  } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "none", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64, approx_tanh} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  %dq, %dk, %dv, %dbias, %ddoc = attn.flash_grad %q, %k, %v, %out, %dout stat(%lse : tensor<?x4x?xf32>) captures(%bias, %doc : tensor<64xf32>, tensor<128xi64>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
    %d = tensor.extract %doc_1[%kv_idx] : tensor<128xi64>
    %i = arith.index_cast %d : i64 to index
    %0 = tensor.extract %bias_1[%i] {attn.guard = array<i64: 0>} : tensor<64xf32>
    %1 = arith.addf %score, %0 : f32
    attn.yield %1 : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %2: tensor<64xf32>, %3: tensor<128xi64>):
    %keep = arith.constant true
    attn.yield %keep : i1
  } score_mod_grad {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %q_idx_2: index, %kv_idx_2: index, %bias_2: tensor<64xf32>, %doc_2: tensor<128xi64>, %grad: f32):
    %d_1 = tensor.extract %doc_2[%kv_idx_2] : tensor<128xi64>
    %i_1 = arith.index_cast %d_1 : i64 to index
    attn.yield %grad, %grad, %i_1 : f32, f32, index
  } classify {
  } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [0 : i64], block_mask = "none", capture_site_guards = [array<i64: 0>], dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64, approx_tanh} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>, tensor<128xf32>)
  func.return %out, %lse, %dq, %dk, %dv, %dbias, %ddoc : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>, tensor<128xf32>
}
