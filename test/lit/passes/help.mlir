// RUN: attn-opt --help | filecheck %s
// RUN: not attn-opt %s -p attn-nope 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not attn-opt %s -p 'attn-tile{block-q=64}' 2>&1 | filecheck %s --check-prefix=BAD-OPTION
// RUN: attn-opt --help | filecheck %s --check-prefix=ORDER
// RUN: attn-opt --list-passes | filecheck %s --check-prefix=LIST
// RUN: attn-opt %s --pass-pipeline='builtin.module(attn-fuse,attn-tile{block-m=64 block-n=32})' --time-passes 2>&1 >/dev/null | filecheck %s --check-prefix=TIME
// RUN: attn-opt %s --pass-pipeline='builtin.module(attn-fuse)' --time-passes 2>/dev/null | filecheck %s --check-prefix=TIME-STDOUT
// RUN: not attn-opt %s --pass-pipeline='builtin.module(attn-fuse' 2>&1 | filecheck %s --check-prefix=UNCLOSED
// RUN: not attn-opt %s -p attn-fuse --pass-pipeline='builtin.module(attn-fuse)' 2>&1 | filecheck %s --check-prefix=BOTH

// `attn-opt --help` lists every attnc pass with its summary and its options with
// their defaults, then the named pipelines with their -p spelling, before the driver's
// options (xDSL's own passes only behind --list-passes); an unknown pass or option is an
// error that names it as help spells it. mlir-opt's --pass-pipeline and --time-passes
// (a report on stderr) work as in mlir-opt.

// CHECK:      attnc passes (options in braces, e.g. attn-tile{block-m=64 block-n=64}):
// CHECK-NEXT:   attn-fuse              Fuses each logical attention chain into one `attn.flash` op
// CHECK-NEXT:   attn-block-mask        Classifies each attn.flash mask per tile: none, affine (symbolic classify region) or runtime.
// CHECK-NEXT:   attn-split             Adds the merge region that lets attention over a KV cache split its keys across programs.
// CHECK-NEXT:   attn-guard-captures    Marks captured-tensor reads (and gradient scatters) whose index the runtime check cannot prove in range.
// CHECK-NEXT:       report=False
// CHECK-NEXT:   attn-tile              Chooses tile sizes, warps and pipeline stages per attn.flash for a target (cuda:90, cuda:80, hip:gfx942, hip:gfx90a, cpu).
// CHECK-NEXT:       target="cuda:90"
// CHECK-NEXT:       block-m=0
// CHECK-NEXT:       block-n=0
// CHECK-NEXT:       num-warps=0
// CHECK-NEXT:       num-stages=0
// CHECK-NEXT:   convert-attn-to-tile   Lowers each tiled attn.flash (with its attn.flash_grad) and attn.recurrent_chunk into tile-dialect kernels.
// CHECK:        attn-chunk             Rewrites attn.recurrence into attn.recurrent_chunk with a chunk size (a power of two, at least 16).
// CHECK-NEXT:       chunk-size=64
// CHECK:      attnc pipelines
// CHECK-NEXT:   softmax                Softmax-style attention, forward only
// CHECK-NEXT:       -p 'attn-fuse,attn-block-mask,attn-split,attn-guard-captures,attn-tile,convert-attn-to-tile'
// CHECK-NEXT:   softmax-backward
// CHECK-NEXT:       -p 'attn-fuse,attn-block-mask,attn-autodiff{strict=true},attn-split,attn-guard-captures,attn-tile,convert-attn-to-tile'
// CHECK-NEXT:   linear                 Linear attention, forward only
// CHECK-NEXT:       -p 'attn-chunk,attn-tile,convert-attn-to-tile'
// CHECK-NEXT:   linear-backward
// CHECK-NEXT:       -p 'attn-chunk,attn-autodiff,attn-tile,convert-attn-to-tile'

// UNKNOWN: attn-opt: error: Unrecognized passes: ['attn-nope']

// BAD-OPTION: attn-opt: error: Provided arguments ["block-q"] not found in expected arguments ["target", "block-m", "block-n", "num-warps", "num-stages"]

// ORDER:      usage: attn-opt
// ORDER:      attnc passes
// ORDER:      attnc pipelines
// ORDER:      options:
// ORDER:      -p PASSES, --passes PASSES
// ORDER-NOT:  convert-scf-to-cf
// ORDER:      --pass-pipeline PASS_PIPELINE

// LIST-DAG: attn-tile
// LIST-DAG: convert-scf-to-cf

// TIME:      ... Execution time report ...
// TIME:        Total Execution Time: {{[0-9.]+}} seconds
// TIME:        ----Wall Time----  ----Name----
// TIME-NEXT:   {{ *[0-9.]+}} ({{ *[0-9.]+}}%)  attn-fuse
// TIME-NEXT:   {{ *[0-9.]+}} ({{ *[0-9.]+}}%)  attn-tile
// TIME-NEXT:   {{ *[0-9.]+}} (100.0%)  Total

// TIME-STDOUT-NOT: took
// TIME-STDOUT:     builtin.module

// UNCLOSED: attn-opt: error: --pass-pipeline: 'builtin.module(attn-fuse' opens 'builtin.module(' but does not close it

// BOTH: attn-opt: error: give the passes once: -p or --pass-pipeline, not both

func.func @f() {
  func.return
}
