"""The fast flow engine gives stock LeRobot's actions: real WallX code on the tiny checkpoints, no mocks.

Stock = LeRobot's own ``WallXPolicy.predict_action_chunk`` (torchdiffeq Euler loop re-running the whole
prompt 10 times); fast_flow = wallx_ros.policy.engine.flow_engine (prefix KV cache, device-side inputs). With the
eager attention kernel the actions must be bit-identical on CPU for the same noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wallx_ros.core.types import Observation
from wallx_ros.lerobot import internals, versions
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS, TinyCheckpointSpec
from wallx_ros.policy.errors import BackendConfigError, InferenceError

# Why fast_flow cannot run on the installed LeRobot line (None: it can: 0.4.x and 0.6.x are validated). On a line
# it is not validated on, engine 'auto' must fall back to stock (tested below).
UNSUPPORTED = versions.flow_engine_unsupported_reason()
needs_fast_flow = pytest.mark.skipif(UNSUPPORTED is not None, reason=f"{UNSUPPORTED}; auto falls back to stock")


def observation(seed: int, cams: tuple[str, ...], hw: tuple[int, int], instruction: str = "put the peg in the socket",
                state_dim: int = 14) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(
        images={c: rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for c in cams},
        state=rng.normal(size=state_dim).astype(np.float32), instruction=instruction, stamp_ns=seed,
    )


@pytest.fixture(scope="module")
def one_camera_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wallx_ros.policy.checkpoints.tiny_checkpoint import build_tiny_checkpoint

    spec = TinyCheckpointSpec(cameras=("face_view",), seed=3)
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_one_cam", spec)


def _pair(checkpoint: Path, **kw):
    stock = load_backend(BackendConfig(checkpoint_dir=checkpoint, allow_random_weights=True, seed=0, engine="stock"))
    fast = load_backend(BackendConfig(checkpoint_dir=checkpoint, allow_random_weights=True, seed=0,
                                      engine="fast_flow", **kw))
    assert stock.engine == "stock" and fast.engine == "fast_flow"
    return stock, fast


@pytest.fixture(scope="module")
def three_cams(tiny_checkpoint: Path):
    return _pair(tiny_checkpoint)


@needs_fast_flow
@pytest.mark.parametrize(("seed", "hw"), [(0, (120, 160)), (1, (480, 640)), (2, (300, 200))])
def test_fast_flow_equals_stock_three_cameras(three_cams, seed: int, hw: tuple[int, int]) -> None:
    """Same seed -> same noise -> bit-identical chunk, for several observations and image sizes."""
    stock, fast = three_cams
    obs = observation(seed, DEFAULT_CAMERAS, hw)
    expected = stock.predict_chunk(obs).actions
    got = fast.predict_chunk(obs).actions
    np.testing.assert_array_equal(got, expected)
    assert np.abs(expected).max() > 0.1  # a real chunk, not zeros


@needs_fast_flow
def test_fast_flow_equals_stock_one_camera(one_camera_checkpoint: Path) -> None:
    stock, fast = _pair(one_camera_checkpoint)
    assert fast.cameras == ("face_view",)
    for seed in (4, 5):
        obs = observation(seed, ("face_view",), (240, 320), instruction=f"task number {seed}")
        np.testing.assert_array_equal(fast.predict_chunk(obs).actions, stock.predict_chunk(obs).actions)


@needs_fast_flow
def test_inputs_equal_stock_preprocess_inputs(three_cams) -> None:
    """Token ids, pixel values (Pillow-exact resize + patches), state and masks equal LeRobot's own."""
    import torch

    stock, fast = three_cams
    obs = observation(7, DEFAULT_CAMERAS, (250, 333))
    engine = fast._engine
    inputs = engine.prepare(obs)
    batch = {"observation.state": torch.from_numpy(obs.state), "task": obs.instruction}
    for cam in DEFAULT_CAMERAS:
        batch[f"observation.images.{cam}"] = torch.from_numpy(obs.images[cam]).permute(2, 0, 1).float() / 255
    ref = stock._policy.preprocess_inputs(stock._pre(batch))
    assert torch.equal(ref["input_ids"][:, : inputs.plan.seq_len], inputs.plan.input_ids)
    assert inputs.plan.seq_len == ref["input_ids"].shape[1]  # the action block ends the prompt
    assert torch.equal(ref["pixel_values"], inputs.pixel_values)
    assert torch.equal(ref["image_grid_thw"], torch.tensor(inputs.plan.grid))
    assert torch.equal(ref["proprioception"], inputs.proprioception)
    assert torch.equal(ref["agent_pos_mask"], inputs.agent_pos_mask)
    assert torch.equal(ref["dof_mask"], engine.inputs.dof_mask)
    # the prompt plan is cached per (instruction, image sizes)
    assert engine.prepare(obs).plan is inputs.plan
    assert engine.prepare(observation(8, DEFAULT_CAMERAS, (250, 333), instruction="other")).plan is not inputs.plan


@needs_fast_flow
def test_images_in_graph_give_the_same_chunk(three_cams) -> None:
    """On CUDA the camera images go up as uint8 and are resized / normalised / patchified inside the flow
    (the CUDA graph). That path runs on CPU too: its chunk must equal the default path's bit for bit (the
    torch bicubic resizer is Pillow-exact)."""
    import torch

    from wallx_ros.policy.engine.flow_engine import FlowEngine

    _, fast = three_cams
    engine = FlowEngine(fast._policy, fast._pre, attention="eager", cuda_graphs=False, images_in_graph=True)
    for seed, hw in ((14, (480, 640)), (15, (224, 224))):
        obs = observation(seed, DEFAULT_CAMERAS, hw)
        inputs = engine.prepare(obs)
        assert inputs.pixel_values is None and len(inputs.images) == len(DEFAULT_CAMERAS)
        assert inputs.images[0].dtype == torch.uint8 and tuple(inputs.images[0].shape) == (*hw, 3)
        reference = fast._engine.prepare(obs)
        assert torch.equal(engine.inputs.pixel_values(inputs.plan, inputs.images), reference.pixel_values)
        noise = torch.randn(1, engine.horizon, engine.max_action_dim, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(engine.run(inputs, noise), fast._engine.run(reference, noise))


@needs_fast_flow
def test_prefix_never_attends_to_action_tokens(three_cams) -> None:
    """What makes the KV reuse exact: in stock's own 4-D mask no prefix row attends to an action column."""
    import torch

    stock, fast = three_cams
    inputs = fast._engine.prepare(observation(9, DEFAULT_CAMERAS, (120, 160)))
    plan = inputs.plan
    model = stock._policy.model
    ids = plan.input_ids
    types = ids == model.processor.tokenizer.convert_tokens_to_ids("<|action|>")
    embeds = model.model.embed_tokens(ids)
    with torch.no_grad():
        mask = internals.stock_attention_mask(model, ids, embeds, types)
    allowed = mask[0, 0] == 0
    p = plan.action_start
    assert not allowed[:p, p:].any()  # prefix rows never see action tokens
    assert allowed[p:, :].all()  # action rows see everything (bidirectional among actions)
    assert torch.equal(allowed, plan.allowed[0, 0])  # the engine's pattern is stock's


@needs_fast_flow
def test_sdpa_kernel_keeps_eager_semantics(tiny_checkpoint: Path, three_cams) -> None:
    """flow_attention=sdpa (what CUDA uses) differs from eager only by bf16 rounding: it keeps the
    bidirectional attention among action tokens that LeRobot's own sdpa path drops (~7e-3)."""
    stock, _ = three_cams
    sdpa = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0,
                                      engine="fast_flow", flow_attention="sdpa"))
    obs = observation(10, DEFAULT_CAMERAS, (120, 160))
    expected = stock.predict_chunk(obs).actions
    got = sdpa.predict_chunk(obs).actions
    np.testing.assert_allclose(got, expected, atol=5e-3, rtol=0)


@needs_fast_flow
@pytest.mark.parametrize("hw", [(224, 224), (120, 160)])
def test_sdpa_engine_equals_eager_engine_in_float32(three_cams, hw: tuple[int, int]) -> None:
    """The sdpa engine's own restructuring (vision windows regrouped into batched unmasked attention,
    grouped-query attention without repeat_kv in the action steps) computes the eager engine's math: on a
    float32 copy of the model the chunks agree to float32 rounding. (224x224 cameras give WallX 18x18
    patches: windows of three sizes, as on the robot.)"""
    import copy

    import torch

    from wallx_ros.policy.engine.flow_engine import FlowEngine

    _, fast = three_cams
    policy = copy.deepcopy(fast._policy)
    policy.model.to(torch.float32)
    eager = FlowEngine(policy, fast._pre, attention="eager", cuda_graphs=False)
    sdpa = FlowEngine(policy, fast._pre, attention="sdpa", cuda_graphs=False)
    assert int(policy.model.config.num_attention_heads) > int(policy.model.config.num_key_value_heads)  # GQA
    obs = observation(13, DEFAULT_CAMERAS, hw)
    noise = torch.randn(1, eager.horizon, eager.max_action_dim, generator=torch.Generator().manual_seed(1))
    expected = eager.run(eager.prepare(obs), noise)
    got = sdpa.run(sdpa.prepare(obs), noise)
    assert expected.abs().max() > 0.5
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@needs_fast_flow
# eager vision on LeRobot 0.6 runs stock's attention call per window / image: window and full blocks apart, as sdpa
@pytest.mark.parametrize(("attention", "graphs"), [("eager", 6 if versions.installed_line() == "0.4" else 7),
                                                   ("sdpa", 7)])
def test_compiled_layers_trace_whole_and_serve_every_layer(three_cams, attention: str, graphs: int) -> None:
    """flow_compile runs one decoder layer and one vision block through torch.compile. Traced with the
    aot_eager backend (no kernel fusion, so the math must not change) the engine must give exactly the
    uncompiled engine's actions, trace without graph breaks, and reuse one graph for every layer of a kind:
    step 0 over the prompt, the action-only steps, the vision block (sdpa, and eager on LeRobot 0.6: window and
    full-attention vision blocks apart, their batched layouts / attention splits differ), the action head's
    input, its output (twice: step 0 hands it a slice of the whole prompt's states, other strides), not one per
    layer.
    (Inductor's fused kernels change bf16 rounding; bench/inference reports that difference vs stock.)"""
    import torch
    from torch._dynamo.utils import counters

    from wallx_ros.policy.engine.flow_engine import FlowEngine

    _, fast = three_cams
    torch._dynamo.reset()
    counters.clear()
    engine = FlowEngine(fast._policy, fast._pre, attention=attention, cuda_graphs=False, compile_layers=True,
                        compile_backend="aot_eager")
    plain = FlowEngine(fast._policy, fast._pre, attention=attention, cuda_graphs=False)
    obs = observation(12, DEFAULT_CAMERAS, (120, 160))
    noise = torch.randn(1, engine.horizon, engine.max_action_dim, generator=torch.Generator().manual_seed(0))
    compiled = engine.run(engine.prepare(obs), noise)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == graphs, dict(counters["stats"])
    assert torch.equal(compiled, plain.run(plain.prepare(obs), noise))
    torch._dynamo.reset()


@needs_fast_flow
def test_too_long_prompt_is_an_inference_error(three_cams) -> None:
    _, fast = three_cams
    # the backend refuses it before the engine (instruction_problem); the engine has its own check too
    with pytest.raises(InferenceError, match=r"longer than|does not fit the model.s prompt"):
        fast.predict_chunk(observation(11, DEFAULT_CAMERAS, (120, 160), instruction="go " * 800))


def test_engine_selection(tiny_checkpoint: Path, tiny_fast_checkpoint: Path) -> None:
    auto = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True))
    if UNSUPPORTED is None:
        assert auto.engine == "fast_flow"  # the default: proven equal above
    else:  # a LeRobot line the engine is not validated on: auto runs stock, fast_flow refuses with the reason
        assert auto.engine == "stock"
        assert np.isfinite(auto.predict_chunk(observation(0, DEFAULT_CAMERAS, (120, 160))).actions).all()
        with pytest.raises(BackendConfigError, match=r"validated on LeRobot 0\.4\.x and 0\.6\.x only"):
            load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, engine="fast_flow"))
    fast_mode = load_backend(BackendConfig(checkpoint_dir=tiny_fast_checkpoint, allow_random_weights=True,
                                           engine="fast_flow"))
    assert fast_mode.mode == "fast"  # fast mode keeps LeRobot's generate, with fast_decode's steps where validated
    from wallx_ros.policy.engine.fast_decode import fast_decode_line_reason

    assert fast_mode.engine == ("fast_decode" if fast_decode_line_reason() is None else "stock")
    with pytest.raises(BackendConfigError, match="engine must be"):
        BackendConfig(checkpoint_dir=tiny_checkpoint, engine="turbo")
    with pytest.raises(BackendConfigError, match="flow_attention must be"):
        BackendConfig(checkpoint_dir=tiny_checkpoint, flow_attention="flash")
