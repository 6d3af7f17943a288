// RUN: attnc compile %S/../../../examples/alibi.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | attn-opt -p attn-fuse,attn-block-mask,attn-tile,convert-attn-to-tile -t triton | filecheck %s
// RUN: attnc compile %S/../../../examples/document_mask.py --shape 2,4,2,128,128,64,64 --dtype bf16 --target cuda:90 --emit attn | attn-opt -p attn-fuse,attn-block-mask,attn-tile,convert-attn-to-tile -t triton | filecheck %s

// What `attnc compile --emit attn` prints is valid input to attn-opt, which takes it
// through the same pipeline to a Triton kernel.

// CHECK:       @triton.jit
// CHECK-NEXT:  def attention_block_table(
// CHECK:       @triton.jit
// CHECK-NEXT:  def attention_fwd(
// CHECK:         tl.dot(
