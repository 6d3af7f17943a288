// RUN: attn-opt %s | attn-opt | filecheck %s
// RUN: attn-opt %s --print-op-generic | attn-opt | filecheck %s

// The logical chain as the frontend builds it (ALiBi bias plus a causal mask), and
// the fused attn.flash op with its block_mask, tile and classify region, print in
// the custom syntax and read back, from the custom and from the generic form.

// CHECK-LABEL: func.func @logical_chain(
// CHECK-SAME:      %[[Q:.*]]: tensor<?x4x?x64xbf16>, %[[K:.*]]: tensor<?x2x?x64xbf16>, %[[V:.*]]: tensor<?x2x?x64xbf16>, %[[SLOPES:.*]]: tensor<64xf32>)
// CHECK:         %[[S:.*]] = attn.qk %[[Q]], %[[K]] {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
// CHECK-NEXT:    %[[T:.*]] = attn.score_mod %[[S]] captures(%[[SLOPES]] : tensor<64xf32>) {
// CHECK-NEXT:    ^{{.*}}(%[[SCORE:.*]]: f32, %{{.*}}: index, %[[H:.*]]: index, %[[QI:.*]]: index, %[[KVI:.*]]: index, %[[SL:.*]]: tensor<64xf32>):
// CHECK-NEXT:      %[[SLOPE:.*]] = tensor.extract %[[SL]][%[[H]]] : tensor<64xf32>
// CHECK-NEXT:      %[[DIST:.*]] = arith.subi %[[KVI]], %[[QI]] : index
// CHECK:           %[[BIASED:.*]] = arith.addf %[[SCORE]], %{{.*}} : f32
// CHECK-NEXT:      attn.yield %[[BIASED]] : f32
// CHECK-NEXT:    } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
// CHECK-NEXT:    %[[KEEP:.*]] = attn.mask_mod %[[T]] {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %[[MQ:.*]]: index, %[[MKV:.*]]: index):
// CHECK-NEXT:      %[[C:.*]] = arith.cmpi sge, %[[MQ]], %[[MKV]] : index
// CHECK-NEXT:      attn.yield %[[C]] : i1
// CHECK-NEXT:    } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xi1>
// CHECK-NEXT:    %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[T]] mask(%[[KEEP]] : tensor<?x4x?x?xi1>) update {
// CHECK-NEXT:    ^{{.*}}(%[[US:.*]]: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: f32):
// CHECK-NEXT:      %[[LOG2E:.*]] = arith.constant 1.44269502 : f32
// CHECK-NEXT:      %[[US2:.*]] = arith.mulf %[[US]], %[[LOG2E]] : f32
// CHECK-NEXT:      %{{.*}} = attn.row_max %[[US2]] : f32
// CHECK:           %[[UP:.*]] = math.exp2 %{{.*}} : f32
// CHECK:           %[[TSUM:.*]] = attn.row_sum %[[UP]] : f32
// CHECK-NEXT:      %[[LNEW:.*]] = arith.addf %{{.*}}, %[[TSUM]] : f32
// CHECK-NEXT:      attn.yield %[[UP]], %{{.*}}, %{{.*}}, %[[LNEW]] : f32, f32, f32, f32
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^{{.*}}(%[[ACC:.*]]: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: f32):
// CHECK:           %[[OUT:.*]] = arith.divf %[[ACC]], %{{.*}} : f32
// CHECK:           attn.yield %[[OUT]], %{{.*}} : f32, f32
// CHECK-NEXT:    } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
// CHECK-NEXT:    %[[O:.*]] = attn.pv %[[P]], %[[V]] : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
// CHECK-NEXT:    func.return %[[O]], %[[LSE]] : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>

func.func @logical_chain(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %slopes: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores captures(%slopes : tensor<64xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<64xf32>):
    %slope = tensor.extract %slopes_1[%h] : tensor<64xf32>
    %dist = arith.subi %kv_idx, %q_idx : index
    %dist_i64 = arith.index_cast %dist : index to i64
    %dist_f32 = arith.sitofp %dist_i64 : i64 to f32
    %bias = arith.mulf %slope, %dist_f32 : f32
    %biased = arith.addf %score, %bias : f32
    attn.yield %biased : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %keep = attn.mask_mod %modified {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %causal = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %causal : i1
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xi1>
  %probs, %lse = attn.online_rowscale %modified mask(%keep : tensor<?x4x?x?xi1>) update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %log2e = arith.constant 1.44269502 : f32
    %score2 = arith.mulf %score, %log2e : f32
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
  ^bb0(%acc: f32, %b: index, %h: index, %m: f32, %l: f32):
    %zero = arith.constant 0.000000e+00 : f32
    %one = arith.constant 1.000000e+00 : f32
    %ln2 = arith.constant 0.693147182 : f32
    %empty_row = arith.cmpf oeq, %l, %zero : f32
    %l_safe = arith.select %empty_row, %one, %l : f32
    %out = arith.divf %acc, %l_safe : f32
    %m_nat = arith.mulf %m, %ln2 : f32
    %log_l = math.log %l : f32
    %lse_row = arith.addf %m_nat, %log_l : f32
    attn.yield %out, %lse_row : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// A sigmoid-like normalizer with one state value and no row statistics: the
// result list holds only the probabilities, and finalize yields the accumulator
// as it is.

// CHECK-LABEL: func.func @no_stats(
// CHECK:         %[[P:.*]] = attn.online_rowscale %{{.*}} update {
// CHECK-NEXT:    ^{{.*}}(%[[S:.*]]: f32, %{{.*}}: index, %{{.*}}: index, %[[N:.*]]: f32):
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK:           attn.yield %{{.*}}, %[[ONE]], %[[N]] : f32, f32, f32
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^{{.*}}(%[[ACC:.*]]: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32):
// CHECK-NEXT:      attn.yield %[[ACC]] : f32
// CHECK-NEXT:    } {normalizer = "sigmoid", state = ["n"], init = [0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<2x4x16x16xf32> -> (tensor<2x4x16x16xf32>)
// CHECK-NEXT:    attn.pv %[[P]], %{{.*}} : tensor<2x4x16x16xf32>, tensor<2x4x16x32xf16> -> tensor<2x4x16x32xf16>

func.func @no_stats(%s: tensor<2x4x16x16xf32>, %v: tensor<2x4x16x32xf16>) -> tensor<2x4x16x32xf16> {
  %p = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %n: f32):
    %one = arith.constant 1.000000e+00 : f32
    %neg = arith.negf %score : f32
    %e = math.exp %neg : f32
    %d = arith.addf %one, %e : f32
    %sig = arith.divf %one, %d : f32
    attn.yield %sig, %one, %n : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %n: f32):
    attn.yield %acc : f32
  } {normalizer = "sigmoid", state = ["n"], init = [0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<2x4x16x16xf32> -> (tensor<2x4x16x16xf32>)
  %o = attn.pv %p, %v : tensor<2x4x16x16xf32>, tensor<2x4x16x32xf16> -> tensor<2x4x16x32xf16>
  func.return %o : tensor<2x4x16x32xf16>
}

// A normalizer with a captured tensor, after the mask: softmax with a learned
// per-head sink logit that joins each row's sum in finalize, which reads it at
// %h. Both regions take the captures as trailing block arguments.

// CHECK-LABEL: func.func @rowscale_captures(
// CHECK-SAME:      %[[S:.*]]: tensor<2x4x16x16xf32>, %[[KEEP:.*]]: tensor<2x4x16x16xi1>, %[[SINKS:.*]]: tensor<4xf32>)
// CHECK-NEXT:    %[[P:.*]], %[[LSE:.*]] = attn.online_rowscale %[[S]] mask(%[[KEEP]] : tensor<2x4x16x16xi1>) captures(%[[SINKS]] : tensor<4xf32>) update {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: tensor<4xf32>):
// CHECK:           attn.yield %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : f32, f32, f32, f32
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^{{.*}}(%[[ACC:.*]]: f32, %{{.*}}: index, %[[H:.*]]: index, %[[M:.*]]: f32, %[[L:.*]]: f32, %[[FS:.*]]: tensor<4xf32>):
// CHECK-NEXT:      %[[SINK:.*]] = tensor.extract %[[FS]][%[[H]]] : tensor<4xf32>
// CHECK-NEXT:      %[[SHIFTED:.*]] = arith.subf %[[SINK]], %[[M]] : f32
// CHECK-NEXT:      %[[SINK_P:.*]] = math.exp %[[SHIFTED]] : f32
// CHECK-NEXT:      %[[TOTAL:.*]] = arith.addf %[[L]], %[[SINK_P]] : f32
// CHECK-NEXT:      %[[OUT:.*]] = arith.divf %[[ACC]], %[[TOTAL]] : f32
// CHECK:           attn.yield %[[OUT]], %{{.*}} : f32, f32
// CHECK-NEXT:    } {normalizer = "sinks", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<2x4x16x16xf32> -> (tensor<2x4x16x16xf32>, tensor<2x4x16xf32>)
// CHECK-NEXT:    func.return %[[P]], %[[LSE]] : tensor<2x4x16x16xf32>, tensor<2x4x16xf32>

func.func @rowscale_captures(%s: tensor<2x4x16x16xf32>, %keep: tensor<2x4x16x16xi1>, %sinks: tensor<4xf32>) -> (tensor<2x4x16x16xf32>, tensor<2x4x16xf32>) {
  %p, %lse = attn.online_rowscale %s mask(%keep : tensor<2x4x16x16xi1>) captures(%sinks : tensor<4xf32>) update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32, %sinks_1: tensor<4xf32>):
    %tile_max = attn.row_max %score : f32
    %m_new = arith.maximumf %m, %tile_max : f32
    %shifted = arith.subf %score, %m_new : f32
    %p = math.exp %shifted : f32
    %m_diff = arith.subf %m, %m_new : f32
    %alpha = math.exp %m_diff : f32
    %l_scaled = arith.mulf %l, %alpha : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l_scaled, %tile_sum : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %m: f32, %l: f32, %sinks_1: tensor<4xf32>):
    %sink = tensor.extract %sinks_1[%h] : tensor<4xf32>
    %sink_shifted = arith.subf %sink, %m : f32
    %sink_p = math.exp %sink_shifted : f32
    %l_total = arith.addf %l, %sink_p : f32
    %out = arith.divf %acc, %l_total : f32
    %log_l = math.log %l_total : f32
    %lse_row = arith.addf %m, %log_l : f32
    attn.yield %out, %lse_row : f32, f32
  } {normalizer = "sinks", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<2x4x16x16xf32> -> (tensor<2x4x16x16xf32>, tensor<2x4x16xf32>)
  func.return %p, %lse : tensor<2x4x16x16xf32>, tensor<2x4x16xf32>
}

// The fused form after attn-block-mask and attn-tile: an affine mask with its
// classify region, and the tile sizes as #attn.tile<MxN>.

// CHECK-LABEL: func.func @flash_affine(
// CHECK-SAME:      %[[Q:.*]]: tensor<?x4x?x64xbf16>, %[[K:.*]]: tensor<?x2x?x64xbf16>, %[[V:.*]]: tensor<?x2x?x64xbf16>, %[[SLOPES:.*]]: tensor<64xf32>)
// CHECK-NEXT:    %[[O:.*]], %[[LSE:.*]] = attn.flash %[[Q]], %[[K]], %[[V]] captures(%[[SLOPES]] : tensor<64xf32>) score_mod {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: tensor<64xf32>):
// CHECK:         } mask_mod {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %[[MQ:.*]]: index, %[[MKV:.*]]: index, %{{.*}}: tensor<64xf32>):
// CHECK-NEXT:      %[[C:.*]] = arith.cmpi sge, %[[MQ]], %[[MKV]] : index
// CHECK-NEXT:      attn.yield %[[C]] : i1
// CHECK-NEXT:    } update {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: tensor<64xf32>):
// CHECK:           attn.row_max
// CHECK:           attn.row_sum
// CHECK:         } finalize {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: tensor<64xf32>):
// CHECK:         } classify {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %[[QLO:.*]]: index, %[[QHI:.*]]: index, %[[KVLO:.*]]: index, %[[KVHI:.*]]: index):
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[QLAST:.*]] = arith.subi %[[QHI]], %[[ONE]] : index
// CHECK-NEXT:      %[[KVLAST:.*]] = arith.subi %[[KVHI]], %[[ONE]] : index
// CHECK-NEXT:      %[[ANY:.*]] = arith.cmpi sle, %[[KVLO]], %[[QLAST]] : index
// CHECK-NEXT:      %[[ALL:.*]] = arith.cmpi sle, %[[KVLAST]], %[[QLO]] : index
// CHECK-NEXT:      attn.yield %[[ANY]], %[[ALL]] : i1, i1
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine", tile = #attn.tile<128x64>, num_warps = 8 : i64, num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
// CHECK-NEXT:    func.return %[[O]], %[[LSE]]

func.func @flash_affine(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %slopes: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v captures(%slopes : tensor<64xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<64xf32>):
    %slope = tensor.extract %slopes_1[%h] : tensor<64xf32>
    %dist = arith.subi %kv_idx, %q_idx : index
    %dist_i64 = arith.index_cast %dist : index to i64
    %dist_f32 = arith.sitofp %dist_i64 : i64 to f32
    %bias = arith.mulf %slope, %dist_f32 : f32
    %biased = arith.addf %score, %bias : f32
    attn.yield %biased : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<64xf32>):
    %causal = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %causal : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32, %slopes_2: tensor<64xf32>):
    %log2e = arith.constant 1.44269502 : f32
    %score2 = arith.mulf %score, %log2e : f32
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
  ^bb0(%acc: f32, %b: index, %h: index, %m: f32, %l: f32, %slopes_2: tensor<64xf32>):
    %zero = arith.constant 0.000000e+00 : f32
    %one = arith.constant 1.000000e+00 : f32
    %ln2 = arith.constant 0.693147182 : f32
    %empty_row = arith.cmpf oeq, %l, %zero : f32
    %l_safe = arith.select %empty_row, %one, %l : f32
    %out = arith.divf %acc, %l_safe : f32
    %m_nat = arith.mulf %m, %ln2 : f32
    %log_l = math.log %l : f32
    %lse_row = arith.addf %m_nat, %log_l : f32
    attn.yield %out, %lse_row : f32, f32
  } classify {
  ^bb0(%b: index, %h: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %c1 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %c1 : index
    %kv_last = arith.subi %kv_hi, %c1 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine", tile = #attn.tile<128x64>, num_warps = 8 : i64, num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// block_mask "none" keeps the classify region empty; the tile attribute also reads
// as `<M, N>`.

// CHECK-LABEL: func.func @flash_none(
// CHECK:         %{{.*}}, %{{.*}} = attn.flash %{{.*}}, %{{.*}}, %{{.*}} score_mod {
// CHECK:         } classify {
// CHECK-NEXT:    } {{{.*}}block_mask = "none", tile = #attn.tile<64x32>{{.*}}} : tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16> -> (tensor<1x8x?x128xf16>, tensor<1x8x?xf32>)

func.func @flash_none(%q: tensor<1x8x?x128xf16>, %k: tensor<1x8x?x128xf16>, %v: tensor<1x8x?x128xf16>) -> (tensor<1x8x?x128xf16>, tensor<1x8x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %tile_max = attn.row_max %score : f32
    %m_new = arith.maximumf %m, %tile_max : f32
    %shifted = arith.subf %score, %m_new : f32
    %p = math.exp %shifted : f32
    %m_diff = arith.subf %m, %m_new : f32
    %alpha = math.exp %m_diff : f32
    %l_scaled = arith.mulf %l, %alpha : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l_scaled, %tile_sum : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %m: f32, %l: f32):
    %out = arith.divf %acc, %l : f32
    %log_l = math.log %l : f32
    %lse_row = arith.addf %m, %log_l : f32
    attn.yield %out, %lse_row : f32, f32
  } classify {
  } {scale = 0.088388 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "none", tile = #attn.tile<64, 32>} : tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16> -> (tensor<1x8x?x128xf16>, tensor<1x8x?xf32>)
  func.return %out, %lse : tensor<1x8x?x128xf16>, tensor<1x8x?xf32>
}

// The backward op after attn-tile: one launch per backward kernel.

// CHECK-LABEL: func.func @flash_grad_launch(
// CHECK:         attn.flash_grad %{{.*}} stat(%{{.*}}) score_mod {
// CHECK:         } score_mod_grad {
// CHECK:         } classify {
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none", dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64} :
func.func @flash_grad_launch(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
  %dq, %dk, %dv = attn.flash_grad %q, %k, %v, %o, %dout stat(%lse : tensor<?x4x?xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } score_mod_grad {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %grad: f32):
    attn.yield %grad : f32
  } classify {
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none", dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
}

// A captured tensor read in the normalizer's finalize (a sink) takes its gradient
// through the statistic: the stat_grad region, printed after classify.

// CHECK-LABEL: func.func @flash_grad_stat_grad(
// CHECK:         } classify {
// CHECK-NEXT:    } stat_grad {
// CHECK-NEXT:    ^{{.*}}(%{{[^:]+}}: index, %[[H:[^:]+]]: index, %{{[^:]+}}: f32, %{{[^:]+}}: tensor<4xf32>, %{{[^:]+}}: f32):
// CHECK:           attn.yield %{{.+}}, %[[H]] : f32, index
// CHECK-NEXT:    } {scale = 2.500000e-01 : f32, probabilities = "softmax", capture_sites = [], stat_sites = [0 : i64]} :
func.func @flash_grad_stat_grad(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %o: tensor<?x4x?x16xf32>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x16xf32>, %sinks: tensor<4xf32>) -> (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>) {
  %dq, %dk, %dv, %dsinks = attn.flash_grad %q, %k, %v, %o, %dout stat(%lse : tensor<?x4x?xf32>) captures(%sinks : tensor<4xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %s: tensor<4xf32>):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %s: tensor<4xf32>):
    %keep = arith.constant true
    attn.yield %keep : i1
  } score_mod_grad {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %s: tensor<4xf32>, %grad: f32):
    attn.yield %grad : f32
  } classify {
  } stat_grad {
  ^bb0(%b: index, %h: index, %lse_row: f32, %s: tensor<4xf32>, %grad: f32):
    %sink = tensor.extract %s[%h] : tensor<4xf32>
    %shift = arith.subf %sink, %lse_row : f32
    %weight = math.exp %shift : f32
    %dsink = arith.mulf %grad, %weight : f32
    attn.yield %dsink, %h : f32, index
  } {scale = 0.25 : f32, probabilities = "softmax", capture_sites = [], stat_sites = [0 : i64]} : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>)
  func.return %dq, %dk, %dv, %dsinks : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>
}

// attn.sequences: the packed view, its metadata and types survive printing and parsing.
// CHECK-LABEL: func.func @packed_view(
// CHECK:         %{{.*}}, %{{.*}}, %{{.*}} = attn.sequences "packed" %{{.*}}, %{{.*}}, %{{.*}} (%{{.*}}, %{{.*}} : tensor<?xi32>, tensor<?xi32>) : tensor<1x4x?x64xf16>, tensor<1x2x?x64xf16>, tensor<1x2x?x32xf16> -> tensor<?x4x?x64xf16>, tensor<?x2x?x64xf16>, tensor<?x2x?x32xf16>
func.func @packed_view(%q: tensor<1x4x?x64xf16>, %k: tensor<1x2x?x64xf16>, %v: tensor<1x2x?x32xf16>, %cu_q: tensor<?xi32>, %cu_k: tensor<?xi32>) -> tensor<?x2x?x32xf16> {
  %qs, %ks, %vs = attn.sequences "packed" %q, %k, %v (%cu_q, %cu_k : tensor<?xi32>, tensor<?xi32>) : tensor<1x4x?x64xf16>, tensor<1x2x?x64xf16>, tensor<1x2x?x32xf16> -> tensor<?x4x?x64xf16>, tensor<?x2x?x64xf16>, tensor<?x2x?x32xf16>
  func.return %vs : tensor<?x2x?x32xf16>
}

// attn.flash_grad over packed sequences: the layout and its cu_seqlens operands, between dout and
// the statistic, survive printing and parsing.
// CHECK-LABEL: func.func @packed_grad(
// CHECK:         %{{.*}}, %{{.*}}, %{{.*}} = attn.flash_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} sequences(%{{.*}}, %{{.*}} : tensor<?xi32>, tensor<?xi32>) stat(%{{.*}} : tensor<1x4x?xf32>) score_mod {
// CHECK:         } {scale = 2.500000e-01 : f32, probabilities = "softmax", capture_sites = [], layout = "packed"}
func.func @packed_grad(%q: tensor<1x4x?x16xf32>, %k: tensor<1x2x?x16xf32>, %v: tensor<1x2x?x8xf32>, %o: tensor<1x4x?x8xf32>, %lse: tensor<1x4x?xf32>, %dout: tensor<1x4x?x8xf32>, %cu_q: tensor<?xi32>, %cu_k: tensor<?xi32>) -> (tensor<1x4x?x16xf32>, tensor<1x2x?x16xf32>, tensor<1x2x?x8xf32>) {
  %dq, %dk, %dv = attn.flash_grad %q, %k, %v, %o, %dout sequences(%cu_q, %cu_k : tensor<?xi32>, tensor<?xi32>) stat(%lse : tensor<1x4x?xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } score_mod_grad {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %grad: f32):
    attn.yield %grad : f32
  } classify {
  } {scale = 0.25 : f32, probabilities = "softmax", capture_sites = [], layout = "packed"} : tensor<1x4x?x16xf32>, tensor<1x2x?x16xf32>, tensor<1x2x?x8xf32>, tensor<1x4x?x8xf32>, tensor<1x4x?x8xf32> -> (tensor<1x4x?x16xf32>, tensor<1x2x?x16xf32>, tensor<1x2x?x8xf32>)
  func.return %dq, %dk, %dv : tensor<1x4x?x16xf32>, tensor<1x2x?x16xf32>, tensor<1x2x?x8xf32>
}
