"""The ROS-free closed-loop rollout (wallx_ros.sim.rollout) on the real transfer-cube scene and renderer."""

from __future__ import annotations

import os

import numpy as np
import pytest

from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.camera_renderer import CameraRenderer
from wallx_ros.sim.errors import SimConfigError
from wallx_ros.sim.rollout import RolloutConfig, run_rollout
from wallx_ros.sim.transfer_cube import plan_transfer_cube

os.environ.setdefault("MUJOCO_GL", "osmesa")
FPS = 10.0


@pytest.fixture(scope="module")
def scene_and_renderer() -> tuple[AlohaScene, CameraRenderer]:
    scene = AlohaScene("aloha_transfer_cube")
    renderer = CameraRenderer(scene.model, 64, 48)
    yield scene, renderer
    renderer.close()


def test_the_scripted_plan_as_a_chunk_policy_succeeds(scene_and_renderer: tuple[AlohaScene, CameraRenderer]) -> None:
    scene, renderer = scene_and_renderer
    seen: list[tuple[set[str], tuple[int, ...]]] = []
    state: dict[str, object] = {}

    def expert(images: dict[str, np.ndarray], positions: np.ndarray) -> np.ndarray:
        seen.append((set(images), images["face_view"].shape))
        if "plan" not in state:
            state["plan"], state["t0"] = plan_transfer_cube(scene), scene.time_s
        t = scene.time_s - float(state["t0"])  # type: ignore[arg-type]
        return np.array([state["plan"].command_at(t + i / FPS) for i in range(32)])  # type: ignore[attr-defined]

    result = run_rollout(scene, renderer, expert, seed=1001, config=RolloutConfig(execution_horizon=16))
    assert result.success and result.final_stage == 4, result
    assert result.min_right_gripper_to_cube_m < 0.03 and result.final_cube_height_m > 0.1
    # a chunk every 16 rows of 0.1 s over 16 s; the plan continues across chunks: no jump at the switches
    assert result.chunks == 10 and len(result.switch_jumps) == 9
    assert max(result.switch_jumps) < 1e-9
    assert seen[0] == ({"face_view", "left_wrist_view", "right_wrist_view"}, (48, 64, 3))


def test_a_policy_that_holds_still_fails_and_jumps_are_measured(
        scene_and_renderer: tuple[AlohaScene, CameraRenderer]) -> None:
    scene, renderer = scene_and_renderer
    calls = []

    def hold_then_jump(images: dict[str, np.ndarray], positions: np.ndarray) -> np.ndarray:
        calls.append(positions.copy())
        chunk = np.repeat(scene.start_pose[None], 8, axis=0)
        chunk[:, 0] += 0.1 * (len(calls) - 1)  # each new chunk holds joint 0 0.1 rad further
        return chunk

    result = run_rollout(scene, renderer, hold_then_jump, seed=1002,
                         config=RolloutConfig(execution_horizon=32, duration_s=4.0))
    assert not result.success and result.final_stage == 0
    assert result.chunks == 5  # an 8-row chunk lasts 0.8 s however long the horizon
    np.testing.assert_allclose(result.switch_jumps, 0.1, atol=0.02)


def test_a_malformed_chunk_is_an_error(scene_and_renderer: tuple[AlohaScene, CameraRenderer]) -> None:
    scene, renderer = scene_and_renderer
    with pytest.raises(SimConfigError, match="shape"):
        run_rollout(scene, renderer, lambda images, q: np.full((4, 13), 0.0), seed=0, config=RolloutConfig())
    with pytest.raises(SimConfigError, match="whole number"):
        RolloutConfig(policy_fps=30.0)
