// RUN: attn-opt %s -t triton --split-input-file | filecheck %s
// RUN: attn-opt %s --split-input-file --print-op-generic | attn-opt --split-input-file -t triton | filecheck %s

// Elementwise arith and math ops print from the rule tables, one line per op.

// CHECK-LABEL: def float_ops(x_ptr, p, BLOCK: tl.constexpr):
// CHECK:         add = a + b
// CHECK-NEXT:    sub = add - b
// CHECK-NEXT:    mul = sub * a
// CHECK-NEXT:    div = mul / b
// CHECK-NEXT:    neg = -div
// CHECK-NEXT:    max = tl.maximum(neg, a, propagate_nan=tl.PropagateNan.ALL)
// CHECK-NEXT:    maxnum = tl.maximum(max, a)
// CHECK-NEXT:    minnum = tl.minimum(maxnum, a)
// CHECK-NEXT:    pos = minnum > b
// CHECK-NEXT:    where = tl.where(pos, minnum, b)
// CHECK-NEXT:    pick = tl.where(p, where, a)
tile.func @float_ops(%x_ptr: !tile.ptr<f32>, %p: i1) constexprs {BLOCK = 16} {
  %offs = tile.arange ["BLOCK"] : tensor<16xi32>
  %ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f32>, tensor<16xi32> -> tensor<16x!tile.ptr<f32>>
  %a = tile.load %ptrs : tensor<16x!tile.ptr<f32>> -> tensor<16xf32>
  %b = tile.load %ptrs : tensor<16x!tile.ptr<f32>> -> tensor<16xf32>
  %add = arith.addf %a, %b : tensor<16xf32>
  %sub = arith.subf %add, %b : tensor<16xf32>
  %mul = arith.mulf %sub, %a : tensor<16xf32>
  %div = arith.divf %mul, %b : tensor<16xf32>
  %neg = arith.negf %div : tensor<16xf32>
  %max = arith.maximumf %neg, %a : tensor<16xf32>
  %maxnum = arith.maxnumf %max, %a : tensor<16xf32>
  %minnum = arith.minnumf %maxnum, %a : tensor<16xf32>
  %pos = tile.cmpf ogt, %minnum, %b : tensor<16xf32>
  %where = tile.select %pos, %minnum, %b : tensor<16xf32>
  %pick = arith.select %p, %where, %a : tensor<16xf32>
  tile.return
}

// -----

// Float predicates: Triton's operators are ordered except `!=`, which is une; the
// other predicates are spelled out.

// CHECK-LABEL: def compare(x_ptr, BLOCK: tl.constexpr):
// CHECK:         oeq = a == b
// CHECK-NEXT:    une = a != b
// CHECK-NEXT:    olt = a < b
// CHECK-NEXT:    oge = a >= b
// CHECK-NEXT:    one = (a < b) | (a > b)
// CHECK-NEXT:    ord = (a == a) & (b == b)
// CHECK-NEXT:    uno = (a != a) | (b != b)
// CHECK-NEXT:    ult = ~(a >= b)
// CHECK-NEXT:    ueq = ~((a < b) | (a > b))
// CHECK-NEXT:    sge = i >= j
// CHECK-NEXT:    ne = i != j
tile.func @compare(%x_ptr: !tile.ptr<f32>) constexprs {BLOCK = 16} {
  %i = tile.arange ["BLOCK"] : tensor<16xi32>
  %ptrs = tile.addptr %x_ptr, %i : !tile.ptr<f32>, tensor<16xi32> -> tensor<16x!tile.ptr<f32>>
  %a = tile.load %ptrs : tensor<16x!tile.ptr<f32>> -> tensor<16xf32>
  %b = tile.load %ptrs : tensor<16x!tile.ptr<f32>> -> tensor<16xf32>
  %j = tile.full ["BLOCK"] 3 : tensor<16xi32>
  %oeq = tile.cmpf oeq, %a, %b : tensor<16xf32>
  %une = tile.cmpf une, %a, %b : tensor<16xf32>
  %olt = tile.cmpf olt, %a, %b : tensor<16xf32>
  %oge = tile.cmpf oge, %a, %b : tensor<16xf32>
  %one = tile.cmpf one, %a, %b : tensor<16xf32>
  %ord = tile.cmpf ord, %a, %b : tensor<16xf32>
  %uno = tile.cmpf uno, %a, %b : tensor<16xf32>
  %ult = tile.cmpf ult, %a, %b : tensor<16xf32>
  %ueq = tile.cmpf ueq, %a, %b : tensor<16xf32>
  %sge = tile.cmpi sge, %i, %j : tensor<16xi32>
  %ne = tile.cmpi ne, %i, %j : tensor<16xi32>
  tile.return
}

// -----

// Integer division is C's in Triton (`//` truncates, `%` keeps the dividend's sign);
// floordivsi and ceildivsi correct it toward -inf and +inf.

// CHECK-LABEL: def int_ops(BLOCK: tl.constexpr):
// CHECK:         q = i // j
// CHECK-NEXT:    r = i % j
// CHECK-NEXT:    fq = tl.where((i % j != 0) & ((i % j < 0) != (j < 0)), i // j - 1, i // j)
// CHECK-NEXT:    cq = tl.where((i % j != 0) & ((i % j < 0) == (j < 0)), i // j + 1, i // j)
// CHECK-NEXT:    both = i & j
// CHECK-NEXT:    either = i | j
// CHECK-NEXT:    flip = i ^ j
// CHECK-NEXT:    up = i << j
// CHECK-NEXT:    down = i >> j
// CHECK-NEXT:    hi = tl.maximum(i, j)
tile.func @int_ops() constexprs {BLOCK = 16} {
  %i = tile.arange ["BLOCK"] : tensor<16xi32>
  %j = tile.full ["BLOCK"] -3 : tensor<16xi32>
  %q = arith.divsi %i, %j : tensor<16xi32>
  %r = arith.remsi %i, %j : tensor<16xi32>
  %fq = arith.floordivsi %i, %j : tensor<16xi32>
  %cq = arith.ceildivsi %i, %j : tensor<16xi32>
  %both = arith.andi %i, %j : tensor<16xi32>
  %either = arith.ori %i, %j : tensor<16xi32>
  %flip = arith.xori %i, %j : tensor<16xi32>
  %up = arith.shli %i, %j : tensor<16xi32>
  %down = arith.shrsi %i, %j : tensor<16xi32>
  %hi = arith.maxsi %i, %j : tensor<16xi32>
  tile.return
}

// -----

// Math functions, tanh through tl.sigmoid so that every backend has it.

// CHECK-LABEL: def math_ops(x_ptr, BLOCK: tl.constexpr):
// CHECK:         e = tl.exp(x)
// CHECK-NEXT:    e2 = tl.exp2(e)
// CHECK-NEXT:    l = tl.log(e2)
// CHECK-NEXT:    l2 = tl.log2(l)
// CHECK-NEXT:    s = tl.sqrt(l2)
// CHECK-NEXT:    rs = tl.rsqrt(s)
// CHECK-NEXT:    t = 2 * tl.sigmoid(2 * rs) - 1
// CHECK-NEXT:    m = tl.abs(t)
// CHECK-NEXT:    f = tl.fma(m, x, t)
tile.func @math_ops(%x_ptr: !tile.ptr<f32>) constexprs {BLOCK = 16} {
  %offs = tile.arange ["BLOCK"] : tensor<16xi32>
  %ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f32>, tensor<16xi32> -> tensor<16x!tile.ptr<f32>>
  %x = tile.load %ptrs : tensor<16x!tile.ptr<f32>> -> tensor<16xf32>
  %e = math.exp %x : tensor<16xf32>
  %e2 = math.exp2 %e : tensor<16xf32>
  %l = math.log %e2 : tensor<16xf32>
  %l2 = math.log2 %l : tensor<16xf32>
  %s = math.sqrt %l2 : tensor<16xf32>
  %rs = math.rsqrt %s : tensor<16xf32>
  %t = math.tanh %rs : tensor<16xf32>
  %m = math.absf %t : tensor<16xf32>
  %f = math.fma %m, %x, %t : tensor<16xf32>
  tile.return
}

// -----

// Conversions are `.to(dtype)`; where the source may be a Python number (a
// parameter Triton specialized to 1, a constant) they go through tl.cast or a
// typed tl.full. A conversion between types with one dtype prints nothing.

// CHECK-LABEL: def casts(x_ptr, n, BLOCK: tl.constexpr):
// CHECK:         wide = x.to(tl.float32)
// CHECK-NEXT:    narrow = wide.to(tl.bfloat16)
// CHECK-NEXT:    as_int = wide.to(tl.int32)
// CHECK-NEXT:    bits = wide.to(tl.int32, bitcast=True)
// CHECK-NEXT:    n64 = tl.cast(n, tl.int64)
// CHECK-NEXT:    half = tl.full((), 0.1, tl.float16).to(tl.float32)
// CHECK-NEXT:    nf = tl.cast(n, tl.float32)
// CHECK-NOT:     nidx
// CHECK-NEXT:    m = n * 2
tile.func @casts(%x_ptr: !tile.ptr<f16>, %n: i32) constexprs {BLOCK = 16} {
  %offs = tile.arange ["BLOCK"] : tensor<16xi32>
  %ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f16>, tensor<16xi32> -> tensor<16x!tile.ptr<f16>>
  %x = tile.load %ptrs : tensor<16x!tile.ptr<f16>> -> tensor<16xf16>
  %wide = arith.extf %x : tensor<16xf16> to tensor<16xf32>
  %narrow = arith.truncf %wide : tensor<16xf32> to tensor<16xbf16>
  %as_int = tile.cast %wide : tensor<16xf32> to tensor<16xi32>
  %bits = arith.bitcast %wide : tensor<16xf32> to tensor<16xi32>
  %n64 = arith.extsi %n : i32 to i64
  %c = arith.constant 0.1 : f16
  %half = arith.extf %c : f16 to f32
  %nf = arith.sitofp %n : i32 to f32
  %nidx = arith.index_cast %n : i32 to index
  %c2 = arith.constant 2 : index
  %m = arith.muli %nidx, %c2 : index
  tile.return
}

// -----

// Constants print as Python literals, shortest at their own precision; a dense splat
// prints as tl.full, and so does a tile.splat that Triton would not broadcast by
// itself. Arithmetic on Python ints stays Python; on Python floats it gets tensors of
// the IR's dtype. A value may shadow a builtin such as `sum`.

// CHECK-LABEL: def constants(x_ptr, BLOCK: tl.constexpr):
// CHECK:         ninf = tl.full((BLOCK,), float("-inf"), tl.float32)
// CHECK-NEXT:    keep = x > ninf
// CHECK-NEXT:    masked = tl.where(keep, x, ninf)
// CHECK-NEXT:    scaled = masked * 0.088388346
// CHECK-NEXT:    half = tl.full((16,), 0.5, tl.float32)
// CHECK-NEXT:    twice = BLOCK * 2
// CHECK-NEXT:    sum = tl.full((), 1.5, tl.float32) + tl.full((), 2.5, tl.float32)
// CHECK-NEXT:    keep_all = keep & True
// CHECK-NEXT:    zero_v = tl.full((BLOCK,), 0.0, tl.bfloat16)
// CHECK-NEXT:    total = tl.sum(zero_v, axis=0)
tile.func @constants(%x_ptr: !tile.ptr<f32>) constexprs {BLOCK = 16} {
  %offs = tile.arange ["BLOCK"] : tensor<16xi32>
  %ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f32>, tensor<16xi32> -> tensor<16x!tile.ptr<f32>>
  %x = tile.load %ptrs : tensor<16x!tile.ptr<f32>> -> tensor<16xf32>
  %ninf = tile.full ["BLOCK"] -inf : tensor<16xf32>
  %keep = tile.cmpf ogt, %x, %ninf : tensor<16xf32>
  %masked = tile.select %keep, %x, %ninf : tensor<16xf32>
  %scale = arith.constant 0.08838834764831845 : f32
  %scale_v = tile.splat %scale ["BLOCK"] : f32 -> tensor<16xf32>
  %scaled = arith.mulf %masked, %scale_v : tensor<16xf32>
  %half = arith.constant dense<0.5> : tensor<16xf32>
  %block = tile.constexpr "BLOCK" : i32
  %c2 = arith.constant 2 : i32
  %twice = arith.muli %block, %c2 : i32
  %a = arith.constant 1.5 : f32
  %b = arith.constant 2.5 : f32
  %sum = arith.addf %a, %b : f32
  %true = arith.constant true
  %all = tile.splat %true ["BLOCK"] : i1 -> tensor<16xi1>
  %keep_all = arith.andi %keep, %all : tensor<16xi1>
  %zero = arith.constant 0.0 : bf16
  %zero_v = tile.splat %zero ["BLOCK"] : bf16 -> tensor<16xbf16>
  %total = tile.reduce sum %zero_v axis 0 : tensor<16xbf16> -> bf16
  tile.return
}

// -----

// tile.inline_asm: one target instruction per element (attn-tile picks NVIDIA's
// tanh.approx.f32 for 16-bit inputs), printed as tl.inline_asm_elementwise; it
// round-trips through the generic form too.

// CHECK-LABEL: def fast_tanh(x_ptr, BLOCK: tl.constexpr):
// CHECK:         t = tl.inline_asm_elementwise("tanh.approx.f32 {{.*}}", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)
// CHECK-NEXT:    tl.store(ptrs, t)
tile.func @fast_tanh(%x_ptr: !tile.ptr<f32>) constexprs {BLOCK = 64} {
  %offs = tile.arange ["BLOCK"] : tensor<64xi32>
  %ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<f32>, tensor<64xi32> -> tensor<64x!tile.ptr<f32>>
  %x = tile.load %ptrs : tensor<64x!tile.ptr<f32>> -> tensor<64xf32>
  %t = tile.inline_asm %x {asm = "tanh.approx.f32 $0, $1;", constraints = "=r,r"} : tensor<64xf32>
  tile.store %ptrs, %t : tensor<64x!tile.ptr<f32>>, tensor<64xf32>
  tile.return
}
