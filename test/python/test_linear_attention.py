"""attnc.linear_attention forward on the CPU (Triton's interpreter) against a float64 recurrence."""

from __future__ import annotations

import pytest
import torch
from linear_reference import make_inputs, recurrence, rel

import attnc

GATES = [None, "head", "scalar", "vector"]


@pytest.mark.parametrize("chunk_size", [16, 32, 64])
@pytest.mark.parametrize("gate", GATES)
def test_linear_forward_matches_recurrence(gate, chunk_size):
    """T=100 (not a multiple of the chunk), an initial state: output and final state match the recurrence."""
    torch.manual_seed(0)
    q, k, v, g = make_inputs(gate, 2, 2, 2, 100, 16, 32)
    h0 = torch.randn(2, 2, 16, 32)
    la = attnc.linear_attention(gate=gate, chunk_size=chunk_size)
    o, state = la(q, k, v, g=g, initial_state=h0, output_final_state=True)
    ref_o, ref_state = recurrence(q, k, v, g, gate, initial_state=h0)
    assert o.dtype == torch.float32 and state is not None and state.dtype == torch.float32
    assert rel(o, ref_o) < 1e-5
    assert rel(state, ref_state) < 1e-5


def test_linear_chunk_sizes_agree():
    """Chunks of 16, 32 and 64 give one answer for a vector gate."""
    torch.manual_seed(1)
    q, k, v, g = make_inputs("vector", 1, 2, 2, 70, 32, 16)
    outs = [
        attnc.linear_attention(gate="vector", chunk_size=c)(q, k, v, g=g, output_final_state=True) for c in (16, 32, 64)
    ]
    for o, s in outs[1:]:
        assert rel(o, outs[0][0]) < 1e-5
        assert s is not None and outs[0][1] is not None and rel(s, outs[0][1]) < 1e-5


def test_linear_no_final_state_unless_asked():
    """output_final_state=False returns None for the state; scale is honoured."""
    torch.manual_seed(2)
    q, k, v, g = make_inputs("scalar", 1, 2, 2, 33, 16, 16)
    o, state = attnc.linear_attention(gate="scalar", chunk_size=16)(q, k, v, g=g, scale=0.5)
    assert state is None
    assert rel(o, recurrence(q, k, v, g, "scalar", scale=0.5)[0]) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_linear_half_precision(dtype):
    """16-bit inputs (bf16 runs upcast in the interpreter) keep their dtype and match to 1e-2."""
    torch.manual_seed(3)
    q, k, v, g = make_inputs("scalar", 1, 2, 2, 50, 16, 16, dtype)
    o, state = attnc.linear_attention(gate="scalar", chunk_size=16)(q, k, v, g=g, output_final_state=True)
    ref_o, ref_state = recurrence(q, k, v, g, "scalar")
    assert o.dtype == dtype
    assert rel(o, ref_o) < 1e-2 and state is not None and rel(state, ref_state) < 1e-2


@pytest.mark.parametrize("gate", ["scalar", "vector"])
def test_linear_qk_heads_broadcast(gate):
    """q and k with 1 head serve v's 4 heads (Mamba2 with one group); g is per v head."""
    torch.manual_seed(4)
    q, k, v, _ = make_inputs(None, 1, 1, 4, 40, 16, 16)
    g = make_inputs(gate, 1, 4, 4, 40, 16, 16)[3]
    o, state = attnc.linear_attention(gate=gate, chunk_size=16)(q, k, v, g=g, output_final_state=True)
    ref_o, ref_state = recurrence(q, k, v, g, gate)
    assert rel(o, ref_o) < 1e-5 and state is not None and rel(state, ref_state) < 1e-5


@pytest.mark.parametrize("gate", [None, "scalar", "vector"])
def test_linear_cu_seqlens_matches_separate_runs(gate):
    """Packed sequences of lengths 37, 0, 16 and 50 equal separate runs, each from its own initial state."""
    torch.manual_seed(5)
    lengths = [37, 0, 16, 50]
    q, k, v, g = make_inputs(gate, 1, 2, 2, sum(lengths), 16, 16)
    h0 = torch.randn(len(lengths), 2, 16, 16)
    cu = torch.tensor([0, 37, 37, 53, 103], dtype=torch.int32)
    la = attnc.linear_attention(gate=gate, chunk_size=16)
    o, state = la(q, k, v, g=g, initial_state=h0, output_final_state=True, cu_seqlens=cu)
    assert state is not None and state.shape == (4, 2, 16, 16)
    for n in range(len(lengths)):
        lo, hi = cu[n].item(), cu[n + 1].item()
        g_n = g[:, :, lo:hi] if g is not None else None
        ref_o, ref_state = recurrence(
            q[:, :, lo:hi], k[:, :, lo:hi], v[:, :, lo:hi], g_n, gate, initial_state=h0[n : n + 1]
        )
        if hi > lo:
            assert rel(o[:, :, lo:hi], ref_o) < 1e-5
        assert rel(state[n : n + 1], ref_state) < 1e-5


def test_linear_feature_maps_and_normalizer():
    """q_map/k_map (elu+1) and the Katharopoulos normalizer o = q S / (q z)."""
    torch.manual_seed(6)
    q, k, v, _ = make_inputs(None, 1, 2, 2, 45, 16, 16)

    def elu1(x):
        return attnc.where(x > 0, x + 1.0, attnc.exp(x))

    la = attnc.linear_attention(q_map=elu1, k_map=elu1, normalize=True, chunk_size=16)
    o, _ = la(q, k, v)
    fq, fk = elu1(q.double()), elu1(k.double())
    num = recurrence(fq, fk, v, None, None, scale=1.0)[0]
    den = recurrence(fq, fk, torch.ones_like(v[..., :1]), None, None, scale=1.0)[0]
    assert rel(o, num / den) < 1e-5


def test_linear_ir_stages():
    """Every stage's IR is there: the logical recurrence, the chunked op, the tile kernels, the Triton source."""
    q, k, v, _ = make_inputs(None, 1, 2, 2, 20, 16, 16)
    la = attnc.linear_attention(chunk_size=16)
    assert "attn.recurrence" in la.ir(q, k, v, "attn")
    assert "attn.recurrent_chunk" in la.ir(q, k, v, "chunk")
    assert "tile.func @linear_attention_chunk_state" in la.ir(q, k, v, "tile")
    assert "def linear_attention_chunk_output(" in la.ir(q, k, v, "triton")


def test_linear_bad_inputs_raise():
    """Each bad input raises an error naming the argument."""
    q, k, v, g = make_inputs("scalar", 2, 2, 2, 20, 16, 16)
    la = attnc.linear_attention(gate="scalar")
    with pytest.raises(ValueError, match="g must have shape"):
        la(q, k, v, g=g[:, :, :10])
    with pytest.raises(ValueError, match="scale must be finite"):
        la(q, k, v, g=g, scale=float("nan"))
    with pytest.raises(ValueError, match="head dim of at least 1"):
        la(q[..., :0], k[..., :0], v, g=g)
    with pytest.raises(TypeError, match="k must be a torch.Tensor"):
        la(q, k.numpy(), v, g=g)
    with pytest.raises(ValueError, match="needs g"):
        la(q, k, v)
    with pytest.raises(ValueError, match="no gate"):
        attnc.linear_attention()(q, k, v, g=g)
    with pytest.raises(ValueError, match="q must have 4 dimensions"):
        la(q[0], k, v, g=g)
    with pytest.raises(TypeError, match="share one dtype"):
        la(q.half(), k, v, g=g)
    with pytest.raises(TypeError, match="must be float16, bfloat16 or float32"):
        la(q.double(), k.double(), v.double(), g=g)
    with pytest.raises(ValueError, match="must divide the heads of v"):
        la(q[:, :1].expand(2, 1, 20, 16).repeat(1, 3, 1, 1), k.repeat(1, 3, 1, 1)[:, :3], v, g=g)
    with pytest.raises(ValueError, match="initial_state must have shape"):
        la(q, k, v, g=g, initial_state=torch.zeros(2, 2, 16, 8))
    with pytest.raises(ValueError, match="cu_seqlens must be a 1-D int32"):
        la(q[:1], k[:1], v[:1], g=g[:1], cu_seqlens=torch.tensor([0, 20]))
    with pytest.raises(ValueError, match="batch of 1"):
        la(q, k, v, g=g, cu_seqlens=torch.tensor([0, 20], dtype=torch.int32))
    with pytest.raises(ValueError, match="rise from 0"):
        la(q[:1], k[:1], v[:1], g=g[:1], cu_seqlens=torch.tensor([0, 12, 8, 20], dtype=torch.int32))
    with pytest.raises(ValueError, match="gate must be None"):
        attnc.linear_attention(gate="matrix")
    with pytest.raises(ValueError, match="chunk_size must be a power of two"):
        attnc.linear_attention(chunk_size=48)
    with pytest.raises(ValueError, match="needs gate=None"):
        attnc.linear_attention(gate="scalar", normalize=True)
    weights = torch.rand(3)
    with pytest.raises(attnc.TraceError, match="elementwise in x alone"):
        attnc.linear_attention(q_map=lambda x: x * weights[1])
    with pytest.raises(attnc.TraceError):
        attnc.linear_attention(k_map=lambda x, y: x * y)


def test_linear_kernels_cross_compile_for_sm90():
    """The benchmark's configuration (bf16, K=V=128, chunk 64, scalar gate) builds for sm_90 with
    warpgroup MMAs, and every kernel fits an H200's 227 KB of shared memory at its largest tuning candidate."""
    from attnc.runtime.linear_launch import CANDIDATES
    from attnc.runtime.linear_program import LinearSignature
    from attnc.runtime.targets import Target, cross_compile

    sig = LinearSignature(16, 16, 128, 128, "bfloat16", 128**-0.5, False, False)
    compiled = attnc.linear_attention(gate="scalar").program.compile(sig, "cuda:90", backward=True)
    for which in ("chunk_state", "chunk_output", "chunk_state_grad", "chunk_grad"):
        name = f"linear_attention_{which}"
        for bk, bv, warps, stages in (CANDIDATES[which][0], max(CANDIDATES[which])):
            constexprs = dict(compiled.info.constexprs[name])
            constexprs.update({c: b for c, b in (("BLOCK_K", bk), ("BLOCK_V", bv)) if c in constexprs and b})
            asm = cross_compile(
                compiled.kernel(which),
                compiled.info.signatures[name],
                constexprs,
                Target.parse("cuda:90"),
                warps,
                stages,
            )
            assert "warp_group_dot" in str(asm["ttgir"]), which
            assert int(asm["shared"]) <= 227 * 1024, (which, bk, bv, asm["shared"])


def test_vector_gate_kernels_cross_compile_for_sm90():
    """Every vector-gate kernel (forward and backward) builds for sm_90 at its first and largest tuning
    candidate within 227 KB of shared memory, its products over whole chunks (M = 64) as warpgroup MMAs."""
    from attnc.runtime.linear_launch import CANDIDATES
    from attnc.runtime.linear_program import LinearSignature
    from attnc.runtime.targets import Target, cross_compile

    sig = LinearSignature(16, 16, 128, 128, "bfloat16", 128**-0.5, False, False)
    compiled = attnc.linear_attention(gate="vector").program.compile(sig, "cuda:90", backward=True)
    kernels = ("chunk_cumsum", "chunk_state", "chunk_scores", "chunk_output", "chunk_state_grad", "chunk_dv")
    for which in (*kernels, "chunk_dqkg"):
        name = f"linear_attention_{which}"
        for bk, bv, warps, stages in (CANDIDATES[which][0], max(CANDIDATES[which])):
            constexprs = dict(compiled.info.constexprs[name])
            constexprs.update({c: b for c, b in (("BLOCK_K", bk), ("BLOCK_V", bv)) if c in constexprs and b})
            asm = cross_compile(
                compiled.kernel(which),
                compiled.info.signatures[name],
                constexprs,
                Target.parse("cuda:90"),
                warps,
                stages,
            )
            assert int(asm["shared"]) <= 227 * 1024, (which, bk, bv, asm["shared"])
            if which not in ("chunk_cumsum", "chunk_scores"):  # the scores kernel works on 16-row sub-chunks
                assert "warp_group_dot" in str(asm["ttgir"]), which
