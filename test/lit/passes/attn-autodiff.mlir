// RUN: attn-opt %s -p attn-fuse,attn-block-mask,attn-autodiff --split-input-file --verify-diagnostics | filecheck %s
// RUN: attn-opt %s -p 'attn-fuse,attn-block-mask,attn-autodiff{strict=true}' --split-input-file --verify-diagnostics | filecheck %s --check-prefix=STRICT

// attn-autodiff inserts, after each softmax attn.flash, the attn.flash_grad that
// reads its out and lse, takes the incoming gradient as a new function argument
// %dout, and returns dq, dk, dv and one gradient per captured tensor after the
// function's results. Its score_mod_grad region is score_mod differentiated in
// reverse mode: block arguments those of score_mod plus the incoming gradient; it
// yields dscore, then per read of a float capture (a site) the site's adjoint and
// the indices read. Inputs are `attnc compile <variant> --emit attn` output.

// Softcap, 30·tanh(s/30): dscore = grad·30·(1 − tanh²(s/30))/30; tanh is recomputed,
// the final product is not. The causal mask_mod and its classify region are copied.

// CHECK-LABEL: func.func @softcap(
// CHECK-SAME:    %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
// CHECK:         %[[OUT:[^ ,]+]], %[[LSE:[^ ,]+]] = attn.flash %q, %k, %v score_mod {
// CHECK:         %[[DQ:[^ ,]+]], %[[DK:[^ ,]+]], %[[DV:[^ ,]+]] = attn.flash_grad %q, %k, %v, %[[OUT]], %dout stat(%[[LSE]] : {{[^)]*}}) score_mod {
// CHECK:         } mask_mod {
// CHECK-NEXT:    ^{{.*}}(%{{[^:]+}}: index, %{{[^:]+}}: index, %[[Q:[^:]+]]: index, %[[KV:[^:]+]]: index):
// CHECK-NEXT:      %{{.*}} = arith.cmpi sge, %[[Q]], %[[KV]] : index
// CHECK:         } score_mod_grad {
// CHECK-NEXT:    ^{{.*}}(%[[S:[^:]+]]: f32, %{{[^:]+}}: index, %{{[^:]+}}: index, %{{[^:]+}}: index, %{{[^:]+}}: index, %[[G:[^:]+]]: f32):
// CHECK-NEXT:      %[[C30:.+]] = arith.constant 3.000000e+01 : f32
// CHECK-NEXT:      %[[X:.+]] = arith.divf %[[S]], %[[C30]] : f32
// CHECK-NEXT:      %[[T:.+]] = math.tanh %[[X]] : f32
// CHECK-NEXT:      %[[G30:.+]] = arith.mulf %[[G]], %[[C30]] : f32
// CHECK-NEXT:      %[[ONE:.+]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      %[[T2:.+]] = arith.mulf %[[T]], %[[T]] : f32
// CHECK-NEXT:      %[[SECH2:.+]] = arith.subf %[[ONE]], %[[T2]] : f32
// CHECK-NEXT:      %[[GX:.+]] = arith.mulf %[[G30]], %[[SECH2]] : f32
// CHECK-NEXT:      %[[DS:.+]] = arith.divf %[[GX]], %[[C30]] : f32
// CHECK-NEXT:      attn.yield %[[DS]] : f32
// CHECK-NEXT:    } classify {
// CHECK-NEXT:    ^{{.*}}(%{{[^:]+}}: index, %{{[^:]+}}: index, %{{[^:]+}}: index, %{{[^:]+}}: index, %{{[^:]+}}: index, %{{[^:]+}}: index):
// CHECK:           attn.yield %{{.*}}, %{{.*}} : i1, i1
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [], block_mask = "affine"} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
// CHECK-NEXT:    func.return %[[OUT]], %[[LSE]], %[[DQ]], %[[DK]], %[[DV]] :

func.func @softcap(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    %cst = arith.constant 3.000000e+01 : f32
    %0 = arith.divf %score, %cst : f32
    %1 = math.tanh %0 : f32
    %2 = arith.mulf %cst, %1 : f32
    attn.yield %2 : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %keep = attn.mask_mod %modified {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %0 = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %0 : i1
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xi1>
  %probs, %lse = attn.online_rowscale %modified mask(%keep : tensor<?x4x?x?xi1>) update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %0 = arith.mulf %score, %cst : f32
    %1 = attn.row_max %0 : f32
    %m_new = arith.maxnumf %m, %1 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %2 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %3 = arith.select %2, %cst_2, %m_new : f32
    %4 = arith.subf %0, %3 : f32
    %p = math.exp2 %4 : f32
    %5 = arith.subf %m, %3 : f32
    %alpha = math.exp2 %5 : f32
    %6 = arith.mulf %l, %alpha : f32
    %7 = attn.row_sum %p : f32
    %l_new = arith.addf %6, %7 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %8 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %9 = arith.select %8, %cst_4, %l_1 : f32
    %10 = arith.divf %cst_4, %9 : f32
    %out = arith.mulf %acc, %10 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %11 = arith.mulf %m_1, %cst_5 : f32
    %12 = math.log %l_1 : f32
    %lse_1 = arith.addf %11, %12 : f32
    attn.yield %out, %lse_1 : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// ALiBi, score + slopes[h]·(kv − q): dscore = grad, and one site, slopes[h], with
// adjoint grad·(kv − q); the distance is recomputed from the indices.

// CHECK-LABEL: func.func @alibi(
// CHECK-SAME:    %[[SLOPES:[^:]+]]: tensor<64xf32>, %dout: tensor<?x4x?x64xbf16>) -> ({{.*}}, tensor<64xf32>) {
// CHECK:         %[[DQ:[^ ,]+]], %[[DK:[^ ,]+]], %[[DV:[^ ,]+]], %[[DSLOPES:[^ ,]+]] = attn.flash_grad %q, %k, %v, %{{[^ ,]+}}, %dout stat(%{{[^ ,]+}} : {{[^)]*}}) captures(%[[SLOPES]] : tensor<64xf32>) score_mod {
// CHECK:         } score_mod_grad {
// CHECK-NEXT:    ^{{.*}}(%{{[^:]+}}: f32, %{{[^:]+}}: index, %[[H:[^:]+]]: index, %[[Q:[^:]+]]: index, %[[KV:[^:]+]]: index, %{{[^:]+}}: tensor<64xf32>, %[[G:[^:]+]]: f32):
// CHECK-NEXT:      %[[DIST:.+]] = arith.subi %[[KV]], %[[Q]] : index
// CHECK-NEXT:      %[[DIST64:.+]] = arith.index_cast %[[DIST]] : index to i64
// CHECK-NEXT:      %[[DISTF:.+]] = arith.sitofp %[[DIST64]] : i64 to f32
// CHECK-NEXT:      %[[SITE:.+]] = arith.mulf %[[G]], %[[DISTF]] : f32
// CHECK-NEXT:      attn.yield %[[G]], %[[SITE]], %[[H]] : f32, f32, index
// CHECK-NEXT:    } classify {
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [0 : i64], block_mask = "none"} : {{.*}} -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>)
// CHECK-NEXT:    func.return %{{[^ ,]+}}, %{{[^ ,]+}}, %[[DQ]], %[[DK]], %[[DV]], %[[DSLOPES]] :

func.func @alibi(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %slopes: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores captures(%slopes : tensor<64xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<64xf32>):
    %0 = tensor.extract %slopes_1[%h] : tensor<64xf32>
    %1 = arith.subi %kv_idx, %q_idx : index
    %2 = arith.index_cast %1 : index to i64
    %3 = arith.sitofp %2 : i64 to f32
    %4 = arith.mulf %0, %3 : f32
    %5 = arith.addf %score, %4 : f32
    attn.yield %5 : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %probs, %lse = attn.online_rowscale %modified update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %0 = arith.mulf %score, %cst : f32
    %1 = attn.row_max %0 : f32
    %m_new = arith.maxnumf %m, %1 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %2 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %3 = arith.select %2, %cst_2, %m_new : f32
    %4 = arith.subf %0, %3 : f32
    %p = math.exp2 %4 : f32
    %5 = arith.subf %m, %3 : f32
    %alpha = math.exp2 %5 : f32
    %6 = arith.mulf %l, %alpha : f32
    %7 = attn.row_sum %p : f32
    %l_new = arith.addf %6, %7 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %8 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %9 = arith.select %8, %cst_4, %l_1 : f32
    %10 = arith.divf %cst_4, %9 : f32
    %out = arith.mulf %acc, %10 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %11 = arith.mulf %m_1, %cst_5 : f32
    %12 = math.log %l_1 : f32
    %lse_1 = arith.addf %11, %12 : f32
    attn.yield %out, %lse_1 : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// A captured bias, score + bias[h, q_idx, kv_idx]: both adjoints are the incoming
// gradient itself; nothing is recomputed.

// CHECK-LABEL: func.func @bias(
// CHECK-SAME:    %[[BIAS:[^:]+]]: tensor<4x128x128xf32>, %dout: tensor<?x4x?x64xbf16>) -> ({{.*}}, tensor<4x128x128xf32>) {
// CHECK:         = attn.flash_grad %q, %k, %v, %{{[^ ,]+}}, %dout stat(%{{[^ ,]+}} : {{[^)]*}}) captures(%[[BIAS]] : tensor<4x128x128xf32>) score_mod {
// CHECK:         } score_mod_grad {
// CHECK-NEXT:    ^{{.*}}(%{{[^:]+}}: f32, %{{[^:]+}}: index, %[[H:[^:]+]]: index, %[[Q:[^:]+]]: index, %[[KV:[^:]+]]: index, %{{[^:]+}}: tensor<4x128x128xf32>, %[[G:[^:]+]]: f32):
// CHECK-NEXT:      attn.yield %[[G]], %[[G]], %[[H]], %[[Q]], %[[KV]] : f32, f32, index, index, index
// CHECK-NEXT:    } classify {
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [0 : i64], block_mask = "none"}

func.func @bias(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %bias: tensor<4x128x128xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores captures(%bias : tensor<4x128x128xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<4x128x128xf32>):
    %0 = tensor.extract %bias_1[%h, %q_idx, %kv_idx] : tensor<4x128x128xf32>
    %1 = arith.addf %score, %0 : f32
    attn.yield %1 : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %probs, %lse = attn.online_rowscale %modified update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %0 = arith.mulf %score, %cst : f32
    %1 = attn.row_max %0 : f32
    %m_new = arith.maxnumf %m, %1 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %2 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %3 = arith.select %2, %cst_2, %m_new : f32
    %4 = arith.subf %0, %3 : f32
    %p = math.exp2 %4 : f32
    %5 = arith.subf %m, %3 : f32
    %alpha = math.exp2 %5 : f32
    %6 = arith.mulf %l, %alpha : f32
    %7 = attn.row_sum %p : f32
    %l_new = arith.addf %6, %7 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %8 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %9 = arith.select %8, %cst_4, %l_1 : f32
    %10 = arith.divf %cst_4, %9 : f32
    %out = arith.mulf %acc, %10 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %11 = arith.mulf %m_1, %cst_5 : f32
    %12 = math.log %l_1 : f32
    %lse_1 = arith.addf %11, %12 : f32
    attn.yield %out, %lse_1 : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// score·temp[h] + bias[h, q, kv] − bias[0, q, kv]: three sites, the tensor read twice
// giving two (capture_sites = [0, 1, 1]); the runtime sums their scatters.

// CHECK-LABEL: func.func @twice(
// CHECK:         %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %[[DTEMP:[^ ,]+]], %[[DBIAS:[^ ,]+]] = attn.flash_grad
// CHECK:         } score_mod_grad {
// CHECK-NEXT:    ^{{.*}}(%[[S:[^:]+]]: f32, %{{[^:]+}}: index, %[[H:[^:]+]]: index, %[[Q:[^:]+]]: index, %[[KV:[^:]+]]: index, %[[TEMP:[^:]+]]: tensor<4xf32>, %{{[^:]+}}: tensor<4x128x128xf32>, %[[G:[^:]+]]: f32):
// CHECK-NEXT:      %[[T:.+]] = tensor.extract %[[TEMP]][%[[H]]] : tensor<4xf32>
// CHECK-NEXT:      %[[C0:.+]] = arith.constant 0 : index
// CHECK-NEXT:      %[[NEG:.+]] = arith.negf %[[G]] : f32
// CHECK-NEXT:      %[[DS:.+]] = arith.mulf %[[G]], %[[T]] : f32
// CHECK-NEXT:      %[[DT:.+]] = arith.mulf %[[G]], %[[S]] : f32
// CHECK-NEXT:      attn.yield %[[DS]], %[[DT]], %[[H]], %[[G]], %[[H]], %[[Q]], %[[KV]], %[[NEG]], %[[C0]], %[[Q]], %[[KV]] : f32, f32, index, f32, index, index, index, f32, index, index, index
// CHECK-NEXT:    } classify {
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [0 : i64, 1 : i64, 1 : i64], block_mask = "none"}
// CHECK-NEXT:    func.return %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %[[DTEMP]], %[[DBIAS]] :

func.func @twice(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %temp: tensor<4xf32>, %bias: tensor<4x128x128xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores captures(%temp, %bias : tensor<4xf32>, tensor<4x128x128xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %temp_1: tensor<4xf32>, %bias_1: tensor<4x128x128xf32>):
    %0 = tensor.extract %temp_1[%h] : tensor<4xf32>
    %1 = arith.mulf %score, %0 : f32
    %2 = tensor.extract %bias_1[%h, %q_idx, %kv_idx] : tensor<4x128x128xf32>
    %3 = arith.addf %1, %2 : f32
    %c0 = arith.constant 0 : index
    %4 = tensor.extract %bias_1[%c0, %q_idx, %kv_idx] : tensor<4x128x128xf32>
    %5 = arith.subf %3, %4 : f32
    attn.yield %5 : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %probs, %lse = attn.online_rowscale %modified update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %0 = arith.mulf %score, %cst : f32
    %1 = attn.row_max %0 : f32
    %m_new = arith.maxnumf %m, %1 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %2 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %3 = arith.select %2, %cst_2, %m_new : f32
    %4 = arith.subf %0, %3 : f32
    %p = math.exp2 %4 : f32
    %5 = arith.subf %m, %3 : f32
    %alpha = math.exp2 %5 : f32
    %6 = arith.mulf %l, %alpha : f32
    %7 = attn.row_sum %p : f32
    %l_new = arith.addf %6, %7 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %8 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %9 = arith.select %8, %cst_4, %l_1 : f32
    %10 = arith.divf %cst_4, %9 : f32
    %out = arith.mulf %acc, %10 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %11 = arith.mulf %m_1, %cst_5 : f32
    %12 = math.log %l_1 : f32
    %lse_1 = arith.addf %11, %12 : f32
    attn.yield %out, %lse_1 : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// math.atan has no rule (no frontend function makes one): an error naming the op.

// CHECK: {{^}}attn-autodiff cannot differentiate 'math.atan' in score_mod; a score_mod using it would need a user-given backward

func.func @atan(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    %cst = arith.constant 2.000000e+00 : f32
    %0 = arith.divf %score, %cst : f32
    %1 = math.atan %0 : f32
    attn.yield %1 : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %probs, %lse = attn.online_rowscale %modified update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %0 = arith.mulf %score, %cst : f32
    %1 = attn.row_max %0 : f32
    %m_new = arith.maxnumf %m, %1 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %2 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %3 = arith.select %2, %cst_2, %m_new : f32
    %4 = arith.subf %0, %3 : f32
    %p = math.exp2 %4 : f32
    %5 = arith.subf %m, %3 : f32
    %alpha = math.exp2 %5 : f32
    %6 = arith.mulf %l, %alpha : f32
    %7 = attn.row_sum %p : f32
    %l_new = arith.addf %6, %7 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %8 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %9 = arith.select %8, %cst_4, %l_1 : f32
    %10 = arith.divf %cst_4, %9 : f32
    %out = arith.mulf %acc, %10 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %11 = arith.mulf %m_1, %cst_5 : f32
    %12 = math.log %l_1 : f32
    %lse_1 = arith.addf %11, %12 : f32
    attn.yield %out, %lse_1 : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// A normalizer whose backward cannot be derived (here the finalize divides by a running
// sum it does not return as a statistic, so the backward could not read it): left
// alone, or an error naming the part with strict=true.

// CHECK-LABEL: func.func @sum_normalizer(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
// CHECK-NOT:     attn.flash_grad
// CHECK:         func.return %{{[^ ,]+}} : tensor<1x4x?x64xf16>

// STRICT: {{^}}attn-autodiff cannot derive the backward of normalizer 'sum': its finalize must return the accumulator, or the accumulator divided by one of its statistics; such a normalizer needs a user-given backward

func.func @sum_normalizer(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> tensor<1x4x?x64xf16> {
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// The backward is chosen by what the normalizer's regions compute, not by its name:
// online softmax in base e under another name gets softmax's backward ...

// CHECK-LABEL: func.func @renamed_softmax(
// CHECK:         attn.flash_grad
// CHECK:         } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none"}

func.func @renamed_softmax(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>) {
  %o, %lse = attn.flash %q, %k, %v score_mod {
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
  } {scale = 0.125 : f32, normalizer = "my_attention", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return %o, %lse : tensor<1x4x?x64xf16>, tensor<1x4x?xf32>
}

// -----

// ... and a normalizer named "softmax" whose statistic is off by one (P = exp(t − lse)
// would be wrong by a factor e) has none: left alone, or an error naming the part.

// CHECK-LABEL: func.func @shifted_softmax(
// CHECK-NOT:     attn.flash_grad
// CHECK:         func.return

// STRICT: {{^}}attn-autodiff cannot derive the backward of normalizer 'softmax': its update is online softmax's, but its finalize's output is not Σ_j exp(t_j − lse)·v_j with lse its first statistic; such a normalizer needs a user-given backward

func.func @shifted_softmax(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>) {
  %o, %lse = attn.flash %q, %k, %v score_mod {
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
    %lse_m = arith.addf %m, %log_l : f32
    %one = arith.constant 1.0 : f32
    %lse_row = arith.addf %lse_m, %one : f32
    attn.yield %out, %lse_row : f32, f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return %o, %lse : tensor<1x4x?x64xf16>, tensor<1x4x?xf32>
}

// -----

// gpt-oss's sinks: the sink's logit is read in finalize only, lse = log(Σ exp(t) + exp(sink[h])).
// Softmax's backward holds, and the sink gets its gradient through lse: stat_grad
// recomputes the statistic of a row that sees no key (m = −∞, l = 0; here sink[h]),
// seeds its sweep with grad·exp(lse₀ − lse) and yields the sink's adjoint at [h].

// CHECK-LABEL: func.func @sinks(
// CHECK:         attn.flash_grad %q, %k, %v, %{{[^ ,]+}}, %dout stat(%{{[^ ]+}} : tensor<?x4x?xf32>) captures(%0 : tensor<64xf32>) score_mod {
// CHECK:         } score_mod_grad {
// CHECK:           attn.yield %grad : f32
// CHECK:         } stat_grad {
// CHECK-NEXT:    ^{{.*}}(%{{[^:]+}}: index, %[[H:[^:]+]]: index, %[[LSE:[^:]+]]: f32, %[[SINKS:[^:]+]]: tensor<64xf32>, %[[G:[^:]+]]: f32):
// CHECK-NEXT:      %[[M0:.+]] = arith.constant 0xff800000 : f32
// CHECK-NEXT:      %[[L0:.+]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[SINK:.+]] = tensor.extract %[[SINKS]][%[[H]]] : tensor<64xf32>
// CHECK:           %{{.+}} = arith.maxnumf %[[M0]], %{{.+}} : f32
// CHECK:           %{{.+}} = arith.mulf %[[L0]], %{{.+}} : f32
// CHECK:           %[[LSE0:.+]] = arith.mulf %{{.+}}, %{{.+}} : f32
// CHECK-NEXT:      %[[SHIFT:.+]] = arith.subf %[[LSE0]], %[[LSE]] : f32
// CHECK-NEXT:      %[[W:.+]] = math.exp %[[SHIFT]] : f32
// CHECK-NEXT:      %[[SEED:.+]] = arith.mulf %[[G]], %[[W]] : f32
// CHECK-NEXT:      %{{.+}} = arith.mulf %[[SEED]], %{{.+}} : f32
// CHECK:           %[[DSINK:dsinks]] = arith.mulf %{{.+}}, %{{.+}} : f32
// CHECK-NEXT:      attn.yield %[[DSINK]], %[[H]] : f32, index
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [], block_mask = "affine", stat_sites = [0 : i64]}

func.func @sinks(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %0: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %keep = attn.mask_mod %scores {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %1 = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %1 : i1
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xi1>
  %probs, %lse = attn.online_rowscale %scores mask(%keep : tensor<?x4x?x?xi1>) captures(%0 : tensor<64xf32>) update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32, %sinks: tensor<64xf32>):
    %cst = arith.constant 1.44269502 : f32
    %1 = arith.mulf %score, %cst : f32
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
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32, %sinks_1: tensor<64xf32>):
    %9 = tensor.extract %sinks_1[%h_1] : tensor<64xf32>
    %cst_3 = arith.constant 1.44269502 : f32
    %10 = arith.mulf %9, %cst_3 : f32
    %11 = arith.maxnumf %m_1, %10 : f32
    %12 = arith.subf %m_1, %11 : f32
    %13 = math.exp2 %12 : f32
    %14 = arith.mulf %l_1, %13 : f32
    %15 = arith.subf %10, %11 : f32
    %16 = math.exp2 %15 : f32
    %17 = arith.addf %14, %16 : f32
    %18 = arith.divf %13, %17 : f32
    %out = arith.mulf %acc, %18 : f32
    %19 = math.log2 %17 : f32
    %20 = arith.addf %11, %19 : f32
    %cst_4 = arith.constant 0.693147182 : f32
    %lse_1 = arith.mulf %20, %cst_4 : f32
    attn.yield %out, %lse_1 : f32, f32
  } {normalizer = "softmax_with_sinks", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// Sigmoid (stateless): the backward's weights region is the update's p after the
// score_mod, f(t) = 1 / (1 + 2^(−t·log2 e)) with t = s − log n, differentiated as a
// whole (the chain rule through 1/x and exp2); no statistic is read.

// CHECK-LABEL: func.func @sigmoid(
// CHECK:         %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}} = attn.flash_grad %q, %k, %v, %{{[^ ,]+}}, %dout score_mod {
// CHECK:           %[[P:.+]] = arith.divf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT:      attn.yield %[[P]] : f32
// CHECK:         } score_mod_grad {
// CHECK:           math.exp2
// CHECK:           attn.yield %dscore : f32
// CHECK:         } {scale = 1.250000e-01 : f32, probabilities = "elementwise", capture_sites = [], block_mask = "affine"}

func.func @sigmoid(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    %cst = arith.constant 8.31776619 : f32
    %0 = arith.subf %score, %cst : f32
    attn.yield %0 : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %keep = attn.mask_mod %modified {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %0 = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %0 : i1
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xi1>
  %probs = attn.online_rowscale %modified mask(%keep : tensor<?x4x?x?xi1>) update {
  ^bb0(%score: f32, %b: index, %h: index):
    %cst = arith.constant -1.44269502 : f32
    %0 = arith.mulf %score, %cst : f32
    %1 = math.exp2 %0 : f32
    %cst_1 = arith.constant 1.000000e+00 : f32
    %2 = arith.addf %cst_1, %1 : f32
    %p = arith.divf %cst_1, %2 : f32
    attn.yield %p, %cst_1 : f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index):
    attn.yield %acc : f32
  } {normalizer = "sigmoid", state = [], init = [], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out : tensor<?x4x?x64xbf16>
}

// -----

// Retention: p = t (the decayed score), and the finalize divides by the statistic
// `denominator`, which the normalizer declares held constant (held_constant = [0]), so
// the backward reads it as one (row_scale = "inverse": P = t / d).
// The decay's log2 γ is a capture, so it gets a site.

// CHECK-LABEL: func.func @retention(
// CHECK:         attn.flash_grad %q, %k, %v, %{{[^ ,]+}}, %dout stat(%denominator : tensor<?x4x?xf32>) captures(%log2_gamma : tensor<64xf32>) score_mod {
// CHECK:         } {scale = 1.250000e-01 : f32, probabilities = "elementwise", capture_sites = [0 : i64], row_scale = "inverse", block_mask = "affine"}

func.func @retention(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %log2_gamma: tensor<64xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %scores = attn.qk %q, %k {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores captures(%log2_gamma : tensor<64xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %log2_gamma_1: tensor<64xf32>):
    %0 = arith.subi %q_idx, %kv_idx : index
    %1 = tensor.extract %log2_gamma_1[%h] : tensor<64xf32>
    %2 = arith.index_cast %0 : index to i64
    %3 = arith.sitofp %2 : i64 to f32
    %4 = arith.mulf %3, %1 : f32
    %5 = math.exp2 %4 : f32
    %6 = arith.mulf %score, %5 : f32
    attn.yield %6 : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %keep = attn.mask_mod %modified {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %0 = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %0 : i1
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xi1>
  %probs, %denominator = attn.online_rowscale %modified mask(%keep : tensor<?x4x?x?xi1>) update {
  ^bb0(%score: f32, %b: index, %h: index, %d: f32):
    %0 = math.absf %score : f32
    %1 = attn.row_sum %0 : f32
    %d_new = arith.addf %d, %1 : f32
    %cst = arith.constant 1.000000e+00 : f32
    attn.yield %score, %cst, %d_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %d_1: f32):
    %cst_1 = arith.constant 1.000000e+00 : f32
    %denominator_1 = arith.maxnumf %d_1, %cst_1 : f32
    %2 = arith.divf %cst_1, %denominator_1 : f32
    %out = arith.mulf %acc, %2 : f32
    attn.yield %out, %denominator_1 : f32, f32
  } {normalizer = "retention", state = ["d"], init = [0.000000e+00 : f32], masked_score = 0.000000e+00 : f32, held_constant = [0 : i64]} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %denominator : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// Linear attention's backward is known in closed form: attn-autodiff marks the op,
// and convert-attn-to-tile adds the gradient kernels.

// CHECK-LABEL: func.func @linear
// CHECK:         attn.recurrent_chunk %q, %k, %v {gate = "none", scale = 2.500000e-01 : f32, chunk_size = 64 : i64, backward}
func.func @linear(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o, %s = attn.recurrent_chunk %q, %k, %v {gate = "none", scale = 0.25 : f32, chunk_size = 64 : i64} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> (tensor<?x2x?x16xf32>, tensor<?x2x16x16xf32>)
  func.return %o : tensor<?x2x?x16xf32>
}

// -----

// Packed variable-length sequences: attn.flash_grad takes the forward's layout and its
// cu_seqlens operands, reads q, k, v, out and dout as stored ([1, H, total, D]) and
// differentiates the bias each sequence reads at b.

// CHECK-LABEL: func.func @packed(
// CHECK-SAME:    %[[CU_Q:[^:]+]]: tensor<?xi32>, %[[CU_K:[^:]+]]: tensor<?xi32>, %{{[^:]+}}: tensor<8xf32>, %dout: tensor<?x4x?x64xbf16>)
// CHECK:         %[[OUT:[^ ,]+]], %[[LSE:[^ ,]+]] = attn.flash %q, %k, %v sequences(%[[CU_Q]], %[[CU_K]] : tensor<?xi32>, tensor<?xi32>)
// CHECK:         %[[DQ:[^ ,]+]], %[[DK:[^ ,]+]], %[[DV:[^ ,]+]], %[[DBIAS:[^ ,]+]] = attn.flash_grad %q, %k, %v, %[[OUT]], %dout sequences(%[[CU_Q]], %[[CU_K]] : tensor<?xi32>, tensor<?xi32>) stat(%[[LSE]] : tensor<?x4x?xf32>) captures
// CHECK:         } score_mod_grad {
// CHECK-NEXT:    ^{{.*}}(%{{[^:]+}}: f32, %[[B:[^:]+]]: index, %{{[^:]+}}: index, %{{[^:]+}}: index, %{{[^:]+}}: index, %{{[^:]+}}: tensor<8xf32>, %[[G:[^:]+]]: f32):
// CHECK-NEXT:      attn.yield %[[G]], %[[G]], %[[B]] : f32, f32, index
// CHECK:         } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [0 : i64], block_mask = "affine", layout = "packed"}
// CHECK-NEXT:    func.return %[[OUT]], %[[LSE]], %[[DQ]], %[[DK]], %[[DV]], %[[DBIAS]] :

func.func @packed(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %cu_seqlens_q: tensor<?xi32>, %cu_seqlens_k: tensor<?xi32>, %bias: tensor<8xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %q_seq, %k_seq, %v_seq = attn.sequences "packed" %q, %k, %v (%cu_seqlens_q, %cu_seqlens_k : tensor<?xi32>, tensor<?xi32>) : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  %scores = attn.qk %q_seq, %k_seq {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %modified = attn.score_mod %scores captures(%bias : tensor<8xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<8xf32>):
    %0 = tensor.extract %bias_1[%b] : tensor<8xf32>
    %1 = arith.addf %score, %0 : f32
    attn.yield %1 : f32
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xf32>
  %keep = attn.mask_mod %modified {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %0 = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %0 : i1
  } : tensor<?x4x?x?xf32> -> tensor<?x4x?x?xi1>
  %probs, %lse = attn.online_rowscale %modified mask(%keep : tensor<?x4x?x?xi1>) update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %0 = arith.mulf %score, %cst : f32
    %1 = attn.row_max %0 : f32
    %m_new = arith.maxnumf %m, %1 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %2 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %3 = arith.select %2, %cst_2, %m_new : f32
    %4 = arith.subf %0, %3 : f32
    %p = math.exp2 %4 : f32
    %5 = arith.subf %m, %3 : f32
    %alpha = math.exp2 %5 : f32
    %6 = arith.mulf %l, %alpha : f32
    %7 = attn.row_sum %p : f32
    %l_new = arith.addf %6, %7 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %8 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %9 = arith.select %8, %cst_4, %l_1 : f32
    %10 = arith.divf %cst_4, %9 : f32
    %out = arith.mulf %acc, %10 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %11 = arith.mulf %m_1, %cst_5 : f32
    %12 = math.log %l_1 : f32
    %lse_1 = arith.addf %11, %12 : f32
    attn.yield %out, %lse_1 : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v_seq : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// A paged KV cache has no backward: the pass fails naming it.

// CHECK: {{^}}attn-autodiff cannot differentiate attention over a paged KV cache (layout "paged"); packed sequences and a contiguous cache have gradients

func.func @paged(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x16x64xbf16>, %v: tensor<?x2x16x64xbf16>, %cache_seqlens: tensor<?xi32>, %block_table: tensor<?x?xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %q_seq, %k_seq, %v_seq = attn.sequences "paged" %q, %k, %v (%cache_seqlens, %block_table : tensor<?xi32>, tensor<?x?xi32>) : tensor<?x4x?x64xbf16>, tensor<?x2x16x64xbf16>, tensor<?x2x16x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  %scores = attn.qk %q_seq, %k_seq {scale = 1.250000e-01 : f32} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x?xf32>
  %probs, %lse = attn.online_rowscale %scores update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %cst = arith.constant 1.44269502 : f32
    %0 = arith.mulf %score, %cst : f32
    %1 = attn.row_max %0 : f32
    %m_new = arith.maxnumf %m, %1 : f32
    %cst_1 = arith.constant 0xff800000 : f32
    %2 = arith.cmpf oeq, %m_new, %cst_1 : f32
    %cst_2 = arith.constant 0.000000e+00 : f32
    %3 = arith.select %2, %cst_2, %m_new : f32
    %4 = arith.subf %0, %3 : f32
    %p = math.exp2 %4 : f32
    %5 = arith.subf %m, %3 : f32
    %alpha = math.exp2 %5 : f32
    %6 = arith.mulf %l, %alpha : f32
    %7 = attn.row_sum %p : f32
    %l_new = arith.addf %6, %7 : f32
    attn.yield %p, %alpha, %m_new, %l_new : f32, f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b_1: index, %h_1: index, %m_1: f32, %l_1: f32):
    %cst_3 = arith.constant 0.000000e+00 : f32
    %8 = arith.cmpf oeq, %l_1, %cst_3 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %9 = arith.select %8, %cst_4, %l_1 : f32
    %10 = arith.divf %cst_4, %9 : f32
    %out = arith.mulf %acc, %10 : f32
    %cst_5 = arith.constant 0.693147182 : f32
    %11 = arith.mulf %m_1, %cst_5 : f32
    %12 = math.log %l_1 : f32
    %lse_1 = arith.addf %11, %12 : f32
    attn.yield %out, %lse_1 : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32} : tensor<?x4x?x?xf32> -> (tensor<?x4x?x?xf32>, tensor<?x4x?xf32>)
  %out = attn.pv %probs, %v_seq : tensor<?x4x?x?xf32>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}
