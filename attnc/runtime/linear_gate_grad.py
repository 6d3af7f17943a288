"""The gradient of linear attention's gate, from what the gradient kernels sum within each chunk."""

from __future__ import annotations

import torch

from attnc.runtime.linear_sequences import SequenceTable


def gate_grad(
    gate: str, within: torch.Tensor, ht: torch.Tensor, dht: torch.Tensor, seqs: SequenceTable, chunk: int
) -> torch.Tensor:
    """dg from the kernel's dG summed back to each step within its chunk ([B, H, T] or [B, H, T, K]).

    dg_t = Σ_{s ≥ t in t's sequence} dG_s + ⟨S_T, dS_T⟩: each step gets what its chunk
    gave plus the sums of the sequence's later chunks (a [.., chunks, ..] tensor, chunk
    times smaller) and the final-state term. For "head", dg sums over steps and batch.
    Those later sums are suffix sums within each sequence, shifted by one chunk rather
    than less the chunk's own sum, so a NaN or ±inf reaches only earlier steps of its own
    sequence.
    """
    final = ht * dht  # [N, H, K, V]
    final = final.sum(-1) if gate == "vector" else final.sum((-2, -1))  # [N, H, K] or [N, H]
    length = within.shape[2]
    if seqs.batch_step:  # one sequence of length T per batch row
        totals = within[:, :, ::chunk]  # each chunk's sum, at its first step: [B, H, NT(, K)]
        suffix = totals.flip(2).cumsum(2).flip(2)
        later = torch.cat([suffix[:, :, 1:], torch.zeros_like(suffix[:, :, :1])], dim=2) + final.unsqueeze(2)
        if length % chunk == 0:
            shape = (*within.shape[:2], length // chunk, chunk, *within.shape[3:])
            within.view(shape).add_(later.unsqueeze(3))
        else:
            within.add_(later.repeat_interleave(chunk, dim=2)[:, :, :length])
    elif seqs.num_chunks:
        totals = within[0].index_select(1, seqs.chunk_first.long())  # [H, chunks(, K)]
        seq_of, index = seqs.chunk_seq.long(), seqs.chunk_idx.long()
        by_seq = totals.new_zeros((totals.shape[0], seqs.count, seqs.max_chunks + 1, *totals.shape[2:]))
        by_seq[:, seq_of, index] = totals  # [H, N, chunks of the longest + 1(, K)], zero past each sequence
        suffix = by_seq.flip(2).cumsum(2).flip(2)
        later = suffix[:, seq_of, index + 1] + final.transpose(0, 1).index_select(1, seq_of)
        within[0].add_(later.index_select(1, seqs.token_chunk.long()))
    if gate == "head":
        return within.sum((0, 2))
    return within


__all__ = ["gate_grad"]
