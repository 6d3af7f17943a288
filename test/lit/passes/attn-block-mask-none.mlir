// RUN: attn-opt %s -p attn-block-mask | filecheck %s

// attn-block-mask marks a mask that keeps everything block_mask = "none" and leaves
// classify empty. xDSL stores `true` as the signed i1 value -1, so is_keep_all takes
// any non-zero constant as true.

// CHECK-LABEL: func.func @no_mask(
// CHECK:         } mask_mod {
// CHECK-NEXT:    ^{{.*}}(%{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index):
// CHECK-NEXT:      %[[KEEP:.*]] = arith.constant true
// CHECK-NEXT:      attn.yield %[[KEEP]] : i1
// CHECK:         } classify {
// CHECK-NEXT:    } {{{.*}}block_mask = "none"}

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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32} : tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16>, tensor<1x4x?x64xf16> -> (tensor<1x4x?x64xf16>)
  func.return %o : tensor<1x4x?x64xf16>
}
