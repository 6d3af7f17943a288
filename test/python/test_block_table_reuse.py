"""A mask that reads a tensor builds its block table once while the tensor is unchanged, and again after an
in-place update (its version counter), giving the updated answer."""

from __future__ import annotations

import torch

import attnc
from attnc.runtime import block_table


def test_runtime_mask_table_is_reused_until_its_tensor_changes(monkeypatch):
    torch.manual_seed(0)
    doc = torch.arange(96) // 40

    def same_doc(b, h, q_idx, kv_idx):
        return doc[q_idx] == doc[kv_idx]

    built = []
    original = block_table._from_classes
    monkeypatch.setattr(block_table, "_from_classes", lambda classes: built.append(1) or original(classes))
    q, k, v = (torch.randn(1, 2, 96, 32) for _ in range(3))
    attn = attnc.attention(mask_mod=same_doc)
    first = attn(q, k, v)
    assert torch.equal(attn(q, k, v), first)
    assert len(built) == 1
    doc[:] = torch.arange(96) // 24  # new documents, in place
    updated = attn(q, k, v)
    assert len(built) == 2
    want, _ = attnc.attention_reference(q, k, v, mask_mod=same_doc)
    assert (updated.double() - want).abs().max() < 1e-4
    assert not torch.equal(updated, first)


def test_inference_tensors_rebuild_their_table():
    """Tensors made under torch.inference_mode() count no versions: their tables are rebuilt, never stale."""
    with torch.inference_mode():
        doc = torch.arange(64) // 20

        def same_doc(b, h, q_idx, kv_idx):
            return doc[q_idx] == doc[kv_idx]

        q, k, v = (torch.randn(1, 2, 64, 32) for _ in range(3))
        attn = attnc.attention(mask_mod=same_doc)
        first = attn(q, k, v)
        doc[:] = torch.arange(64) // 8
        want, _ = attnc.attention_reference(q, k, v, mask_mod=same_doc)
        assert (attn(q, k, v).double() - want).abs().max() < 1e-4
        assert not torch.equal(attn(q, k, v), first)
