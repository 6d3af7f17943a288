// RUN: attn-opt %s -p attn-instrument --split-input-file --verify-diagnostics | filecheck %s --check-prefix=MARK
// RUN: attn-opt %s -p attn-instrument,convert-attn-to-tile --split-input-file --verify-diagnostics | filecheck %s --check-prefix=TILE
// RUN: attn-opt %s -p attn-instrument,convert-attn-to-tile --split-input-file --verify-diagnostics -t triton | filecheck %s --check-prefix=TRITON
// RUN: attn-opt %s -p convert-attn-to-tile --split-input-file --verify-diagnostics -t triton | filecheck %s --check-prefix=PLAIN

// attn-instrument marks each attn.flash `instrument`; convert-attn-to-tile then brackets the
// forward kernel's stages with tile.scope_enter/exit, which the triton target prints as
// triton.profiler.language calls (and imports it). The block-table kernel has no stages;
// without the pass no kernel has a scope.

// MARK:      attn.flash
// MARK:      block_mask = "affine", tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 3 : i64, instrument}

// TILE-LABEL: tile.func @attention_block_table(
// TILE-NOT:     tile.scope_enter
// TILE-LABEL: tile.func @attention_fwd(
// TILE:         scf.for
// TILE:           tile.scope_enter "load_k"
// TILE-NEXT:      %{{.*}} = tile.load
// TILE-NEXT:      tile.scope_exit "load_k"
// TILE-NEXT:      tile.scope_enter "qk"
// TILE:           tile.dot
// TILE:           tile.scope_exit "qk"
// TILE-NEXT:      tile.scope_enter "score_mod" {attnc.comment = "score_mod"}
// TILE:           tile.scope_exit "score_mod"
// TILE-NEXT:      tile.scope_enter "update" {attnc.comment = "normalizer update (softmax)"}
// TILE:           tile.scope_exit "update"
// TILE:           tile.scope_enter "load_v"
// TILE:           tile.scope_exit "load_v"
// TILE-NEXT:      tile.scope_enter "pv"
// TILE:           tile.dot
// TILE:           tile.scope_exit "pv"
// TILE:           tile.scope_enter "mask"
// TILE:           tile.scope_exit "mask"
// TILE:         tile.scope_enter "epilogue"
// TILE:         tile.store
// TILE:         tile.scope_exit "epilogue"
// TILE-NEXT:    tile.return

// TRITON:      import triton.language as tl
// TRITON-NEXT: import triton.profiler.language as pl
// TRITON:      def attention_fwd(
// TRITON:          pl.enter_scope('qk')
// TRITON:          pl.exit_scope('qk')
// TRITON:      pl.exit_scope('epilogue')

// PLAIN-NOT: pl.
// PLAIN-NOT: triton.profiler

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

// Linear attention's chunk kernels are not instrumented yet: a clear refusal.

func.func @linear(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>, %g: tensor<2xf32>) -> tensor<?x2x?x16xf32> {
  %o, %s = attn.recurrence %q, %k, %v gate(%g : tensor<2xf32>) {gate = "head", scale = 0.25 : f32} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return %o : tensor<?x2x?x16xf32>
}
// MARK: {{^}}attn-instrument: linear attention's chunk kernels are not instrumented yet
