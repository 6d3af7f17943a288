"""`attnc.flex_attention`: FlexAttention's call, so porting Flex code means changing the import line.

```python
from torch.nn.attention.flex_attention import create_block_mask
from attnc import flex_attention

block_mask = create_block_mask(causal, B=None, H=None, Q_LEN=256, KV_LEN=256, device="cpu")
out = flex_attention(q, k, v, score_mod=softcap, block_mask=block_mask)
```

A thin entry over `attnc.attention`: torch's `BlockMask` contributes its `mask_mod` (attnc
classifies the mask and finds the sparse blocks itself, so the BlockMask's block sizes are
only a hint), and the `Attention` for a pair of mods is kept in a cache keyed on the mods'
identity. A warm call walks the mods' bindings (closure cells, the globals they name,
defaults) and compares them with what they were at trace time: a tensor by identity, a
number by value. A name rebound to another number traces again; a tensor changed in place is
read as it is at each call, as every captured tensor is. Mods of the same code whose tensors
have the same shapes, strides, dtypes and devices (a new closure per step, a rebound tensor)
share one trace, their tensors swapped into its captures at each call (eagerly; under
torch.compile each keeps its own). Mods reading what the walk cannot check (an
object's attributes, a dict, a callable object, a tensor computed inside the mod) are traced
at every call, with a warning. Under torch.compile, dynamo guards on what the walk reads;
the values inside such objects it does not see.
"""

from __future__ import annotations

import functools
import math
import numbers
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.nn.attention import flex_attention as torch_flex

from attnc.frontend.api import Attention

__all__ = ["KERNEL_OPTIONS_CHECKED", "flex_attention"]

# Flex's kernel_options that attnc reads, and only to refuse what Flex refuses; every other
# key (BLOCK_M, num_warps, PRESCALE_QK, ...) is accepted and ignored, as torch 2.13 accepts
# unknown keys: attn-tile chooses tiles, warps and stages.
KERNEL_OPTIONS_CHECKED = ("BACKEND", "FORCE_USE_FLEX_ATTENTION", "OUTPUT_LOGSUMEXP", "OUTPUT_MAX")
_BACKENDS = ("AUTO", "TRITON", "FLASH", "TRITON_DECODE")

# torch's block size for "no mask given": its lengths are not checked (as in Flex).
_LARGE_BLOCK = 1 << 30

Mod = Callable[..., Any]


def flex_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    score_mod: Mod | None = None,
    block_mask: torch_flex.BlockMask | None = None,
    scale: float | None = None,
    enable_gqa: bool = False,
    return_lse: bool = False,
    kernel_options: dict[str, Any] | None = None,
    *,
    return_aux: torch_flex.AuxRequest | None = None,
) -> Any:
    """`torch.nn.attention.flex_attention.flex_attention`, run by attnc's kernels.

    query [B, Hq, L, E], key [B, Hkv, S, E], value [B, Hkv, S, Ev] (float16, bfloat16 or
    float32); Hq != Hkv needs `enable_gqa=True`. Returns the output [B, Hq, L, Ev]; with
    `return_aux=AuxRequest(lse=True)` also an `AuxOutput` whose `lse` [B, Hq, L] is the
    natural-log logsumexp of the modified, scaled scores (float32; -inf on rows with no
    unmasked key, whose output is 0); with the deprecated `return_lse=True`, that lse
    itself. Gradients flow to q, k, v and to tensors the mods capture.
    """
    if return_lse and return_aux is not None:
        raise ValueError(
            "Cannot specify both return_lse and return_aux. "
            "return_lse is deprecated, please use return_aux=AuxRequest(lse=True) instead."
        )
    if return_aux is not None and return_aux.max_scores:
        raise NotImplementedError("attnc.flex_attention cannot return max_scores; request AuxRequest(lse=True)")
    _check_kernel_options(kernel_options)
    _check_heads(query, key, enable_gqa)
    mask_mod = _mask_mod_of(block_mask, query, key)
    want_lse = return_lse or (return_aux is not None and return_aux.lse)
    if torch.compiler.is_compiling():
        out, lse = _run(score_mod, mask_mod, query, key, value, scale, want_lse)
    else:
        with _BIND_AND_LAUNCH:  # a shared trace's captures are this call's from binding to launch
            out, lse = _run(score_mod, mask_mod, query, key, value, scale, want_lse)
    if not want_lse:
        return out if return_aux is None else (out, torch_flex.AuxOutput())
    return (out, lse) if return_aux is None else (out, torch_flex.AuxOutput(lse=lse))


_BIND_AND_LAUNCH = threading.RLock()


def _run(
    score_mod: Mod | None, mask_mod: Mod | None, query: Any, key: Any, value: Any, scale: Any, want_lse: bool
) -> tuple[Any, Any]:
    """The call on the (possibly shared) Attention for these mods, with their tensors bound. The launches
    take the tensors' pointers and the custom ops their own list: after it returns, another call may bind."""
    attn = _attention_for(score_mod, mask_mod)
    if not want_lse:
        return attn(query, key, value, scale=scale), None
    out, lse = attn(query, key, value, scale=scale, return_lse=True)
    return out, lse


def _check_kernel_options(options: dict[str, Any] | None) -> None:
    """What Flex refuses in kernel_options, refused with Flex's errors."""
    if not options:
        return
    if "BACKEND" in options and options.get("FORCE_USE_FLEX_ATTENTION", False):
        raise RuntimeError("BACKEND cannot be combined with legacy FORCE_USE_FLEX_ATTENTION")
    if "BACKEND" in options and options["BACKEND"] not in _BACKENDS:
        raise ValueError(f"Invalid BACKEND value '{options['BACKEND']}'. Must be one of {_BACKENDS}")
    for internal in ("OUTPUT_LOGSUMEXP", "OUTPUT_MAX"):
        if internal in options:
            raise ValueError(f"{internal} must not be in kernel_options; use return_aux")


def _check_heads(query: Any, key: Any, enable_gqa: bool) -> None:
    """Flex's rule: different head counts need enable_gqa (the rest is checked by `Attention`)."""
    if not (isinstance(query, torch.Tensor) and isinstance(key, torch.Tensor)) or query.dim() != 4 or key.dim() != 4:
        return  # Attention names the argument
    hq, hkv = query.size(1), key.size(1)
    if not enable_gqa and hq != hkv:
        raise ValueError(
            f"Expect query and key/value to have the same number of heads but got Hq={hq} and Hkv={hkv}. "
            "Try setting enable_gqa=True for GQA."
        )
    if enable_gqa and (hkv == 0 or hq % hkv):
        raise ValueError(
            f"Expect number of query heads to be a multiple of kv heads for GQA but got Hq={hq} and Hkv={hkv}."
        )


def _mask_mod_of(block_mask: Any, query: Any, key: Any) -> Mod | None:
    """The mask_mod a BlockMask carries, after checking it was made for these lengths; None keeps every key."""
    if block_mask is None:
        return None
    if not isinstance(block_mask, torch_flex.BlockMask):
        raise TypeError(f"block_mask must be a BlockMask (create_block_mask), but got {type(block_mask).__name__}")
    mask_mod = block_mask.mask_mod
    if getattr(mask_mod, "__name__", "") == "_sliced_mask_mod_error":
        raise RuntimeError("Cannot use mask_mod from a sliced BlockMask")
    if tuple(block_mask.BLOCK_SIZE) != (_LARGE_BLOCK, _LARGE_BLOCK) and isinstance(query, torch.Tensor):
        q_len, kv_len = query.size(-2), key.size(-2)
        if tuple(block_mask.seq_lengths) != (q_len, kv_len):
            raise ValueError(
                f"block_mask was created for Q_LEN={block_mask.seq_lengths[0]} and KV_LEN={block_mask.seq_lengths[1]}, "
                f"but query has length {q_len} and key {kv_len}; create the block mask for these lengths"
            )
    if mask_mod is torch_flex.noop_mask and not torch.compiler.is_compiling():
        _check_blocks_cover(block_mask)
    return mask_mod


def _check_blocks_cover(block_mask: torch_flex.BlockMask) -> None:
    """A BlockMask with no mask_mod whose block lists skip blocks (from_kv_blocks) is a mask attnc cannot see."""
    kv_blocks = math.ceil(block_mask.seq_lengths[1] / block_mask.BLOCK_SIZE[1])
    listed = block_mask.kv_num_blocks
    if block_mask.full_kv_num_blocks is not None:
        listed = listed + block_mask.full_kv_num_blocks
    if bool((listed < kv_blocks).any()):
        raise NotImplementedError(
            "this BlockMask has no mask_mod and skips key blocks (made by BlockMask.from_kv_blocks?); "
            "attnc finds the sparse blocks from a mask_mod: pass one to create_block_mask or from_kv_blocks"
        )


# Plan cache: (score_mod, mask_mod) by identity → an entry. Mods made anew per step from the same code
# (a document mask over this batch's offsets) share one Attention by their structure: the code, the
# numbers, and tensors of the same shape, strides, dtype and device, which are swapped in per call.
_CACHE_SIZE = 64
_ATTENTIONS: OrderedDict[tuple[Any, Any], _Entry] = OrderedDict()
_SHARED: OrderedDict[tuple[Any, ...], _Shared] = OrderedDict()


class _Shared(NamedTuple):
    attention: Attention
    positions: list[int]  # where in the bindings each captured tensor is


class _Entry(NamedTuple):
    mods: tuple[Mod | None, Mod | None]  # held, so the ids in the key and the fingerprint stay theirs
    bindings: list[Any]  # held for the same reason
    fingerprint: tuple[Any, ...] | None  # None: traced again at every call
    attention: Attention
    positions: list[int] | None  # a shared Attention's captures, by binding; None: its own


def _attention_for(score_mod: Mod | None, mask_mod: Mod | None) -> Attention:
    """The traced `Attention` for these mods, traced again only when they are new or a binding changed."""
    if torch.compiler.is_compiling():
        # Traced (or found) as plain Python first; the lookup below then hits, and dynamo guards on
        # what it read: the cache and the ids and values of the mods' bindings.
        _ensure_traced(score_mod, mask_mod)
    return _cached(score_mod, mask_mod)


def _cached(score_mod: Mod | None, mask_mod: Mod | None, share: bool = True) -> Attention:
    key = (_identity(score_mod), _identity(mask_mod))
    found = _ATTENTIONS.get(key)
    bindings = _bindings(score_mod) + _bindings(mask_mod)  # under dynamo: what its guards check
    fingerprint = _fingerprint(bindings)
    if torch.compiler.is_compiling() and found is not None:
        return found.attention  # _ensure_traced has just traced or checked it, eagerly, as its own
    if found is not None and fingerprint is not None and found.fingerprint == fingerprint:
        if found.positions is None or share:
            _ATTENTIONS.move_to_end(key)
            return _bound(found.attention, found.positions, bindings)
    structure = _structure(score_mod, mask_mod, bindings) if share and fingerprint is not None else None
    shared = _SHARED.get(structure) if structure is not None else None
    if shared is not None:
        attn, positions = shared.attention, shared.positions
        _bound(attn, positions, bindings)
    else:
        attn, positions = Attention(score_mod, _traceable_mask(mask_mod)), None
        if fingerprint is not None and not _captures_bound(attn, bindings):
            fingerprint = None  # a tensor the mods compute (temp.exp()): only a new trace sees its new value
        if fingerprint is None:
            _warn_uncached(score_mod, mask_mod)
        elif structure is not None:
            positions = _positions(attn, bindings)
            if positions is not None:
                _SHARED[structure] = _Shared(attn, positions)
                while len(_SHARED) > _CACHE_SIZE:
                    _SHARED.popitem(last=False)
    _ATTENTIONS[key] = _Entry((score_mod, mask_mod), bindings, fingerprint, attn, positions)
    while len(_ATTENTIONS) > _CACHE_SIZE:
        _ATTENTIONS.popitem(last=False)
    return attn


def _bound(attn: Attention, positions: list[int] | None, bindings: list[Any]) -> Attention:
    """A shared Attention with this call's tensors in its captures (in place: plans read the list)."""
    if positions is not None:
        attn.program.captures[:] = [bindings[j] for j in positions]
    return attn


def _positions(attn: Attention, bindings: list[Any]) -> list[int] | None:
    """Where in the bindings each captured tensor is, or None when one is not a binding itself."""
    index = {id(b): j for j, b in enumerate(bindings) if isinstance(b, torch.Tensor)}
    positions = [index.get(id(t)) for t in attn.program.captures]
    return None if any(j is None for j in positions) else [j for j in positions if j is not None]


def _structure(score_mod: Mod | None, mask_mod: Mod | None, bindings: list[Any]) -> tuple[Any, ...] | None:
    """What a trace depends on, without the tensors' identity: the mods' code, the numbers, and each
    tensor's shape, strides, dtype, device and whether it needs grad; None when a binding is opaque."""
    parts: list[Any] = [_code(score_mod), _code(mask_mod)]
    first: dict[int, int] = {}  # a tensor bound twice is one capture: the same aliasing, or another trace
    for j, b in enumerate(bindings):
        if isinstance(b, torch.Tensor):
            alias = first.setdefault(id(b), j)
            parts.append((tuple(b.shape), b.stride(), b.dtype, b.device, b.requires_grad, alias))
        elif isinstance(b, _SCALARS):
            parts.append(_scalar_key(b))
        elif isinstance(b, _WALKED):
            parts.append(_code(b))
        elif isinstance(b, _STABLE):
            parts.append(("object", id(b)))  # a builtin or library object: which one
        else:
            return None
    return None if any(p is _OPAQUE for p in parts) else tuple(parts)


def _code(fn: Any) -> Any:
    """What identifies a function's behaviour apart from its bindings: its code (and, for a bound
    method, its object; for a partial, its function's); a sequence by its length."""
    if fn is None:
        return None
    if isinstance(fn, types.FunctionType):
        return fn.__code__
    if isinstance(fn, types.MethodType):
        return (getattr(fn.__func__, "__code__", None), id(fn.__self__))
    if isinstance(fn, functools.partial):
        return ("partial", _code(fn.func), len(fn.args), tuple(fn.keywords))
    if isinstance(fn, tuple | list):
        return (type(fn), len(fn))
    return _OPAQUE


def _captures_bound(attn: Attention, bindings: list[Any]) -> bool:
    """Whether the tensors the mods read are their tensor bindings, each way: every capture is a binding
    (or a view of one), and every tensor binding is a capture. A binding read into Python while tracing
    (`t.item()`, `bool(t)`) is a constant of the trace, which its new value would not change."""
    bound = {id(b) for b in bindings if isinstance(b, torch.Tensor)}
    captured = {id(t) for t in attn.captures()} | {id(t._base) for t in attn.captures() if t._base is not None}
    return all(id(t) in bound or id(t._base) in bound for t in attn.captures()) and bound <= captured


_WARNED: set[tuple[Any, Any]] = set()


def _warn_uncached(score_mod: Mod | None, mask_mod: Mod | None) -> None:
    codes = (getattr(score_mod, "__code__", None), getattr(mask_mod, "__code__", None))
    if codes in _WARNED:
        return
    _WARNED.add(codes)
    warnings.warn(
        "attnc.flex_attention traces these mods at every call: they read a value it cannot check for "
        "changes (an object's attribute, a dict, a callable object, or a tensor computed inside the mod). "
        "Pass tensors and numbers through closures, globals or defaults, and compute derived tensors "
        "outside the mod, to trace once.",
        stacklevel=4,
    )


@torch.compiler.assume_constant_result
def _ensure_traced(score_mod: Mod | None, mask_mod: Mod | None) -> str:
    """The cached Attention's name, traced first if needed. Under torch.compile this runs as plain
    Python while dynamo traces the caller (dynamo cannot trace xDSL), and the name is a constant."""
    return _cached(score_mod, mask_mod, share=False).program.name


def _identity(fn: Mod | None) -> Any:
    """A bound method is made anew at each attribute access: its function and object identify it."""
    if fn is None:
        return None
    if isinstance(fn, types.MethodType):
        return (id(fn.__func__), id(fn.__self__))
    return id(fn)


_SCALARS = (numbers.Number, str, bytes, type(None), torch.dtype, torch.device)
_WALKED = (types.FunctionType, types.MethodType, functools.partial, tuple, list)
# What a mod may read whose own state does not change what it computes, kept by identity: builtins
# (torch.tanh), and the modules and classes of libraries. A user's module or class is opaque.
_STABLE = (types.ModuleType, type, types.BuiltinFunctionType, types.BuiltinMethodType)
_LIBRARIES = ("torch", "attnc", "triton", "numpy", "math", "functools", "builtins", "operator")
_OPAQUE = object()  # a binding whose changes the fingerprint cannot see


def _library(value: Any) -> bool:
    name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None) or ""
    return name.split(".")[0] in _LIBRARIES


def _bindings(fn: Any, seen: set[int] | None = None) -> list[Any]:
    """What a mod reads from outside itself: closure cells, the globals its code (and the code of the
    functions it defines) names, defaults, a partial's arguments, a bound method's attributes; the
    tensors and numbers among them, and the functions (and_masks' list, a helper), walked in turn.
    Anything else it reads (an object, a dict, a callable object as the mod) is `_OPAQUE`."""
    seen = set() if seen is None else seen
    if id(fn) in seen or fn is None:
        return []
    seen.add(id(fn))
    if isinstance(fn, tuple | list):
        values = list(fn)
    elif isinstance(fn, types.MethodType):
        values = _method_values(fn)
    elif isinstance(fn, types.FunctionType):
        if fn.__closure__ is None and _library(fn):
            return []  # library code (F.relu): what it reads does not change; and_masks' closures are walked
        names = _names(fn.__code__)
        values = [c.cell_contents for c in fn.__closure__ or () if _filled(c)]
        values += [fn.__globals__[n] for n in names if n in fn.__globals__]
        values += [fn.__dict__[n] for n in names if n in fn.__dict__]  # score_mod.c: the function's own
        values += [*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values()]
    elif isinstance(fn, functools.partial):
        values = [fn.func, *fn.args, *fn.keywords.values()]
    elif isinstance(fn, _STABLE):
        return []
    else:
        return [_OPAQUE]  # a callable object as the mod: its state is not visible here
    found: list[Any] = []
    for v in values:
        if v is _OPAQUE or isinstance(v, (torch.Tensor, *_SCALARS, *_WALKED)):
            found.append(v)
        elif isinstance(v, _STABLE) and (_library(v) or isinstance(v, types.BuiltinFunctionType)):
            found.append(v)  # kept by identity: which builtin or library object it is
        else:
            found.append(_OPAQUE)
        if isinstance(v, _WALKED):
            found.extend(_bindings(v, seen))
    return found


def _method_values(fn: types.MethodType) -> list[Any]:
    """What a bound method reads of its object (the attributes its code names), and its function."""
    obj = fn.__self__
    attrs = dict(getattr(obj, "__dict__", {}))
    if isinstance(obj, torch.nn.Module):
        attrs.update(obj._parameters)
        attrs.update(obj._buffers)
    values: list[Any] = []
    for n in _names(getattr(fn.__func__, "__code__", _NO_CODE)):
        if n in attrs:
            values.append(attrs[n])
        elif hasattr(type(obj), n) or hasattr(obj, n):
            # a class attribute, a slot, a submodule, a property: a method is walked, the rest unseen
            attr = getattr(obj, n, None)
            values.append(attr if isinstance(attr, types.MethodType) else _OPAQUE)
    values.append(fn.__func__)
    return values


def _names(code: types.CodeType) -> list[str]:
    """The global and attribute names `code` reads, with those of the functions it defines."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _names(const)
    return names


_NO_CODE = (lambda: None).__code__


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018  (an empty cell raises)
    except ValueError:
        return False
    return True


def _fingerprint(bindings: list[Any]) -> tuple[Any, ...] | None:
    """Numbers and strings by type and value; tensors and functions by id (dynamo guards on ids); None
    when a binding is opaque."""
    if any(v is _OPAQUE for v in bindings):
        return None
    return tuple(_scalar_key(v) if isinstance(v, _SCALARS) else id(v) for v in bindings)


def _scalar_key(value: Any) -> Any:
    """A number or string by type and value, floats by their bits (-0.0 is not 0.0; NaN is NaN)."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return (type(value), float(value).hex())
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        return (type(value), complex(value).real.hex(), complex(value).imag.hex())
    return (type(value), value)


def _traceable_mask(mask_mod: Mod | None) -> Mod | None:
    """torch's noop_mask, and_masks and or_masks rewritten with `&` and `|`: their own bodies call
    `b.new_ones(...)`, and the mask they mean is plainer IR for attn-block-mask to classify."""
    if mask_mod is None or mask_mod is torch_flex.noop_mask:
        return None
    parts = _combined(mask_mod, _AND_CODE)
    if parts is not None:
        kept = [m for m in (_traceable_mask(p) for p in parts) if m is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else _all_of(kept)
    parts = _combined(mask_mod, _OR_CODE)
    if parts is not None:
        mods = [_traceable_mask(p) for p in parts]
        if any(m is None for m in mods):
            return None  # one of them keeps every key
        return _any_of([m for m in mods if m is not None])
    return mask_mod


def _combined(fn: Mod, code: types.CodeType) -> tuple[Mod, ...] | None:
    """The mask_mods an and_masks/or_masks closure combines, or None when `fn` is not one."""
    if getattr(fn, "__code__", None) is not code:
        return None
    assert isinstance(fn, types.FunctionType) and fn.__closure__ is not None
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__))
    return tuple(cells["mask_mods"].cell_contents)


def _all_of(mods: list[Mod]) -> Mod:
    def and_mask(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        result = mods[0](b, h, q_idx, kv_idx)
        for mod in mods[1:]:
            result = result & mod(b, h, q_idx, kv_idx)
        return result

    return and_mask


def _any_of(mods: list[Mod]) -> Mod:
    def or_mask(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        result: Any = mods[0](b, h, q_idx, kv_idx) if mods else False  # or_masks() keeps no key
        for mod in mods[1:]:
            result = result | mod(b, h, q_idx, kv_idx)
        return result

    return or_mask


_AND_CODE = torch_flex.and_masks().__code__
_OR_CODE = torch_flex.or_masks().__code__
