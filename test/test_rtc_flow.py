"""Real-time chunking on the real WallX flow (tiny checkpoint, CPU): the guided chunk keeps the frozen prefix, the
fast flow engine and the stock path (LeRobot's own velocity, our guided Euler loop) agree bit for bit, and the
prefix goes through the action mapping and LeRobot's normalisation exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.policy_control import ControlConfig, PolicyControl
from wallx_ros.core.realtime_chunking import ActionPrefix, RtcConfig, prefix_weights
from wallx_ros.core.safety import JointLimits, SafetyFilter
from wallx_ros.core.types import Observation
from wallx_ros.lerobot import versions
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS
from wallx_ros.policy.errors import InferenceError

pytestmark = pytest.mark.skipif(versions.flow_engine_unsupported_reason() is not None,
                                reason=f"{versions.flow_engine_unsupported_reason()}")

FROZEN = 6
MS = 1_000_000
S = 1_000_000_000


def observation(seed: int, stamp_ns: int = 0, state: np.ndarray | None = None) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(images={c: rng.integers(0, 256, (192, 256, 3), dtype=np.uint8) for c in DEFAULT_CAMERAS},
                       state=(rng.normal(size=14) if state is None else state).astype(np.float32),
                       instruction="insert the peg", stamp_ns=stamp_ns)


def running_plan(rows: int = 24) -> np.ndarray:
    """A smooth plan, far from what the random model does on its own."""
    t = np.arange(1, rows + 1)[:, None] * 0.02
    return np.sin(2.0 * t + np.linspace(0, 2, 14)[None, :]) * 0.8 + 0.3


@pytest.fixture(scope="module")
def backends(tiny_checkpoint: Path):  # type: ignore[no-untyped-def]
    make = lambda engine, rtc: load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint,  # noqa: E731
                                                          allow_random_weights=True, seed=0, engine=engine, rtc=rtc))
    return {"fast": make("fast_flow", True), "stock": make("stock", True), "plain": make("fast_flow", False)}


def test_guided_chunk_follows_the_frozen_prefix(backends) -> None:  # type: ignore[no-untyped-def]
    plan = running_plan()
    prefix = ActionPrefix(plan, prefix_weights(FROZEN, len(plan), "exp"), FROZEN)
    obs = observation(1)
    guided = backends["fast"].predict_chunk(obs, prefix).actions
    free = backends["fast"].predict_chunk(obs).actions  # same noise (seed 0), no prefix
    assert np.abs(guided[:FROZEN] - plan[:FROZEN]).max() < 1e-2  # the frozen rows are the running plan
    assert np.abs(free[:FROZEN] - plan[:FROZEN]).max() > 0.5  # without RTC the model goes its own way
    # the soft rows move towards the plan less and less; past the overlap the chunk is the model's
    error = np.abs(guided[: len(plan)] - plan).max(axis=1)
    assert error[FROZEN + 4] < error[-1]
    assert np.abs(guided[len(plan):] - free[len(plan):]).max() < np.abs(free[len(plan):]).max()
    # an engine without RTC refuses a prefix rather than ignoring it
    with pytest.raises(InferenceError, match="real-time chunking is not available"):
        backends["plain"].predict_chunk(obs, prefix)


@pytest.mark.parametrize("schedule", ["exp", "zeros"])
def test_fast_engine_equals_stock_path_with_rtc(backends, schedule: str) -> None:  # type: ignore[no-untyped-def]
    """Same seed, same prefix: fast_flow (cached prefix, guided steps) and stock (LeRobot's velocity through its
    torchdiffeq call, replaced by the guided Euler loop) give bit-identical chunks on CPU with eager attention."""
    plan = running_plan(20)
    prefix = ActionPrefix(plan, prefix_weights(4, len(plan), schedule), 4)
    obs = observation(2)
    fast = backends["fast"].predict_chunk(obs, prefix).actions
    stock = backends["stock"].predict_chunk(obs, prefix).actions
    np.testing.assert_array_equal(fast, stock)
    assert np.abs(fast[:4] - plan[:4]).max() < 1e-2
    # without a prefix the RTC engine computes exactly the plain chunk, and stock is left untouched (torchdiffeq)
    np.testing.assert_array_equal(backends["fast"].predict_chunk(obs).actions,
                                  backends["plain"].predict_chunk(obs).actions)
    np.testing.assert_array_equal(backends["stock"].predict_chunk(obs).actions,
                                  backends["plain"].predict_chunk(obs).actions)


def test_prefix_normalisation_is_the_exact_inverse_of_the_postprocessor(backends) -> None:  # type: ignore[no-untyped-def]
    """The guide's target, run through LeRobot's post-processor as the model's output would be, gives back the
    prefix (float32 rounding)."""
    import torch

    backend = backends["fast"]
    plan = running_plan(12)
    guide = backend._guide(ActionPrefix(plan, prefix_weights(3, 12, "exp"), 3))
    action_dim = int(backend._policy.config.output_features["action"].shape[0])
    back = backend._post(guide.target[:, :, :action_dim].clone()).detach().to("cpu", torch.float64).numpy()[0]
    np.testing.assert_allclose(back[:12], plan, atol=2e-6)
    weights = guide.weights[0].numpy()
    assert np.all(weights[:3, :action_dim] == 1.0) and np.all(weights[12:] == 0)
    assert np.all(weights[:, action_dim:] == 0)  # the padded dims are free


def test_policy_control_and_backend_keep_the_plan_through_delta_and_gripper_mapping(backends) -> None:  # type: ignore[no-untyped-def]
    """End to end without ROS: a running plan in robot units (delta actions, scaled grippers) -> rtc_request ->
    guided chunk -> on_chunk: the frozen rows come back within 1e-2 rad of the plan, and the switch is smooth."""
    backend = backends["fast"]
    names = backend.action_names
    mapping = ActionMapping.build(backend.state_names, names, "delta", gripper_joints=("left_gripper", "right_gripper"),
                                  gripper_scale=0.05, gripper_offset=0.01)
    control = PolicyControl(ControlConfig(rtc=RtcConfig(enabled=True)), mapping,
                            SafetyFilter(JointLimits.unlimited(names)), 1.0 / backend.fps)
    control.activate(0)
    state = np.linspace(-0.5, 0.5, 14)
    first = control.on_chunk(backend.predict_chunk(observation(3, 10 * S)).actions, state, 10 * S, 10 * S + 80 * MS)
    assert first.published and first.switch is None
    robot_plan = control.executor.plan
    assert robot_plan is not None
    stamp = 10 * S + 200 * MS
    request = control.rtc_request(stamp, state)
    assert request is not None and request.prefix.frozen == request.robot.frozen == 6  # d = 4 (80 ms) + 2
    chunk = backend.predict_chunk(observation(4, stamp, mapping.state_to_model(state)), request.prefix)
    out = control.on_chunk(chunk.actions, state, stamp, stamp + 80 * MS, rtc=request)
    assert out.published and out.prefix_error is not None and out.prefix_error < 1e-2
    assert out.delay_steps == 4 and out.switch is not None and out.switch.position_jump < 1e-2
    # without RTC the same observation gives a chunk far from the running plan
    free = mapping.actions_to_robot(backend.predict_chunk(observation(4, stamp)).actions, state)
    assert np.abs(free[:6] - request.robot.positions[:6]).max() > 0.1
