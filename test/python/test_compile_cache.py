"""The compile cache: in memory, on disk under $ATTNC_CACHE_DIR, keyed by sha256 of compiler, IR, options, target."""

from __future__ import annotations

import json

import pytest
import torch

import attnc
from attnc import pipeline
from attnc.runtime import compiler


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


SHAPE = attnc.Shape(1, 2, 2, 40, 40, 32, 32)


def test_compile_cache_writes_kernel_and_stages_to_disk(tmp_path, monkeypatch):
    """A compile leaves the kernel module and a JSON of every stage in the cache directory."""
    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiler, "_MEMORY", {})
    c = attnc.compile(None, causal, shape=SHAPE, dtype=torch.float16, target="cuda:90")
    key = c.compiled.info.key
    kernels = tmp_path / "kernels"
    source = kernels / f"attnc_{key[:24]}.py"
    meta = json.loads((kernels / f"attnc_{key[:24]}.json").read_text())
    assert source.read_text() == c.triton_source()
    assert meta["key"] == key
    assert set(meta["stages"]) == {"attn", "flash", "tile", "triton"}
    assert not list(kernels.glob(".*.tmp"))


def test_compile_cache_reuses_disk_entry_without_the_pipeline(tmp_path, monkeypatch):
    """With the memory cache empty, a second compile loads from disk and never runs the passes."""
    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiler, "_MEMORY", {})
    first = attnc.compile(None, causal, shape=SHAPE, dtype=torch.float16, target="cpu")
    monkeypatch.setattr(compiler, "_MEMORY", {})

    def no_pipeline(*args, **kwargs):
        raise AssertionError("the pipeline ran although the disk cache holds this variant")

    monkeypatch.setattr(pipeline.Pipeline, "run", no_pipeline)
    second = attnc.compile(None, causal, shape=SHAPE, dtype=torch.float16, target="cpu")
    assert second.compiled.info == first.compiled.info
    q, k, v = (torch.randn(1, 2, 40, 32, dtype=torch.float16) for _ in range(3))
    out = attnc.attention(mask_mod=causal)(q, k, v)
    ref, _ = attnc.attention_reference(q, k, v, mask_mod=causal)
    assert ((out.double() - ref).norm() / ref.norm()).item() < 1e-2


def test_compile_cache_key_separates_targets_and_variants(tmp_path, monkeypatch):
    """Different targets, dtypes or mods give different keys; the same request gives the same key."""
    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path))

    def key(mask_mod, dtype, target):
        return attnc.compile(None, mask_mod, shape=SHAPE, dtype=dtype, target=target).compiled.info.key

    base = key(causal, torch.float16, "cuda:90")
    assert key(causal, torch.float16, "cuda:90") == base
    assert key(causal, torch.float16, "cuda:80") != base
    assert key(causal, torch.bfloat16, "cuda:90") != base
    assert key(None, torch.float16, "cuda:90") != base


def test_compile_cache_ignores_a_corrupt_entry(tmp_path, monkeypatch):
    """A truncated JSON entry is rebuilt, not trusted."""
    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiler, "_MEMORY", {})
    first = attnc.compile(None, causal, shape=SHAPE, dtype=torch.float16, target="cpu")
    meta = tmp_path / "kernels" / f"attnc_{first.compiled.info.key[:24]}.json"
    meta.write_text(meta.read_text()[:50])
    monkeypatch.setattr(compiler, "_MEMORY", {})
    again = attnc.compile(None, causal, shape=SHAPE, dtype=torch.float16, target="cpu")
    assert again.compiled.info == first.compiled.info
    assert json.loads(meta.read_text())["key"] == first.compiled.info.key


@pytest.mark.parametrize("target", ["cuda:75", "hip:gfx1100", "tpu"])
def test_compile_rejects_unknown_targets(target):
    """An unknown target names the accepted ones."""
    with pytest.raises(ValueError, match=r"expected one of"):
        attnc.compile(None, causal, shape=SHAPE, target=target)
