"""Builds the logical attn IR for one attention variant: what `attnc compile --emit attn` prints."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import func
from xdsl.dialects.builtin import DYNAMIC_INDEX, ModuleOp, TensorType, bf16, f16, f32, i32
from xdsl.ir import Attribute, Block, Region, SSAValue

from attnc.dialect import attn
from attnc.dialect.attn import NormalizerSpec
from attnc.dialect.attn_sequences import LAYOUTS
from attnc.frontend.trace import TracedRegion
from attnc.runtime.attention import Signature

ELEMENT_TYPES: dict[str, Attribute] = {"float16": f16, "bfloat16": bf16, "float32": f32}

DYN = DYNAMIC_INDEX


def _capture_names(values: Sequence[SSAValue], traced: list[TracedRegion | None]) -> None:
    offset = {0: 5, 1: 4}
    for which, region in enumerate(traced):
        if region is None:
            continue
        args = region.region.blocks[0].args[offset[which] :]
        for arg, value in zip(args, values[: len(args)]):
            if arg.name_hint and value.name_hint is None:
                value.name_hint = arg.name_hint


def build_module(
    sig: Signature,
    score_mod: TracedRegion | None,
    mask_mod: TracedRegion | None,
    spec: NormalizerSpec,
) -> tuple[ModuleOp, list]:
    """The logical chain qk → score_mod → mask_mod → online_rowscale → pv in a `func.func @attention`.

    Returns the module and the captured tensors, in the order of the function's trailing arguments.
    """
    elem = ELEMENT_TYPES[sig.dtype]
    kv_len = sig.page_size if sig.layout == "paged" else DYN
    q_type = TensorType(elem, [DYN, sig.q_heads, DYN, sig.head_dim])
    k_type = TensorType(elem, [DYN, sig.kv_heads, kv_len, sig.head_dim])
    v_type = TensorType(elem, [DYN, sig.kv_heads, kv_len, sig.head_dim_v])
    meta_types = [TensorType(i32, [DYN] * rank) for _, rank in LAYOUTS.get(sig.layout, ())]

    captures: list = []
    capture_arg_types: list[Attribute] = []
    sources: list[tuple[list, list[Attribute]]] = []
    for traced, offset in ((score_mod, 5), (mask_mod, 4)):
        if traced is not None:
            sources.append((traced.captures, [a.type for a in traced.region.blocks[0].args[offset:]]))
    update_args = spec.update.blocks[0].args[3 + len(spec.state) :]
    sources.append((spec.captures, [a.type for a in update_args]))
    for tensors, types in sources:
        for tensor, ty in zip(tensors, types):
            if not any(tensor is c for c in captures):
                captures.append(tensor)
                capture_arg_types.append(ty)
    normalizer_capture_index = [next(i for i, c in enumerate(captures) if c is t) for t in spec.captures]
    arg_types: list[Attribute] = [q_type, k_type, v_type, *meta_types]

    stat_type = TensorType(f32, [DYN, sig.q_heads, DYN])
    out_type = TensorType(elem, [DYN, sig.q_heads, DYN, sig.head_dim_v])
    block = Block(arg_types=[*arg_types, *capture_arg_types])
    q, k, v = block.args[:3]
    meta = list(block.args[3 : 3 + len(meta_types)])
    capture_values = list(block.args[3 + len(meta_types) :])
    for arg, name in zip(block.args, ["q", "k", "v", *(n for n, _ in LAYOUTS.get(sig.layout, ()))]):
        arg.name_hint = name
    if meta:
        view = attn.SequencesOp(sig.layout, q, k, v, meta)
        for result, name in zip(view.results, ("q_seq", "k_seq", "v_seq")):
            result.name_hint = name
        block.add_op(view)
        q, k, v = view.results

    def captured_by(traced: TracedRegion) -> list[SSAValue]:
        return [capture_values[next(i for i, c in enumerate(captures) if c is t)] for t in traced.captures]

    qk = attn.QKOp(q, k, sig.scale)
    qk.scores.name_hint = "scores"
    block.add_op(qk)
    scores: SSAValue = qk.scores
    if score_mod is not None:
        mod = attn.ScoreModOp(scores, captured_by(score_mod), score_mod.region.clone())
        mod.result.name_hint = "modified"
        block.add_op(mod)
        scores = mod.result
    keep = None
    if mask_mod is not None:
        mask = attn.MaskModOp(scores, captured_by(mask_mod), mask_mod.region.clone())
        mask.keep.name_hint = "keep"
        block.add_op(mask)
        keep = mask.keep
    norm = attn.OnlineRowscaleOp(scores, keep, spec, [capture_values[i] for i in normalizer_capture_index])
    norm.probs.name_hint = "probs"
    for stat, name in zip(norm.stats, spec.stat_names):
        stat.name_hint = name
    block.add_op(norm)
    pv = attn.PVOp(norm.probs, v)
    pv.out.name_hint = "out"
    block.add_op(pv)
    block.add_op(func.ReturnOp(pv.out, *norm.stats))
    _capture_names(capture_values, [score_mod, mask_mod])

    fn = func.FuncOp(
        "attention",
        ([*arg_types, *capture_arg_types], [out_type, *[stat_type] * spec.num_stats]),
        Region(block),
    )
    return ModuleOp([fn]), captures
