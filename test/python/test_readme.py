"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_examples_run():
    """The ten-line example runs on the CPU and its assertion holds; the stages example cross-compiles."""
    blocks = _python_blocks()
    assert len(blocks) >= 2
    scope: dict = {}
    torch.manual_seed(0)
    exec(compile(blocks[0], str(README), "exec"), scope)
    stages = next(b for b in blocks if "attnc.compile(" in b).replace("8192, 8192", "256, 256")
    exec(compile(stages, str(README), "exec"), scope)
    compiled = scope["c"]
    assert "attn.qk" in compiled.ir("attn")
    assert "attn.flash" in compiled.ir("flash")
    assert "warp_group_dot" in compiled.asm("ttgir")


def test_readme_normalizer_examples_run():
    """The normalizers section runs on the CPU, the user normalizer included."""
    blocks = _python_blocks()
    normalizers = next(b for b in blocks if "class TemperedSoftmax" in b)
    scope: dict = {}
    exec(compile("import torch, attnc\n" + normalizers, str(README), "exec"), scope)
    assert scope["out"].shape == (1, 4, 50, 32)
    assert torch.isfinite(scope["lse"]).all()


def test_readme_flex_style_mods_example_runs():
    """Tensor methods, torch functions and shifts in mods: the example runs forward and backward on the CPU."""
    block = next(b for b in _python_blocks() if "def capped(" in b)
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)
    assert scope["q"].grad is not None and torch.isfinite(scope["q"].grad).all()


def test_readme_training_example_runs():
    """The training section: backward through a captured bias, then torch.compile(fullgraph=True)."""
    block = next(b for b in _python_blocks() if "fullgraph=True" in b)
    scope: dict = {}
    exec(compile("import torch, attnc\n" + block, str(README), "exec"), scope)
    assert scope["bias"].grad is not None and scope["bias"].grad.abs().sum() > 0
    assert scope["q"].grad is not None


def test_readme_normalizer_gradient_example_runs():
    """The normalizer gradients example runs after the normalizers block, and fills sinks.grad."""
    blocks = _python_blocks()
    normalizers = next(b for b in blocks if "class TemperedSoftmax" in b)
    gradients = next(b for b in blocks if "sinks.grad" in b)
    scope: dict = {}
    exec(compile("import torch, attnc\n" + normalizers + gradients, str(README), "exec"), scope)
    assert scope["sinks"].grad is not None and scope["sinks"].grad.abs().sum() > 0
    assert scope["q"].grad is not None and torch.isfinite(scope["q"].grad).all()


def test_readme_fla_drop_in_example_runs():
    """The flash-linear-attention drop-in runs on the CPU in fla's layout."""
    block = next(b for b in _python_blocks() if "from attnc.ops import" in b)
    scope: dict = {}
    exec(compile("import torch\n" + block, str(README), "exec"), scope)
    assert scope["o"].shape == (1, 64, 2, 32) and scope["ht"].shape == (1, 2, 32, 32)


def test_readme_linear_attention_example_runs():
    """The linear attention section runs on the CPU: output and final state shapes, the state carried on."""
    block = next(b for b in _python_blocks() if "attnc.linear_attention(" in b)
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)
    assert scope["o"].shape == (1, 2, 100, 32)
    assert scope["state"].shape == (1, 2, 32, 32) and scope["state"].dtype == torch.float32
    assert torch.isfinite(scope["o2"]).all()


def test_readme_pipeline_example_runs(capsys):
    """The pipeline section prints the softmax pipeline's -p spelling and the pipelines' names."""
    block = next(b for b in _python_blocks() if "pipeline.softmax(" in b)
    exec(compile(block, str(README), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "attn-fuse,attn-block-mask,attn-split,attn-guard-captures,attn-tile,convert-attn-to-tile"
    assert printed[1] == "['softmax', 'softmax-backward', 'linear', 'linear-backward']"


def test_readme_serving_example_runs():
    """The serving section runs on the CPU: packed calls with their gradients, cached and paged calls, the paged
    one equal to the cache."""
    block = next(b for b in _python_blocks() if "cache_seqlens=lens" in b)
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)
    assert scope["out"].shape == (3, 4, 2, 64) and torch.isfinite(scope["out"]).all()
    assert scope["k"].grad is not None and torch.isfinite(scope["k"].grad).all() and scope["k"].grad.any()


def test_readme_split_decoding_example_runs():
    """The split-decoding line runs after the serving block and gives the unsplit answer."""
    blocks = _python_blocks()
    serving = next(b for b in blocks if "cache_seqlens=lens" in b and "num_splits" not in b)
    split = next(b for b in blocks if "num_splits=4" in b)
    scope: dict = {}
    exec(compile(serving, str(README), "exec"), scope)
    unsplit = scope["causal"](scope["q"], scope["k_cache"], scope["v_cache"], cache_seqlens=scope["lens"])
    exec(compile(split, str(README), "exec"), scope)
    assert torch.allclose(scope["out"], unsplit, atol=1e-5)


def test_readme_flex_example_runs():
    """The FlexAttention drop-in section runs on the CPU and gives Flex's shapes."""
    block = next(b for b in _python_blocks() if "from attnc import flex_attention" in b)
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)
    assert scope["out"].shape == (2, 4, 128, 32)
    assert scope["aux"].lse.shape == (2, 4, 128) and torch.isfinite(scope["aux"].lse).all()
