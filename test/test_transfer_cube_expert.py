"""The scripted transfer-cube expert on the real gym-aloha MuJoCo scene: kinematics, velocity bounds, success."""

from __future__ import annotations

import numpy as np
import pytest

from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.arm_kinematics import ArmKinematics, rotation_from_axes
from wallx_ros.sim.errors import SceneError
from wallx_ros.sim.transfer_cube import SUCCESS_STAGE, plan_transfer_cube, transfer_cube_stage

PERIOD_S = 0.02


@pytest.fixture(scope="module")
def scene() -> AlohaScene:
    return AlohaScene("aloha_transfer_cube", seed=0)


def _settled(scene: AlohaScene, seed: int) -> None:
    scene.reset(seed)
    scene.advance(100)


def _execute(scene: AlohaScene, plan, limit_velocity: bool = True) -> list[int]:  # type: ignore[no-untyped-def]
    stages = []
    command = scene.command()
    t = 0.0
    while t <= plan.duration_s + 1e-9:
        target = plan.command_at(t)
        command = scene.limits.saturate(target, command, PERIOD_S)[0] if limit_velocity else target
        scene.set_command(command)
        scene.advance(round(PERIOD_S / scene.timestep_s))
        stages.append(transfer_cube_stage(scene))
        t += PERIOD_S
    return stages


def test_inverse_kinematics_reaches_the_pose(scene: AlohaScene) -> None:
    _settled(scene, 0)
    arm = ArmKinematics(scene, "right")
    target = scene.object_poses()["box"][:3] + np.array([0.0, 0.0, 0.1])
    before = arm.current()
    down = rotation_from_axes((0, 0, -1), (0, -1, 0))
    result = arm.solve(target, down, arm.current())
    assert result.converged
    point, rotation = arm.tool_pose(result.joints)
    np.testing.assert_allclose(point, target, atol=1e-3)
    np.testing.assert_allclose(rotation, down, atol=1e-2)
    assert np.all(result.joints >= arm.lower) and np.all(result.joints <= arm.upper)
    # the running simulation was not moved by the solver
    np.testing.assert_array_equal(arm.current(), before)


def test_unreachable_pose_is_reported(scene: AlohaScene) -> None:
    arm = ArmKinematics(scene, "left")
    result = arm.solve(np.array([2.0, 0.5, 0.3]), rotation_from_axes((1, 0, 0), (0, 0, 1)), arm.current())
    assert not result.converged and result.position_error_m > 0.5


def test_plan_respects_the_velocity_bounds_and_starts_at_the_start_pose(scene: AlohaScene) -> None:
    _settled(scene, 3)
    plan = plan_transfer_cube(scene, max_velocity=0.8, max_gripper_velocity=1.2)
    np.testing.assert_allclose(plan.command_at(0.0), scene.start_pose)
    grippers = np.array(["gripper" in n for n in plan.joint_names])
    peak = plan.peak_velocity()
    assert np.all(peak[~grippers] <= 0.8 + 1e-9) and np.all(peak[grippers] <= 1.2 + 1e-9)
    assert peak.max() > 0.5  # the bound is what stretches the plan, not slack
    # sampled between keyframes too: no 20 ms step is faster than the bound
    times = np.arange(0.0, plan.duration_s, PERIOD_S / 4)
    steps = np.abs(np.diff([plan.command_at(t) for t in times], axis=0)) / (PERIOD_S / 4)
    assert steps[:, ~grippers].max() <= 0.8 * 1.001


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_expert_transfers_the_cube(scene: AlohaScene, seed: int) -> None:
    _settled(scene, seed)
    assert transfer_cube_stage(scene) == 0
    stages = _execute(scene, plan_transfer_cube(scene))
    assert 2 in stages, "the right arm never lifted the cube"
    assert stages[-1] == SUCCESS_STAGE, f"final stage {stages[-1]} (best {max(stages)})"
    assert scene.object_poses()["box"][2] > 0.15  # held in the air, not resting anywhere


def test_doing_nothing_is_not_success(scene: AlohaScene) -> None:
    _settled(scene, 0)
    plan = plan_transfer_cube(scene)
    start = plan.command_at(0.0)
    for _ in range(50):
        scene.set_command(start)
        scene.advance(10)
    assert transfer_cube_stage(scene) == 0


def test_plan_needs_the_cube_scene() -> None:
    with pytest.raises(SceneError, match="needs aloha_transfer_cube"):
        plan_transfer_cube(AlohaScene("aloha_insertion", seed=0))
