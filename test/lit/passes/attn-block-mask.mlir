// RUN: attn-opt %s -p attn-block-mask --split-input-file --verify-diagnostics | filecheck %s

// attn-block-mask sets block_mask on each attn.flash: "affine" with a classify
// region derived by interval arithmetic when the mask is integer arithmetic on the
// indices, "runtime" (classify left empty) otherwise. The classify region sees a
// tile's ranges [q_lo, q_hi) x [kv_lo, kv_hi) and yields (any kept, all kept).
//
// An attn.flash without a mask (block_mask "none") is in attn-block-mask-none.mlir.

// Causal, q >= kv: some key of the tile is at or before the last query, and
// every key is at or before the first query.

// CHECK-LABEL: func.func @causal(
// CHECK:         } classify {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %[[Q_LO:.*]]: index, %[[Q_HI:.*]]: index, %[[KV_LO:.*]]: index, %[[KV_HI:.*]]: index):
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[Q_LAST:.*]] = arith.subi %[[Q_HI]], %[[ONE]] : index
// CHECK-NEXT:      %[[KV_LAST:.*]] = arith.subi %[[KV_HI]], %[[ONE]] : index
// CHECK-NEXT:      %[[ANY:.*]] = arith.cmpi sle, %[[KV_LO]], %[[Q_LAST]] : index
// CHECK-NEXT:      %[[ALL:.*]] = arith.cmpi sle, %[[KV_LAST]], %[[Q_LO]] : index
// CHECK-NEXT:      attn.yield %[[ANY]], %[[ALL]] : i1, i1
// CHECK-NEXT:    } {{{.*}}block_mask = "affine"}

func.func @causal(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %causal = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %causal : i1
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// Sliding window, (q - kv <= 256) & (q >= kv): q - kv ranges over
// [q_lo - kv_last, q_last - kv_lo]; the window may hold when its low end is within
// 256 and must when its high end is; `&` combines the two predicates pointwise.

// CHECK-LABEL: func.func @sliding_window(
// CHECK:         } classify {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %[[Q_LO:.*]]: index, %[[Q_HI:.*]]: index, %[[KV_LO:.*]]: index, %[[KV_HI:.*]]: index):
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[Q_LAST:.*]] = arith.subi %[[Q_HI]], %[[ONE]] : index
// CHECK-NEXT:      %[[KV_LAST:.*]] = arith.subi %[[KV_HI]], %[[ONE]] : index
// CHECK-NEXT:      %[[DIST_LO:.*]] = arith.subi %[[Q_LO]], %[[KV_LAST]] : index
// CHECK-NEXT:      %[[DIST_HI:.*]] = arith.subi %[[Q_LAST]], %[[KV_LO]] : index
// CHECK-NEXT:      %[[W:.*]] = arith.constant 256 : index
// CHECK-NEXT:      %[[WIN_ANY:.*]] = arith.cmpi sle, %[[DIST_LO]], %[[W]] : index
// CHECK-NEXT:      %[[WIN_ALL:.*]] = arith.cmpi sle, %[[DIST_HI]], %[[W]] : index
// CHECK-NEXT:      %[[CAUSAL_ANY:.*]] = arith.cmpi sle, %[[KV_LO]], %[[Q_LAST]] : index
// CHECK-NEXT:      %[[CAUSAL_ALL:.*]] = arith.cmpi sle, %[[KV_LAST]], %[[Q_LO]] : index
// CHECK-NEXT:      %[[ANY:.*]] = arith.andi %[[WIN_ANY]], %[[CAUSAL_ANY]] : i1
// CHECK-NEXT:      %[[ALL:.*]] = arith.andi %[[WIN_ALL]], %[[CAUSAL_ALL]] : i1
// CHECK-NEXT:      attn.yield %[[ANY]], %[[ALL]] : i1, i1
// CHECK-NEXT:    } {{{.*}}block_mask = "affine"}

func.func @sliding_window(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %dist = arith.subi %q_idx, %kv_idx : index
    %c256 = arith.constant 256 : index
    %in_window = arith.cmpi sle, %dist, %c256 : index
    %causal = arith.cmpi sge, %q_idx, %kv_idx : index
    %keep = arith.andi %in_window, %causal : i1
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// Prefix-LM, (kv < 64) | (q >= kv): `|` combines pointwise too.

// CHECK-LABEL: func.func @prefix_lm(
// CHECK:         } classify {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %[[Q_LO:.*]]: index, %[[Q_HI:.*]]: index, %[[KV_LO:.*]]: index, %[[KV_HI:.*]]: index):
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[Q_LAST:.*]] = arith.subi %[[Q_HI]], %[[ONE]] : index
// CHECK-NEXT:      %[[KV_LAST:.*]] = arith.subi %[[KV_HI]], %[[ONE]] : index
// CHECK-NEXT:      %[[P:.*]] = arith.constant 64 : index
// CHECK-NEXT:      %[[PRE_ANY:.*]] = arith.cmpi slt, %[[KV_LO]], %[[P]] : index
// CHECK-NEXT:      %[[PRE_ALL:.*]] = arith.cmpi slt, %[[KV_LAST]], %[[P]] : index
// CHECK-NEXT:      %[[CAUSAL_ANY:.*]] = arith.cmpi sle, %[[KV_LO]], %[[Q_LAST]] : index
// CHECK-NEXT:      %[[CAUSAL_ALL:.*]] = arith.cmpi sle, %[[KV_LAST]], %[[Q_LO]] : index
// CHECK-NEXT:      %[[ANY:.*]] = arith.ori %[[PRE_ANY]], %[[CAUSAL_ANY]] : i1
// CHECK-NEXT:      %[[ALL:.*]] = arith.ori %[[PRE_ALL]], %[[CAUSAL_ALL]] : i1
// CHECK-NEXT:      attn.yield %[[ANY]], %[[ALL]] : i1, i1
// CHECK-NEXT:    } {{{.*}}block_mask = "affine"}

func.func @prefix_lm(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c64 = arith.constant 64 : index
    %prefix = arith.cmpi slt, %kv_idx, %c64 : index
    %causal = arith.cmpi sge, %q_idx, %kv_idx : index
    %keep = arith.ori %prefix, %causal : i1
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// Chunked, q floordiv 128 == kv floordiv 128: floor division by a positive constant
// maps each range's ends; two ranges may be equal when they overlap and must be
// when both are the same single point.

// CHECK-LABEL: func.func @chunked(
// CHECK:         } classify {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %[[Q_LO:.*]]: index, %[[Q_HI:.*]]: index, %[[KV_LO:.*]]: index, %[[KV_HI:.*]]: index):
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[Q_LAST:.*]] = arith.subi %[[Q_HI]], %[[ONE]] : index
// CHECK-NEXT:      %[[KV_LAST:.*]] = arith.subi %[[KV_HI]], %[[ONE]] : index
// CHECK-NEXT:      %[[C:.*]] = arith.constant 128 : index
// CHECK-NEXT:      %[[QC_LO:.*]] = arith.floordivsi %[[Q_LO]], %[[C]] : index
// CHECK-NEXT:      %[[QC_HI:.*]] = arith.floordivsi %[[Q_LAST]], %[[C]] : index
// CHECK-NEXT:      %[[KC_LO:.*]] = arith.floordivsi %[[KV_LO]], %[[C]] : index
// CHECK-NEXT:      %[[KC_HI:.*]] = arith.floordivsi %[[KV_LAST]], %[[C]] : index
// CHECK-NEXT:      %[[OV1:.*]] = arith.cmpi sle, %[[QC_LO]], %[[KC_HI]] : index
// CHECK-NEXT:      %[[OV2:.*]] = arith.cmpi sle, %[[KC_LO]], %[[QC_HI]] : index
// CHECK-NEXT:      %[[ANY:.*]] = arith.andi %[[OV1]], %[[OV2]] : i1
// CHECK-NEXT:      %[[QPT:.*]] = arith.cmpi eq, %[[QC_LO]], %[[QC_HI]] : index
// CHECK-NEXT:      %[[KPT:.*]] = arith.cmpi eq, %[[KC_LO]], %[[KC_HI]] : index
// CHECK-NEXT:      %[[PTS:.*]] = arith.andi %[[QPT]], %[[KPT]] : i1
// CHECK-NEXT:      %[[SAME:.*]] = arith.cmpi eq, %[[QC_LO]], %[[KC_LO]] : index
// CHECK-NEXT:      %[[ALL:.*]] = arith.andi %[[PTS]], %[[SAME]] : i1
// CHECK-NEXT:      attn.yield %[[ANY]], %[[ALL]] : i1, i1
// CHECK-NEXT:    } {{{.*}}block_mask = "affine"}

func.func @chunked(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c128 = arith.constant 128 : index
    %q_chunk = arith.floordivsi %q_idx, %c128 : index
    %kv_chunk = arith.floordivsi %kv_idx, %c128 : index
    %keep = arith.cmpi eq, %q_chunk, %kv_chunk : index
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// Document mask: reads a captured tensor, so its tiles are classified at run
// time and the classify region stays empty.

// CHECK-LABEL: func.func @document(
// CHECK:         } mask_mod {
// CHECK:           tensor.extract
// CHECK:         } classify {
// CHECK-NEXT:    } {{{.*}}block_mask = "runtime"}

func.func @document(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %doc: tensor<4096xi32>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v captures(%doc : tensor<4096xi32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %doc_1: tensor<4096xi32>):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %doc_1: tensor<4096xi32>):
    %dq = tensor.extract %doc_1[%q_idx] : tensor<4096xi32>
    %dkv = tensor.extract %doc_1[%kv_idx] : tensor<4096xi32>
    %keep = arith.cmpi eq, %dq, %dkv : i32
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32, %doc_2: tensor<4096xi32>):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32, %doc_3: tensor<4096xi32>):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// A captured tensor the mask does not read does not make it runtime.

// CHECK-LABEL: func.func @unread_capture(
// CHECK:         } classify {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index):
// CHECK:         } {{{.*}}block_mask = "affine"}

func.func @unread_capture(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %doc: tensor<4096xi32>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v captures(%doc : tensor<4096xi32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %doc_1: tensor<4096xi32>):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %doc_1: tensor<4096xi32>):
    %causal = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %causal : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32, %doc_2: tensor<4096xi32>):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32, %doc_3: tensor<4096xi32>):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// Float arithmetic on the indices is outside interval arithmetic: runtime.

// CHECK-LABEL: func.func @float_mask(
// CHECK:         } classify {
// CHECK-NEXT:    } {{{.*}}block_mask = "runtime"}

func.func @float_mask(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %qi = arith.index_cast %q_idx : index to i64
    %qf = arith.sitofp %qi : i64 to f32
    %half = arith.constant 5.0e-01 : f32
    %scaled = arith.mulf %qf, %half : f32
    %ki = arith.index_cast %kv_idx : index to i64
    %kf = arith.sitofp %ki : i64 to f32
    %keep = arith.cmpf oge, %scaled, %kf : f32
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// Unsigned comparisons are not classified symbolically: runtime.

// CHECK-LABEL: func.func @unsigned(
// CHECK:         } classify {
// CHECK-NEXT:    } {{{.*}}block_mask = "runtime"}

func.func @unsigned(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.cmpi uge, %q_idx, %kv_idx : index
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// A block_mask already set is kept.

// CHECK-LABEL: func.func @already_classified(
// CHECK:         } classify {
// CHECK-NEXT:    } {{{.*}}block_mask = "runtime"}

func.func @already_classified(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %causal = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %causal : i1
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// The logical chain has no attn.flash to classify.
func.func @unfused(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>) -> tensor<1x4x16x16xf32> {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  func.return %s : tensor<1x4x16x16xf32>
}
// CHECK: {{^}}attn-block-mask requires fused attention ops; run attn-fuse first
