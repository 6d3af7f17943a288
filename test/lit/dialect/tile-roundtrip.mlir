// RUN: attn-opt %s | attn-opt | filecheck %s
// RUN: attn-opt %s --print-op-generic | attn-opt | filecheck %s

// CHECK-LABEL: tile.func @ops(%x_ptr: !tile.ptr<bf16>, %out_ptr: !tile.ptr<f32>, %n: i32, %scale: f32) constexprs {BLOCK_M = 64, BLOCK_N = 32} {
tile.func @ops(%x_ptr: !tile.ptr<bf16>, %out_ptr: !tile.ptr<f32>, %n: i32, %scale: f32) constexprs {BLOCK_M = 64, BLOCK_N = 32} {
  // CHECK-NEXT: %[[PID:.*]] = tile.program_id 0
  // CHECK-NEXT: %{{.*}} = tile.num_programs 2
  // CHECK-NEXT: %[[BM:.*]] = tile.constexpr "BLOCK_M" : i32
  // CHECK-NEXT: %[[START:.*]] = arith.muli %[[PID]], %[[BM]] : i32
  // CHECK-NEXT: %[[START16:.*]] = tile.multiple_of %[[START]] 16 : i32
  // CHECK-NEXT: %[[M:.*]] = tile.arange ["BLOCK_M"] : tensor<64xi32>
  // CHECK-NEXT: %[[N:.*]] = tile.arange ["BLOCK_N"] : tensor<32xi32>
  // CHECK-NEXT: %[[SV:.*]] = tile.splat %[[START16]] ["BLOCK_M"] : i32 -> tensor<64xi32>
  // CHECK-NEXT: %[[ROWS:.*]] = arith.addi %[[SV]], %[[M]] : tensor<64xi32>
  // CHECK-NEXT: %[[R2:.*]] = tile.expand_dims %[[ROWS]] 1 : tensor<64xi32> -> tensor<64x1xi32>
  // CHECK-NEXT: %[[C2:.*]] = tile.expand_dims %[[N]] 0 : tensor<32xi32> -> tensor<1x32xi32>
  // CHECK-NEXT: %[[RB:.*]] = tile.broadcast %[[R2]] ["BLOCK_M", "BLOCK_N"] : tensor<64x1xi32> -> tensor<64x32xi32>
  // CHECK-NEXT: %[[CB:.*]] = tile.broadcast %[[C2]] ["BLOCK_M", "BLOCK_N"] : tensor<1x32xi32> -> tensor<64x32xi32>
  // CHECK-NEXT: %[[OFFS:.*]] = arith.addi %[[RB]], %[[CB]] : tensor<64x32xi32>
  // CHECK-NEXT: %[[NV:.*]] = tile.splat %n ["BLOCK_M", "BLOCK_N"] : i32 -> tensor<64x32xi32>
  // CHECK-NEXT: %[[MASK:.*]] = tile.cmpi slt, %[[OFFS]], %[[NV]] : tensor<64x32xi32>
  // CHECK-NEXT: %[[PTRS:.*]] = tile.addptr %x_ptr, %[[OFFS]] : !tile.ptr<bf16>, tensor<64x32xi32> -> tensor<64x32x!tile.ptr<bf16>>
  // CHECK-NEXT: %[[X:.*]] = tile.load %[[PTRS]] mask %[[MASK]] other -inf : tensor<64x32x!tile.ptr<bf16>> -> tensor<64x32xbf16>
  // CHECK-NEXT: %[[ZERO:.*]] = tile.full ["BLOCK_M", "BLOCK_N"] 0.0 : tensor<64x32xbf16>
  // CHECK-NEXT: %[[Y:.*]] = tile.load %[[PTRS]] mask %[[MASK]] other %[[ZERO]] : tensor<64x32x!tile.ptr<bf16>> -> tensor<64x32xbf16>
  // CHECK-NEXT: %[[YT:.*]] = tile.trans %[[Y]] : tensor<64x32xbf16> -> tensor<32x64xbf16>
  // CHECK-NEXT: %[[S:.*]] = tile.dot %[[X]], %[[YT]] : tensor<64x32xbf16>, tensor<32x64xbf16> -> tensor<64x64xf32>
  // CHECK-NEXT: %[[S2:.*]] = tile.dot %[[X]], %[[YT]] acc %[[S]] : tensor<64x32xbf16>, tensor<32x64xbf16> -> tensor<64x64xf32>
  // CHECK-NEXT: %[[F:.*]] = tile.cast %[[S2]] : tensor<64x64xf32> to tensor<64x64xf32>
  // CHECK-NEXT: %{{.*}} = tile.dot %[[F]], %[[F]] precision ieee : tensor<64x64xf32>, tensor<64x64xf32> -> tensor<64x64xf32>
  // CHECK-NEXT: %[[MX:.*]] = tile.reduce max %[[S2]] axis 1 : tensor<64x64xf32> -> tensor<64xf32>
  // CHECK-NEXT: %{{.*}} = tile.reduce min %[[X]] axis 0 : tensor<64x32xbf16> -> tensor<32xf32>
  // CHECK-NEXT: %{{.*}} = tile.reduce sum %[[X]] axis 1 : tensor<64x32xbf16> -> tensor<64xf32>
  // CHECK-NEXT: %{{.*}} = tile.cumsum %[[MX]] axis 0 : tensor<64xf32> -> tensor<64xf32>
  // CHECK-NEXT: %{{.*}} = tile.cumsum %[[MX]] axis 0 reverse : tensor<64xf32> -> tensor<64xf32>
  // CHECK-NEXT: %[[POS:.*]] = tile.cmpf ogt, %[[MX]], %[[MX]] : tensor<64xf32>
  // CHECK-NEXT: %{{.*}} = tile.select %[[POS]], %[[MX]], %[[MX]] {attnc.comment = "pick"} : tensor<64xf32>
  // CHECK-NEXT: %[[OUT:.*]] = tile.addptr %out_ptr, %[[M]] : !tile.ptr<f32>, tensor<64xi32> -> tensor<64x!tile.ptr<f32>>
  // CHECK-NEXT: %[[M1:.*]] = tile.full ["BLOCK_M"] true : tensor<64xi1>
  // CHECK-NEXT: tile.store %[[OUT]], %[[MX]] mask %[[M1]] : tensor<64x!tile.ptr<f32>>, tensor<64xf32>
  // CHECK-NEXT: tile.store %out_ptr, %scale : !tile.ptr<f32>, f32
  // CHECK-NEXT: tile.return
  // CHECK-NEXT: }
  %pid = tile.program_id 0
  %grid = tile.num_programs 2
  %bm = tile.constexpr "BLOCK_M" : i32
  %start = arith.muli %pid, %bm : i32
  %start16 = tile.multiple_of %start 16 : i32
  %m = tile.arange ["BLOCK_M"] : tensor<64xi32>
  %nn = tile.arange ["BLOCK_N"] : tensor<32xi32>
  %sv = tile.splat %start16 ["BLOCK_M"] : i32 -> tensor<64xi32>
  %rows = arith.addi %sv, %m : tensor<64xi32>
  %r2 = tile.expand_dims %rows 1 : tensor<64xi32> -> tensor<64x1xi32>
  %c2 = tile.expand_dims %nn 0 : tensor<32xi32> -> tensor<1x32xi32>
  %rb = tile.broadcast %r2 ["BLOCK_M", "BLOCK_N"] : tensor<64x1xi32> -> tensor<64x32xi32>
  %cb = tile.broadcast %c2 ["BLOCK_M", "BLOCK_N"] : tensor<1x32xi32> -> tensor<64x32xi32>
  %offs = arith.addi %rb, %cb : tensor<64x32xi32>
  %nv = tile.splat %n ["BLOCK_M", "BLOCK_N"] : i32 -> tensor<64x32xi32>
  %mask = tile.cmpi slt, %offs, %nv : tensor<64x32xi32>
  %ptrs = tile.addptr %x_ptr, %offs : !tile.ptr<bf16>, tensor<64x32xi32> -> tensor<64x32x!tile.ptr<bf16>>
  %x = tile.load %ptrs mask %mask other -inf : tensor<64x32x!tile.ptr<bf16>> -> tensor<64x32xbf16>
  %zero = tile.full ["BLOCK_M", "BLOCK_N"] 0.0 : tensor<64x32xbf16>
  %y = tile.load %ptrs mask %mask other %zero : tensor<64x32x!tile.ptr<bf16>> -> tensor<64x32xbf16>
  %yt = tile.trans %y : tensor<64x32xbf16> -> tensor<32x64xbf16>
  %s = tile.dot %x, %yt : tensor<64x32xbf16>, tensor<32x64xbf16> -> tensor<64x64xf32>
  %s2 = tile.dot %x, %yt acc %s : tensor<64x32xbf16>, tensor<32x64xbf16> -> tensor<64x64xf32>
  %f = tile.cast %s2 : tensor<64x64xf32> to tensor<64x64xf32>
  %ff = tile.dot %f, %f precision ieee : tensor<64x64xf32>, tensor<64x64xf32> -> tensor<64x64xf32>
  %mx = tile.reduce max %s2 axis 1 : tensor<64x64xf32> -> tensor<64xf32>
  %mn = tile.reduce min %x axis 0 : tensor<64x32xbf16> -> tensor<32xf32>
  %sm = tile.reduce sum %x axis 1 : tensor<64x32xbf16> -> tensor<64xf32>
  %cs = tile.cumsum %mx axis 0 : tensor<64xf32> -> tensor<64xf32>
  %rcs = tile.cumsum %mx axis 0 reverse : tensor<64xf32> -> tensor<64xf32>
  %pos = tile.cmpf ogt, %mx, %mx : tensor<64xf32>
  %pick = tile.select %pos, %mx, %mx {attnc.comment = "pick"} : tensor<64xf32>
  %out = tile.addptr %out_ptr, %m : !tile.ptr<f32>, tensor<64xi32> -> tensor<64x!tile.ptr<f32>>
  %all = tile.full ["BLOCK_M"] true : tensor<64xi1>
  tile.store %out, %mx mask %all : tensor<64x!tile.ptr<f32>>, tensor<64xf32>
  tile.store %out_ptr, %scale : !tile.ptr<f32>, f32
  tile.return
}

// arg_names, the Python parameter names, win over the SSA names.
// CHECK-LABEL: tile.func @renamed(%y: i32) {
// CHECK-NEXT:    tile.return
tile.func @renamed(%x: i32) attributes {arg_names = ["y"]} {
  tile.return
}

// A kernel compiled with Triton's debug option keeps its device assertions.
// CHECK-LABEL: tile.func @checked(%p: !tile.ptr<f32>, %i: i32, %n: i32) attributes {debug} {
// CHECK-NEXT:    %[[OK:.*]] = tile.cmpi slt, %i, %n : i32
// CHECK-NEXT:    tile.device_assert %[[OK]], "index 'i' out of range" : i1
// CHECK-NEXT:    %{{.*}} = tile.load %p mask %[[OK]] other 0.0 : !tile.ptr<f32> -> f32
tile.func @checked(%p: !tile.ptr<f32>, %i: i32, %n: i32) attributes {debug} {
  %ok = tile.cmpi slt, %i, %n : i32
  tile.device_assert %ok, "index 'i' out of range" : i1
  %x = tile.load %p mask %ok other 0.0 : !tile.ptr<f32> -> f32
  tile.return
}
