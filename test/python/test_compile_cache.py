"""The compile cache: in memory, on disk under $ATTNC_CACHE_DIR, keyed by sha256 of compiler, IR, options, target."""

from __future__ import annotations

import json
import re
import sys

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


def _compile_cpu(tmp_path, monkeypatch):
    """A compile as a fresh process makes it: nothing in memory, kernel modules not yet imported."""
    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiler, "_MEMORY", {})
    for name in [m for m in sys.modules if re.fullmatch(r"attnc_[0-9a-f]{24}", m)]:
        monkeypatch.delitem(sys.modules, name)
    return attnc.compile(None, causal, shape=SHAPE, dtype=torch.float16, target="cpu")


def _runs_right():
    q, k, v = (torch.randn(1, 2, 40, 32) for _ in range(3))
    out = attnc.attention(mask_mod=causal)(q, k, v)
    ref, _ = attnc.attention_reference(q, k, v, mask_mod=causal)
    assert ((out.double() - ref).norm() / ref.norm()).item() < 1e-4


@pytest.mark.parametrize(
    "damage",
    [
        lambda meta: meta.write_bytes(b"\xff\xfe\x00garbage"),  # not UTF-8
        lambda meta: meta.write_text(json.dumps({**json.loads(meta.read_text()), "facts": []})),  # wrong shape
        lambda meta: meta.write_text(json.dumps({**json.loads(meta.read_text()), "stages": {"attn": 1}})),
        lambda meta: meta.with_suffix(".py").write_bytes(b"\xff\xfe not a kernel"),  # the kernel file itself
    ],
    ids=["metadata-not-utf8", "facts-not-a-dict", "stages-without-triton", "kernel-not-utf8"],
)
def test_compile_cache_recovers_from_a_damaged_entry(tmp_path, monkeypatch, damage):
    """A cache file that cannot be read or lacks what it should hold is a miss: rebuilt, rewritten, and runs."""
    first = _compile_cpu(tmp_path, monkeypatch)
    meta = tmp_path / "kernels" / f"attnc_{first.compiled.info.key[:24]}.json"
    damage(meta)
    again = _compile_cpu(tmp_path, monkeypatch)
    assert again.compiled.info == first.compiled.info
    assert json.loads(meta.read_text())["key"] == first.compiled.info.key
    assert meta.with_suffix(".py").read_text() == again.triton_source()
    _runs_right()


def test_compile_cache_survives_a_directory_where_a_file_should_be(tmp_path, monkeypatch):
    """A directory in place of the kernel module and its metadata: the variant still compiles and runs."""
    first = _compile_cpu(tmp_path, monkeypatch)
    name = f"attnc_{first.compiled.info.key[:24]}"
    for suffix in (".json", ".py"):
        path = tmp_path / "kernels" / f"{name}{suffix}"
        path.unlink()
        (path / "inside").mkdir(parents=True)
    again = _compile_cpu(tmp_path, monkeypatch)
    assert again.compiled.info == first.compiled.info
    _runs_right()


def test_compile_cache_unusable_directory_warns_once_and_runs(tmp_path, monkeypatch):
    """ATTNC_CACHE_DIR naming a file: one warning that names the variable; kernels compile and run anyway."""
    from attnc.runtime import cache

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setattr(cache, "_FALLBACK", {})
    with pytest.warns(RuntimeWarning, match="ATTNC_CACHE_DIR") as caught:
        _compile_cpu(blocker, monkeypatch)
        cache.store_config("attention|x|forward|1|Fake GPU", [64, 64, 4, 2])
        _runs_right()
    assert len([w for w in caught if "ATTNC_CACHE_DIR" in str(w.message)]) == 1
    assert cache.stored_config("attention|x|forward|1|Fake GPU") is None


def test_tuning_cache_ignores_a_damaged_file(tmp_path, monkeypatch):
    """autotune.json with bytes that are not UTF-8, or JSON of the wrong shape, reads as empty and is rewritten."""
    from attnc.runtime import cache

    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path))
    for junk in (b"\xff\xfe\x00", b"[1, 2, 3]", b'{"k": "not a config"}'):
        (tmp_path / "autotune.json").write_bytes(junk)
        assert cache.stored_config("k") is None
        cache.store_config("k", [128, 64, 8, 3])
        assert cache.stored_config("k") == (128, 64, 8, 3)
