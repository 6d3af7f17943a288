// RUN: attn-opt %s -p convert-attn-to-tile --split-input-file --verify-diagnostics | filecheck %s

// convert-attn-to-tile replaces each function holding a tiled attn.flash with two
// tile.func kernels: @<fn>_block_table (one program per tile: class 0 empty,
// 1 partial, 2 full) and @<fn>_fwd (the flash forward: a loop over the full key
// blocks without the mask, then one over the partial blocks with it).

// Causal attention as `attnc compile examples/causal.py --target cuda:80 --emit flash`
// prints it: an affine mask, tiles of 128x64.

// The block table evaluates the classify region on the tile's bounds, as scalars.
// CHECK-LABEL: tile.func @attention_block_table(
// CHECK-SAME:      %[[CLASS:.*]]: !tile.ptr<i32>, %[[SEQ_Q:.*]]: i32, %[[SEQ_KV:.*]]: i32, %{{.*}}: i32, %{{.*}}: i32) constexprs {BLOCK_M = 128, BLOCK_N = 64} {
// CHECK:         %[[PID_M:.*]] = tile.program_id 0
// CHECK-NEXT:    %[[PID_N:.*]] = tile.program_id 1
// CHECK:         %[[Q_LO:.*]] = arith.muli %[[PID_M]], %{{.*}} : i32
// CHECK:         %[[Q_HI:.*]] = arith.minsi %{{.*}}, %[[SEQ_Q]] : i32
// CHECK:         %[[KV_LO:.*]] = arith.muli %[[PID_N]], %{{.*}} : i32
// CHECK:         %[[KV_HI:.*]] = arith.minsi %{{.*}}, %[[SEQ_KV]] : i32
// CHECK:         %[[ONE:.*]] = arith.constant {attnc.comment = "affine mask: the symbolic classify region, a few scalar ops per tile"} 1 : i32
// CHECK-NEXT:    %[[Q_LAST:.*]] = arith.subi %[[Q_HI]], %[[ONE]] : i32
// CHECK-NEXT:    %[[KV_LAST:.*]] = arith.subi %[[KV_HI]], %[[ONE]] : i32
// CHECK-NEXT:    %[[ANY:.*]] = tile.cmpi sle, %[[KV_LO]], %[[Q_LAST]] : i32
// CHECK-NEXT:    %[[ALL:.*]] = tile.cmpi sle, %[[KV_LAST]], %[[Q_LO]] : i32
// CHECK-NOT:     tile.load
// CHECK:         %[[CLS:.*]] = arith.addi %{{.*}}, %{{.*}} : i32
// CHECK:         %[[SLOT:.*]] = tile.addptr %[[CLASS]], %{{.*}} : !tile.ptr<i32>, i32 -> !tile.ptr<i32>
// CHECK-NEXT:    tile.store %[[SLOT]], %[[CLS]] : !tile.ptr<i32>, i32
// CHECK-NEXT:    tile.return

// CHECK-LABEL: tile.func @attention_fwd(
// CHECK-SAME:      %{{.*}}: !tile.ptr<bf16>, %{{.*}}: !tile.ptr<bf16>, %{{.*}}: !tile.ptr<bf16>, %{{.*}}: !tile.ptr<bf16>, %[[LSE_PTR:.*]]: !tile.ptr<f32>,
// CHECK-SAME:      %[[SCALE:[^:]*]]: f32, %[[FULL_NUM:[^:]*]]: !tile.ptr<i32>, %{{[^:]*}}: !tile.ptr<i32>, %[[PART_NUM:[^:]*]]: !tile.ptr<i32>,
// CHECK-SAME:      constexprs {BLOCK_M = 128, BLOCK_N = 64, HEAD_DIM = 64, HEAD_DIM_V = 64}
// CHECK:         %[[Q:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<128x64x!tile.ptr<bf16>> -> tensor<128x64xbf16>
// CHECK:         %[[ACC0:.*]] = tile.full ["BLOCK_M", "HEAD_DIM_V"] 0.0 : tensor<128x64xf32>
// CHECK-NEXT:    %[[M0:.*]] = tile.full ["BLOCK_M"] -inf : tensor<128xf32>
// CHECK-NEXT:    %[[L0:.*]] = tile.full ["BLOCK_M"] 0.0 : tensor<128xf32>

// The full key blocks: K and V loaded without a mask, no mask_mod.
// CHECK:         %[[FULL_PTR:.*]] = tile.addptr %[[FULL_NUM]], %{{.*}}
// CHECK-NEXT:    %[[NUM_FULL:.*]] = tile.load %[[FULL_PTR]] : !tile.ptr<i32> -> i32
// CHECK:         %[[ACC1:.*]], %[[M1:.*]], %[[L1:.*]], %{{.*}} = scf.for %{{.*}} = %{{.*}} to %[[NUM_FULL]] step %{{.*}} iter_args(%{{.*}} = %[[ACC0]], %{{.*}} = %[[M0]], %{{.*}} = %[[L0]], %{{.*}} = %{{.*}})
// CHECK-NOT:       mask_mod
// CHECK:           %[[K:.*]] = tile.load %{{.*}} : tensor<64x64x!tile.ptr<bf16>> -> tensor<64x64xbf16>
// CHECK-NEXT:      %[[KT:.*]] = tile.trans %[[K]] : tensor<64x64xbf16> -> tensor<64x64xbf16>
// CHECK-NEXT:      %[[QK:.*]] = tile.dot %[[Q]], %[[KT]] : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
// CHECK-NOT:       mask_mod
// CHECK-NOT:       tile.cmpi sge
// CHECK:           arith.constant {attnc.comment = "normalizer update (softmax)"} 1.44269502 : f32
// CHECK-NOT:       tile.cmpi sge
// CHECK:           tile.reduce max %{{.*}} axis 1
// CHECK-NOT:       tile.cmpi sge
// CHECK:           %{{.*}} = tile.load %{{.*}} : tensor<64x64x!tile.ptr<bf16>> -> tensor<64x64xbf16>
// CHECK-NOT:       tile.cmpi sge
// CHECK:           %{{.*}} = tile.dot %{{.*}}, %{{.*}} acc %{{.*}} : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
// CHECK-NOT:       tile.cmpi sge
// CHECK:         } {attnc.comment = "full key blocks"}

// The partial key blocks: bounds-checked loads, then mask_mod and the sequence
// bound decide which scores are kept.
// CHECK:         %[[PART_PTR:.*]] = tile.addptr %[[PART_NUM]], %{{.*}}
// CHECK-NEXT:    %[[NUM_PART:.*]] = tile.load %[[PART_PTR]] : !tile.ptr<i32> -> i32
// CHECK:         %[[ACC2:.*]], %[[M2:.*]], %[[L2:.*]], %{{.*}} = scf.for %{{.*}} = %{{.*}} to %[[NUM_PART]] step %{{.*}} iter_args(%{{.*}} = %[[ACC1]], %{{.*}} = %[[M1]], %{{.*}} = %[[L1]], %{{.*}} = %{{.*}})
// CHECK:           %[[K2:.*]] = tile.load %{{.*}} mask %{{.*}} other 0.0 : tensor<64x64x!tile.ptr<bf16>> -> tensor<64x64xbf16>
// CHECK-NEXT:      %[[KT2:.*]] = tile.trans %[[K2]]
// CHECK-NEXT:      %[[QK2:.*]] = tile.dot %[[Q]], %[[KT2]] : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
// CHECK-NEXT:      %[[SPLAT_SCALE:.*]] = tile.splat %[[SCALE]]
// CHECK-NEXT:      %[[S:.*]] = arith.mulf %[[QK2]], %[[SPLAT_SCALE]] : tensor<128x64xf32>
// CHECK:           %[[QI:.*]] = tile.broadcast %{{.*}} ["BLOCK_M", "BLOCK_N"] {attnc.comment = "mask_mod and the sequence bound"} : tensor<128x1xi32> -> tensor<128x64xi32>
// CHECK-NEXT:      %[[KVI:.*]] = tile.broadcast %{{.*}} ["BLOCK_M", "BLOCK_N"] : tensor<1x64xi32> -> tensor<128x64xi32>
// CHECK-NEXT:      %[[CAUSAL:.*]] = tile.cmpi sge, %[[QI]], %[[KVI]] : tensor<128x64xi32>
// CHECK-NEXT:      %[[COL_OK:.*]] = tile.broadcast %{{.*}} ["BLOCK_M", "BLOCK_N"] : tensor<1x64xi1> -> tensor<128x64xi1>
// CHECK-NEXT:      %[[KEEP:.*]] = arith.andi %[[CAUSAL]], %[[COL_OK]] : tensor<128x64xi1>
// CHECK-NEXT:      %[[NEG_INF:.*]] = arith.constant 0xff800000 : f32
// CHECK-NEXT:      %[[FILL:.*]] = tile.splat %[[NEG_INF]] ["BLOCK_M", "BLOCK_N"] : f32 -> tensor<128x64xf32>
// CHECK-NEXT:      %[[MASKED:.*]] = tile.select %[[KEEP]], %[[S]], %[[FILL]] : tensor<128x64xf32>
// The base-2 softmax: scores times log2(e), then exp2.
// CHECK-NEXT:      %[[LOG2E:.*]] = arith.constant {attnc.comment = "normalizer update (softmax)"} 1.44269502 : f32
// CHECK-NEXT:      %[[LOG2E_T:.*]] = tile.splat %[[LOG2E]] ["BLOCK_M", "BLOCK_N"] : f32 -> tensor<128x64xf32>
// CHECK-NEXT:      %[[S2:.*]] = arith.mulf %[[MASKED]], %[[LOG2E_T]] : tensor<128x64xf32>
// CHECK-NEXT:      tile.reduce max %[[S2]] axis 1 : tensor<128x64xf32> -> tensor<128xf32>
// CHECK:           math.exp2 %{{.*}} : tensor<128x64xf32>
// Masked scores contribute p = 0.
// CHECK:           %[[P:.*]] = tile.select %[[KEEP]], %{{.*}}, %{{.*}} : tensor<128x64xf32>
// CHECK:           %[[PC:.*]] = tile.cast %[[P]] : tensor<128x64xf32> to tensor<128x64xbf16>
// CHECK-NEXT:      %{{.*}} = tile.dot %[[PC]], %{{.*}} acc %{{.*}} : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
// CHECK:         } {attnc.comment = "part key blocks"}

// finalize on the final state: the output is the accumulator divided by the row
// sum broadcast over the head dim; the logsumexp, m ln 2 + log l, reads only the
// state. Both are stored.
// CHECK:         arith.constant {attnc.comment = "normalizer finalize (softmax)"}
// CHECK:         %[[EMPTY:.*]] = tile.cmpf oeq, %[[L2]], %{{.*}} : tensor<128xf32>
// CHECK-NEXT:    %{{.*}} = tile.splat
// CHECK-NEXT:    %[[L_SAFE:.*]] = tile.select %[[EMPTY]], %{{.*}}, %[[L2]] : tensor<128xf32>
// CHECK-NEXT:    %[[L_SAFE_COL:.*]] = tile.expand_dims %[[L_SAFE]] 1 : tensor<128xf32> -> tensor<128x1xf32>
// CHECK-NEXT:    %[[L_SAFE_T:.*]] = tile.broadcast %[[L_SAFE_COL]] ["BLOCK_M", "HEAD_DIM_V"] : tensor<128x1xf32> -> tensor<128x64xf32>
// CHECK-NEXT:    %[[OUT:.*]] = arith.divf %[[ACC2]], %[[L_SAFE_T]] : tensor<128x64xf32>
// CHECK:         %[[M_NAT:.*]] = arith.mulf %[[M2]], %{{.*}} : tensor<128xf32>
// CHECK-NEXT:    %[[LOG_L:.*]] = math.log %[[L2]] : tensor<128xf32>
// CHECK-NEXT:    %[[LSE:.*]] = arith.addf %[[M_NAT]], %[[LOG_L]] : tensor<128xf32>
// CHECK-NEXT:    %[[OUT_C:.*]] = tile.cast %[[OUT]] : tensor<128x64xf32> to tensor<128x64xbf16>
// CHECK:         tile.store %{{.*}}, %[[OUT_C]] mask %{{.*}} : tensor<128x64x!tile.ptr<bf16>>, tensor<128x64xbf16>
// CHECK:         %[[LSE_PTRS:.*]] = tile.addptr %[[LSE_PTR]], %{{.*}}
// CHECK-NEXT:    tile.store %[[LSE_PTRS]], %[[LSE]] mask %{{.*}} : tensor<128x!tile.ptr<f32>>, tensor<128xf32>
// CHECK-NEXT:    tile.return
// CHECK-NOT:     func.func
// CHECK-NOT:     attn.

func.func @attention(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index):
    %0 = arith.cmpi sge, %q_idx_1, %kv_idx_1 : index
    attn.yield %0 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %m: f32, %l: f32):
    %log2e = arith.constant 1.44269502 : f32
    %score2 = arith.mulf %score_1, %log2e : f32
    %tile_max = attn.row_max %score2 : f32
    %m_new = arith.maxnumf %m, %tile_max : f32
    %neg_inf = arith.constant 0xff800000 : f32
    %zero = arith.constant 0.000000e+00 : f32
    %all_masked = arith.cmpf oeq, %m_new, %neg_inf : f32
    %m_safe = arith.select %all_masked, %zero, %m_new : f32
    %shifted = arith.subf %score2, %m_safe : f32
    %p = math.exp2 %shifted : f32
    %m_diff = arith.subf %m, %m_safe : f32
    %alpha = math.exp2 %m_diff : f32
    %l_scaled = arith.mulf %l, %alpha : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l_scaled, %tile_sum : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %m_1: f32, %l_1: f32):
    %zero_1 = arith.constant 0.000000e+00 : f32
    %one = arith.constant 1.000000e+00 : f32
    %ln2 = arith.constant 0.693147182 : f32
    %empty_row = arith.cmpf oeq, %l_1, %zero_1 : f32
    %l_safe = arith.select %empty_row, %one, %l_1 : f32
    %out_1 = arith.divf %acc, %l_safe : f32
    %m_nat = arith.mulf %m_1, %ln2 : f32
    %log_l = math.log %l_1 : f32
    %lse_1 = arith.addf %m_nat, %log_l : f32
    attn.yield %out_1, %lse_1 : f32, f32
  } classify {
  ^bb0(%b_4: index, %h_4: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %1 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %1 : index
    %kv_last = arith.subi %kv_hi, %1 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine", tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// The document mask as `attnc compile examples/document_mask.py --target cuda:80
// --emit flash` prints it (function renamed): a runtime mask reading a captured
// tensor, which becomes a pointer and stride parameters of both kernels. The block
// table evaluates the mask on every element of the tile and reduces it.

// CHECK-LABEL: tile.func @document_block_table(
// CHECK-SAME:      %{{.*}}: !tile.ptr<i32>, %[[CAP:.*]]: !tile.ptr<i32>, %{{.*}}: i32, %[[SEQ_Q:.*]]: i32, %[[SEQ_KV:.*]]: i32, %{{.*}}: i32, %{{.*}}: i32) constexprs {BLOCK_M = 128, BLOCK_N = 64} {
// CHECK:         tile.arange ["BLOCK_M"] {attnc.comment = "runtime mask: evaluate mask_mod on every element of the tile"} : tensor<128xi32>
// CHECK:         %[[Q_PTRS:.*]] = tile.addptr %[[CAP]], %{{.*}} : !tile.ptr<i32>, tensor<128x1xi64> -> tensor<128x1x!tile.ptr<i32>>
// CHECK-NEXT:    %[[DOC_Q:.*]] = tile.load %[[Q_PTRS]] : tensor<128x1x!tile.ptr<i32>> -> tensor<128x1xi32>
// CHECK:         %[[KV_PTRS:.*]] = tile.addptr %[[CAP]], %{{.*}} : !tile.ptr<i32>, tensor<1x64xi64> -> tensor<1x64x!tile.ptr<i32>>
// CHECK-NEXT:    %[[DOC_KV:.*]] = tile.load %[[KV_PTRS]] : tensor<1x64x!tile.ptr<i32>> -> tensor<1x64xi32>
// CHECK-NEXT:    %[[A:.*]] = tile.broadcast %[[DOC_Q]] ["BLOCK_M", "BLOCK_N"] : tensor<128x1xi32> -> tensor<128x64xi32>
// CHECK-NEXT:    %[[B:.*]] = tile.broadcast %[[DOC_KV]] ["BLOCK_M", "BLOCK_N"] : tensor<1x64xi32> -> tensor<128x64xi32>
// CHECK-NEXT:    %[[SAME:.*]] = tile.cmpi eq, %[[A]], %[[B]] : tensor<128x64xi32>
// CHECK-NEXT:    %[[ROW_OK:.*]] = tile.broadcast %{{.*}} ["BLOCK_M", "BLOCK_N"] : tensor<128x1xi1> -> tensor<128x64xi1>
// CHECK-NEXT:    %[[KEPT_ROW:.*]] = arith.andi %[[SAME]], %[[ROW_OK]] : tensor<128x64xi1>
// CHECK-NEXT:    %[[COL_OK:.*]] = tile.broadcast %{{.*}} ["BLOCK_M", "BLOCK_N"] : tensor<1x64xi1> -> tensor<128x64xi1>
// CHECK-NEXT:    %[[LIVE:.*]] = arith.andi %[[KEPT_ROW]], %[[COL_OK]] : tensor<128x64xi1>
// CHECK-NEXT:    %[[LIVE_I:.*]] = tile.cast %[[LIVE]] : tensor<128x64xi1> to tensor<128x64xi32>
// CHECK-NEXT:    %[[ROW_ANY:.*]] = tile.reduce max %[[LIVE_I]] axis 1 : tensor<128x64xi32> -> tensor<128xi32>
// CHECK-NEXT:    %{{.*}} = tile.reduce max %[[ROW_ANY]] axis 0 : tensor<128xi32> -> i32
// CHECK:         %[[KEPT:.*]] = arith.ori %[[SAME]], %{{.*}} : tensor<128x64xi1>
// CHECK-NEXT:    %[[KEPT_I:.*]] = tile.cast %[[KEPT]] : tensor<128x64xi1> to tensor<128x64xi32>
// CHECK-NEXT:    %[[ROW_ALL:.*]] = tile.reduce min %[[KEPT_I]] axis 1 : tensor<128x64xi32> -> tensor<128xi32>
// CHECK-NEXT:    %{{.*}} = tile.reduce min %[[ROW_ALL]] axis 0 : tensor<128xi32> -> i32
// CHECK:         tile.store
// CHECK-NEXT:    tile.return

// The forward kernel reads the captured tensor only in the partial loop.
// CHECK-LABEL: tile.func @document_fwd(
// CHECK-SAME:      %[[CAP:cap0_ptr]]: !tile.ptr<i32>
// CHECK:         scf.for
// CHECK-NOT:       %[[CAP]]
// CHECK:         } {attnc.comment = "full key blocks"}
// CHECK:         scf.for
// CHECK:           tile.cast %{{.*}} {attnc.comment = "mask_mod and the sequence bound"}
// CHECK:           tile.addptr %[[CAP]], %{{.*}} : !tile.ptr<i32>, tensor<128x1xi64> -> tensor<128x1x!tile.ptr<i32>>
// CHECK:           tile.addptr %[[CAP]], %{{.*}} : !tile.ptr<i32>, tensor<1x64xi64> -> tensor<1x64x!tile.ptr<i32>>
// CHECK:           tile.cmpi eq, %{{.*}}, %{{.*}} : tensor<128x64xi32>
// CHECK:         } {attnc.comment = "part key blocks"}

func.func @document(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %document_id: tensor<16384xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v captures(%document_id : tensor<16384xi32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %0: tensor<16384xi32>):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %document_id_1: tensor<16384xi32>):
    %1 = tensor.extract %document_id_1[%q_idx_1] : tensor<16384xi32>
    %2 = tensor.extract %document_id_1[%kv_idx_1] : tensor<16384xi32>
    %3 = arith.cmpi eq, %1, %2 : i32
    attn.yield %3 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %m: f32, %l: f32, %document_id_2: tensor<16384xi32>):
    %log2e = arith.constant 1.44269502 : f32
    %score2 = arith.mulf %score_1, %log2e : f32
    %tile_max = attn.row_max %score2 : f32
    %m_new = arith.maxnumf %m, %tile_max : f32
    %neg_inf = arith.constant 0xff800000 : f32
    %zero = arith.constant 0.000000e+00 : f32
    %all_masked = arith.cmpf oeq, %m_new, %neg_inf : f32
    %m_safe = arith.select %all_masked, %zero, %m_new : f32
    %shifted = arith.subf %score2, %m_safe : f32
    %p = math.exp2 %shifted : f32
    %m_diff = arith.subf %m, %m_safe : f32
    %alpha = math.exp2 %m_diff : f32
    %l_scaled = arith.mulf %l, %alpha : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l_scaled, %tile_sum : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %m_1: f32, %l_1: f32, %document_id_3: tensor<16384xi32>):
    %zero_1 = arith.constant 0.000000e+00 : f32
    %one = arith.constant 1.000000e+00 : f32
    %ln2 = arith.constant 0.693147182 : f32
    %empty_row = arith.cmpf oeq, %l_1, %zero_1 : f32
    %l_safe = arith.select %empty_row, %one, %l_1 : f32
    %out_1 = arith.divf %acc, %l_safe : f32
    %m_nat = arith.mulf %m_1, %ln2 : f32
    %log_l = math.log %l_1 : f32
    %lse_1 = arith.addf %m_nat, %log_l : f32
    attn.yield %out_1, %lse_1 : f32, f32
  } classify {
  } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime", tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// The document mask again, now looking up whether a query's document may see earlier
// documents: `allowed[document_id[q_idx]]`, a read indexed by data that attn-guard-captures
// marked guarded and, in debug mode (ATTNC_DEBUG), reported. Both kernels that evaluate
// the mask take the table's size, assert each id in range (so they are compiled with
// debug) and load the table under the same mask, reading false outside it.

// CHECK-LABEL: tile.func @allowed_document_block_table(
// CHECK-SAME:      %[[ALLOWED:cap1_ptr]]: !tile.ptr<i1>, %{{.*}}: i32, %[[SIZE:cap1_size0]]: i32,
// CHECK-SAME:      attributes {debug}
// CHECK:         %[[ID:.*]] = tile.load %{{.*}} : tensor<128x1x!tile.ptr<i32>> -> tensor<128x1xi32>
// CHECK:         %[[PTRS:.*]] = tile.addptr %[[ALLOWED]], %{{.*}} : !tile.ptr<i1>, tensor<128x1xi64> -> tensor<128x1x!tile.ptr<i1>>
// CHECK:         %[[LO:.*]] = tile.cmpi sge, %[[ID]], %{{.*}} : tensor<128x1xi32>
// CHECK-NEXT:    %[[SV:.*]] = tile.splat %[[SIZE]] ["BLOCK_M", "1"] : i32 -> tensor<128x1xi32>
// CHECK-NEXT:    %[[HI:.*]] = tile.cmpi slt, %[[ID]], %[[SV]] : tensor<128x1xi32>
// CHECK-NEXT:    %[[IN:.*]] = arith.andi %[[LO]], %[[HI]] : tensor<128x1xi1>
// CHECK-NEXT:    tile.device_assert %[[IN]], "captured tensor 'allowed' is read outside its shape at dimension 0" : tensor<128x1xi1>
// CHECK-NEXT:    %{{.*}} = tile.load %[[PTRS]] mask %[[IN]] other false : tensor<128x1x!tile.ptr<i1>> -> tensor<128x1xi1>

// CHECK-LABEL: tile.func @allowed_document_fwd(
// CHECK-SAME:      attributes {debug}
// CHECK:         tile.device_assert %{{.*}}, "captured tensor 'allowed' is read outside its shape at dimension 0" : tensor<128x1xi1>
// CHECK-NEXT:    tile.load %{{.*}} mask %{{.*}} other false : tensor<128x1x!tile.ptr<i1>> -> tensor<128x1xi1>

func.func @allowed_document(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %document_id: tensor<16384xi32>, %allowed: tensor<64xi1>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v captures(%document_id, %allowed : tensor<16384xi32>, tensor<64xi1>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %0: tensor<16384xi32>, %a: tensor<64xi1>):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index, %document_id_1: tensor<16384xi32>, %allowed_1: tensor<64xi1>):
    %1 = tensor.extract %document_id_1[%q_idx_1] : tensor<16384xi32>
    %2 = arith.index_cast %1 : i32 to index
    %3 = tensor.extract %allowed_1[%2] {attn.guard = array<i64: 0>, attn.guard_report} : tensor<64xi1>
    attn.yield %3 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %m: f32, %l: f32, %document_id_2: tensor<16384xi32>, %a_2: tensor<64xi1>):
    %log2e = arith.constant 1.44269502 : f32
    %score2 = arith.mulf %score_1, %log2e : f32
    %tile_max = attn.row_max %score2 : f32
    %m_new = arith.maxnumf %m, %tile_max : f32
    %neg_inf = arith.constant 0xff800000 : f32
    %zero = arith.constant 0.000000e+00 : f32
    %all_masked = arith.cmpf oeq, %m_new, %neg_inf : f32
    %m_safe = arith.select %all_masked, %zero, %m_new : f32
    %shifted = arith.subf %score2, %m_safe : f32
    %p = math.exp2 %shifted : f32
    %m_diff = arith.subf %m, %m_safe : f32
    %alpha = math.exp2 %m_diff : f32
    %l_scaled = arith.mulf %l, %alpha : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l_scaled, %tile_sum : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %m_1: f32, %l_1: f32, %document_id_3: tensor<16384xi32>, %a_3: tensor<64xi1>):
    %zero_1 = arith.constant 0.000000e+00 : f32
    %one = arith.constant 1.000000e+00 : f32
    %ln2 = arith.constant 0.693147182 : f32
    %empty_row = arith.cmpf oeq, %l_1, %zero_1 : f32
    %l_safe = arith.select %empty_row, %one, %l_1 : f32
    %out_1 = arith.divf %acc, %l_safe : f32
    %m_nat = arith.mulf %m_1, %ln2 : f32
    %log_l = math.log %l_1 : f32
    %lse_1 = arith.addf %m_nat, %log_l : f32
    attn.yield %out_1, %lse_1 : f32, f32
  } classify {
  } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime", tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// block_mask "none": the block table needs only the sequence bound; no classify
// region, no mask evaluation.

// CHECK-LABEL: tile.func @no_mask_block_table(
// CHECK-SAME:      %{{.*}}: !tile.ptr<i32>, %[[SEQ_Q:.*]]: i32, %[[SEQ_KV:.*]]: i32, %{{.*}}: i32, %{{.*}}: i32) constexprs {BLOCK_M = 64, BLOCK_N = 32} {
// CHECK:         %[[PID_N:.*]] = tile.program_id 1
// CHECK:         %[[KV_LO:.*]] = arith.muli %[[PID_N]], %{{.*}} : i32
// CHECK-NEXT:    %[[KV_END:.*]] = arith.addi %[[KV_LO]], %{{.*}} : i32
// CHECK:         %[[IN_BOUNDS:.*]] = tile.cmpi sle, %[[KV_END]], %[[SEQ_KV]] : i32
// CHECK-NEXT:    %[[ANY:.*]] = tile.cmpi slt, %[[KV_LO]], %[[SEQ_KV]] {{.*}}: i32
// CHECK-NOT:     tile.load
// CHECK:         tile.store
// CHECK-LABEL: tile.func @no_mask_fwd(
// CHECK-SAME:      constexprs {BLOCK_M = 64, BLOCK_N = 32, HEAD_DIM = 64, HEAD_DIM_V = 64}
// CHECK:         } {attnc.comment = "full key blocks"}
// CHECK:         } {attnc.comment = "part key blocks"}

func.func @no_mask(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "none", tile = #attn.tile<64x32>} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// Run before attn-tile: no tile sizes yet.
func.func @untiled(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "none"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}
// CHECK: {{^}}convert-attn-to-tile requires tile sizes; run attn-tile first

// -----

// Run before attn-block-mask.
func.func @unclassified(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, tile = #attn.tile<64x32>} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}
// CHECK: {{^}}convert-attn-to-tile requires block_mask; run attn-block-mask first

// -----

// The logical chain must be fused first.
func.func @unfused(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>) -> tensor<1x4x16x16xf32> {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  func.return %s : tensor<1x4x16x16xf32>
}
// CHECK: {{^}}convert-attn-to-tile cannot lower 'attn.qk'; run attn-fuse first

// -----

// One attn.flash per function.
func.func @two(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "none", tile = #attn.tile<64x32>} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  %o2 = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "none", tile = #attn.tile<64x32>} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}
// CHECK: {{^}}convert-attn-to-tile expects one attn.flash per function, but @two has 2

// -----

// A paged KV cache (layout = "paged", pages of 16): no block table; the forward takes the
// lengths, the page table and the page size. A scalar pass over each sequence's key blocks finds
// the first run the classify region keeps whole, which runs unmasked and without a branch; the
// other blocks run masked, skipping those classify finds empty. Keys and values are gathered
// through the page table, one page id per key (pages of 16 hold less than a 128-key block),
// masked outside [0, num_pages).
// CHECK-NOT:   tile.func @paged_block_table
// CHECK-LABEL: tile.func @paged_fwd(
// CHECK-SAME:      %[[LENS:cache_seqlens_ptr]]: !tile.ptr<i32>, %[[TABLE:block_table_ptr]]: !tile.ptr<i32>, %{{.*}}: i32, %{{.*}}: i32, %[[PAGES:num_pages]]: i32) constexprs {BLOCK_M = 128, BLOCK_N = 128, HEAD_DIM = 64, HEAD_DIM_V = 64, PAGE_SIZE = 16} {
// CHECK:         %[[LEN:.*]] = tile.load %{{.*}} : !tile.ptr<i32> -> i32
// CHECK:         %[[K_LEN:.*]] = arith.minsi %{{.*}}, %{{.*}} : i32
// CHECK:         %[[RUN_LO:run_lo]], %[[RUN_HI:run_hi]] = scf.for
// CHECK:           %[[WHOLE:kept_whole]] = arith.andi %all, %{{.*}} : i1
// CHECK:         %[[FOUND:run_found]] = tile.cmpi sge, %[[RUN_LO]]
// CHECK:         scf.for %{{.*}} = %[[FIRST:run_lo_2]] to %[[LAST:run_hi_2]]
// CHECK-NOT:       scf.if
// CHECK-NOT:       in_range
// CHECK:           %[[PAGE:page]] = tile.load %{{.*}} : tensor<128x!tile.ptr<i32>> -> tensor<128xi32>
// CHECK-NOT:       scf.if
// CHECK-NOT:       in_range
// CHECK:           tile.cmpi slt, %[[PAGE]], %{{.*}}
// CHECK-NOT:       scf.if
// CHECK-NOT:       in_range
// CHECK:         %[[BEFORE:blocks_before]] = arith.subi %[[FIRST]]
// CHECK:         scf.for
// CHECK:           %[[ANY:any]] = tile.cmpi sle
// CHECK:           scf.if %[[ANY]]
// CHECK:             %[[MASKED_PAGE:page_1]] = tile.load %{{.*}} mask %{{.*}} other 0 : tensor<128x!tile.ptr<i32>> -> tensor<128xi32>
// CHECK:             tile.cmpi slt, %[[MASKED_PAGE]], %{{.*}}
func.func @paged(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x16x64xbf16>, %v: tensor<?x2x16x64xbf16>, %cache_seqlens: tensor<?xi32>, %block_table: tensor<?x?xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v sequences(%cache_seqlens, %block_table : tensor<?xi32>, tensor<?x?xi32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index):
    %0 = arith.cmpi sge, %q_idx_1, %kv_idx_1 : index
    attn.yield %0 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %1 = arith.mulf %score_1, %cst : f32
    %2 = attn.row_max %1 : f32
    %m_new = arith.maxnumf %m, %2 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %3 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %4 = arith.select %3, %cst_2, %m_new : f32
    %5 = arith.subf %1, %4 : f32
    %p = math.exp2 %5 : f32
    %6 = arith.subf %m, %4 : f32
    %alpha = math.exp2 %6 : f32
    %7 = arith.mulf %l, %alpha : f32
    %8 = attn.row_sum %p : f32
    %l_new = arith.addf %7, %8 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %9 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %10 = arith.select %9, %cst_4, %l_1 : f32
    %11 = arith.divf %cst_4, %10 : f32
    %out_1 = arith.mulf %acc, %11 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %12 = arith.mulf %m_1, %cst_5 : f32
    %13 = math.log %l_1 : f32
    %lse_1 = arith.addf %12, %13 : f32
    attn.yield %out_1, %lse_1 : f32, f32
  } classify {
  ^bb0(%b_4: index, %h_4: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %14 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %14 : index
    %kv_last = arith.subi %kv_hi, %14 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } {layout = "paged", scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64, approx_tanh} : tensor<?x4x?x64xbf16>, tensor<?x2x16x64xbf16>, tensor<?x2x16x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// attn-split's merge region over a KV cache: beside the unsplit forward, the split forward
// (program axis 2 picks a range of each sequence's key blocks; it stores the partial
// accumulator and state) and the combine (merges the splits with the merge region, then
// finalizes once).
// CHECK-LABEL: tile.func @split_fwd(
// CHECK-LABEL: tile.func @split_fwd_split(
// CHECK-SAME:      %[[PART_ACC:part_acc_ptr]]: !tile.ptr<f32>, %{{.*}}: !tile.ptr<f32>, %{{.*}}: !tile.ptr<f32>, %[[ROWS:part_rows]]: i32, %[[SPLITS:num_splits]]: i32)
// CHECK:         %[[SPLIT:split]] = tile.program_id 2
// CHECK:         %[[PER:per_split]] = arith.divsi %{{.*}}, %[[SPLITS]] : i32
// CHECK-NEXT:    %[[FIRST:first_block]] = arith.muli %[[SPLIT]], %[[PER]] : i32
// CHECK:         scf.for %{{.*}} = %[[FIRST]] to %{{.*}}
// CHECK:         arith.muli %b, %num_heads {attnc.comment = "store the split's partial accumulator and state for the combine"}
// CHECK:         %[[ACC_PTRS:.*]] = tile.addptr %[[PART_ACC]], %{{.*}}
// CHECK:         tile.store %[[ACC_PTRS]], %{{.*}} mask %{{.*}} : tensor<128x64x!tile.ptr<f32>>, tensor<128x64xf32>
// CHECK-LABEL: tile.func @split_combine(
// CHECK:         scf.for %{{.*}} = %{{.*}} to %num_splits
// CHECK:           arith.maxnumf
// CHECK:           math.exp2
// CHECK:         } {attnc.comment = "merge the splits"}
// CHECK:         math.log %
func.func @split(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %cache_seqlens: tensor<?xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v sequences(%cache_seqlens : tensor<?xi32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index):
    %0 = arith.cmpi sge, %q_idx_1, %kv_idx_1 : index
    attn.yield %0 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %1 = arith.mulf %score_1, %cst : f32
    %2 = attn.row_max %1 : f32
    %m_new = arith.maxnumf %m, %2 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %3 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %4 = arith.select %3, %cst_2, %m_new : f32
    %5 = arith.subf %1, %4 : f32
    %p = math.exp2 %5 : f32
    %6 = arith.subf %m, %4 : f32
    %alpha = math.exp2 %6 : f32
    %7 = arith.mulf %l, %alpha : f32
    %8 = attn.row_sum %p : f32
    %l_new = arith.addf %7, %8 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %9 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %10 = arith.select %9, %cst_4, %l_1 : f32
    %11 = arith.divf %cst_4, %10 : f32
    %out_1 = arith.mulf %acc, %11 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %12 = arith.mulf %m_1, %cst_5 : f32
    %13 = math.log %l_1 : f32
    %lse_1 = arith.addf %12, %13 : f32
    attn.yield %out_1, %lse_1 : f32, f32
  } classify {
  ^bb0(%b_4: index, %h_4: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %14 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %14 : index
    %kv_last = arith.subi %kv_hi, %14 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } merge {
  ^bb0(%m_a: f32, %l_a: f32, %m_b: f32, %l_b: f32):
    %m_2 = arith.maxnumf %m_a, %m_b : f32
    %15 = arith.constant 0xff800000 : f32
    %16 = arith.cmpf oeq, %m_2, %15 : f32
    %17 = arith.constant 0.000000e+00 : f32
    %m_safe = arith.select %16, %17, %m_2 : f32
    %18 = arith.subf %m_a, %m_safe : f32
    %scale_a = math.exp2 %18 : f32
    %19 = arith.subf %m_b, %m_safe : f32
    %scale_b = math.exp2 %19 : f32
    %20 = arith.mulf %l_a, %scale_a : f32
    %21 = arith.mulf %l_b, %scale_b : f32
    %l_2 = arith.addf %20, %21 : f32
    attn.yield %scale_a, %scale_b, %m_2, %l_2 : f32, f32, f32, f32
  } {layout = "cache", scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64, pack_gqa, approx_tanh} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}
