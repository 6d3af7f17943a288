// RUN: attn-opt --help | filecheck %s
// RUN: not attn-opt %s -p attn-nope 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not attn-opt %s -p 'attn-tile{block-q=64}' 2>&1 | filecheck %s --check-prefix=BAD-OPTION

// `attn-opt --help` lists every attnc pass with its summary and its options with
// their defaults, then the named pipelines with their -p spelling; an unknown pass or
// option is an error that names it.

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

// BAD-OPTION: attn-opt: error: Provided arguments ["block_q"] not found in expected arguments ["target", "block_m", "block_n", "num_warps", "num_stages"]

func.func @f() {
  func.return
}
