// RUN: attn-opt %s -t triton --split-input-file | filecheck %s

// Loop-carried values share one Python name: assigned before the loop, updated in
// place where the body allows it, else reassigned at the end of the body (several at
// once as a tuple, so that swaps work). Scalar inits become typed tensors, as Triton
// cannot carry a Python number through a loop.

// CHECK-LABEL: def carried(out_ptr, n):
// CHECK-NEXT:    a, b = tl.full((), 1.0, tl.float32), tl.full((), 2.0, tl.float32)
// CHECK-NEXT:    for i in range(n):
// CHECK-NEXT:        s = a + b
// CHECK-NEXT:        a, b = b, s
// CHECK-NEXT:    tl.store(out_ptr, a)
tile.func @carried(%out_ptr: !tile.ptr<f32>, %n: i32) {
  %one = arith.constant 1.0 : f32
  %two = arith.constant 2.0 : f32
  %c0 = arith.constant 0 : i32
  %c1 = arith.constant 1 : i32
  %a, %b = scf.for %i = %c0 to %n step %c1 iter_args(%x = %one, %y = %two) -> (f32, f32) : i32 {
    %s = arith.addf %x, %y : f32
    scf.yield %y, %s : f32, f32
  }
  tile.store %out_ptr, %a : !tile.ptr<f32>, f32
  tile.return
}

// -----

// An inner loop that starts from the outer iter arg and whose result the outer loop
// yields updates the same name. Where the iter arg is still read after the new
// value is made, the new value keeps its own name.

// CHECK-LABEL: def nested(out_ptr, lo, hi):
// CHECK-NEXT:    acc = tl.full((), 0.0, tl.float32)
// CHECK-NEXT:    for i in range(lo, hi):
// CHECK-NEXT:        doubled = acc + acc
// CHECK-NEXT:        for j in range(lo, hi, 2):
// CHECK-NEXT:            acc = acc + doubled
// CHECK-NEXT:    tl.store(out_ptr, acc)
// CHECK-LABEL: def read_late(out_ptr, n):
// CHECK-NEXT:    acc = tl.full((), 1.0, tl.float32)
// CHECK-NEXT:    for i in range(n):
// CHECK-NEXT:        next = acc * acc
// CHECK-NEXT:        tl.store(out_ptr, acc)
// CHECK-NEXT:        acc = next
tile.func @nested(%out_ptr: !tile.ptr<f32>, %lo: i32, %hi: i32) {
  %zero = arith.constant 0.0 : f32
  %c1 = arith.constant 1 : i32
  %c2 = arith.constant 2 : i32
  %acc = scf.for %i = %lo to %hi step %c1 iter_args(%acc_i = %zero) -> (f32) : i32 {
    %doubled = arith.addf %acc_i, %acc_i : f32
    %inner = scf.for %j = %lo to %hi step %c2 iter_args(%acc_j = %acc_i) -> (f32) : i32 {
      %next = arith.addf %acc_j, %doubled : f32
      scf.yield %next : f32
    }
    scf.yield %inner : f32
  }
  tile.store %out_ptr, %acc : !tile.ptr<f32>, f32
  tile.return
}
tile.func @read_late(%out_ptr: !tile.ptr<f32>, %n: i32) {
  %one = arith.constant 1.0 : f32
  %c0 = arith.constant 0 : i32
  %c1 = arith.constant 1 : i32
  %acc = scf.for %i = %c0 to %n step %c1 iter_args(%acc_i = %one) -> (f32) : i32 {
    %next = arith.mulf %acc_i, %acc_i : f32
    tile.store %out_ptr, %acc_i : !tile.ptr<f32>, f32
    scf.yield %next : f32
  }
  tile.return
}

// -----

// Arithmetic on constexprs is a Python number; carried through a loop it is made a
// typed tensor first, as Triton cannot reassign a constexpr in a loop.

// CHECK-LABEL: def carried_constexpr(out_ptr, n, BLOCK: tl.constexpr):
// CHECK-NEXT:    r = tl.full((), BLOCK * 2, tl.int32)
// CHECK-NEXT:    for i in range(n):
// CHECK-NEXT:        r = tl.full((), BLOCK * 4, tl.int32)
// CHECK-NEXT:    tl.store(out_ptr, r)
tile.func @carried_constexpr(%out_ptr: !tile.ptr<i32>, %n: i32) constexprs {BLOCK = 16} {
  %c0 = arith.constant 0 : i32
  %c1 = arith.constant 1 : i32
  %c2 = arith.constant 2 : i32
  %c4 = arith.constant 4 : i32
  %block = tile.constexpr "BLOCK" : i32
  %twice = arith.muli %block, %c2 : i32
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %twice) -> (i32) : i32 {
    %four = arith.muli %block, %c4 : i32
    scf.yield %four : i32
  }
  tile.store %out_ptr, %r : !tile.ptr<i32>, i32
  tile.return
}

// -----

// scf.if assigns its results in both branches; without results and an else it is a
// plain `if`. A loop whose body prints nothing gets `pass`.

// CHECK-LABEL: def branches(out_ptr, x, n):
// CHECK-NEXT:    big = x > 10.0
// CHECK-NEXT:    if big:
// CHECK-NEXT:        r = -x
// CHECK-NEXT:    else:
// CHECK-NEXT:        r = x
// CHECK-NEXT:    if big:
// CHECK-NEXT:        tl.store(out_ptr, r)
// CHECK-NEXT:    same = x
// CHECK-NEXT:    for i in range(n):
// CHECK-NEXT:        pass
tile.func @branches(%out_ptr: !tile.ptr<f32>, %x: f32, %n: i32) {
  %ten = arith.constant 10.0 : f32
  %big = arith.cmpf ogt, %x, %ten : f32
  %r = scf.if %big -> (f32) {
    %neg = arith.negf %x : f32
    scf.yield %neg : f32
  } else {
    scf.yield %x : f32
  }
  scf.if %big {
    tile.store %out_ptr, %r : !tile.ptr<f32>, f32
  }
  %c0 = arith.constant 0 : i32
  %c1 = arith.constant 1 : i32
  %same = scf.for %i = %c0 to %n step %c1 iter_args(%v = %x) -> (f32) : i32 {
    scf.yield %v : f32
  }
  tile.return
}

// -----

// Python names come from the SSA name hints, made unique and valid; an unnamed value
// read once prints inside its reader, other unnamed values are named after their op.
// A wide integer parameter is widened first, since Triton passes small Python ints as
// i32. An empty kernel is `pass`.

// CHECK-LABEL: def names(x_ptr, stride, BLOCK_M: tl.constexpr):
// CHECK-NEXT:    stride = tl.cast(stride, tl.int64)
// CHECK-NEXT:    pid = tl.program_id(0)
// CHECK-NEXT:    offs = pid.to(tl.int64) * stride
// CHECK-NEXT:    lambda_1 = tl.num_programs(0)
// CHECK-NEXT:    q_k = lambda_1 + 1
// CHECK-NEXT:    BLOCK_M_1 = offs * BLOCK_M
// CHECK-NEXT:    muli = offs * offs
// CHECK-NEXT:    tl.store(x_ptr + pid, muli.to(tl.float32))
// CHECK-NEXT:    tl.store(x_ptr + pid, muli.to(tl.float32))
// CHECK:       def empty():
// CHECK-NEXT:    pass
tile.func @names(%x_ptr: !tile.ptr<f32>, %stride: i64) constexprs {BLOCK_M = 64} {
  %0 = tile.program_id 0
  %1 = arith.extsi %0 : i32 to i64
  %offs = arith.muli %1, %stride : i64
  %lambda = tile.num_programs 0
  %c1 = arith.constant 1 : i32
  %q.k = arith.addi %lambda, %c1 : i32
  %block = tile.constexpr "BLOCK_M" : i64
  %BLOCK_M = arith.muli %offs, %block : i64
  %2 = arith.muli %offs, %offs : i64
  %3 = arith.sitofp %2 : i64 to f32
  %4 = tile.addptr %x_ptr, %0 : !tile.ptr<f32>, i32 -> !tile.ptr<f32>
  tile.store %4, %3 : !tile.ptr<f32>, f32
  %5 = arith.sitofp %2 : i64 to f32
  %6 = tile.addptr %x_ptr, %0 : !tile.ptr<f32>, i32 -> !tile.ptr<f32>
  tile.store %6, %5 : !tile.ptr<f32>, f32
  tile.return
}
tile.func @empty() {
  tile.return
}
