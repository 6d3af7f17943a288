// RUN: attn-opt %s -p attn-tile --split-input-file --verify-diagnostics | filecheck %s --check-prefixes=CHECK,SM90
// RUN: attn-opt %s -p 'attn-tile{target="cuda:80"}' --split-input-file --verify-diagnostics | filecheck %s --check-prefixes=CHECK,SM80
// RUN: attn-opt %s -p 'attn-tile{target="hip:gfx942"}' --split-input-file --verify-diagnostics | filecheck %s --check-prefixes=CHECK,GFX942
// RUN: attn-opt %s -p 'attn-tile{target="cpu"}' --split-input-file --verify-diagnostics | filecheck %s --check-prefixes=CHECK,CPU
// RUN: attn-opt %s -p 'attn-tile{block-m=64 block-n=32}' --split-input-file --verify-diagnostics | filecheck %s --check-prefixes=CHECK,EXPLICIT
// RUN: attn-opt %s -p 'attn-tile{target="cuda:80" block-m=256 block-n=16 num-warps=2 num-stages=5}' --split-input-file --verify-diagnostics | filecheck %s --check-prefixes=CHECK,ALL-SET
// RUN: attn-opt %s -p 'attn-tile{block-n=16}' --split-input-file --verify-diagnostics | filecheck %s --check-prefixes=CHECK,BLOCK-N16

// A tile size that is not a power of two of at least 16, and an unknown target,
// stop attn-opt with an error naming the option.
// RUN: not attn-opt %s -p 'attn-tile{block-m=48}' --split-input-file 2>&1 | filecheck %s --check-prefix=BAD-SIZE
// RUN: not attn-opt %s -p 'attn-tile{block-n=8}' --split-input-file 2>&1 | filecheck %s --check-prefix=SMALL-SIZE
// RUN: not attn-opt %s -p 'attn-tile{target="cuda:75"}' --split-input-file 2>&1 | filecheck %s --check-prefix=UNKNOWN
// BAD-SIZE: attn-opt: error: attn-tile: block-m must be a power of two of at least 16, but got 48
// SMALL-SIZE: attn-opt: error: attn-tile: block-n must be a power of two of at least 16, but got 8
// UNKNOWN: attn-opt: error: attn-tile: unknown target 'cuda:75'; expected one of cuda:90, cuda:80, hip:gfx942, hip:gfx90a, cpu

// attn-tile sets tile = #attn.tile<MxN>, num_warps and num_stages on each
// attn.flash: explicit options win, otherwise the target's defaults for the head
// dimension (up to 64, 128, 256). Other attributes are kept.

// Head dim 64, bf16.

// CHECK-LABEL: func.func @d64(
// SM90: } {{{.*}}block_mask = "runtime", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64{{.*}}}
// SM80: } {{{.*}}block_mask = "runtime", tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 3 : i64{{.*}}}
// GFX942: } {{{.*}}block_mask = "runtime", tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 1 : i64}
// CPU: } {{{.*}}block_mask = "runtime", tile = #attn.tile<32x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// EXPLICIT: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 3 : i64{{.*}}}
// ALL-SET: } {{{.*}}block_mask = "runtime", tile = #attn.tile<256x16>, num_warps = 2 : i64, num_stages = 5 : i64{{.*}}}

func.func @d64(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>, %v: tensor<1x4x?x64xbf16>) -> tensor<1x4x?x64xbf16> {
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16> -> (tensor<1x4x?x64xbf16>)
  func.return %o : tensor<1x4x?x64xbf16>
}

// -----

// Head dim 128.

// CHECK-LABEL: func.func @d128(
// SM90: } {{{.*}}block_mask = "runtime", tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64{{.*}}}
// SM80: } {{{.*}}block_mask = "runtime", tile = #attn.tile<128x64>, num_warps = 8 : i64, num_stages = 3 : i64{{.*}}}
// GFX942: } {{{.*}}block_mask = "runtime", tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 1 : i64}
// CPU: } {{{.*}}block_mask = "runtime", tile = #attn.tile<32x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// EXPLICIT: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 3 : i64{{.*}}}
// ALL-SET: } {{{.*}}block_mask = "runtime", tile = #attn.tile<256x16>, num_warps = 2 : i64, num_stages = 5 : i64{{.*}}}

func.func @d128(%q: tensor<1x4x?x128xbf16>, %k: tensor<1x4x?x128xbf16>, %v: tensor<1x4x?x128xbf16>) -> tensor<1x4x?x128xbf16> {
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x128xbf16>, tensor<1x4x?x128xbf16>, tensor<1x4x?x128xbf16> -> (tensor<1x4x?x128xbf16>)
  func.return %o : tensor<1x4x?x128xbf16>
}

// -----

// Head dim 256.

// CHECK-LABEL: func.func @d256(
// SM90: } {{{.*}}block_mask = "runtime", tile = #attn.tile<128x64>, num_warps = 8 : i64, num_stages = 2 : i64{{.*}}}
// SM80: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 4 : i64, num_stages = 2 : i64{{.*}}}
// GFX942: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// CPU: } {{{.*}}block_mask = "runtime", tile = #attn.tile<32x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// EXPLICIT: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 2 : i64{{.*}}}
// ALL-SET: } {{{.*}}block_mask = "runtime", tile = #attn.tile<256x16>, num_warps = 2 : i64, num_stages = 5 : i64{{.*}}}

func.func @d256(%q: tensor<1x4x?x256xbf16>, %k: tensor<1x4x?x256xbf16>, %v: tensor<1x4x?x256xbf16>) -> tensor<1x4x?x256xbf16> {
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x256xbf16>, tensor<1x4x?x256xbf16>, tensor<1x4x?x256xbf16> -> (tensor<1x4x?x256xbf16>)
  func.return %o : tensor<1x4x?x256xbf16>
}

// -----

// The larger of the two head dims picks the defaults: 96 for q and k, 256 for v.

// CHECK-LABEL: func.func @d96_v256(
// SM90: } {{{.*}}block_mask = "runtime", tile = #attn.tile<128x64>, num_warps = 8 : i64, num_stages = 2 : i64{{.*}}}
// SM80: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 4 : i64, num_stages = 2 : i64{{.*}}}
// GFX942: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// CPU: } {{{.*}}block_mask = "runtime", tile = #attn.tile<32x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// EXPLICIT: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 2 : i64{{.*}}}
// ALL-SET: } {{{.*}}block_mask = "runtime", tile = #attn.tile<256x16>, num_warps = 2 : i64, num_stages = 5 : i64{{.*}}}

func.func @d96_v256(%q: tensor<1x4x?x96xbf16>, %k: tensor<1x4x?x96xbf16>, %v: tensor<1x4x?x256xbf16>) -> tensor<1x4x?x256xbf16> {
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x96xbf16>, tensor<1x4x?x96xbf16>, tensor<1x4x?x256xbf16> -> (tensor<1x4x?x256xbf16>)
  func.return %o : tensor<1x4x?x256xbf16>
}

// -----

// fp32 takes twice the shared memory: the default tiles halve (not below 16) and
// stages drop to at most 2, except on cpu. Explicit sizes are kept as given.

// CHECK-LABEL: func.func @d64_f32(
// SM90: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x64>, num_warps = 8 : i64, num_stages = 2 : i64{{.*}}}
// SM80: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 4 : i64, num_stages = 2 : i64{{.*}}}
// GFX942: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// CPU: } {{{.*}}block_mask = "runtime", tile = #attn.tile<32x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// EXPLICIT: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 2 : i64{{.*}}}
// ALL-SET: } {{{.*}}block_mask = "runtime", tile = #attn.tile<256x16>, num_warps = 2 : i64, num_stages = 5 : i64{{.*}}}

func.func @d64_f32(%q: tensor<1x4x?x64xf32>, %k: tensor<1x4x?x64xf32>, %v: tensor<1x4x?x64xf32>) -> tensor<1x4x?x64xf32> {
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32> -> (tensor<1x4x?x64xf32>)
  func.return %o : tensor<1x4x?x64xf32>
}

// -----

// fp32 with head dim 256 on cuda:80: 64x32 halves to 32x16.

// CHECK-LABEL: func.func @d256_f32(
// SM90: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 2 : i64{{.*}}}
// SM80: } {{{.*}}block_mask = "runtime", tile = #attn.tile<32x16>, num_warps = 4 : i64, num_stages = 2 : i64{{.*}}}
// GFX942: } {{{.*}}block_mask = "runtime", tile = #attn.tile<32x16>, num_warps = 4 : i64, num_stages = 1 : i64}
// CPU: } {{{.*}}block_mask = "runtime", tile = #attn.tile<32x32>, num_warps = 4 : i64, num_stages = 1 : i64}
// EXPLICIT: } {{{.*}}block_mask = "runtime", tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 2 : i64{{.*}}}
// ALL-SET: } {{{.*}}block_mask = "runtime", tile = #attn.tile<256x16>, num_warps = 2 : i64, num_stages = 5 : i64{{.*}}}

func.func @d256_f32(%q: tensor<1x4x?x256xf32>, %k: tensor<1x4x?x256xf32>, %v: tensor<1x4x?x256xf32>) -> tensor<1x4x?x256xf32> {
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
  } {scale = 0.125 : f32, normalizer = "sum", state = ["l"], init = [0.0 : f32], masked_score = 0xff800000 : f32, block_mask = "runtime"} : tensor<1x4x?x256xf32>, tensor<1x4x?x256xf32>, tensor<1x4x?x256xf32> -> (tensor<1x4x?x256xf32>)
  func.return %o : tensor<1x4x?x256xf32>
}

// -----

// attn.flash_grad gets one launch per backward kernel, dQ and dK/dV: on a GPU their
// own tiles, smaller than the forward's (each holds q, k, v, dO and two products);
// on cpu the forward's. Explicit options win for both kernels.

// Head dim 64, bf16: dQ 64x64 with 4 warps, dK/dV 64x128 with 8, three stages.

// CHECK-LABEL: func.func @grad_d64(
// SM90: } {{{.*}}dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64{{.*}}}
// SM80: } {{{.*}}dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64{{.*}}}
// GFX942: } {{{.*}}dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64{{.*}}}
// CPU: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}
// EXPLICIT: } {{{.*}}dq_tile = #attn.tile<64x32>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64, dkdv_tile = #attn.tile<64x32>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64{{.*}}}
// ALL-SET: } {{{.*}}dq_tile = #attn.tile<256x16>, dq_num_warps = 2 : i64, dq_num_stages = 5 : i64, dkdv_tile = #attn.tile<256x16>, dkdv_num_warps = 2 : i64, dkdv_num_stages = 5 : i64{{.*}}}

func.func @grad_d64(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>) {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none"} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
}

// q's head dim picks the backward's launch: 96 takes two stages; the forward's defaults (on cpu) follow the larger, 256.

// CHECK-LABEL: func.func @grad_d96_v256(
// SM90: } {{{.*}}dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 2 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 2 : i64{{.*}}}
// GFX942: } {{{.*}}dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 2 : i64, dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 2 : i64{{.*}}}
// CPU: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}
// EXPLICIT: } {{{.*}}dq_tile = #attn.tile<64x32>, dq_num_warps = 4 : i64, dq_num_stages = 2 : i64, dkdv_tile = #attn.tile<64x32>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 2 : i64{{.*}}}

func.func @grad_d96_v256(%q: tensor<?x4x?x96xbf16>, %k: tensor<?x2x?x96xbf16>, %v: tensor<?x2x?x256xbf16>, %o: tensor<?x4x?x256xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x256xbf16>) -> (tensor<?x4x?x96xbf16>, tensor<?x2x?x96xbf16>, tensor<?x2x?x256xbf16>) {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none"} : tensor<?x4x?x96xbf16>, tensor<?x2x?x96xbf16>, tensor<?x2x?x256xbf16>, tensor<?x4x?x256xbf16>, tensor<?x4x?x256xbf16> -> (tensor<?x4x?x96xbf16>, tensor<?x2x?x96xbf16>, tensor<?x2x?x256xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x96xbf16>, tensor<?x2x?x96xbf16>, tensor<?x2x?x256xbf16>
}

// Head dims over 128 take 32x32 tiles, 4 warps and one stage for both kernels.

// CHECK-LABEL: func.func @grad_d256(
// SM90: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}
// SM80: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}
// GFX942: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}
// CPU: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}
// ALL-SET: } {{{.*}}dq_tile = #attn.tile<256x16>, dq_num_warps = 2 : i64, dq_num_stages = 5 : i64, dkdv_tile = #attn.tile<256x16>, dkdv_num_warps = 2 : i64, dkdv_num_stages = 5 : i64{{.*}}}

func.func @grad_d256(%q: tensor<?x4x?x256xbf16>, %k: tensor<?x2x?x256xbf16>, %v: tensor<?x2x?x256xbf16>, %o: tensor<?x4x?x256xbf16>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x256xbf16>) -> (tensor<?x4x?x256xbf16>, tensor<?x2x?x256xbf16>, tensor<?x2x?x256xbf16>) {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none"} : tensor<?x4x?x256xbf16>, tensor<?x2x?x256xbf16>, tensor<?x2x?x256xbf16>, tensor<?x4x?x256xbf16>, tensor<?x4x?x256xbf16> -> (tensor<?x4x?x256xbf16>, tensor<?x2x?x256xbf16>, tensor<?x2x?x256xbf16>)
  func.return %dq, %dk, %dv : tensor<?x4x?x256xbf16>, tensor<?x2x?x256xbf16>, tensor<?x2x?x256xbf16>
}

// fp32 as well.

// CHECK-LABEL: func.func @grad_f32(
// SM90: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}
// GFX942: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}
// CPU: } {{{.*}}dq_tile = #attn.tile<32x32>, dq_num_warps = 4 : i64, dq_num_stages = 1 : i64, dkdv_tile = #attn.tile<32x32>, dkdv_num_warps = 4 : i64, dkdv_num_stages = 1 : i64{{.*}}}

func.func @grad_f32(%q: tensor<?x4x?x64xf32>, %k: tensor<?x2x?x64xf32>, %v: tensor<?x2x?x64xf32>, %o: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>, %dout: tensor<?x4x?x64xf32>) -> (tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>) {
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
  } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [], block_mask = "none"} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> (tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>)
  func.return %dq, %dk, %dv : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>
}

// -----

// attn.recurrent_chunk (linear attention) gets the key and value blocks of its state:
// the target's defaults, halved for fp32 on a GPU (its tiles take twice the shared
// memory), and never wider than the head dims padded to a power of two.

// CHECK-LABEL: func.func @recurrent_bf16(
// SM90:    {{.*}}block_k = 64 : i64, block_v = 64 : i64, num_warps = 4 : i64, num_stages = 2 : i64}
// GFX942:  {{.*}}block_k = 64 : i64, block_v = 64 : i64, num_warps = 4 : i64, num_stages = 1 : i64}
// CPU:     {{.*}}block_k = 32 : i64, block_v = 32 : i64, num_warps = 4 : i64, num_stages = 1 : i64}
// ALL-SET: {{.*}}block_k = 128 : i64, block_v = 16 : i64, num_warps = 2 : i64, num_stages = 5 : i64}
func.func @recurrent_bf16(%q: tensor<?x2x?x128xbf16>, %k: tensor<?x2x?x128xbf16>, %v: tensor<?x2x?x128xbf16>) -> tensor<?x2x?x128xbf16> {
  %o, %s = attn.recurrent_chunk %q, %k, %v {gate = "none", scale = 0.125 : f32, chunk_size = 64 : i64} : tensor<?x2x?x128xbf16>, tensor<?x2x?x128xbf16>, tensor<?x2x?x128xbf16> -> (tensor<?x2x?x128xbf16>, tensor<?x2x128x128xf32>)
  func.return %o : tensor<?x2x?x128xbf16>
}

// CHECK-LABEL: func.func @recurrent_fp32(
// SM90:    {{.*}}block_k = 32 : i64, block_v = 32 : i64, num_warps = 4 : i64, num_stages = 2 : i64}
// CPU:     {{.*}}block_k = 32 : i64, block_v = 32 : i64, num_warps = 4 : i64, num_stages = 1 : i64}
func.func @recurrent_fp32(%q: tensor<?x2x?x128xf32>, %k: tensor<?x2x?x128xf32>, %v: tensor<?x2x?x128xf32>) -> tensor<?x2x?x128xf32> {
  %o, %s = attn.recurrent_chunk %q, %k, %v {gate = "none", scale = 0.125 : f32, chunk_size = 64 : i64} : tensor<?x2x?x128xf32>, tensor<?x2x?x128xf32>, tensor<?x2x?x128xf32> -> (tensor<?x2x?x128xf32>, tensor<?x2x128x128xf32>)
  func.return %o : tensor<?x2x?x128xf32>
}

// CHECK-LABEL: func.func @recurrent_narrow(
// SM90:    {{.*}}block_k = 16 : i64, block_v = 32 : i64,
// EXPLICIT: {{.*}}block_k = 16 : i64, block_v = 32 : i64, num_warps = 4 : i64, num_stages = 2 : i64}
func.func @recurrent_narrow(%q: tensor<?x2x?x16xbf16>, %k: tensor<?x2x?x16xbf16>, %v: tensor<?x2x?x24xbf16>) -> tensor<?x2x?x24xbf16> {
  %o, %s = attn.recurrent_chunk %q, %k, %v {gate = "none", scale = 0.25 : f32, chunk_size = 64 : i64} : tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x24xbf16> -> (tensor<?x2x?x24xbf16>, tensor<?x2x16x24xf32>)
  func.return %o : tensor<?x2x?x24xbf16>
}

// -----

// The logical chain must be fused first.
func.func @unfused(%q: tensor<1x4x16x64xf16>, %k: tensor<1x4x16x64xf16>) -> tensor<1x4x16x16xf32> {
  %s = attn.qk %q, %k {scale = 0.125 : f32} : tensor<1x4x16x64xf16>, tensor<1x4x16x64xf16> -> tensor<1x4x16x16xf32>
  func.return %s : tensor<1x4x16x16xf32>
}
// CHECK: {{^}}attn-tile requires a fused attention op; run attn-fuse first

// -----

// A paged KV cache: the query heads of a kv head share rows (pack_gqa). With pages of 256, every
// key block lies in one page and on CUDA the forward takes two more stages, which the page-id load
// holds before the K/V loads it addresses.

// CHECK-LABEL: func.func @paged256(
// SM90: } {{{.*}}tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 5 : i64, pack_gqa{{.*}}}
// SM80: } {{{.*}}tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 5 : i64, pack_gqa{{.*}}}
// GFX942: } {{{.*}}tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 1 : i64, pack_gqa}
// CPU: } {{{.*}}tile = #attn.tile<32x32>, num_warps = 4 : i64, num_stages = 1 : i64, pack_gqa}
// EXPLICIT: } {{{.*}}tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 5 : i64, pack_gqa{{.*}}}
// ALL-SET: } {{{.*}}tile = #attn.tile<256x16>, num_warps = 2 : i64, num_stages = 5 : i64, pack_gqa{{.*}}}

func.func @paged256(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x256x64xbf16>, %v: tensor<?x2x256x64xbf16>, %cache_seqlens: tensor<?xi32>, %block_table: tensor<?x?xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v sequences(%cache_seqlens, %block_table : tensor<?xi32>, tensor<?x?xi32>) score_mod {
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
  } {layout = "paged", scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine"} : tensor<?x4x?x64xbf16>, tensor<?x2x256x64xbf16>, tensor<?x2x256x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// Pages of 16, smaller than a key block: each key's page id is gathered and the stages stay.

// CHECK-LABEL: func.func @paged(
// SM90: } {{{.*}}tile = #attn.tile<128x128>, num_warps = 8 : i64, num_stages = 3 : i64, pack_gqa{{.*}}}
// SM80: } {{{.*}}tile = #attn.tile<128x64>, num_warps = 4 : i64, num_stages = 3 : i64, pack_gqa{{.*}}}
// EXPLICIT: } {{{.*}}tile = #attn.tile<64x32>, num_warps = 8 : i64, num_stages = 3 : i64, pack_gqa{{.*}}}
// ALL-SET: } {{{.*}}tile = #attn.tile<256x16>, num_warps = 2 : i64, num_stages = 5 : i64, pack_gqa{{.*}}}
// With the option's key blocks of 16, pages of 16 hold whole blocks: the stages are added.
// BLOCK-N16: } {{{.*}}tile = #attn.tile<128x16>, num_warps = 8 : i64, num_stages = 5 : i64, pack_gqa{{.*}}}

func.func @paged(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x16x64xbf16>, %v: tensor<?x2x16x64xbf16>, %cache_seqlens: tensor<?xi32>, %block_table: tensor<?x?xi32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %out, %lse = attn.flash %q, %k, %v sequences(%cache_seqlens, %block_table : tensor<?xi32>, tensor<?x?xi32>) score_mod {
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
  } {layout = "paged", scale = 1.250000e-01 : f32, normalizer = "softmax", state = ["m", "l"], init = [0xff800000 : f32, 0.000000e+00 : f32], masked_score = 0xff800000 : f32, block_mask = "affine"} : tensor<?x4x?x64xbf16>, tensor<?x2x16x64xbf16>, tensor<?x2x16x64xbf16> -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>)
  func.return %out, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}
