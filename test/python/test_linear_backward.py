"""attnc.linear_attention gradients on the CPU against float64 autograd through the recurrence."""

from __future__ import annotations

import json

import pytest
import torch
from linear_reference import make_inputs, recurrence, rel

import attnc


def _grads(gate, q, k, v, g, h0, chunk_size=32, cu_seqlens=None, compiled=False):
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v, h0)]
    g_leaf = g.detach().clone().requires_grad_() if g is not None else None
    la = attnc.linear_attention(gate=gate, chunk_size=chunk_size)

    def run(q, k, v, h0, g):
        return la(q, k, v, g=g, initial_state=h0, output_final_state=True, cu_seqlens=cu_seqlens)

    fn = torch.compile(run, fullgraph=True) if compiled else run
    o, state = fn(*leaves, g_leaf)
    torch.manual_seed(123)
    do, dstate = torch.randn_like(o), torch.randn_like(state)
    (o.float() * do).sum().add((state * dstate).sum()).backward()
    grads = [t.grad for t in leaves] + ([g_leaf.grad] if g_leaf is not None else [])
    return o, state, grads, do, dstate


def _reference_grads(gate, q, k, v, g, h0, do, dstate):
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v, h0)]
    g_leaf = g.detach().double().requires_grad_() if g is not None else None
    o, state = recurrence(*leaves[:3], g_leaf, gate, initial_state=leaves[3])
    (o * do.double()).sum().add((state * dstate.double()).sum()).backward()
    return [t.grad for t in leaves] + ([g_leaf.grad] if g_leaf is not None else [])


@pytest.mark.parametrize("gate", [None, "head", "scalar", "vector"])
def test_linear_backward_matches_autograd(gate):
    """T=100, chunk 32: dq, dk, dv, d initial_state and dg match float64 autograd to 1e-4."""
    torch.manual_seed(10)
    q, k, v, g = make_inputs(gate, 2, 2, 2, 100, 16, 32)
    h0 = torch.randn(2, 2, 16, 32)
    _, _, grads, do, dstate = _grads(gate, q, k, v, g, h0)
    ref = _reference_grads(gate, q, k, v, g, h0, do, dstate)
    for name, got, want in zip(["q", "k", "v", "initial_state", "g"], grads, ref):
        assert got is not None and got.shape == want.shape, name
        assert rel(got, want) < 1e-4, name


def test_linear_backward_without_gate_or_initial_state():
    """Plain linear attention with neither g nor an initial state has a backward (its two absent
    gradients are two empty tensors: a custom op's outputs may not alias each other)."""
    torch.manual_seed(19)
    q, k, v, _ = make_inputs(None, 1, 2, 2, 40, 16, 16)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    o, _ = attnc.linear_attention(chunk_size=16)(*leaves)
    do = torch.randn_like(o)
    (o * do).sum().backward()
    ref_leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    (recurrence(*ref_leaves, None, None)[0] * do.double()).sum().backward()
    for got, want in zip(leaves, ref_leaves):
        assert got.grad is not None and rel(got.grad, want.grad) < 1e-4


@pytest.mark.parametrize("gate", ["scalar", "vector"])
def test_linear_backward_qk_heads_broadcast(gate):
    """q/k with 1 head for v's 2 heads: dq and dk sum over the group; chunk 16."""
    torch.manual_seed(11)
    q, k, v, _ = make_inputs(None, 1, 1, 2, 50, 16, 16)
    g = make_inputs(gate, 1, 2, 2, 50, 16, 16)[3]
    h0 = torch.randn(1, 2, 16, 16)
    _, _, grads, do, dstate = _grads(gate, q, k, v, g, h0, chunk_size=16)
    ref = _reference_grads(gate, q, k, v, g, h0, do, dstate)
    for got, want in zip(grads, ref):
        assert rel(got, want) < 1e-4


def test_linear_backward_cu_seqlens():
    """Packed sequences: gradients equal those of the same sequences run one at a time."""
    torch.manual_seed(12)
    lengths = [30, 17, 45]
    q, k, v, g = make_inputs("vector", 1, 2, 2, sum(lengths), 16, 16)
    h0 = torch.randn(3, 2, 16, 16)
    cu = torch.tensor([0, 30, 47, 92], dtype=torch.int32)
    _, _, grads, do, dstate = _grads("vector", q, k, v, g, h0, chunk_size=16, cu_seqlens=cu)
    for n in range(3):
        lo, hi = cu[n].item(), cu[n + 1].item()
        ref = _reference_grads(
            "vector",
            q[:, :, lo:hi],
            k[:, :, lo:hi],
            v[:, :, lo:hi],
            g[:, :, lo:hi],
            h0[n : n + 1],
            do[:, :, lo:hi],
            dstate[n : n + 1],
        )
        got = [
            grads[0][:, :, lo:hi],
            grads[1][:, :, lo:hi],
            grads[2][:, :, lo:hi],
            grads[3][n : n + 1],
            grads[4][:, :, lo:hi],
        ]
        for a, b in zip(got, ref):
            assert rel(a, b) < 1e-4


@pytest.mark.parametrize(
    ("gate", "dtype"), [("scalar", torch.bfloat16), ("scalar", torch.float16), ("vector", torch.float16)]
)
def test_linear_backward_half_precision(gate, dtype):
    """16-bit inputs (fp16 runs the 16-bit kernels, bf16 runs upcast): gradients keep the dtype and match to 1e-2."""
    torch.manual_seed(13)
    q, k, v, g = make_inputs(gate, 1, 2, 2, 40, 16, 16, dtype)
    h0 = torch.randn(1, 2, 16, 16)
    _, _, grads, do, dstate = _grads(gate, q, k, v, g, h0, chunk_size=16)
    ref = _reference_grads(gate, q, k, v, g, h0, do, dstate)
    assert grads[0].dtype == dtype
    for got, want in zip(grads, ref):
        assert rel(got, want) < 1e-2


def test_linear_torch_compile_fullgraph():
    """torch.compile(fullgraph=True) runs forward and backward through the custom ops."""
    torch.manual_seed(14)
    q, k, v, g = make_inputs("scalar", 1, 2, 2, 24, 16, 16)
    h0 = torch.randn(1, 2, 16, 16)
    o, state, grads, do, dstate = _grads("scalar", q, k, v, g, h0, chunk_size=16, compiled=True)
    ref_o, ref_state = recurrence(q, k, v, g, "scalar", initial_state=h0)
    assert rel(o, ref_o) < 1e-5 and rel(state, ref_state) < 1e-5
    ref = _reference_grads("scalar", q, k, v, g, h0, do, dstate)
    for got, want in zip(grads, ref):
        assert rel(got, want) < 1e-4


@pytest.mark.parametrize("gate", ["head", "vector"])
def test_linear_backward_whole_chunks(gate):
    """T=64 with chunk 16 (whole chunks only): dg and the rest still match float64 autograd."""
    torch.manual_seed(15)
    q, k, v, g = make_inputs(gate, 2, 2, 2, 64, 16, 16)
    h0 = torch.randn(2, 2, 16, 16)
    _, _, grads, do, dstate = _grads(gate, q, k, v, g, h0, chunk_size=16)
    ref = _reference_grads(gate, q, k, v, g, h0, do, dstate)
    for got, want in zip(grads, ref):
        assert rel(got, want) < 1e-4


def _elu1(x):
    return attnc.where(x > 0, x + 1.0, attnc.exp(x))


@pytest.mark.parametrize("gate", ["scalar", "vector"])
def test_linear_backward_feature_maps(gate):
    """q_map=elu+1 and k_map=exp(-x²) run inside the kernels; gradients flow through them to raw q and k."""
    torch.manual_seed(16)
    q, k, v, g = make_inputs(gate, 1, 2, 2, 40, 16, 16)
    h0 = torch.randn(1, 2, 16, 16)

    def k_map(x):
        return attnc.exp(-(x * x))

    la = attnc.linear_attention(gate=gate, q_map=_elu1, k_map=k_map, chunk_size=16)
    assert "q_map" in la.ir(q, k, v, "chunk") and "q_map" in la.ir(q, k, v, "triton")
    leaves = [t.clone().requires_grad_() for t in (q, k, v, h0, g)]
    o, state = la(*leaves[:3], g=leaves[4], initial_state=leaves[3], output_final_state=True)
    do, dstate = torch.randn_like(o), torch.randn_like(state)
    (o * do).sum().add((state * dstate).sum()).backward()

    ref_leaves = [t.detach().double().requires_grad_() for t in (q, k, v, h0, g)]
    rq, rk = _elu1(ref_leaves[0]), k_map(ref_leaves[1])
    ref_o, ref_state = recurrence(rq, rk, ref_leaves[2], ref_leaves[4], gate, initial_state=ref_leaves[3])
    assert rel(o, ref_o) < 1e-5
    (ref_o * do.double()).sum().add((ref_state * dstate.double()).sum()).backward()
    for name, got, want in zip(["q", "k", "v", "initial_state", "g"], leaves, ref_leaves):
        assert rel(got.grad, want.grad) < 1e-4, name


@pytest.mark.parametrize(
    ("gate", "heads_qk", "dim_k", "dim_v"), [("head", 2, 64, 64), ("scalar", 1, 32, 64), ("vector", 2, 8, 12)]
)
def test_linear_backward_column_splits(gate, heads_qk, dim_k, dim_v):
    """Head dims above the CPU's 32-wide blocks: the gradient kernel splits dq/dk/dv columns over programs
    (one split with no key columns when K < V), and their dG parts add up; dims below 16 are padded."""
    torch.manual_seed(17)
    q, k, v, _ = make_inputs(None, 1, heads_qk, 2, 50, dim_k, dim_v)
    g = make_inputs(gate, 1, 2, 2, 50, dim_k, dim_v)[3]
    h0 = torch.randn(1, 2, dim_k, dim_v)
    _, _, grads, do, dstate = _grads(gate, q, k, v, g, h0, chunk_size=16)
    ref = _reference_grads(gate, q, k, v, g, h0, do, dstate)
    for name, got, want in zip(["q", "k", "v", "initial_state", "g"], grads, ref):
        assert rel(got, want) < 1e-4, name


def test_linear_gpu_tuning_keeps_results(monkeypatch, tmp_path):
    """The first-call tuner (GPU only) run through the interpreter with a fake timer: it picks a
    candidate per kernel, and repeated timed launches leave the accumulated dG right. The
    winners reach the disk cache, and a fresh process (an empty memory) uses them untimed."""
    import triton.testing

    from attnc.runtime import linear_launch, tune

    monkeypatch.setenv("ATTNC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tune, "gpu_name", lambda device: "Fake GPU")

    timings = iter(range(1000, 0, -1))

    def fake_bench(fn, warmup=0, rep=0, return_mode="median"):
        fn()
        return float(next(timings))  # every candidate looks faster than the one before

    class FakeCuda:
        type = "cuda"

    launch, run = linear_launch._launch, linear_launch.run_kernel
    monkeypatch.setattr(triton.testing, "do_bench", fake_bench)
    monkeypatch.setattr(
        linear_launch,
        "_launch",
        lambda c, w, grid, a, d, key, reset=None: launch(c, w, grid, a, FakeCuda(), key, reset),  # type: ignore[arg-type]
    )
    monkeypatch.setattr(
        linear_launch,
        "run_kernel",
        lambda kernel, grid, args, device, config: run(kernel, grid, args, torch.device("cpu"), None),
    )
    monkeypatch.setattr(tune, "_MEMORY", {})
    monkeypatch.setattr(linear_launch, "_TUNED", {})
    torch.manual_seed(18)
    q, k, v, g = make_inputs("scalar", 1, 2, 2, 40, 64, 64)
    h0 = torch.randn(1, 2, 64, 64)
    _, _, grads, do, dstate = _grads("scalar", q, k, v, g, h0, chunk_size=16)
    ref = _reference_grads("scalar", q, k, v, g, h0, do, dstate)
    for name, got, want in zip(["q", "k", "v", "initial_state", "g"], grads, ref):
        assert rel(got, want) < 1e-4, name
    tuned = {key.split("|")[2]: config for key, config in tune._MEMORY.items() if key.startswith("linear|")}
    assert set(tuned) == {"chunk_state", "chunk_output", "chunk_state_grad", "chunk_grad"}
    # the last candidate (128-wide blocks clamped to K=V=64), "fastest" by the fake timer
    assert tuned["chunk_grad"] == (64, 64, 8, 1)

    on_disk = json.loads((tmp_path / "autotune.json").read_text())
    assert {key.split("|")[2] for key in on_disk if key.startswith("linear|")} == set(tuned)
    launched: list[tuple[str, tuple[int, int, int, int]]] = []

    def no_tuning(*args, **kwargs):
        raise AssertionError("a stored configuration was timed again")

    def recording_run(kernel, grid, args, device, config):
        launched.append((kernel.__name__, (config.block_m, config.block_n, config.num_warps, config.num_stages)))
        run(kernel, grid, args, torch.device("cpu"), None)

    monkeypatch.setattr(tune, "_MEMORY", {})
    monkeypatch.setattr(linear_launch, "_TUNED", {})
    monkeypatch.setattr(tune, "_fastest", no_tuning)
    monkeypatch.setattr(linear_launch, "run_kernel", recording_run)
    _, _, again, _, _ = _grads("scalar", q, k, v, g, h0, chunk_size=16)
    for name, got, want in zip(["q", "k", "v", "initial_state", "g"], again, grads):
        assert torch.equal(got, want), name
    assert ("linear_attention_chunk_grad", (64, 64, 8, 1)) in launched


def test_linear_vector_gate_strong_decay_stays_finite():
    """A per-channel gate that decays by e^-40 in some channels at some steps (exp(40) would
    overflow if a decay were factored across them the wrong way): output and every gradient
    are finite and match float64 autograd, at a length that leaves the last chunk partial."""
    torch.manual_seed(12)
    q, k, v, g = make_inputs("vector", 1, 2, 2, 45, 16, 16)
    g = torch.where(torch.rand_like(g) < 0.2, torch.full_like(g, -40.0), g)
    h0 = torch.randn(1, 2, 16, 16)
    o, state, grads, do, dstate = _grads("vector", q, k, v, g, h0, chunk_size=32)
    ref_o, ref_state = recurrence(q.double(), k.double(), v.double(), g.double(), "vector", initial_state=h0.double())
    assert torch.isfinite(o).all() and rel(o, ref_o) < 1e-5 and rel(state, ref_state) < 1e-5
    ref = _reference_grads("vector", q, k, v, g, h0, do, dstate)
    for name, got, want in zip(["q", "k", "v", "initial_state", "g"], grads, ref):
        assert got is not None and torch.isfinite(got).all(), name
        assert rel(got, want) < 1e-4, name
