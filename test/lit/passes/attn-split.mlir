// RUN: attn-opt %s -p attn-split --split-input-file | filecheck %s

// attn-split adds the merge region that lets attention over a KV cache split each
// sequence's keys: two partial states of a row in, the factors that rescale the two
// partial accumulators and the merged state out. It reads the normalizer's form from
// its update region: online softmax merges by its running max, an additive normalizer
// by summing. Dense attention gets no merge region.

// Online softmax in base 2: the larger running max wins, each side rescaled to it, a
// row no split saw guarded to 0.
// CHECK-LABEL: func.func @cache_softmax(
// CHECK:         } merge {
// CHECK-NEXT:    ^bb0(%[[MA:.*]]: f32, %[[LA:.*]]: f32, %[[MB:.*]]: f32, %[[LB:.*]]: f32):
// CHECK-NEXT:      %[[M:.*]] = arith.maxnumf %[[MA]], %[[MB]] : f32
// CHECK:           %[[SAFE:.*]] = arith.select %{{.*}}, %{{.*}}, %[[M]] : f32
// CHECK-NEXT:      %[[DA:.*]] = arith.subf %[[MA]], %[[SAFE]] : f32
// CHECK-NEXT:      %[[SA:.*]] = math.exp2 %[[DA]] : f32
// CHECK-NEXT:      %[[DB:.*]] = arith.subf %[[MB]], %[[SAFE]] : f32
// CHECK-NEXT:      %[[SB:.*]] = math.exp2 %[[DB]] : f32
// CHECK-NEXT:      %[[XA:.*]] = arith.mulf %[[LA]], %[[SA]] : f32
// CHECK-NEXT:      %[[XB:.*]] = arith.mulf %[[LB]], %[[SB]] : f32
// CHECK-NEXT:      %[[L:.*]] = arith.addf %[[XA]], %[[XB]] : f32
// CHECK-NEXT:      attn.yield %[[SA]], %[[SB]], %[[M]], %[[L]] : f32, f32, f32, f32
// CHECK-NEXT:    } {layout = "cache"

// Sigmoid has no state: the partial accumulators add.
// CHECK-LABEL: func.func @cache_sigmoid(
// CHECK:         } merge {
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      attn.yield %[[ONE]], %[[ONE]] : f32, f32
// CHECK-NEXT:    } {layout = "cache"

// Dense attention is not split.
// CHECK-LABEL: func.func @dense_softmax(
// CHECK-NOT:     merge
// CHECK:         func.return

func.func @cache_softmax(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %cache_seqlens: tensor<?xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
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
  } {layout = "cache", scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine"} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

func.func @cache_sigmoid(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %cache_seqlens: tensor<?xi32>) -> tensor<?x4x?x64xbf16> {
  %out = attn.flash %q, %k, %v sequences(%cache_seqlens : tensor<?xi32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b_1: index, %h_1: index, %q_idx_1: index, %kv_idx_1: index):
    %0 = arith.cmpi sge, %q_idx_1, %kv_idx_1 : index
    attn.yield %0 : i1
  } update {
  ^bb0(%score_1: f32, %b_2: index, %h_2: index):
    %cst = arith.constant 5.000000e-01 : f32
    %1 = arith.mulf %score_1, %cst : f32
    %2 = math.tanh %1 : f32
    %3 = arith.mulf %cst, %2 : f32
    %p = arith.addf %cst, %3 : f32
    %cst_1 = arith.constant 1.000000e+00 : f32
    attn.yield %p, %cst_1 : f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_3: index, %h_3: index):
    attn.yield %acc : f32
  } classify {
  ^bb0(%b_4: index, %h_4: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %4 = arith.constant 1 : index
    %q_last = arith.subi %q_hi, %4 : index
    %kv_last = arith.subi %kv_hi, %4 : index
    %any = arith.cmpi sle, %kv_lo, %q_last : index
    %all = arith.cmpi sle, %kv_last, %q_lo : index
    attn.yield %any, %all : i1, i1
  } {layout = "cache", scale = 1.250000e-01 : f32, normalizer = "sigmoid", state = [], init = [], masked_score = 0xff800000 : f32, block_mask = "affine"} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>)
  func.return %out : tensor<?x4x?x64xbf16>
}

// -----

func.func @dense_softmax(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v score_mod {
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
  } {scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine"} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}
