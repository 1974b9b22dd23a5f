"""The fast flow engine's vision tower: batched block attention and the fused MLP compute stock's math.

Real LeRobot WallX vision blocks (the tiny checkpoint's, copied to float32 so that the comparison is not
buried in bf16 rounding): ``VisionTowerRunner`` with ``attention="eager"`` is stock op for op (the flow
engine tests prove it bit-identical to LeRobot); with ``"sdpa"`` it reorders tokens into groups of
equal-size windows / images and runs unmasked batched attention, which must give the same embeddings.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from wallx_ros.lerobot import internals, versions
from wallx_ros.policy import BackendConfig, load_backend

UNSUPPORTED = versions.flow_engine_unsupported_reason()
pytestmark = pytest.mark.skipif(UNSUPPORTED is not None,
                                reason=f"{UNSUPPORTED}; the vision runner is not validated here")

# (t, h, w) patches per camera. 18x18 is what WallX makes of a 224x224 (or 256x256) camera: its 9x9 merge
# units split into windows of 4x4, 4x1, 1x4 and 1x1 units, so three window sizes and ragged images.
GRIDS = [
    ((1, 18, 18), (1, 18, 18), (1, 18, 18)),  # the benchmark's three 224x224 cameras
    ((1, 14, 18), (1, 18, 18), (1, 8, 8)),  # cameras of different sizes: image blocks of three lengths
    ((1, 16, 16),),  # one camera whose windows are all equal: no regrouping needed
]


@pytest.fixture(scope="module")
def visual(tiny_checkpoint: Path):
    import torch

    backend = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, engine="stock"))
    visual = copy.deepcopy(backend._policy.model.visual).to(torch.float32)
    with torch.no_grad():  # random init (std 0.02) attends almost uniformly; sharpen it so block edges matter
        for block in visual.blocks:
            block.attn.qkv.weight.mul_(10.0)
    return visual


def _pixels(grid, seed: int):
    import torch

    seq = sum(t * h * w for t, h, w in grid)
    return torch.randn(seq, 3 * 2 * 14 * 14, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("grid", GRIDS, ids=["3x224", "mixed", "uniform"])
def test_batched_block_attention_equals_stock_masks(visual, grid) -> None:
    import torch

    from wallx_ros.policy.engine.vision_tower import VisionTowerRunner

    eager = VisionTowerRunner(visual, "eager")
    sdpa = VisionTowerRunner(visual, "sdpa")
    pixels = _pixels(grid, seed=len(grid))
    with torch.no_grad():
        expected = eager(pixels, eager.geometry(grid))
        got = sdpa(pixels, sdpa.geometry(grid))
        stock = internals.vision_tower_forward(visual, pixels, torch.tensor(grid))  # LeRobot's own forward
    torch.testing.assert_close(expected, stock, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    geo = sdpa.geometry(grid)
    assert geo.full_mask is None and geo.window_mask is None  # no mask: fused kernels on CUDA
    assert expected.abs().max() > 0.01  # embeddings, not zeros (random init, std 0.02)


def test_layouts_group_windows_and_images(visual) -> None:
    """What the batched attention relies on: groups cover the sequence, windows are grouped by size
    (longest first) and the full-attention blocks gather each camera's tokens."""
    import torch

    from wallx_ros.policy.engine.vision_tower import VisionTowerRunner

    sdpa = VisionTowerRunner(visual, "sdpa")
    geo = sdpa.geometry(GRIDS[0])
    assert geo.window_layout is not None and geo.full_layout is not None
    # 3 cameras x (4 windows of 4x4 units, 4 of 4x1 / 1x4, 1 of 1x1), 4 tokens per unit
    assert geo.window_layout.groups == ((12, 64), (12, 16), (3, 4))
    assert geo.window_layout.order is None
    assert geo.full_layout.groups == ((3, 324),)
    assert geo.full_layout.order is not None  # grouping by window size interleaves the cameras
    order = geo.full_layout.order
    assert torch.equal(torch.sort(order).values, torch.arange(3 * 324))
    assert torch.equal(order[geo.full_layout.inverse], torch.arange(3 * 324))
    camera_of_token = (geo.window_index.repeat_interleave(4) * 4 + torch.arange(4).repeat(243)) // 324
    assert torch.equal(camera_of_token[order], torch.arange(3).repeat_interleave(324))
    mixed = sdpa.geometry(GRIDS[1])
    assert mixed.full_layout is not None and mixed.full_layout.groups == ((1, 324), (1, 252), (1, 64))
    uniform = sdpa.geometry(GRIDS[2])
    assert uniform.window_layout is not None and uniform.window_layout.groups == ((4, 64),)
    assert uniform.full_layout is not None and uniform.full_layout.order is None


def test_window_grouping_matters(visual) -> None:
    """The comparison above can fail: attention over one block of the whole sequence (the windows'
    boundaries ignored) gives other embeddings."""
    import torch

    from wallx_ros.policy.engine.vision_tower import BlockLayout, VisionGeometry, VisionTowerRunner

    sdpa = VisionTowerRunner(visual, "sdpa")
    grid = GRIDS[0]
    geo = sdpa.geometry(grid)
    seq = 3 * 324
    one_block = BlockLayout(None, None, ((1, seq),))
    wrong = VisionGeometry(geo.grid, geo.window_index, geo.reverse_index, geo.cos, geo.sin, None, None,
                           geo.full_layout, one_block)
    pixels = _pixels(grid, seed=0)
    with torch.no_grad():
        right = sdpa(pixels, geo)
        bad = sdpa(pixels, wrong)
    assert (right - bad).abs().max() > 100 * 1e-5  # far outside the tolerance of the comparison above


@pytest.mark.parametrize("width", [40, 64, 3420 // 20])
def test_fused_padded_mlp_equals_the_mlp(visual, width: int) -> None:
    """Qwen2.5-VL's vision MLP with gate/up as one GEMM, intermediate width zero-padded to a multiple of 64."""
    import torch

    from wallx_ros.policy.engine.vision_tower import fused_vision_mlp

    config = type("Cfg", (), {"hidden_size": 32, "intermediate_size": width, "hidden_act": "silu"})()
    torch.manual_seed(width)
    mlp = type(visual.blocks[0].mlp)(config, bias=True)  # the installed line's Qwen2_5_VLMLP
    for p in mlp.parameters():
        torch.nn.init.normal_(p)
    gate_up, bias, down = fused_vision_mlp(mlp)
    padded = -(-width // 64) * 64
    assert gate_up.shape == (2 * padded, 32) and bias is not None and bias.shape == (2 * padded,)
    assert down.shape == (32, padded)
    x = torch.randn(50, 32)
    with torch.no_grad():
        gate, up = torch.nn.functional.linear(x, gate_up, bias).chunk(2, dim=-1)
        got = torch.nn.functional.linear(mlp.act_fn(gate) * up, down, mlp.down_proj.bias)
        torch.testing.assert_close(got, mlp(x), atol=1e-4, rtol=1e-5)


def test_compiled_sdpa_blocks_trace_whole(visual) -> None:
    """flow_compile on CUDA compiles the sdpa block (batched attention, fused MLP): it must trace without
    graph breaks, one graph per block kind (window / full attention), and keep the math (aot_eager: no
    kernel fusion)."""
    import torch
    from torch._dynamo.utils import counters

    from wallx_ros.policy.engine.vision_tower import VisionTowerRunner

    torch._dynamo.reset()
    counters.clear()
    compiled = VisionTowerRunner(visual, "sdpa", compile_blocks=True, compile_backend="aot_eager")
    plain = VisionTowerRunner(visual, "sdpa")
    grid = GRIDS[0]
    pixels = _pixels(grid, seed=5)
    with torch.no_grad():
        got = compiled(pixels, compiled.geometry(grid))
        expected = plain(pixels, plain.geometry(grid))
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 2, dict(counters["stats"])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch._dynamo.reset()
