// RUN: attn-opt %s -p attn-fuse --split-input-file --verify-diagnostics | filecheck %s

// attn-fuse folds qk -> score_mod -> mask_mod -> online_rowscale -> pv into one
// attn.flash that holds every region. A chain it cannot fuse is an error naming
// the op and the reason.

// The whole chain: ALiBi (captures %slopes) and a causal mask, with the softmax the
// frontend builds.

// CHECK-LABEL: func.func @full_chain(
// CHECK-SAME:      %[[Q:.*]]: tensor<?x4x?x64xbf16>, %[[K:.*]]: tensor<?x2x?x64xbf16>, %[[V:.*]]: tensor<?x2x?x64xbf16>, %[[SLOPES:.*]]: tensor<64xf32>)
// CHECK-NOT:     attn.qk
// CHECK-NEXT:    %[[O:.*]], %[[LSE:.*]] = attn.flash %[[Q]], %[[K]], %[[V]] captures(%[[SLOPES]] : tensor<64xf32>) score_mod {
// CHECK-NEXT:    ^{{.*}}(%[[SCORE:.*]]: f32, %{{.*}}: index, %[[H:.*]]: index, %{{.*}}: index, %{{.*}}: index, %[[SL:.*]]: tensor<64xf32>):
// CHECK-NEXT:      %[[SLOPE:.*]] = tensor.extract %[[SL]][%[[H]]] : tensor<64xf32>
// CHECK:           %[[BIASED:.*]] = arith.addf %[[SCORE]], %{{.*}} : f32
// CHECK-NEXT:      attn.yield %[[BIASED]] : f32
// The mask_mod region takes the fused op's captures too, unread.
// CHECK-NEXT:    } mask_mod {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %[[MQ:.*]]: index, %[[MKV:.*]]: index, %{{.*}}: tensor<64xf32>):
// CHECK-NEXT:      %[[C:.*]] = arith.cmpi sge, %[[MQ]], %[[MKV]] : index
// CHECK-NEXT:      attn.yield %[[C]] : i1
// The normalizer regions take them as well, after the state.
// CHECK-NEXT:    } update {
// CHECK-NEXT:    ^{{.*}}(%[[US:.*]]: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: tensor<64xf32>):
// CHECK-NEXT:      %[[LOG2E:.*]] = arith.constant 1.44269502 : f32
// CHECK-NEXT:      %{{.*}} = arith.mulf %[[US]], %[[LOG2E]] : f32
// CHECK:           attn.row_sum
// CHECK:           attn.yield %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : f32, f32, f32, f32
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^{{.*}}(%[[ACC:.*]]: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: tensor<64xf32>):
// CHECK:           %[[OUT:.*]] = arith.divf %[[ACC]], %{{.*}} : f32
// CHECK:           attn.yield %[[OUT]], %{{.*}} : f32, f32
// The classify region stays empty until attn-block-mask.
// CHECK-NEXT:    } classify {
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
// CHECK-NEXT:    func.return %[[O]], %[[LSE]] : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
// CHECK-NOT:     attn.score_mod
// CHECK-NOT:     attn.mask_mod
// CHECK-NOT:     attn.online_rowscale
// CHECK-NOT:     attn.pv

func.func @full_chain(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %slopes: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
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

// -----

// Neither score_mod nor mask_mod: the fused op gets the identity score_mod and a
// mask_mod that keeps everything.

// CHECK-LABEL: func.func @plain(
// CHECK-SAME:      %[[Q:.*]]: tensor<2x4x128x64xf16>, %[[K:.*]]: tensor<2x4x128x64xf16>, %[[V:.*]]: tensor<2x4x128x64xf16>)
// CHECK-NEXT:    %[[O:.*]], %[[STAT:.*]] = attn.flash %[[Q]], %[[K]], %[[V]] score_mod {
// CHECK-NEXT:    ^{{.*}}(%[[SCORE:.*]]: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index):
// CHECK-NEXT:      attn.yield %[[SCORE]] : f32
// CHECK-NEXT:    } mask_mod {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index):
// CHECK-NEXT:      %[[KEEP:.*]] = arith.constant true
// CHECK-NEXT:      attn.yield %[[KEEP]] : i1
// CHECK-NEXT:    } update {
// CHECK:         } classify {
// CHECK-NEXT:    } {scale = 5.000000e-01 : f32, normalizer = "sum", state = ["l"], init = [0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<2x4x128x64xf16>, tensor<2x4x128x64xf16>, tensor<2x4x128x64xf16> -> (tensor<2x4x128x64xf16>, tensor<2x4x128xf32>)
// CHECK-NEXT:    func.return %[[O]], %[[STAT]]

func.func @plain(%q: tensor<2x4x128x64xf16>, %k: tensor<2x4x128x64xf16>, %v: tensor<2x4x128x64xf16>) -> (tensor<2x4x128x64xf16>, tensor<2x4x128xf32>) {
  %s = attn.qk %q, %k {scale = 0.5 : f32} : tensor<2x4x128x64xf16>, tensor<2x4x128x64xf16> -> tensor<2x4x128x128xf32>
  %p, %stat = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<2x4x128x128xf32> -> (tensor<2x4x128x128xf32>, tensor<2x4x128xf32>)
  %o = attn.pv %p, %v : tensor<2x4x128x128xf32>, tensor<2x4x128x64xf16> -> tensor<2x4x128x64xf16>
  func.return %o, %stat : tensor<2x4x128x64xf16>, tensor<2x4x128xf32>
}

// -----

// Captures of both mods are merged, each tensor once, in first-use order
// (score_mod's first). Each region's block arguments are remapped to the merged
// list, so the mask_mod's %doc_1 (its first capture) becomes the fused op's second.
// The normalizer, which captures nothing, takes the merged list too.

// CHECK-LABEL: func.func @merged_captures(
// CHECK-SAME:      %[[Q:.*]]: tensor<1x4x?x64xf16>, %[[K:.*]]: tensor<1x4x?x64xf16>, %[[V:.*]]: tensor<1x4x?x64xf16>, %[[BIAS:.*]]: tensor<4xf32>, %[[DOC:.*]]: tensor<4096xi32>)
// CHECK-NEXT:    attn.flash %[[Q]], %[[K]], %[[V]] captures(%[[BIAS]], %[[DOC]] : tensor<4xf32>, tensor<4096xi32>) score_mod {
// CHECK-NEXT:    ^{{.*}}(%[[SCORE:.*]]: f32, %{{.*}}: index, %[[H:.*]]: index, %{{.*}}: index, %{{.*}}: index, %[[SB:.*]]: tensor<4xf32>, %{{.*}}: tensor<4096xi32>):
// CHECK-NEXT:      %[[X:.*]] = tensor.extract %[[SB]][%[[H]]] : tensor<4xf32>
// CHECK-NEXT:      %[[R:.*]] = arith.addf %[[SCORE]], %[[X]] : f32
// CHECK-NEXT:      attn.yield %[[R]] : f32
// CHECK-NEXT:    } mask_mod {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %[[MH:.*]]: index, %[[MQ:.*]]: index, %[[MKV:.*]]: index, %[[MB:.*]]: tensor<4xf32>, %[[MD:.*]]: tensor<4096xi32>):
// CHECK-NEXT:      %[[DQ:.*]] = tensor.extract %[[MD]][%[[MQ]]] : tensor<4096xi32>
// CHECK-NEXT:      %[[DKV:.*]] = tensor.extract %[[MD]][%[[MKV]]] : tensor<4096xi32>
// CHECK-NEXT:      %[[SAME:.*]] = arith.cmpi eq, %[[DQ]], %[[DKV]] : i32
// CHECK-NEXT:      %[[B:.*]] = tensor.extract %[[MB]][%[[MH]]] : tensor<4xf32>
// CHECK:           attn.yield
// CHECK-NEXT:    } update {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: tensor<4xf32>, %{{.*}}: tensor<4096xi32>):
// CHECK:         } finalize {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: tensor<4xf32>, %{{.*}}: tensor<4096xi32>):

func.func @merged_captures(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %bias: tensor<4xf32>, %doc: tensor<4096xi32>) -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>) {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> tensor<1x4x?x?xf32>
  %t = attn.score_mod %s captures(%bias : tensor<4xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<4xf32>):
    %x = tensor.extract %bias_1[%h] : tensor<4xf32>
    %r = arith.addf %score, %x : f32
    attn.yield %r : f32
  } : tensor<1x4x?x?xf32> -> tensor<1x4x?x?xf32>
  %keep = attn.mask_mod %t captures(%doc, %bias : tensor<4096xi32>, tensor<4xf32>) {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %doc_1: tensor<4096xi32>, %bias_2: tensor<4xf32>):
    %dq = tensor.extract %doc_1[%q_idx] : tensor<4096xi32>
    %dkv = tensor.extract %doc_1[%kv_idx] : tensor<4096xi32>
    %same = arith.cmpi eq, %dq, %dkv : i32
    %hb = tensor.extract %bias_2[%h] : tensor<4xf32>
    %zero = arith.constant 0.0 : f32
    %on = arith.cmpf ogt, %hb, %zero : f32
    %keep_1 = arith.andi %same, %on : i1
    attn.yield %keep_1 : i1
  } : tensor<1x4x?x?xf32> -> tensor<1x4x?x?xi1>
  %p, %stat = attn.online_rowscale %t mask(%keep : tensor<1x4x?x?xi1>) update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x?xf32> -> (tensor<1x4x?x?xf32>, tensor<1x4x?xf32>)
  %o = attn.pv %p, %v : tensor<1x4x?x?xf32>, tensor<1x4x?x64xf16> -> tensor<1x4x?x64xf16>
  func.return %o, %stat : tensor<1x4x?x64xf16>, tensor<1x4x?xf32>
}

// -----

// The normalizer's captures join the merged list after the mods'. Softmax with a
// per-head temperature and sink: score_mod divides by %temp, and finalize adds
// exp(sink / temp - m) to the row sum, so the normalizer captures (%sinks, %temp)
// and shares %temp with score_mod. The fused op captures (%temp, %sinks); update
// and finalize take both, and finalize's %sinks_1 (its first capture) becomes
// the second.

// CHECK-LABEL: func.func @normalizer_captures(
// CHECK-SAME:      %[[Q:.*]]: tensor<1x4x?x64xf16>, %[[K:.*]]: tensor<1x4x?x64xf16>, %[[V:.*]]: tensor<1x4x?x64xf16>, %[[TEMP:.*]]: tensor<4xf32>, %[[SINKS:.*]]: tensor<4xf32>)
// CHECK-NEXT:    %[[O:.*]], %[[LSE:.*]] = attn.flash %[[Q]], %[[K]], %[[V]] captures(%[[TEMP]], %[[SINKS]] : tensor<4xf32>, tensor<4xf32>) score_mod {
// CHECK-NEXT:    ^{{.*}}(%[[SCORE:.*]]: f32, %{{.*}}: index, %[[H:.*]]: index, %{{.*}}: index, %{{.*}}: index, %[[ST:.*]]: tensor<4xf32>, %{{.*}}: tensor<4xf32>):
// CHECK-NEXT:      %[[T:.*]] = tensor.extract %[[ST]][%[[H]]] : tensor<4xf32>
// CHECK-NEXT:      %{{.*}} = arith.divf %[[SCORE]], %[[T]] : f32
// CHECK:         } mask_mod {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: tensor<4xf32>, %{{.*}}: tensor<4xf32>):
// CHECK:         } update {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: tensor<4xf32>, %{{.*}}: tensor<4xf32>):
// CHECK:           attn.yield %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : f32, f32, f32, f32
// CHECK-NEXT:    } finalize {
// CHECK-NEXT:    ^{{.*}}(%[[ACC:.*]]: f32, %{{.*}}: index, %[[FH:.*]]: index, %[[M:.*]]: f32, %[[L:.*]]: f32, %[[FT:.*]]: tensor<4xf32>, %[[FS:.*]]: tensor<4xf32>):
// CHECK-NEXT:      %[[SINK:.*]] = tensor.extract %[[FS]][%[[FH]]] : tensor<4xf32>
// CHECK-NEXT:      %[[FTEMP:.*]] = tensor.extract %[[FT]][%[[FH]]] : tensor<4xf32>
// CHECK-NEXT:      %[[SINK_LOGIT:.*]] = arith.divf %[[SINK]], %[[FTEMP]] : f32
// CHECK-NEXT:      %[[SINK_SHIFTED:.*]] = arith.subf %[[SINK_LOGIT]], %[[M]] : f32
// CHECK-NEXT:      %[[SINK_P:.*]] = math.exp %[[SINK_SHIFTED]] : f32
// CHECK-NEXT:      %[[TOTAL:.*]] = arith.addf %[[L]], %[[SINK_P]] : f32
// CHECK-NEXT:      %[[OUT:.*]] = arith.divf %[[ACC]], %[[TOTAL]] : f32
// CHECK:           attn.yield %[[OUT]], %{{.*}} : f32, f32
// CHECK-NEXT:    } classify {
// CHECK-NEXT:    } {{{.*}}normalizer = "sinks"{{.*}}}
// CHECK-NEXT:    func.return %[[O]], %[[LSE]]
// CHECK-NOT:     attn.online_rowscale

func.func @normalizer_captures(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %temp: tensor<4xf32>, %sinks: tensor<4xf32>) -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>) {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> tensor<1x4x?x?xf32>
  %t = attn.score_mod %s captures(%temp : tensor<4xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %temp_1: tensor<4xf32>):
    %tau = tensor.extract %temp_1[%h] : tensor<4xf32>
    %r = arith.divf %score, %tau : f32
    attn.yield %r : f32
  } : tensor<1x4x?x?xf32> -> tensor<1x4x?x?xf32>
  %p, %lse = attn.online_rowscale %t captures(%sinks, %temp : tensor<4xf32>, tensor<4xf32>) update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32, %sinks_1: tensor<4xf32>, %temp_2: tensor<4xf32>):
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
  ^bb0(%acc: f32, %b: index, %h: index, %m: f32, %l: f32, %sinks_1: tensor<4xf32>, %temp_2: tensor<4xf32>):
    %sink = tensor.extract %sinks_1[%h] : tensor<4xf32>
    %tau = tensor.extract %temp_2[%h] : tensor<4xf32>
    %sink_logit = arith.divf %sink, %tau : f32
    %sink_shifted = arith.subf %sink_logit, %m : f32
    %sink_p = math.exp %sink_shifted : f32
    %l_total = arith.addf %l, %sink_p : f32
    %out = arith.divf %acc, %l_total : f32
    %log_l = math.log %l_total : f32
    %lse_row = arith.addf %m, %log_l : f32
    attn.yield %out, %lse_row : f32, f32
  } {normalizer = "sinks", state = ["m", "l"], init = [0xff800000 : f32, 0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x?xf32> -> (tensor<1x4x?x?xf32>, tensor<1x4x?xf32>)
  %o = attn.pv %p, %v : tensor<1x4x?x?xf32>, tensor<1x4x?x64xf16> -> tensor<1x4x?x64xf16>
  func.return %o, %lse : tensor<1x4x?x64xf16>, tensor<1x4x?xf32>
}

// -----

// The mask_mod may read the raw scores (before score_mod) too: both are in the chain.

// CHECK-LABEL: func.func @mask_on_raw_scores(
// CHECK:         attn.flash
// CHECK-NOT:     attn.mask_mod

func.func @mask_on_raw_scores(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>, %v: tensor<1x4x16x64xf16>) -> tensor<1x4x16x64xf16> {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  %t = attn.score_mod %s {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    %two = arith.constant 2.0 : f32
    %r = arith.mulf %score, %two : f32
    attn.yield %r : f32
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xf32>
  %keep = attn.mask_mod %s {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xi1>
  %p = attn.online_rowscale %t mask(%keep : tensor<1x4x16x16xi1>) update {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x64xf16> -> tensor<1x4x16x64xf16>
  func.return %o : tensor<1x4x16x64xf16>
}

// -----

// ===== what attn-fuse rejects =====

func.func @probs_not_from_rowscale(%p: tensor<1x4x16x16xf32>, %v: tensor<1x4x16x64xf16>) -> tensor<1x4x16x64xf16> {
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x64xf16> -> tensor<1x4x16x64xf16>
  func.return %o : tensor<1x4x16x64xf16>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.pv': its probabilities do not come from attn.online_rowscale

// -----

// The scores are also returned: the fused op never materializes them.
func.func @scores_extra_use(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>, %v: tensor<1x4x16x64xf16>) -> (tensor<1x4x16x64xf16>, tensor<1x4x16x16xf32>) {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  %p = attn.online_rowscale %s update {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x64xf16> -> tensor<1x4x16x64xf16>
  func.return %o, %s : tensor<1x4x16x64xf16>, tensor<1x4x16x16xf32>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.pv': 'func.return' also reads its attn.qk scores, which the fused op does not materialize

// -----

func.func @probs_extra_use(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>, %v: tensor<1x4x16x64xf16>) -> (tensor<1x4x16x64xf16>, tensor<1x4x16x16xf32>) {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  %p = attn.online_rowscale %s update {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x64xf16> -> tensor<1x4x16x64xf16>
  func.return %o, %p : tensor<1x4x16x64xf16>, tensor<1x4x16x16xf32>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.pv': 'func.return' also reads its probabilities, which the fused op does not materialize

// -----

func.func @mask_extra_use(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>, %v: tensor<1x4x16x64xf16>) -> (tensor<1x4x16x64xf16>, tensor<1x4x16x16xi1>) {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  %keep = attn.mask_mod %s {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xi1>
  %p = attn.online_rowscale %s mask(%keep : tensor<1x4x16x16xi1>) update {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x64xf16> -> tensor<1x4x16x64xf16>
  func.return %o, %keep : tensor<1x4x16x64xf16>, tensor<1x4x16x16xi1>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.pv': 'func.return' also reads its mask, which the fused op does not materialize

// -----

func.func @scores_not_from_qk(%s: tensor<1x4x16x16xf32>, %v: tensor<1x4x16x64xf16>) -> tensor<1x4x16x64xf16> {
  %p = attn.online_rowscale %s update {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x64xf16> -> tensor<1x4x16x64xf16>
  func.return %o : tensor<1x4x16x64xf16>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.pv': its scores do not come from attn.qk

// -----

func.func @mask_not_from_mask_mod(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>, %v: tensor<1x4x16x64xf16>, %keep: tensor<1x4x16x16xi1>) -> tensor<1x4x16x64xf16> {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  %p = attn.online_rowscale %s mask(%keep : tensor<1x4x16x16xi1>) update {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x64xf16> -> tensor<1x4x16x64xf16>
  func.return %o : tensor<1x4x16x64xf16>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.pv': the normalizer's mask does not come from attn.mask_mod

// -----

func.func @mask_from_other_scores(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>, %v: tensor<1x4x16x64xf16>, %other: tensor<1x4x16x16xf32>) -> tensor<1x4x16x64xf16> {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  %keep = attn.mask_mod %other {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xi1>
  %p = attn.online_rowscale %s mask(%keep : tensor<1x4x16x16xi1>) update {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x64xf16> -> tensor<1x4x16x64xf16>
  func.return %o : tensor<1x4x16x64xf16>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.pv': attn.mask_mod reads scores from outside the chain

// -----

// Scores that never reach an attn.pv.
func.func @no_pv(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>) -> tensor<1x4x16x16xf32> {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  func.return %s : tensor<1x4x16x16xf32>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.qk': it is not part of a chain that ends in attn.pv

// -----

// A paged KV cache: attn.sequences views pages as one sequence per batch entry; the fused
// op reads the pages directly and carries the layout and its metadata.
// CHECK-LABEL: func.func @paged(
// CHECK-SAME:      %[[Q:.*]]: tensor<?x4x?x64xbf16>, %[[K:.*]]: tensor<?x2x16x64xbf16>, %[[V:.*]]: tensor<?x2x16x64xbf16>, %[[LENS:.*]]: tensor<?xi32>, %[[TABLE:.*]]: tensor<?x?xi32>)
// CHECK-NOT:     attn.sequences
// CHECK-NEXT:    %{{.*}}, %{{.*}} = attn.flash %[[Q]], %[[K]], %[[V]] sequences(%[[LENS]], %[[TABLE]] : tensor<?xi32>, tensor<?x?xi32>) score_mod {
// CHECK:         {layout = "paged", scale = 1.250000e-01 : f32, normalizer = "sum"
func.func @paged(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x16x64xbf16>, %v: tensor<?x2x16x64xbf16>, %lens: tensor<?xi32>, %table: tensor<?x?xi32>) -> tensor<?x4x?x64xbf16> {
  %qs, %ks, %vs = attn.sequences "paged" %q, %k, %v (%lens, %table : tensor<?xi32>, tensor<?x?xi32>) : tensor<?x4x?x64xbf16>, tensor<?x2x16x64xbf16>, tensor<?x2x16x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  %s = attn.qk %qs, %ks {scale = 0.125 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %p, %l = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %tile_sum = attn.row_sum %score : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %score, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %o = attn.pv %p, %vs : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %o : tensor<?x4x?x64xbf16>
}

// -----

// q is a view of packed sequences but k is not: one op must view all three.
func.func @mixed_views(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %v: tensor<1x2x?x64xbf16>, %cu: tensor<?xi32>) -> tensor<?x4x?x64xbf16> {
  %qs, %ks, %vs = attn.sequences "packed" %q, %k, %v (%cu, %cu : tensor<?xi32>, tensor<?xi32>) : tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  %kk = tensor.cast %k : tensor<1x2x?x64xbf16> to tensor<?x2x?x64xbf16>
  %s = attn.qk %qs, %kk {scale = 0.125 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %p = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index):
    %one = arith.constant 1.0 : f32
    attn.yield %score, %one : f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index):
    attn.yield %acc : f32
  } {normalizer = "identity", state = [], init = [], masked_score = 0.0 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>)
  %o = attn.pv %p, %vs : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %o : tensor<?x4x?x64xbf16>
}
// CHECK: {{^}}attn-fuse cannot fuse 'attn.pv': q, k and v must be the three views of one attn.sequences op

// -----

// A normalizer's own merge (Normalizer.merge, on attn.online_rowscale) moves into attn.flash,
// where attn-split keeps it and convert-attn-to-tile builds split decoding from it.
// CHECK-LABEL: func.func @user_merge(
// CHECK:         } merge {
// CHECK-NEXT:    ^bb0(%[[A:.*]]: f32, %[[B:.*]]: f32):
// CHECK-NEXT:      %[[TOP:.*]] = arith.maximumf %[[A]], %[[B]] : f32
// CHECK:           attn.yield %{{.*}}, %{{.*}}, %[[TOP]] : f32, f32, f32
// CHECK-NEXT:    } {layout = "cache"
func.func @user_merge(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %cache_seqlens: tensor<?xi32>) -> tensor<?x4x?x64xbf16> {
  %q_seq, %k_seq, %v_seq = attn.sequences "cache" %q, %k, %v (%cache_seqlens : tensor<?xi32>) : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  %scores = attn.qk %q_seq, %k_seq {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %probs = attn.online_rowscale %scores update {
  ^bb0(%score: f32, %b: index, %h: index, %top: f32):
    %0 = attn.row_max %score : f32
    %top_new = arith.maximumf %top, %0 : f32
    %cst = arith.constant 1.000000e+00 : f32
    attn.yield %score, %cst, %top_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %top_1: f32):
    %out = arith.divf %acc, %top_1 : f32
    attn.yield %out : f32
  } merge {
  ^bb0(%top_a: f32, %top_b: f32):
    %top_2 = arith.maximumf %top_a, %top_b : f32
    %cst_1 = arith.constant 1.000000e+00 : f32
    attn.yield %cst_1, %cst_1, %top_2 : f32, f32, f32
  } {normalizer = "running_max_scale", state = ["top"], init = [1.000000e+00 : f32], masked_score = 0.000000e+00 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>)
  %out = attn.pv %probs, %v_seq : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out : tensor<?x4x?x64xbf16>
}
