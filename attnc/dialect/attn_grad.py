"""The backward of the fused attention op: `attn.flash_grad`, derived by `attn-autodiff`.

Part of the `attn` dialect, split out as the backward op family: attn.py registers it
in `Attn` and re-exports it, so import it as `attnc.dialect.attn.FlashGradOp` (this
module reads attn.py's helpers, so attn.py must load first). Its regions are scalar,
like attn.flash's: the kernels evaluate them per score element.
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    AnyFloat,
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    f32,
    i1,
)
from xdsl.ir import Attribute
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    attr_def,
    irdl_op_definition,
    operand_def,
    opt_attr_def,
    opt_operand_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import IsolatedFromAbove, RecursiveMemoryEffect
from xdsl.utils.exceptions import VerifyException

from attnc.dialect.attn_regions import (
    TileAttr,
    check_block_args,
    check_yield,
    score_mod_arg_types,
    tensor_type,
    verify_mask_mod,
    verify_score_mod,
)
from attnc.dialect.attn_sequences import check_layout


@irdl_op_definition
class FlashGradOp(IRDLOperation):
    """Gradients of an `attn.flash`: dq, dk, dv and one per captured tensor.

    Reads the forward's inputs, its output `out`, the incoming gradient `dout` and,
    as `stat`, one row statistic of the forward. With s the scaled score, the
    `probabilities` attribute says how the kernels recompute the weights:

    - `"softmax"`: t = score_mod(s), P = exp(t − stat) with stat the logsumexp
      (masked entries 0), and

          dP = dO · Vᵀ,   dT = P ⊙ (dP − rowsum(dO ⊙ O)),   dS = score_mod'(s) · dT;

    - `"elementwise"`: the `score_mod` region here yields the weight itself,
      P = c · f(s) (f: the normalizer's update after the score_mod), with c per row
      1, or 1/stat when `row_scale = "inverse"` (the statistic held constant, as
      RetNet holds its denominator), and dS = f'(s) · c · dP;

    and in both cases dV = Pᵀ · dO,   dQ = scale · dS · K,   dK = scale · dSᵀ · Q.

    `score_mod_grad` is score_mod's derivative: block arguments those of `score_mod`
    plus the incoming gradient dT (f32); it yields dS (f32) and then, for each *site*
    (a `tensor.extract` of a float capture, in program order) the site's adjoint (f32)
    and the indices it read (one `index` per dimension of the capture).
    `capture_sites[i]` says which capture site i reads; the runtime scatter-adds each
    site's adjoints into that capture's gradient. Captures without sites (integer
    tensors, tensors only the mask reads) get a zero gradient. `mask_mod`, `classify`
    and `block_mask` are the forward's, for the same block skipping.

    `capture_site_guards` (`stat_site_guards`), set by attn-guard-captures, lists per site of
    `score_mod_grad` (`stat_grad`) the dimensions whose index no check before the call proves in
    range: those adjoints are added only where 0 <= index < size.

    `stat_grad` (softmax only, and only when the normalizer's finalize reads float
    captures, a sink's logit say) gives those captures their gradient through the
    statistic. attn-autodiff admits a finalize as softmax's when its first statistic is
    lse = log(Σ_j exp(t_j) + E(c)), c the captured values it reads; then ∂lse/∂c =
    exp(lse₀ − lse)·∂lse₀/∂c with lse₀ = log E(c) the statistic of a row that sees no
    key, and since out = Σ_j exp(t_j − lse)·v_j depends on c only through lse,

        dL/dc = Σ_rows (dlse − rowsum(dO ⊙ O))·∂lse/∂c = −Σ_rows δ·∂lse/∂c

    with δ the dQ kernel's. Its block arguments are (b, h, lse: f32, captures...,
    grad: f32); it recomputes lse₀ from finalize at the initial state and yields, per
    site of a capture in it (`stat_sites[i]`: which capture), grad·∂lse/∂site and the
    indices read. The dQ kernel, which owns whole rows, evaluates it once per row with
    grad = −δ and adds the adjoints into the captures' gradients. For gpt-oss's sinks
    lse₀ = sink[h], so the sink's gradient is −Σ_rows exp(sink[h] − lse)·δ.

    `layout` and `sequences` are the forward's (dialect/attn_sequences.py): q, k, v, out and dout
    are then stored packed or in a KV cache, the statistic like out without its head dim, and the
    gradients like what they differentiate; the kernels find each sequence's rows as the forward does.

    `attn-tile` sets the launch of each of the two backward kernels: `dq_tile`,
    `dq_num_warps`, `dq_num_stages` for dQ (which holds BLOCK_M query rows and walks
    key blocks of BLOCK_N) and `dkdv_tile`, `dkdv_num_warps`, `dkdv_num_stages` for
    dK/dV (which holds BLOCK_N keys and walks query blocks of BLOCK_M); all or none.

    ```mlir
    %dq, %dk, %dv, %dslopes = attn.flash_grad %q, %k, %v, %o, %dout stat(%lse : tensor<?x8x?xf32>)
        captures(%slopes : tensor<8xf32>)
    score_mod {
    ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<8xf32>):
      ...
      attn.yield %t : f32
    } mask_mod {
      ...
    } score_mod_grad {
    ^bb0(%score: f32, %b: index, %h: index, %q_idx: index, %kv_idx: index, %slopes_1: tensor<8xf32>, %grad: f32):
      ...
      attn.yield %grad, %dslopes, %h : f32, f32, index
    } classify {
    } {scale = 0.125 : f32, probabilities = "softmax", capture_sites = [0 : i64], block_mask = "none",
       dq_tile = #attn.tile<64x64>, dq_num_warps = 4 : i64, dq_num_stages = 3 : i64,
       dkdv_tile = #attn.tile<64x128>, dkdv_num_warps = 8 : i64, dkdv_num_stages = 3 : i64}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x8x?x64xbf16>,
        tensor<?x8x?x64xbf16> -> (tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<8xf32>)
    ```
    """

    name = "attn.flash_grad"
    q = operand_def(TensorType)
    k = operand_def(TensorType)
    v = operand_def(TensorType)
    out = operand_def(TensorType)
    dout = operand_def(TensorType)
    sequences = var_operand_def(TensorType)  # the forward's layout metadata (attn_sequences.py); none when dense
    stat = opt_operand_def(TensorType)
    captures = var_operand_def(TensorType)
    layout = opt_attr_def(StringAttr)  # "packed" | "cache" | "paged", as the forward's; absent: dense
    scale = attr_def(FloatAttr)
    probabilities = attr_def(StringAttr)
    row_scale = opt_attr_def(StringAttr)
    capture_sites = attr_def(ArrayAttr[IntegerAttr])
    block_mask = opt_attr_def(StringAttr)
    dq_tile = opt_attr_def(TileAttr)
    dq_num_warps = opt_attr_def(IntegerAttr)
    dq_num_stages = opt_attr_def(IntegerAttr)
    dkdv_tile = opt_attr_def(TileAttr)
    dkdv_num_warps = opt_attr_def(IntegerAttr)
    dkdv_num_stages = opt_attr_def(IntegerAttr)
    score_mod = region_def("single_block")
    mask_mod = region_def("single_block")
    score_mod_grad = region_def("single_block")
    classify = region_def()
    stat_grad = region_def()
    stat_sites = opt_attr_def(ArrayAttr[IntegerAttr])
    capture_site_guards = opt_attr_def(ArrayAttr[DenseArrayBase[IntegerType]])
    stat_site_guards = opt_attr_def(ArrayAttr[DenseArrayBase[IntegerType]])
    dq = result_def(TensorType)
    dk = result_def(TensorType)
    dv = result_def(TensorType)
    capture_grads = var_result_def(TensorType)
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    assembly_format = (
        "$q `,` $k `,` $v `,` $out `,` $dout (`sequences` `(` $sequences^ `:` type($sequences) `)`)? "
        "(`stat` `(` $stat^ `:` type($stat) `)`)? "
        "(`captures` `(` $captures^ `:` type($captures) `)`)? "
        "`score_mod` $score_mod `mask_mod` $mask_mod `score_mod_grad` $score_mod_grad `classify` $classify "
        "(`stat_grad` $stat_grad^)? attr-dict "
        "`:` type($q) `,` type($k) `,` type($v) `,` type($out) `,` type($dout) "
        "`->` `(` type($dq) `,` type($dk) `,` type($dv) (`,` type($capture_grads)^)? `)`"
    )

    def verify_(self) -> None:
        for what, operand, result in (("dq", self.q, self.dq), ("dk", self.k, self.dk), ("dv", self.v, self.dv)):
            tensor_type(operand, what[1:], self, 4)
            if result.type != operand.type:
                raise VerifyException(
                    f"'attn.flash_grad' op expected {what} of type {operand.type}, but got {result.type}"
                )
        ot = tensor_type(self.out, "out", self, 4)
        if self.dout.type != ot:
            raise VerifyException(f"'attn.flash_grad' op expected dout of type {ot}, but got {self.dout.type}")
        if self.layout is not None:
            check_layout(self, self.layout.data, self.q, self.k, self.v, self.sequences)
        elif self.sequences:
            raise VerifyException("'attn.flash_grad' op expected no sequences operands without a layout")
        kind, row_scale = self.probabilities.data, self.row_scale.data if self.row_scale is not None else None
        if kind not in ("softmax", "elementwise"):
            raise VerifyException(
                f"'attn.flash_grad' op expected probabilities to be softmax or elementwise, but got {kind}"
            )
        if row_scale not in (None, "inverse") or (row_scale is not None and kind != "elementwise"):
            raise VerifyException(
                f"'attn.flash_grad' op expected row_scale \"inverse\" on elementwise probabilities only, but got {row_scale}"
            )
        needs_stat = kind == "softmax" or row_scale is not None
        if needs_stat != (self.stat is not None):
            raise VerifyException(
                f"'attn.flash_grad' op expected {'a' if needs_stat else 'no'} row statistic operand for "
                f"{kind} probabilities{' with row_scale' if row_scale else ''}"
            )
        want_stat = TensorType(f32, ot.get_shape()[:3])
        if self.stat is not None and self.stat.type != want_stat:
            raise VerifyException(f"'attn.flash_grad' op expected stat of type {want_stat}, but got {self.stat.type}")
        self._verify_capture_grads()
        verify_score_mod(self, self.score_mod, self.captures)
        verify_mask_mod(self, self.mask_mod, self.captures)
        self._verify_score_mod_grad()
        self._verify_stat_grad()
        self._verify_site_guards("capture_site_guards", self.capture_site_guards, self.capture_sites)
        self._verify_site_guards("stat_site_guards", self.stat_site_guards, self.stat_sites)
        kind = self.block_mask.data if self.block_mask is not None else None
        if kind not in (None, "none", "affine", "runtime"):
            raise VerifyException(
                f"'attn.flash_grad' op expected block_mask to be none, affine or runtime, but got {kind}"
            )
        if kind == "affine":
            block = check_block_args(self, self.classify, "classify", [IndexType()] * 6)
            check_yield(self, block, "classify", [i1, i1])
        elif self.classify.blocks:
            raise VerifyException("'attn.flash_grad' op expected an empty classify region unless block_mask is affine")
        self._verify_launch()

    def launch(self, kernel: str) -> tuple[int, int, int, int] | None:
        """(block_m, block_n, num_warps, num_stages) of the "dq" or "dkdv" kernel, or None before attn-tile."""
        tile = self.attributes.get(f"{kernel}_tile")
        warps = self.attributes.get(f"{kernel}_num_warps")
        stages = self.attributes.get(f"{kernel}_num_stages")
        if not isinstance(tile, TileAttr) or not isinstance(warps, IntegerAttr) or not isinstance(stages, IntegerAttr):
            return None
        return tile.block_m.data, tile.block_n.data, warps.value.data, stages.value.data

    def _verify_launch(self) -> None:
        names = [f"{k}_{a}" for k in ("dq", "dkdv") for a in ("tile", "num_warps", "num_stages")]
        present = [n for n in names if n in self.attributes]
        if present and len(present) != len(names):
            raise VerifyException(
                f"'attn.flash_grad' op expected {', '.join(names[:-1])} and {names[-1]} together, "
                f"but got only {', '.join(present)}"
            )
        for kernel in ("dq", "dkdv"):
            launch = self.launch(kernel)
            if launch is None:
                continue
            _, _, warps, stages = launch
            if warps < 1 or warps & (warps - 1):
                raise VerifyException(
                    f"'attn.flash_grad' op expected {kernel}_num_warps to be a power of two, but got {warps}"
                )
            if stages < 1:
                raise VerifyException(
                    f"'attn.flash_grad' op expected {kernel}_num_stages of at least 1, but got {stages}"
                )

    def _verify_capture_grads(self) -> None:
        if len(self.capture_grads) != len(self.captures):
            raise VerifyException(
                f"'attn.flash_grad' op expected {len(self.captures)} capture gradients, but got {len(self.capture_grads)}"
            )
        for capture, grad in zip(self.captures, self.capture_grads):
            ct = tensor_type(capture, "capture", self)
            want = TensorType(f32, ct.get_shape())
            if grad.type != want:
                raise VerifyException(
                    f"'attn.flash_grad' op expected capture gradient of type {want}, but got {grad.type}"
                )

    def _verify_score_mod_grad(self) -> None:
        block = check_block_args(
            self, self.score_mod_grad, "score_mod_grad", [*score_mod_arg_types(self.captures), f32]
        )
        check_yield(self, block, "score_mod_grad", [f32, *self._site_types(self.capture_sites)])

    def _verify_stat_grad(self) -> None:
        if not self.stat_grad.blocks:
            if self.stat_sites is not None:
                raise VerifyException("'attn.flash_grad' op expected a stat_grad region with stat_sites")
            return
        if self.probabilities.data != "softmax" or self.stat_sites is None:
            raise VerifyException(
                "'attn.flash_grad' op expected stat_grad only with softmax probabilities and stat_sites"
            )
        block = check_block_args(
            self, self.stat_grad, "stat_grad", [IndexType(), IndexType(), f32, *[c.type for c in self.captures], f32]
        )
        check_yield(self, block, "stat_grad", self._site_types(self.stat_sites))

    def _verify_site_guards(
        self, name: str, guards: ArrayAttr[DenseArrayBase[IntegerType]] | None, sites: ArrayAttr[IntegerAttr] | None
    ) -> None:
        """One list of guarded dimensions per site, each a dimension of the capture the site reads."""
        if guards is None:
            return
        site_list = sites.data if sites is not None else ()
        if len(guards.data) != len(site_list):
            raise VerifyException(
                f"'attn.flash_grad' op expected {name} to have {len(site_list)} entries, one per site, "
                f"but got {len(guards.data)}"
            )
        for k, (site, dims) in enumerate(zip(site_list, guards.data)):
            ct = self.captures[site.value.data].type
            assert isinstance(ct, TensorType)
            rank = ct.get_num_dims()
            for dim in dims.get_values():
                if not 0 <= int(dim) < rank:
                    raise VerifyException(
                        f"'attn.flash_grad' op expected {name}[{k}] to list dimensions of a rank-{rank} capture, "
                        f"but got {dim}"
                    )

    def _site_types(self, sites: ArrayAttr[IntegerAttr]) -> list[Attribute]:
        """What a derivative region yields per site: the adjoint (f32) and one index per dimension."""
        types: list[Attribute] = []
        for site in sites.data:
            i = site.value.data
            if not 0 <= i < len(self.captures):
                raise VerifyException(
                    f"'attn.flash_grad' op capture site reads capture {i}, but there are {len(self.captures)}"
                )
            ct = self.captures[i].type
            assert isinstance(ct, TensorType)
            if not isinstance(ct.element_type, AnyFloat):
                raise VerifyException(f"'attn.flash_grad' op capture site reads capture {i} of non-float type {ct}")
            types += [f32, *[IndexType()] * ct.get_num_dims()]
        return types


__all__ = ["FlashGradOp"]
