"""The embedded simulation without ROS: the real gym-aloha MuJoCo scene, physics and OSMesa rendering."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

from wallx_ros.core.joint_trajectory_rules import Point
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS
from wallx_ros.sim.config import SimConfig, parse_camera_map
from wallx_ros.sim.errors import SceneError, SimConfigError
from wallx_ros.sim.simulation import Simulation
from wallx_ros.sim.trajectory_executor import ExecutionPhase, ReceivedTrajectory

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulation]:
    simulation = Simulation(SimConfig(camera_rate_hz=10.0, image_width=160, image_height=120))
    yield simulation
    simulation.close()


def _command(sim: Simulation, rows: list[np.ndarray], dt_s: float) -> ReceivedTrajectory:
    points = tuple(Point(positions=tuple(r), time_from_start=round((i + 1) * dt_s * 1e9)) for i, r in enumerate(rows))
    return ReceivedTrajectory(sim.joint_names, points, 0)


def test_robot_matches_the_tiny_checkpoint(sim: Simulation) -> None:
    """The sim's joints and camera keys are exactly what the tiny checkpoint (and WALL-OSS) expect."""
    assert sim.joint_names == ALOHA_JOINTS
    assert tuple(c.key for c in sim.config.cameras) == DEFAULT_CAMERAS
    assert sim.config.control_rate_hz == 50.0  # the tiny checkpoint's fps
    lo, hi = sim.limits.lower, sim.limits.upper
    assert np.all(lo < hi)
    grip = [ALOHA_JOINTS.index(n) for n in ("left_gripper", "right_gripper")]
    assert np.all(lo[grip] > 0.0) and np.all(hi[grip] < 1.0)  # normalised finger travel


def test_trajectory_moves_the_arm_and_out_of_limit_targets_are_clamped(sim: Simulation) -> None:
    for _ in range(5):
        start = sim.step()
    assert start.phase is ExecutionPhase.IDLE
    target = start.positions.copy()
    waist, rotate, grip = (ALOHA_JOINTS.index(n) for n in ("left_waist", "right_wrist_rotate", "left_gripper"))
    target[waist] += 0.4
    target[grip] = 0.9
    target[rotate] = 5.0  # beyond the 3.14 rad limit: the command is clamped, as joint limits would
    assert sim.offer(_command(sim, [target], 0.5)) == []
    frames_before = sim.stats.frames
    for _ in range(60):  # 1.2 s
        result = sim.step()
        if sim.frames_due():
            sim.render()
        # MuJoCo joint limits are soft constraints: a fast joint may pass a limit by a few centiradians
        assert sim.limits.contains(result.positions, tolerance=0.05), result.positions
    assert result.phase is ExecutionPhase.HOLDING
    assert result.positions[waist] == pytest.approx(target[waist], abs=0.03)
    assert result.positions[grip] == pytest.approx(0.9, abs=0.05)
    assert result.command[rotate] == pytest.approx(sim.limits.upper[rotate])
    assert sim.stats.clamped_steps > 0
    # 10 Hz of sim time, 3 cameras: the frame due at 0.1 s, then 0.2 ... 1.3 s
    assert sim.stats.frames - frames_before == 3 * 13
    assert sim.time_ns == 65 * 20_000_000


def test_cameras_render_distinct_views(sim: Simulation) -> None:
    frames = sim.render()
    assert set(frames) == set(DEFAULT_CAMERAS)
    for img in frames.values():
        assert img.shape == (120, 160, 3) and img.dtype == np.uint8
        assert img.std() > 5  # not a blank frame
    assert not np.array_equal(frames["face_view"], frames["left_wrist_view"])
    k = sim.intrinsics("face_view")
    assert k.width == 160 and k.height == 120 and k.fx > 0


def test_rejected_trajectory_leaves_the_robot_alone(sim: Simulation) -> None:
    before = sim.executor.stats.rejected
    bad = ReceivedTrajectory(sim.joint_names[:-1], (Point(positions=(0.0,) * 13, time_from_start=10**8),), 0)
    assert sim.offer(bad)
    assert sim.executor.stats.rejected == before + 1


def test_bad_settings_say_what_to_do() -> None:
    with pytest.raises(SimConfigError, match="aloha_insertion"):
        SimConfig(scene="kitchen")
    with pytest.raises(SimConfigError, match="face_view=top"):
        parse_camera_map(["face_view"])
    with pytest.raises(SimConfigError, match="real_time_factor"):
        SimConfig(real_time_factor=0.0)
    with pytest.raises(SimConfigError, match="whole number of physics steps"):
        Simulation(SimConfig(control_rate_hz=30.0, camera_rate_hz=0.0))
    with pytest.raises(SceneError, match="no camera"):
        Simulation(SimConfig(cameras=parse_camera_map(["face_view=nowhere"])))
