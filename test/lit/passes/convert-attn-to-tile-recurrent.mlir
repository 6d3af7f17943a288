// RUN: attn-opt %s -p 'attn-tile{target="cpu"},convert-attn-to-tile' --split-input-file | filecheck %s
// RUN: attn-opt %s -p 'attn-tile{target="cpu"}' --split-input-file | filecheck %s --check-prefix=TILE
// RUN: attn-opt %s -p 'attn-tile{target="cpu"},convert-attn-to-tile' -t triton --split-input-file | filecheck %s --check-prefix=TRITON

// attn-tile picks the state blocks of an attn.recurrent_chunk; convert-attn-to-tile
// lowers it into the chunk-state scan and the per-chunk output kernel, whose q h and
// q kᵀ products walk the keys in blocks of BLOCK_K (and, with
// `backward`, the reverse scan of the state gradient and the dq/dk/dv kernel).
// NaN and ±inf stay where the recurrence puts them (chunk_nonfinite.py): log-decays are
// floored at -104 (g = -inf resets the state without making G_i - G_j NaN), causal masks
// are selects, and the product A v tests v once per tile; only a tile holding NaN or ±inf
// takes the branches that zero them for the product and mark the rows they reach.

// TILE-LABEL: func.func @simple_gla
// TILE:         attn.recurrent_chunk {{.*}}block_k = 32 : i64, block_v = 32 : i64, num_warps = 4 : i64, num_stages = 1 : i64

// CHECK-LABEL: tile.func @simple_gla_chunk_state(%k_ptr: !tile.ptr<f16>, %v_ptr: !tile.ptr<f16>
// CHECK-SAME:    %g_ptr: !tile.ptr<f32>
// CHECK-SAME:    %h_ptr: !tile.ptr<f16>, %ht_ptr: !tile.ptr<f32>, %h0_ptr: !tile.ptr<f32>
// CHECK-SAME:    constexprs {CHUNK = 32, BLOCK_K = 32, BLOCK_V = 32}
// CHECK:         %[[H0:.*]] = tile.load %h0_ptrs
// CHECK:         %[[STATE:.*]] = scf.for %{{.*}} = %{{.*}} to %num_chunks step %{{.*}} iter_args(%[[CARRIED:.*]] = %[[H0]])
// CHECK:           tile.store %h_ptrs
// CHECK:           %[[G:.*]] = tile.cumsum %g axis 0 : tensor<32xf32> -> tensor<32xf32>
// CHECK:           %last_row = tile.cmpi eq
// CHECK:           %[[PICK:.*]] = tile.select %last_row, %[[G]]
// CHECK:           %G_last = tile.reduce sum %[[PICK]] axis 0 : tensor<32xf32> -> f32
// CHECK:           tile.dot {{.*}} acc
// CHECK:         tile.store %ht_ptrs, %[[STATE]]
// CHECK-LABEL: tile.func @simple_gla_chunk_output
// CHECK:         %inter, %scores = scf.for %{{.*}} step %block_k iter_args(%[[INTER:.*]] = %inter0, %[[SCORES:.*]] = %scores0)
// CHECK:           %q = tile.load
// CHECK:           %k_t = tile.load
// CHECK:           %state = tile.load %h_ptrs
// CHECK:           tile.dot %q, %state acc %[[INTER]]
// CHECK:           tile.dot %q, %k_t acc %[[SCORES]]
// CHECK:         %g = arith.maximumf %g_raw
// CHECK:         %causal = tile.cmpi sge
// CHECK:         %weights = tile.select %causal, %scores_decayed
// CHECK:         %v_nonfinite = tile.cmpf une
// CHECK:         %v_finite, %v_first_bad = scf.if %v_nonfinite
// CHECK:           %v_first_bad{{.*}} = tile.reduce min
// CHECK:         %acc = tile.dot %{{.*}}, %v_finite acc
// CHECK:         %acc_nonfinite = scf.if %v_nonfinite
// CHECK-NOT:   attn.recurrent_chunk

// TRITON-LABEL: def simple_gla_chunk_state(
// TRITON:         for i in range(num_chunks):
// TRITON:           g = tl.maximum(g_raw, -104.0, propagate_nan=tl.PropagateNan.ALL)
// TRITON-NEXT:      G = tl.cumsum(g, axis=0)
// TRITON-LABEL: def simple_gla_chunk_output(
// TRITON:         causal = t[:, None] >= t[None, :]
// TRITON:         weights = tl.where(causal, scores_decayed, 0.0)
// TRITON:         v_check = v - v
// TRITON-NEXT:    v_check_columns = tl.sum(v_check, axis=0)
// TRITON-NEXT:    v_check_sum = tl.sum(v_check_columns, axis=0)
// TRITON-NEXT:    v_nonfinite = v_check_sum.to(tl.float32) != 0.0
// TRITON-NEXT:    no_bad_row = tl.full((BLOCK_V,), 32, tl.int32)
// TRITON-NEXT:    # v holds NaN or ±inf: zero them for the product
// TRITON-NEXT:    if v_nonfinite:
// TRITON:         else:
// TRITON-NEXT:        v_finite, v_first_bad = v, no_bad_row
// TRITON-NEXT:    acc = tl.dot(weights.to(tl.float16), v_finite, inter_decayed)
// TRITON-NEXT:    # the rows its NaN and ±inf reach
// TRITON-NEXT:    if v_nonfinite:
// TRITON-NEXT:        acc_nonfinite = tl.where(t[:, None] >= v_first_bad[None, :], float("nan"), acc)

func.func @simple_gla(%q: tensor<?x2x?x32xf16>, %k: tensor<?x2x?x32xf16>, %v: tensor<?x2x?x32xf16>, %g: tensor<?x2x?xf32>, %h0: tensor<?x2x32x32xf32>) -> tensor<?x2x?x32xf16> {
  %o, %s = attn.recurrent_chunk %q, %k, %v gate(%g : tensor<?x2x?xf32>) initial(%h0 : tensor<?x2x32x32xf32>) {gate = "scalar", scale = 0.125 : f32, chunk_size = 32 : i64} : tensor<?x2x?x32xf16>, tensor<?x2x?x32xf16>, tensor<?x2x?x32xf16> -> (tensor<?x2x?x32xf16>, tensor<?x2x32x32xf32>)
  func.return %o : tensor<?x2x?x32xf16>
}

// -----

// A per-channel gate (GLA): g is summed per chunk once (chunk_cumsum) and every later
// kernel loads G. The state scan loads kᵀ and Gᵀ transposed, as its product takes them.
// The scores kernel builds A per sub-chunk of 16 rows: one product per earlier sub-chunk
// (a loop up to its own index), then the diagonal block by levels. The output kernel is
// then two products, as for a scalar gate, (q ⊙ exp(G)) h summed over key blocks. With
// `backward`, dA and dv come per chunk, then dq, dk and dG per key block, the intra-chunk
// pairs by one product each way per level of the decay hierarchy (blocks of 32, 16, 8, 4,
// 2 rows: the pairs across each block's middle, factored through it), plus the diagonal.

// CHECK-LABEL: tile.func @gla_chunk_cumsum(%g_ptr: !tile.ptr<f32>, %gcum_ptr: !tile.ptr<f32>
// CHECK:         %g = arith.maximumf %g_raw
// CHECK:         %G = tile.cumsum %g axis 0 : tensor<32x16xf32>
// CHECK:         tile.store %{{.*}}, %G mask
// CHECK-LABEL: tile.func @gla_chunk_state(
// CHECK-SAME:    %gcum_ptr: !tile.ptr<f32>
// CHECK-NOT:     tile.cumsum
// CHECK:         scf.for
// CHECK:           %k_t = tile.load
// CHECK:           %G_t = tile.load
// CHECK:           %G_last = tile.load
// CHECK:           %k_w = tile.cast
// CHECK:           %{{state.*}} = tile.dot %k_w, %v acc
// CHECK-LABEL: tile.func @gla_chunk_scores(
// CHECK-NOT:     tile.cumsum
// CHECK:         scf.for %{{.*}} = %{{.*}} to %pid_sub step
// CHECK:           tile.dot %q_r, %{{.*}} : tensor<16x16xbf16>, tensor<16x16xbf16> -> tensor<16x16xf32>
// CHECK-NOT:     scf.for
// CHECK:         %a_diagonal = tile.select %diagonal
// CHECK:         %E8 = math.exp
// CHECK:         tile.dot %q_l8, %{{.*}} : tensor<16x16xbf16>, tensor<16x16xbf16> -> tensor<16x16xf32>
// CHECK:         %a_level8 = arith.addf %a_diagonal
// CHECK:         %a_level1 = arith.addf %a_level2
// CHECK:         tile.store
// CHECK-LABEL: tile.func @gla_chunk_output(
// CHECK:         %inter = scf.for %{{.*}} step %block_k iter_args(%[[INTER:.*]] = %inter0)
// CHECK:           tile.dot %q_g, %state acc %[[INTER]]
// CHECK:         %inter_scaled = arith.mulf %inter
// CHECK:         %a = tile.load
// CHECK:         %acc = tile.dot %a, %v_finite acc %inter_scaled : tensor<32x32xbf16>, tensor<32x16xbf16> -> tensor<32x16xf32>
// CHECK-LABEL: tile.func @gla_chunk_state_grad(
// CHECK-LABEL: tile.func @gla_chunk_dv(
// CHECK:         %da = tile.select %causal
// CHECK:         %dv_inter = tile.dot %k_w, %dh
// CHECK:         %dv = tile.dot %{{.*}}, %do acc %dv_inter
// CHECK-LABEL: tile.func @gla_chunk_dqkg(
// CHECK:         %da_diagonal = tile.expand_dims
// CHECK:         %k_finite, %k_first_bad = scf.if %k_nonfinite
// CHECK:         %q_finite, %q_last_bad = scf.if %q_nonfinite
// CHECK:         tile.select %pairs16, %da
// CHECK:         arith.mulf %k_finite, %E16
// CHECK:         tile.dot %da_pairs16, %k_r16
// CHECK:         tile.trans %da_pairs16
// CHECK:         tile.select %pairs1, %da
// CHECK:         %dq_nonfinite = scf.if %k_nonfinite
// CHECK:         %dk_nonfinite = scf.if %q_nonfinite
// CHECK:         %dq = arith.addf %dq_nonfinite
// CHECK:         %dk = arith.addf %dk_nonfinite
// CHECK:         tile.cumsum %dgate axis 0 reverse
// CHECK-NOT:     tile.atomic_add
// CHECK-NOT:   attn.recurrent_chunk
func.func @gla(%q: tensor<?x2x?x16xbf16>, %k: tensor<?x2x?x16xbf16>, %v: tensor<?x2x?x16xbf16>, %g: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xbf16> {
  %o, %s = attn.recurrent_chunk %q, %k, %v gate(%g : tensor<?x2x?x16xf32>) {gate = "vector", scale = 0.25 : f32, backward, chunk_size = 32 : i64} : tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16> -> (tensor<?x2x?x16xbf16>, tensor<?x2x16x16xf32>)
  func.return %o : tensor<?x2x?x16xbf16>
}

// -----

// With `backward` (set by the frontend for training), the reverse state-gradient
// scan and the per-chunk dq/dk/dv kernel come too.

// CHECK-LABEL: tile.func @retnet_chunk_state
// CHECK-LABEL: tile.func @retnet_chunk_output
// CHECK:         %g_raw = tile.load
// CHECK-NEXT:    %{{.*}} = arith.constant -1.040000e+02 : f32
// CHECK-NEXT:    %g_head = arith.maximumf %g_raw
// CHECK-LABEL: tile.func @retnet_chunk_state_grad(%q_ptr: !tile.ptr<bf16>, %do_ptr: !tile.ptr<bf16>
// CHECK-SAME:    %dh_ptr: !tile.ptr<bf16>, %dht_ptr: !tile.ptr<f32>, %dh0_ptr: !tile.ptr<f32>
// CHECK:         %[[DHT:.*]] = tile.load %dht_ptrs
// CHECK:         %[[DS:.*]] = scf.for %{{.*}} iter_args(%{{.*}} = %[[DHT]])
// CHECK:           %index = arith.subi
// CHECK:           tile.store %dh_ptrs
// CHECK:           %{{.*}} = tile.dot %{{.*}}, %do acc
// CHECK:         tile.store %dh0_ptrs, %[[DS]]
// CHECK-LABEL: tile.func @retnet_chunk_grad(
// CHECK-SAME:    %dq_ptr: !tile.ptr<bf16>, %dk_ptr: !tile.ptr<bf16>
// CHECK-SAME:    %dv_ptr: !tile.ptr<bf16>
// CHECK-SAME:    %dg_ptr: !tile.ptr<f32>
// CHECK:         %a = tile.select %causal
// CHECK:         %da = tile.select %causal
// CHECK:         %cols_k = arith.addi
// CHECK:         %dq = tile.dot %da_e, %k_cols_finite acc
// CHECK:         %dq_nonfinite = scf.if %k_cols_nonfinite
// CHECK:         %dk = tile.dot {{.*}}, %q_cols_finite acc
// CHECK:         %dk_nonfinite = scf.if %q_cols_nonfinite
// CHECK:         %dv = tile.dot {{.*}}, %do_cols acc
// CHECK:         %dgate = tile.reduce sum %{{.*}} axis 1
// CHECK:         %dgate_from_end = tile.cumsum %dgate axis 0 reverse
// CHECK:         tile.atomic_add
// TRITON-LABEL: def retnet_chunk_grad(
// TRITON:         dgate_from_end = tl.cumsum(dgate, axis=0, reverse=True)
func.func @retnet(%q: tensor<?x2x?x32xbf16>, %k: tensor<?x2x?x32xbf16>, %v: tensor<?x2x?x32xbf16>, %g: tensor<2xf32>) -> tensor<?x2x?x32xbf16> {
  %o, %s = attn.recurrent_chunk %q, %k, %v gate(%g : tensor<2xf32>) {gate = "head", scale = 0.125 : f32, backward, chunk_size = 64 : i64} : tensor<?x2x?x32xbf16>, tensor<?x2x?x32xbf16>, tensor<?x2x?x32xbf16> -> (tensor<?x2x?x32xbf16>, tensor<?x2x32x32xf32>)
  func.return %o : tensor<?x2x?x32xbf16>
}

// -----

// A feature map on k (here exp) is applied where the kernels load k, padding kept 0;
// the backward multiplies dk by its derivative.

// CHECK-LABEL: tile.func @mapped_chunk_state
// CHECK:         %k = tile.load
// CHECK-NEXT:    %{{.*}} = tile.cast %k {attnc.comment = "k_map"}
// CHECK:         math.exp2
// CHECK:         %k_mapped = tile.cast
// CHECK-LABEL: tile.func @mapped_chunk_grad
// CHECK:         %k_mapped = tile.cast
// CHECK:         %dv_inter = tile.dot %k_mapped, %dstate_cols
// CHECK:         tile.cast %k_cols_raw {attnc.comment = "through k_map"}
func.func @mapped(%q: tensor<?x2x?x16xf16>, %k: tensor<?x2x?x16xf16>, %v: tensor<?x2x?x16xf16>) -> tensor<?x2x?x16xf16> {
  %o, %s = attn.recurrent_chunk %q, %k, %v k_map {
  ^bb0(%x: f32):
    %e = math.exp %x : f32
    attn.yield %e : f32
  } {gate = "none", scale = 0.25 : f32, backward, chunk_size = 16 : i64} : tensor<?x2x?x16xf16>, tensor<?x2x?x16xf16>, tensor<?x2x?x16xf16> -> (tensor<?x2x?x16xf16>, tensor<?x2x16x16xf32>)
  func.return %o : tensor<?x2x?x16xf16>
}
