// RUN: attn-opt %s -p 'attn-fuse,attn-block-mask,attn-autodiff{captures=1}' | filecheck %s
// RUN: not attn-opt %s -p 'attn-fuse,attn-block-mask,attn-autodiff{captures=2}' 2>&1 | filecheck %s --check-prefix=ERR

// attn-autodiff{captures=...} differentiates with respect to the listed captured
// tensors only (the runtime lists those that require grad). Here score·temp[h] +
// bias[h, q, kv] − bias[0, q, kv] asks for bias only: temp is a constant to the
// derivative, so dscore = grad·temp[h] stays, the temp site (grad·score) is gone,
// and the two bias sites remain (capture_sites = [1, 1]). The gradient result for
// temp is still returned, and stays zero.

// CHECK-LABEL: func.func @twice(
// CHECK:         %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %[[DTEMP:[^ ,]+]], %[[DBIAS:[^ ,]+]] = attn.flash_grad
// CHECK:         } score_mod_grad {
// CHECK-NEXT:    ^{{.*}}(%{{[^:]+}}: f32, %{{[^:]+}}: index, %[[H:[^:]+]]: index, %[[Q:[^:]+]]: index, %[[KV:[^:]+]]: index, %[[TEMP:[^:]+]]: tensor<4xf32>, %{{[^:]+}}: tensor<4x128x128xf32>, %[[G:[^:]+]]: f32):
// CHECK-NEXT:      %[[T:.+]] = tensor.extract %[[TEMP]][%[[H]]] : tensor<4xf32>
// CHECK-NEXT:      %[[C0:.+]] = arith.constant 0 : index
// CHECK-NEXT:      %[[NEG:.+]] = arith.negf %[[G]] : f32
// CHECK-NEXT:      %[[DS:.+]] = arith.mulf %[[G]], %[[T]] : f32
// CHECK-NEXT:      attn.yield %[[DS]], %[[G]], %[[H]], %[[Q]], %[[KV]], %[[NEG]], %[[C0]], %[[Q]], %[[KV]] : f32, f32, index, index, index, f32, index, index, index
// CHECK-NEXT:    } classify {
// CHECK-NEXT:    } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [1 : i64, 1 : i64], block_mask = "none"}
// CHECK-NEXT:    func.return %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %[[DTEMP]], %[[DBIAS]] :

// ERR: attn-autodiff: captures=2 names no captured tensor; attn.flash has 2

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

