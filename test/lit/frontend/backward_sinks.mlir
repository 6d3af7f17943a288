// RUN: attnc compile %S/../../../examples/sinks.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --backward --emit triton | filecheck %s

// Sinks: the sink logits' gradient is derived from the normalizer's finalize (the
// attn.flash_grad's stat_grad region) and lowered as a per-row epilogue of the dQ
// kernel, which owns whole query rows and their δ: after the key blocks, each row
// adds −δ·exp(sink[h] − lse) into the sink's gradient, summed over the block's rows
// first (one atomic per program), a NaN weight (a −∞ logit) adding 0; the dK/dV kernel
// adds nothing.

// CHECK-LABEL: def attention_bwd_dq(
// CHECK:           delta = dout_dot_out - dlse
// CHECK:           for i_1 in range(num_part):
// CHECK:           # captured tensors the statistic reads: dL/dlse = dlse - rowsum(dO * O) = -delta per row
// CHECK-NEXT:      dlse_total = 0.0 - delta
// CHECK-NEXT:      {{[a-z_0-9]+}} = tl.load(cap0_ptr + h.to(tl.int64) * tl.cast(cap0_stride0, tl.int64))
// CHECK:           dlse_empty = dlse_total * tl.exp2((lse_1 - lse) * 1.442695)
// CHECK:           dsinks = {{.*}}
// CHECK-NEXT:      [[LIVE:select[_0-9]*]] = tl.where({{[a-z_0-9]+}}, dsinks, 0.0)
// CHECK-NEXT:      [[DCAP:dcap0]] = tl.sum(tl.where([[LIVE]] == [[LIVE]], [[LIVE]], 0.0), axis=0)
// CHECK-NEXT:      tl.atomic_add(capgrad0_ptr + h.to(tl.int64) * tl.cast(capgrad0_stride0, tl.int64), [[DCAP]])
// CHECK:           tl.store(dq_ptrs, (dq * scale).to(tl.bfloat16), mask=row_ok)

// CHECK-LABEL: def attention_bwd_dkdv(
// CHECK-NOT:       capgrad0_ptr +
// CHECK:           tl.store(dv_ptrs
