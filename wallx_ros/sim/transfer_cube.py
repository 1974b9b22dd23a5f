"""The ALOHA transfer-cube task: gym-aloha's success stages and a scripted expert that solves it.

The expert is this project's own: from the cube's pose at the start of an episode it plans, with the arm
kinematics, a pick with the right arm (gripper pointing down), a lift to a hand-over point in front of the
robot while the right gripper turns to point at the left arm, a grasp by the left arm from the other side
(its fingers close on the faces the right fingers leave free), a release by the right arm and a retreat of
both arms with the cube held by the left one. Between keyframes the joints follow minimum-jerk profiles,
each segment long enough that no joint exceeds ``max_velocity`` (grippers ``max_gripper_velocity``), so a
rate-limited follower (a teleop node, a ros2_control robot) tracks it.

Stages (gym-aloha ``TransferCubeTask.get_reward``): 1 the right fingers touch the cube, 2 ... and the cube is
off the table, 3 the left fingers touch it, 4 ... and it is off the table: success.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from wallx_ros.sim.aloha_scene import ARM_JOINTS, AlohaScene
from wallx_ros.sim.arm_kinematics import ArmKinematics, rotation_from_axes
from wallx_ros.sim.errors import SceneError

__all__ = ["CUBE_BODY", "SUCCESS_STAGE", "ExpertPlan", "Keyframe", "plan_transfer_cube", "transfer_cube_stage"]

FloatArray = npt.NDArray[np.float64]

CUBE_BODY = "box"
SUCCESS_STAGE = 4
HANDOVER_POINT = np.array([0.0, 0.5, 0.25])  # world metres: above the table's centre line, between the arms
OPEN, CLOSED = 1.0, 0.0  # normalised gripper commands (the scene clamps CLOSED to the fingers' range)

# gripper frames (x: approach, y: finger opening)
_RIGHT_DOWN = rotation_from_axes((0, 0, -1), (0, -1, 0))
_RIGHT_TO_LEFT = rotation_from_axes((-1, 0, 0), (0, -1, 0))
_LEFT_TO_RIGHT = rotation_from_axes((1, 0, 0), (0, 0, 1))  # fingers close on the cube's top and bottom


def _offset(dx: float, dy: float, dz: float) -> FloatArray:
    return np.array([dx, dy, dz], dtype=np.float64)


def transfer_cube_stage(scene: AlohaScene) -> int:
    """gym-aloha's reward for the current contacts: 0 .. 4 (4: the left gripper holds the cube in the air)."""
    contacts = scene.contacts()
    left = ("red_box", "vx300s_left/10_left_gripper_finger") in contacts
    right = ("red_box", "vx300s_right/10_right_gripper_finger") in contacts
    table = ("red_box", "table") in contacts
    if left:
        return 4 if not table else 3
    if right:
        return 2 if not table else 1
    return 0


@dataclass(frozen=True)
class Keyframe:
    """Where every joint (robot joint order) is commanded to be at ``time_s`` after the plan starts."""

    time_s: float
    positions: FloatArray


class ExpertPlan:
    """Keyframes joined by minimum-jerk segments; ``command_at(t)`` is the joint command at plan time ``t``."""

    def __init__(self, joint_names: tuple[str, ...], keyframes: list[Keyframe]) -> None:
        times = [k.time_s for k in keyframes]
        if len(keyframes) < 2 or times[0] != 0.0 or any(b <= a for a, b in pairwise(times)):
            raise SceneError(f"keyframe times must start at 0 and increase, got {times}")
        self.joint_names = joint_names
        self.keyframes = keyframes
        self._times = np.array(times)

    @property
    def duration_s(self) -> float:
        return float(self._times[-1])

    def command_at(self, t_s: float) -> FloatArray:
        """Joint command at plan time ``t_s`` (held at the ends)."""
        if t_s <= 0.0:
            return self.keyframes[0].positions.copy()
        if t_s >= self.duration_s:
            return self.keyframes[-1].positions.copy()
        k = int(np.searchsorted(self._times, t_s, side="right")) - 1
        a, b = self.keyframes[k], self.keyframes[k + 1]
        u = (t_s - a.time_s) / (b.time_s - a.time_s)
        s = u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)
        return np.asarray(a.positions + s * (b.positions - a.positions), dtype=np.float64)

    def peak_velocity(self) -> FloatArray:
        """Largest speed of each joint over the plan (minimum jerk peaks at 1.875 x the mean speed)."""
        speeds = [1.875 * np.abs(b.positions - a.positions) / (b.time_s - a.time_s)
                  for a, b in pairwise(self.keyframes)]
        return np.asarray(np.max(speeds, axis=0), dtype=np.float64)


def plan_transfer_cube(scene: AlohaScene, max_velocity: float = 1.0, max_gripper_velocity: float = 1.5,
                       cube_position: FloatArray | None = None) -> ExpertPlan:
    """Plan the transfer from the start pose with the cube resting on the table at ``cube_position`` (world
    metres; None: where the cube is in ``scene``). ``scene`` provides the kinematics: a planner that only knows
    the cube's pose (a node reading it from a topic) passes its own copy of the scene and the pose.

    Raises SceneError when the scene is not the transfer-cube scene or a pose is out of the arms' reach.
    """
    if not (max_velocity > 0 and max_gripper_velocity > 0):
        raise SceneError(f"max_velocity and max_gripper_velocity must be > 0, got {max_velocity} and "
                         f"{max_gripper_velocity}")
    poses = scene.object_poses()
    if CUBE_BODY not in poses:
        raise SceneError(f"scene {scene.scene} has no cube: the transfer-cube expert needs aloha_transfer_cube")
    cube = poses[CUBE_BODY][:3] if cube_position is None else np.asarray(cube_position, dtype=np.float64)
    if cube.shape != (3,) or not np.all(np.isfinite(cube)):
        raise SceneError(f"cube_position must be 3 finite numbers, got {cube_position!r}")
    left, right = ArmKinematics(scene, "left"), ArmKinematics(scene, "right")

    def reach(arm: ArmKinematics, point: FloatArray, rotation: FloatArray, start: FloatArray) -> FloatArray:
        result = arm.solve(point, rotation, start)
        if not result.converged:
            raise SceneError(f"{arm.side} arm cannot reach {np.round(point, 3).tolist()} (cube at "
                             f"{np.round(cube, 3).tolist()}): {result.position_error_m * 1e3:.1f} mm off")
        return result.joints

    start = scene.start_pose  # the plan begins where a reset scene's arms stand
    names = scene.joint_names
    left_idx = [names.index(f"left_{j}") for j in ARM_JOINTS]
    right_idx = [names.index(f"right_{j}") for j in ARM_JOINTS]
    l_grip, r_grip = names.index("left_gripper"), names.index("right_gripper")
    r0, l0 = start[right_idx], start[left_idx]
    r_above = reach(right, cube + _offset(0.0, 0.0, 0.10), _RIGHT_DOWN, r0)
    r_grasp = reach(right, cube + _offset(0.0, 0.0, 0.01), _RIGHT_DOWN, r_above)
    r_meet = reach(right, HANDOVER_POINT, _RIGHT_TO_LEFT, r_grasp)
    r_away = reach(right, HANDOVER_POINT + _offset(0.12, 0.0, 0.05), _RIGHT_TO_LEFT, r_meet)
    l_near = reach(left, HANDOVER_POINT + _offset(-0.12, 0.0, 0.0), _LEFT_TO_RIGHT, l0)
    l_grasp = reach(left, HANDOVER_POINT + _offset(-0.02, 0.0, 0.0), _LEFT_TO_RIGHT, l_near)
    l_away = reach(left, HANDOVER_POINT + _offset(-0.10, 0.0, 0.03), _LEFT_TO_RIGHT, l_grasp)

    def pose(lq: FloatArray, lg: float, rq: FloatArray, rg: float) -> FloatArray:
        out = start.copy()
        out[left_idx], out[l_grip], out[right_idx], out[r_grip] = lq, lg, rq, rg
        return out

    # (nominal seconds to reach this pose from the previous one, pose)
    steps = [
        (1.6, pose(l0, OPEN, r_above, OPEN)),           # right arm above the cube, gripper open
        (0.8, pose(l0, OPEN, r_grasp, OPEN)),           # down around it
        (0.5, pose(l0, OPEN, r_grasp, CLOSED)),         # close
        (1.3, pose(l_near, OPEN, r_meet, CLOSED)),      # lift to the hand-over point; left arm comes near
        (0.8, pose(l_grasp, OPEN, r_meet, CLOSED)),     # left fingers around the cube
        (0.5, pose(l_grasp, CLOSED, r_meet, CLOSED)),   # left closes
        (0.5, pose(l_grasp, CLOSED, r_meet, OPEN)),     # right lets go
        (1.0, pose(l_away, CLOSED, r_away, OPEN)),      # both retreat, the cube in the left gripper
        (1.0, pose(l_away, CLOSED, r_away, OPEN)),      # hold
    ]
    grippers = np.zeros(len(names), dtype=bool)
    grippers[[l_grip, r_grip]] = True
    speed = np.where(grippers, max_gripper_velocity, max_velocity)
    keyframes = [Keyframe(0.0, start.copy())]
    for nominal, target in steps:
        needed = float(np.max(1.875 * np.abs(target - keyframes[-1].positions) / speed))
        keyframes.append(Keyframe(keyframes[-1].time_s + max(nominal, needed), target))
    return ExpertPlan(names, keyframes)

