// RUN: attn-opt %s --parsing-diagnostics --verify-diagnostics --split-input-file | filecheck %s

// One case per verifier message of the attn dialect. Each CHECK is anchored at
// the start of a line: it matches the message line printed once per case, not
// the annotation under the offending op.

// Most cases use a one-state normalizer: p = exp(score), l = sum of p over the row,
// out = acc / l.

// ===== attn.qk =====

func.func @qk_head_dim(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x32xf16>) {
  %s = attn.qk %q, %k {scale = 1.0 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x32xf16> -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.qk' op expected k head dim 64, but got 32

// -----

func.func @qk_heads(%q: tensor<1x6x16x64xf16>, %k: tensor<1x4x16x64xf16>) {
  %s = attn.qk %q, %k {scale = 1.0 : f32} : tensor<1x6x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x6x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.qk' op expected query heads (6) to be a multiple of kv heads (4)

// -----

func.func @qk_batch(%q: tensor<2x4x16x64xf16>, %k: tensor<3x4x16x64xf16>) {
  %s = attn.qk %q, %k {scale = 1.0 : f32} : tensor<2x4x16x64xf16>, tensor<3x4x16x64xf16> -> tensor<2x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.qk' op expected k batch 2, but got 3

// -----

func.func @qk_scores_type(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x8x64xf16>) {
  %s = attn.qk %q, %k {scale = 1.0 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x8x64xf16> -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.qk' op expected scores of shape 1x4x16x8xf32, but got tensor<1x4x16x16xf32>

// -----

func.func @qk_rank(%q: tensor<4x16x64xf16>, %k: tensor<1x4x16x64xf16>) {
  %s = attn.qk %q, %k {scale = 1.0 : f32} : tensor<4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.qk' op expected q of rank 4, but got rank 3

// -----

// ===== attn.score_mod =====

func.func @score_mod_signature(%s: tensor<1x4x16x16xf32>) {
  %t = attn.score_mod %s {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index):
    attn.yield %score : f32
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.score_mod' op expected score_mod region arguments (f32, index, index, index, index), but got (f32, index, index, index)

// -----

// A captured tensor is a trailing block argument the region must declare.
func.func @score_mod_capture_missing(%s: tensor<1x4x16x16xf32>, %bias: tensor<4xf32>) {
  %t = attn.score_mod %s captures(%bias : tensor<4xf32>) {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.score_mod' op expected score_mod region arguments (f32, index, index, index, index, tensor<4xf32>), but got (f32, index, index, index, index)

// -----

func.func @score_mod_yield_type(%s: tensor<1x4x16x16xf32>) {
  %t = attn.score_mod %s {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %q_idx : index
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.score_mod' op expected the score_mod region to yield (f32), but got (index)

// -----

// A region must end with attn.yield, not some other dialect's terminator.
func.func @score_mod_other_terminator(%s: tensor<1x4x16x16xf32>) {
  %t = attn.score_mod %s {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    "test.termop"() : () -> ()
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.score_mod' op expected the score_mod region to end with attn.yield

// -----

func.func @score_mod_result_type(%s: tensor<1x4x16x16xf32>) {
  %t = attn.score_mod %s {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x8xf32>
  func.return
}
// CHECK: {{^}}'attn.score_mod' op expected result type tensor<1x4x16x16xf32>, but got tensor<1x4x16x8xf32>

// -----

// ===== attn.mask_mod =====

func.func @mask_mod_yield_i1(%s: tensor<1x4x16x16xf32>) {
  %keep = attn.mask_mod %s {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %d = arith.subi %q_idx, %kv_idx : index
    attn.yield %d : index
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xi1>
  func.return
}
// CHECK: {{^}}'attn.mask_mod' op expected the mask_mod region to yield (i1), but got (index)

// -----

// mask_mod sees the indices only, never the score.
func.func @mask_mod_signature(%s: tensor<1x4x16x16xf32>) {
  %keep = attn.mask_mod %s {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xi1>
  func.return
}
// CHECK: {{^}}'attn.mask_mod' op expected mask_mod region arguments (index, index, index, index), but got (f32, index, index, index, index)

// -----

func.func @mask_mod_result(%s: tensor<1x4x16x16xf32>) {
  %keep = attn.mask_mod %s {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
  } : tensor<1x4x16x16xf32> -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK: {{^}}'attn.mask_mod' op expected result of shape 1x4x16x16xi1, but got tensor<1x4x16x16xf32>

// -----

// ===== attn.online_rowscale =====

// Softmax with m_new = max(m, score) per element instead of max(m, row_max(score)).
func.func @rowscale_state_per_element(%s: tensor<1x4x16x16xf32>) {
  %p, %lse = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %m: f32, %l: f32):
    %m_new = arith.maximumf %m, %score : f32
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
    %lse = arith.addf %m, %log_l : f32
    attn.yield %out, %lse : f32, f32
  } {normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op update region yields 'alpha' per score element; reduce it over the row with attn.row_max or attn.row_sum

// -----

// The running sum adds the scores themselves rather than their row sum.
func.func @rowscale_sum_per_element(%s: tensor<1x4x16x16xf32>) {
  %p, %stat = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %l_new = arith.addf %l, %p : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op update region yields 'l' per score element; reduce it over the row with attn.row_max or attn.row_sum

// -----

func.func @rowscale_init_count(%s: tensor<1x4x16x16xf32>) {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32, 1.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected 1 initial state values, but got 2

// -----

// State names become Python variables in the kernel.

func.func @rowscale_state_name(%s: tensor<1x4x16x16xf32>) {
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
  } {normalizer = "sum", state = ["%l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected state names to be identifiers, but got "%l"

// -----

// update without the (b, h) indices: the signature before they were added.
func.func @rowscale_update_arguments(%s: tensor<1x4x16x16xf32>) {
  %p, %stat = attn.online_rowscale %s update {
  ^bb0(%score: f32, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected update region arguments (f32, index, index, f32), but got (f32, f32)

// -----

// The update forgets alpha.
func.func @rowscale_update_yield(%s: tensor<1x4x16x16xf32>) {
  %p, %stat = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %l_new : f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected the update region to yield (p, alpha, 1 new state values), all f32

// -----

func.func @rowscale_finalize_yield(%s: tensor<1x4x16x16xf32>) {
  %p = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    attn.yield
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected the finalize region to yield (out, row statistics...), all f32

// -----

// finalize starts with the accumulator element, as update starts with the score.
func.func @rowscale_finalize_arguments(%s: tensor<1x4x16x16xf32>) {
  %p, %stat = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %inv_l = arith.divf %one, %l : f32
    attn.yield %inv_l, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected finalize region arguments (f32, index, index, f32), but got (index, index, f32)

// -----

// The op's captures are trailing block arguments of both regions; update omits them.
func.func @rowscale_capture_missing(%s: tensor<1x4x16x16xf32>, %temp: tensor<4xf32>) {
  %p, %stat = attn.online_rowscale %s captures(%temp : tensor<4xf32>) update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32, %temp_1: tensor<4xf32>):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected update region arguments (f32, index, index, f32, tensor<4xf32>), but got (f32, index, index, f32)

// -----

// A row statistic computed from the normalized output, so from %acc: finalize
// runs once per accumulator element, a statistic once per row.
func.func @rowscale_stat_reads_acc(%s: tensor<1x4x16x16xf32>) {
  %p, %lse, %log_out = attn.online_rowscale %s update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    %log_l = math.log %l : f32
    %log_out = math.log %out : f32
    attn.yield %out, %log_l, %log_out : f32, f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op finalize region yields row statistic 1 per accumulator element; row statistics may read only the state

// -----

// finalize yields one row statistic; the op has no result for it.
func.func @rowscale_stats_count(%s: tensor<1x4x16x16xf32>) {
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
    attn.yield %out, %l : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected 1 row statistics results, but got 0

// -----

func.func @rowscale_stats_type(%s: tensor<1x4x16x16xf32>) {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected row statistics of type tensor<1x4x16xf32>, but got tensor<1x4x16x16xf32>

// -----

func.func @rowscale_mask_shape(%s: tensor<1x4x16x16xf32>, %keep: tensor<1x4x16x8xi1>) {
  %p, %stat = attn.online_rowscale %s mask(%keep : tensor<1x4x16x8xi1>) update {
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
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.online_rowscale' op expected mask of shape 1x4x16x16xi1, but got tensor<1x4x16x8xi1>

// -----

// ===== attn.row_max / attn.row_sum =====

// A row reduction in finalize: the state there is already one value per row.
func.func @row_max_in_finalize(%s: tensor<1x4x16x16xf32>) {
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
    %max = attn.row_max %l : f32
    attn.yield %out, %max : f32, f32
  } {normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x16x16xf32> -> (tensor<1x4x16x16xf32>, tensor<1x4x16xf32>)
  func.return
}
// CHECK: {{^}}'attn.row_max' op expected to be inside the update region of a normalizer

// -----

func.func @row_sum_outside(%x: f32) {
  %sum = attn.row_sum %x : f32
  func.return
}
// CHECK: {{^}}'attn.row_sum' op expected to be inside the update region of a normalizer

// -----

// ===== attn.pv =====

func.func @pv_head_dim(%p: tensor<1x4x16x16xf32>, %v: tensor<1x4x16x32xf16>) {
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x16x32xf16> -> tensor<1x4x16x64xf16>
  func.return
}
// CHECK: {{^}}'attn.pv' op expected result of type tensor<1x4x16x32xf16>, but got tensor<1x4x16x64xf16>

// -----

func.func @pv_sequence(%p: tensor<1x4x16x16xf32>, %v: tensor<1x4x8x32xf16>) {
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x4x8x32xf16> -> tensor<1x4x16x32xf16>
  func.return
}
// CHECK: {{^}}'attn.pv' op expected v sequence length 16, but got 8

// -----

func.func @pv_heads(%p: tensor<1x4x16x16xf32>, %v: tensor<1x3x16x32xf16>) {
  %o = attn.pv %p, %v : tensor<1x4x16x16xf32>, tensor<1x3x16x32xf16> -> tensor<1x4x16x32xf16>
  func.return
}
// CHECK: {{^}}'attn.pv' op expected query heads (4) to be a multiple of kv heads (3)

// -----

// ===== attn.flash =====

func.func @flash_k_head_dim(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x32xf16>, %v: tensor<1x4x?x64xf16>) {
  %o, %stat = attn.flash %q, %k, %v score_mod {
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
    attn.yield %out, %l : f32, f32
  } classify {
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x32xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected k head dim 64, but got 32

// -----

func.func @flash_v_heads(%q: tensor<1x4x?x64xf16>, %k: tensor<1x2x?x64xf16>, %v: tensor<1x4x?x64xf16>) {
  %o, %stat = attn.flash %q, %k, %v score_mod {
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
    attn.yield %out, %l : f32, f32
  } classify {
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x2x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected v of 2 heads and sequence length ?, but got tensor<1x4x?x64xf16>

// -----

func.func @flash_out_head_dim(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x32xf16>) {
  %o, %stat = attn.flash %q, %k, %v score_mod {
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
    attn.yield %out, %l : f32, f32
  } classify {
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x32xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected result of type tensor<1x4x?x32xf16>, but got tensor<1x4x?x64xf16>

// -----

// The fused op's mask_mod declares the captures too, even when it does not read them.
func.func @flash_mask_mod_captures(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %bias: tensor<4xf32>) {
  %o, %stat = attn.flash %q, %k, %v captures(%bias : tensor<4xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<4xf32>):
    %x = tensor.extract %bias_1[%h] : tensor<4xf32>
    %r = arith.addf %score, %x : f32
    attn.yield %r : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32, %bias_2: tensor<4xf32>):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32, %bias_3: tensor<4xf32>):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } classify {
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected mask_mod region arguments (index, index, index, index, tensor<4xf32>), but got (index, index, index, index)

// -----

// So does its finalize: the normalizer regions take the fused op's captures.
func.func @flash_finalize_captures(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>, %bias: tensor<4xf32>) {
  %o, %stat = attn.flash %q, %k, %v captures(%bias : tensor<4xf32>) score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_1: tensor<4xf32>):
    %x = tensor.extract %bias_1[%h] : tensor<4xf32>
    %r = arith.addf %score, %x : f32
    attn.yield %r : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index, %bias_2: tensor<4xf32>):
    %keep = arith.constant true
    attn.yield %keep : i1
  } update {
  ^bb0(%score: f32, %b: index, %h: index, %l: f32, %bias_3: tensor<4xf32>):
    %one = arith.constant 1.0 : f32
    %p = math.exp %score : f32
    %tile_sum = attn.row_sum %p : f32
    %l_new = arith.addf %l, %tile_sum : f32
    attn.yield %p, %one, %l_new : f32, f32, f32
  } finalize {
  ^bb0(%acc: f32, %b: index, %h: index, %l: f32):
    %out = arith.divf %acc, %l : f32
    attn.yield %out, %l : f32, f32
  } classify {
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected finalize region arguments (f32, index, index, f32, tensor<4xf32>), but got (f32, index, index, f32)

// -----

func.func @flash_stats_count(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) {
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
    attn.yield %out, %l : f32, f32
  } classify {
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected 1 row statistics results, but got 0

// -----

func.func @flash_block_mask_kind(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) {
  %o, %stat = attn.flash %q, %k, %v score_mod {
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
    attn.yield %out, %l : f32, f32
  } classify {
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "sparse"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected block_mask to be none, affine or runtime, but got sparse

// -----

// An affine block mask needs its classify region.
func.func @flash_affine_without_classify(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) {
  %o, %stat = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
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
    attn.yield %out, %l : f32, f32
  } classify {
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "affine"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected a classify region with one block

// -----

// classify takes the tile's ranges (b, h, q_lo, q_hi, kv_lo, kv_hi), not single indices.
func.func @flash_classify_arguments(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) {
  %o, %stat = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
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
    attn.yield %out, %l : f32, f32
  } classify {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c, %c : i1, i1
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "affine"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected classify region arguments (index, index, index, index, index, index), but got (index, index, index, index)

// -----

// classify yields (any kept, all kept).
func.func @flash_classify_yield(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) {
  %o, %stat = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
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
    attn.yield %out, %l : f32, f32
  } classify {
  ^bb0(%b: index, %h: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %any = arith.cmpi slt, %kv_lo, %q_hi : index
    attn.yield %any : i1
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "affine"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected the classify region to yield (i1, i1), but got (i1)

// -----

// A runtime mask has no symbolic classifier: its block table is computed on the device.
func.func @flash_runtime_with_classify(%q: tensor<1x4x?x64xf16>, %k: tensor<1x4x?x64xf16>, %v: tensor<1x4x?x64xf16>) {
  %o, %stat = attn.flash %q, %k, %v score_mod {
  ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index):
    attn.yield %score : f32
  } mask_mod {
  ^bb0(%b: index, %h: index, %q_idx: index, %kv_idx: index):
    %c = arith.cmpi sge, %q_idx, %kv_idx : index
    attn.yield %c : i1
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
    attn.yield %out, %l : f32, f32
  } classify {
  ^bb0(%b: index, %h: index, %q_lo: index, %q_hi: index, %kv_lo: index, %kv_hi: index):
    %true = arith.constant true
    attn.yield %true, %true : i1, i1
  } {scale = 1.0 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>, tensor<1x4x?xf32>)
  func.return
}
// CHECK: {{^}}'attn.flash' op expected an empty classify region unless block_mask is affine

// -----

// ===== attn.flash_grad =====

func.func @grad_partial_launch(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none", dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
}
// CHECK: {{^}}'attn.flash_grad' op expected dq_tile, dq_num_warps, dq_num_stages, dkdv_tile, dkdv_num_warps and dkdv_num_stages together, but got only dq_tile, dq_num_warps, dq_num_stages

// -----

func.func @grad_packed_needs_both_offsets(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xbf16>, %cu: tensor<?xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
  %dq, %dk, %dv = attn.flash_grad %q, %k, %v, %o, %dout sequences(%cu : tensor<?xi32>) stat(%lse : tensor<?x4x?xf32>) score_mod {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], layout = "packed"} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
}
// CHECK: {{^}}'attn.flash_grad' op expected 2 sequence operands (cu_seqlens_q, cu_seqlens_k), but got 1

// -----

func.func @grad_sequences_without_layout(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xbf16>, %cu: tensor<?xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
  %dq, %dk, %dv = attn.flash_grad %q, %k, %v, %o, %dout sequences(%cu : tensor<?xi32>) stat(%lse : tensor<?x4x?xf32>) score_mod {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = []} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
}
// CHECK: {{^}}'attn.flash_grad' op expected no sequences operands without a layout

// -----

func.func @grad_warps(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none", dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 6 : i64, dkdv_num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
}
// CHECK: {{^}}'attn.flash_grad' op expected dkdv_num_warps to be a power of two, but got 6

// -----

func.func @grad_stages(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none", dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 0 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
}
// CHECK: {{^}}'attn.flash_grad' op expected dq_num_stages of at least 1, but got 0

// -----

func.func @stat_grad_without_sites(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %o: tensor<?x4x?x16xf32>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x16xf32>, %sinks: tensor<4xf32>) -> (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>) {
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
  } {scale = 0.25 : f32, probabilities = "softmax", capture_sites = []} : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>)
  func.return %dq, %dk, %dv, %dsinks : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>
}
// CHECK: {{^}}'attn.flash_grad' op expected stat_grad only with softmax probabilities and stat_sites

// -----

func.func @stat_sites_without_region(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %o: tensor<?x4x?x16xf32>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x16xf32>, %sinks: tensor<4xf32>) -> (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>) {
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
  } {scale = 0.25 : f32, probabilities = "softmax", capture_sites = [], stat_sites = [0 : i64]} : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>)
  func.return %dq, %dk, %dv, %dsinks : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>
}
// CHECK: {{^}}'attn.flash_grad' op expected a stat_grad region with stat_sites

// -----

func.func @stat_grad_yield(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>, %o: tensor<?x4x?x16xf32>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x16xf32>, %sinks: tensor<4xf32>) -> (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>) {
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
    attn.yield %dsink : f32
  } {scale = 0.25 : f32, probabilities = "softmax", capture_sites = [], stat_sites = [0 : i64]} : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32> -> (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>)
  func.return %dq, %dk, %dv, %dsinks : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>, tensor<4xf32>
}
// CHECK: {{^}}'attn.flash_grad' op expected the stat_grad region to yield (f32, index), but got (f32)

// -----

// ===== #attn.tile =====

func.func @tile_not_power_of_two() attributes {tile = #attn.tile<48x64>} {
  func.return
}
// CHECK: {{^}}tile sizes must be powers of two of at least 16, got 48

// -----

func.func @tile_too_small() attributes {tile = #attn.tile<128x8>} {
  func.return
}
// CHECK: {{^}}tile sizes must be powers of two of at least 16, got 8

// -----

func.func @tile_syntax() attributes {tile = #attn.tile<128by64>} {
  func.return
}
// CHECK: expected tile sizes written as <MxN>

// -----

func.func @sequences_unknown_layout(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %lens: tensor<?xi32>) {
  %qs, %ks, %vs = attn.sequences "ragged" %q, %k, %k (%lens : tensor<?xi32>) : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  func.return
}
// CHECK: {{^}}'attn.sequences' op expected layout packed, cache or paged, but got "ragged"

// -----

func.func @sequences_packed_needs_both_offsets(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %cu: tensor<?xi32>) {
  %qs, %ks, %vs = attn.sequences "packed" %q, %k, %k (%cu : tensor<?xi32>) : tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  func.return
}
// CHECK: {{^}}'attn.sequences' op expected 2 sequence operands (cu_seqlens_q, cu_seqlens_k), but got 1

// -----

func.func @sequences_lengths_are_i32(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %lens: tensor<?xi64>) {
  %qs, %ks, %vs = attn.sequences "cache" %q, %k, %k (%lens : tensor<?xi64>) : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  func.return
}
// CHECK: {{^}}'attn.sequences' op expected cache_seqlens of i32, but got i64

// -----

func.func @sequences_packed_batch(%q: tensor<2x4x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %cu: tensor<?xi32>) {
  %qs, %ks, %vs = attn.sequences "packed" %q, %k, %k (%cu, %cu : tensor<?xi32>, tensor<?xi32>) : tensor<2x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  func.return
}
// CHECK: {{^}}'attn.sequences' op expected packed q of batch 1, but got 2

// -----

func.func @sequences_pages_static(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %lens: tensor<?xi32>, %table: tensor<?x?xi32>) {
  %qs, %ks, %vs = attn.sequences "paged" %q, %k, %k (%lens, %table : tensor<?xi32>, tensor<?x?xi32>) : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
  func.return
}
// CHECK: {{^}}'attn.sequences' op expected k/v pages of a static size, but got k of shape ?x2x?x64

// -----

func.func @sequences_view_type(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %lens: tensor<?xi32>) {
  %qs, %ks, %vs = attn.sequences "cache" %q, %k, %k (%lens : tensor<?xi32>) : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?x32xbf16>, tensor<?x2x?x64xbf16>
  func.return
}
// CHECK: {{^}}'attn.sequences' op expected the k view of type tensor<?x2x?x64xbf16>, but got tensor<?x2x?x32xbf16>
