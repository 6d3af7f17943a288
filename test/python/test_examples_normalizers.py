"""The normalizer examples (examples/{sigmoid,relu,retention,sinks,tempered_softmax}.py), loaded from their files, on the CPU."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

import attnc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NORMALIZER_EXAMPLES = ["sigmoid", "relu", "retention", "sinks", "tempered_softmax"]
# B, Hq, Hkv, Sq, Skv, D: GQA, ragged lengths, more keys than queries.
SHAPE = (1, 4, 2, 45, 77, 32)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "attnc-cache"))


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py from its path, as `attnc run` does."""
    spec = importlib.util.spec_from_file_location(f"attnc_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, hq, hkv, sq, skv, d = SHAPE
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, hq, sq, d, generator=gen),
        torch.randn(b, hkv, skv, d, generator=gen),
        torch.randn(b, hkv, skv, d, generator=gen),
    )


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def mods(module: ModuleType) -> dict[str, Any]:
    return {
        "score_mod": getattr(module, "score_mod", None),
        "mask_mod": getattr(module, "mask_mod", None),
        "normalizer": getattr(module, "normalizer", "softmax"),
    }


@pytest.mark.parametrize("name", NORMALIZER_EXAMPLES)
def test_normalizer_example_matches_reference(name: str) -> None:
    """Each example's kernel, and its row statistics, match the float64 reference of the same mods and normalizer."""
    example = mods(load_example(name))
    q, k, v = inputs(seed=NORMALIZER_EXAMPLES.index(name))
    out, stats = attnc.attention(**example)(q, k, v, return_lse=True)
    ref, *ref_stats = attnc.attention_reference(q, k, v, **example)
    assert out.shape == q.shape and out.dtype == torch.float32
    assert rel(out, ref) < 1e-4
    if not ref_stats:
        assert stats is None
    else:
        (ref_stat,) = ref_stats
        assert rel(stats, ref_stat) < 1e-4


@pytest.mark.parametrize("name", NORMALIZER_EXAMPLES)
def test_normalizer_example_is_not_softmax(name: str) -> None:
    """Each example's normalizer changes the output: plain softmax of the same mods is far from it."""
    example = mods(load_example(name))
    q, k, v = inputs(seed=10 + NORMALIZER_EXAMPLES.index(name))
    ref = attnc.attention_reference(q, k, v, **example)[0]
    softmax = attnc.attention_reference(
        q, k, v, score_mod=example["score_mod"], mask_mod=example["mask_mod"], normalizer="softmax"
    )[0]
    assert rel(softmax, ref) > 1e-2


def test_retention_example_matches_retnet_closed_form() -> None:
    """examples/retention.py is RetNet's parallel retention: (QKᵀ/√d ⊙ D) V / max(Σ|·|, 1), D_ij = γ_h^(i-j) for i ≥ j."""
    example = mods(load_example("retention"))
    q, k, v = inputs(seed=20)
    out, denominator = attnc.attention(**example)(q, k, v, return_lse=True)

    b, hq, hkv, sq, skv, d = SHAPE
    # RetNet's decays for 64 heads; this shape's heads are the first Hq.
    gamma = 1 - torch.exp(torch.linspace(math.log(1 / 32), math.log(1 / 512), 64, dtype=torch.float64))[:hq]
    i = torch.arange(sq, dtype=torch.float64)[:, None]
    j = torch.arange(skv, dtype=torch.float64)[None, :]
    decay = torch.where(i >= j, gamma[:, None, None] ** (i - j), 0.0)
    kk = k.double().repeat_interleave(hq // hkv, dim=1)
    vv = v.double().repeat_interleave(hq // hkv, dim=1)
    s = q.double() @ kk.transpose(-1, -2) / math.sqrt(d) * decay
    ref_denominator = s.abs().sum(-1).clamp_min(1.0)
    ref = (s / ref_denominator[..., None]) @ vv

    assert rel(out, ref) < 1e-4
    assert rel(denominator, ref_denominator) < 1e-4
    # Both branches of max(Σ|s|, 1) occur: early rows see few, strongly decayed keys.
    assert (ref_denominator == 1.0).any() and (ref_denominator > 1.0).any()
