// RUN: attn-opt %s -p attn-guard-captures --split-input-file --verify-diagnostics | filecheck %s
// RUN: attn-opt %s -p 'attn-guard-captures{report=true}' --split-input-file --verify-diagnostics | filecheck %s --check-prefix=REPORT

// attn-guard-captures marks each tensor.extract of a captured tensor whose index the
// runtime cannot prove in range before the call (an index read from data, one that
// repeats an argument, a division by a non-constant): `attn.guard` lists those
// dimensions, and the kernels mask their loads. Reads the runtime bounds by interval
// arithmetic keep no attribute. With report=true (ATTNC_DEBUG) guarded reads also get
// `attn.guard_report`: the kernels assert them in range.

// Relative positions and a per-head slope: both bounded at every shape, so unguarded.

// CHECK-LABEL: func.func @proved(
// CHECK-NOT:     attn.guard
// CHECK:         func.return

// REPORT-LABEL: func.func @proved(
// REPORT-NOT:     attn.guard
// REPORT:         func.return

func.func @proved(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %slopes: tensor<4xf32>, %rel: tensor<255xf32>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v captures(%slopes, %rel : tensor<4xf32>, tensor<255xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<4xf32>, %rel_1: tensor<255xf32>):
    %s = tensor.extract %slopes_1[%h] : tensor<4xf32>
    %d = arith.subi %q_idx, %kv_idx : index
    %c127 = arith.constant 127 : index
    %i = arith.addi %d, %c127 : index
    %r = tensor.extract %rel_1[%i] : tensor<255xf32>
    %sr = arith.mulf %s, %r : f32
    %t = arith.addf %score, %sr : f32
    attn.yield %t : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<4xf32>, %rel_1: tensor<255xf32>):
    %t = arith.constant true
    attn.yield %t : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32, %slopes_1: tensor<4xf32>, %rel_1: tensor<255xf32>):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32, %slopes_1: tensor<4xf32>, %rel_1: tensor<255xf32>):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// A bias indexed by each key's document: the document id is read from data, so the
// bias read is guarded; the read of `doc` itself is bounded (kv_idx) and is not.

// CHECK-LABEL: func.func @document_bias(
// CHECK:         %[[D:.*]] = tensor.extract %{{.*}}[%{{.*}}] : tensor<128xi64>
// CHECK-NEXT:    %[[I:.*]] = arith.index_cast %[[D]] : i64 to index
// CHECK-NEXT:    %{{.*}} = tensor.extract %{{.*}}[%[[I]]] {attn.guard = array<i64: 0>} : tensor<64xf32>

// REPORT-LABEL: func.func @document_bias(
// REPORT:         %[[D:.*]] = tensor.extract %{{.*}}[%{{.*}}] : tensor<128xi64>
// REPORT-NEXT:    %[[I:.*]] = arith.index_cast %[[D]] : i64 to index
// REPORT-NEXT:    %{{.*}} = tensor.extract %{{.*}}[%[[I]]] {attn.guard = array<i64: 0>, attn.guard_report} : tensor<64xf32>

func.func @document_bias(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %bias: tensor<64xf32>, %doc: tensor<128xi64>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v captures(%bias, %doc : tensor<64xf32>, tensor<128xi64>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
    %d = tensor.extract %doc_1[%kv_idx] : tensor<128xi64>
    %i = arith.index_cast %d : i64 to index
    %x = tensor.extract %bias_1[%i] : tensor<64xf32>
    %t = arith.addf %score, %x : f32
    attn.yield %t : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
    %t = arith.constant true
    attn.yield %t : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
    %out = arith.divf %acc, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// Each region is guarded, one dimension at a time: a table row per head with a
// data-dependent column (only dimension 1 guarded), a mask reading
// `keep[q_idx - q_idx // 2]` (q_idx twice: interval arithmetic would be loose, so
// guarded), and a finalize reading `scales[h // h]` (a division by an argument).

// CHECK-LABEL: func.func @regions(
// CHECK:         tensor.extract %{{.*}}[%{{.*}}, %{{.*}}] {attn.guard = array<i64: 1>} : tensor<4x64xf32>
// CHECK:       } mask_mod {
// CHECK:         tensor.extract %{{.*}}[%{{.*}}] {attn.guard = array<i64: 0>} : tensor<128xi1>
// CHECK:       } finalize {
// CHECK:         tensor.extract %{{.*}}[%{{.*}}] {attn.guard = array<i64: 0>} : tensor<4xf32>

func.func @regions(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %table: tensor<4x64xf32>, %idx: tensor<128xi32>, %keep: tensor<128xi1>, %scales: tensor<4xf32>) -> tensor<1x4x?x64xf16> {
  %o = attn.flash %q, %k, %v captures(%table, %idx, %keep, %scales : tensor<4x64xf32>, tensor<128xi32>, tensor<128xi1>, tensor<4xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %table_1: tensor<4x64xf32>, %idx_1: tensor<128xi32>, %keep_1: tensor<128xi1>, %scales_1: tensor<4xf32>):
    %n = tensor.extract %idx_1[%kv_idx] : tensor<128xi32>
    %i = arith.index_cast %n : i32 to index
    %x = tensor.extract %table_1[%h, %i] : tensor<4x64xf32>
    %t = arith.addf %score, %x : f32
    attn.yield %t : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %table_1: tensor<4x64xf32>, %idx_1: tensor<128xi32>, %keep_1: tensor<128xi1>, %scales_1: tensor<4xf32>):
    %c2 = arith.constant 2 : index
    %half = arith.floordivsi %q_idx, %c2 : index
    %i = arith.subi %q_idx, %half : index
    %kept = tensor.extract %keep_1[%i] : tensor<128xi1>
    attn.yield %kept : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32, %table_1: tensor<4x64xf32>, %idx_1: tensor<128xi32>, %keep_1: tensor<128xi1>, %scales_1: tensor<4xf32>):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32, %table_1: tensor<4x64xf32>, %idx_1: tensor<128xi32>, %keep_1: tensor<128xi1>, %scales_1: tensor<4xf32>):
    %one_head = arith.floordivsi %h, %h : index
    %s = tensor.extract %scales_1[%one_head] : tensor<4xf32>
    %scaled = arith.mulf %acc, %s : f32
    %out = arith.divf %scaled, %l : f32
    attn.yield %out : f32
  } classify {
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}

// -----

// On attn.flash_grad the regions' reads are guarded alike, and `capture_site_guards`
// lists, per capture site, the dimensions of the indices score_mod_grad yields that are
// unproved: the dQ kernel adds the adjoint of bias[doc[kv_idx]] only in range. The
// derived region no longer reads bias, but yields the index it read.

// CHECK-LABEL: func.func @document_bias_grad(
// CHECK:         %{{.*}} = tensor.extract %{{.*}}[%{{.*}}] {attn.guard = array<i64: 0>} : tensor<64xf32>
// CHECK:       } score_mod_grad {
// CHECK:         attn.yield
// CHECK:       } {{{.*}}capture_sites = [0 : i64], block_mask = "none", capture_site_guards = [array<i64: 0>]}

func.func @document_bias_grad(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %out: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xbf16>, %bias: tensor<64xf32>, %doc: tensor<128xi64>) -> (tensor<?x4x?x64xbf16>, tensor<64xf32>) {
  %dq, %dk, %dv, %dbias, %ddoc = attn.flash_grad %q, %k, %v, %out, %dout stat(%lse : tensor<?x4x?xf32>) captures(%bias, %doc : tensor<64xf32>, tensor<128xi64>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
    %d = tensor.extract %doc_1[%kv_idx] : tensor<128xi64>
    %i = arith.index_cast %d : i64 to index
    %0 = tensor.extract %bias_1[%i] : tensor<64xf32>
    %1 = arith.addf %score, %0 : f32
    attn.yield %1 : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>):
    %keep = arith.constant true
    attn.yield %keep : i1
  } score_mod_grad {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<64xf32>, %doc_1: tensor<128xi64>, %grad: f32):
    %d = tensor.extract %doc_1[%kv_idx] : tensor<128xi64>
    %i = arith.index_cast %d : i64 to index
    attn.yield %grad, %grad, %i : f32, f32, index
  } classify {
  } {scale = 1.250000e-01 : f32, probabilities = "softmax", capture_sites = [0 : i64], block_mask = "none"} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<64xf32>, tensor<128xf32>)
  func.return %dq, %dbias : tensor<?x4x?x64xbf16>, tensor<64xf32>
}

// -----

// The logical chain has no attn.flash whose regions to guard.
func.func @unfused(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>) -> tensor<1x4x16x16xf32> {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  func.return %s : tensor<1x4x16x16xf32>
}
// CHECK: {{^}}attn-guard-captures requires fused attention ops; run attn-fuse first
