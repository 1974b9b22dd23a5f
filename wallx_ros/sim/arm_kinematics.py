"""Inverse kinematics of one ALOHA (ViperX 300 s) arm of a gym-aloha scene, on a scratch copy of the data.

A scripted demonstrator needs joint positions that put the gripper at a pose (above the cube, on it, at
the hand-over point). The arm has 6 joints, so a full pose is reachable: damped least squares on the
gripper pose error (position + orientation), MuJoCo's own Jacobian, joint limits respected at every
iteration. The simulation state is never touched (``AlohaScene`` keeps a scratch ``MjData``).

The tool point is the middle of the finger pads: ``TOOL_OFFSET_M`` along the gripper link's x axis
(the approach direction; the ViperX finger meshes reach 0.064-0.154 m along it, the pads sit near the tips).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt

from wallx_ros.sim.aloha_scene import ARM_JOINTS, AlohaScene
from wallx_ros.sim.errors import SceneError

__all__ = ["TOOL_OFFSET_M", "ArmKinematics", "IkResult", "rotation_from_axes"]

FloatArray = npt.NDArray[np.float64]

TOOL_OFFSET_M = 0.13
_ORIENTATION_WEIGHT = 0.3  # metres per radian: how much one radian of orientation error counts against position


def rotation_from_axes(approach: tuple[float, float, float], fingers: tuple[float, float, float]) -> FloatArray:
    """The gripper frame whose x axis points along ``approach`` and whose y axis (finger opening) along ``fingers``."""
    x = np.asarray(approach, dtype=np.float64)
    y = np.asarray(fingers, dtype=np.float64)
    x = x / np.linalg.norm(x)
    y = y - x * float(x @ y)
    norm = float(np.linalg.norm(y))
    if norm < 1e-9:
        raise SceneError(f"approach {approach} and finger axis {fingers} must not be parallel")
    y = y / norm
    return np.column_stack([x, y, np.cross(x, y)])


@dataclass(frozen=True)
class IkResult:
    """Joint positions of the arm (``ARM_JOINTS`` order) and the remaining pose error."""

    joints: FloatArray
    position_error_m: float
    orientation_error_rad: float

    @property
    def converged(self) -> bool:
        return self.position_error_m < 1e-3 and self.orientation_error_rad < 1e-2


class ArmKinematics:
    """Forward and inverse kinematics of one side's arm (``"left"`` or ``"right"``) of an ``AlohaScene``."""

    def __init__(self, scene: AlohaScene, side: str) -> None:
        model: Any = scene.model
        self._scene = scene
        self._model = model
        self._data: Any = mujoco.MjData(model)
        joints = [int(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"vx300s_{side}/{j}")) for j in ARM_JOINTS]
        body = int(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"vx300s_{side}/gripper_link"))
        if min(joints) < 0 or body < 0:
            raise SceneError(f"scene {scene.scene} has no ViperX arm {side!r}")
        self.side = side
        self._body = body
        self._qpos = np.array([model.jnt_qposadr[j] for j in joints], dtype=np.intp)
        self._dofs = np.array([model.jnt_dofadr[j] for j in joints], dtype=np.intp)
        self.lower = np.array(model.jnt_range[joints, 0], dtype=np.float64)
        self.upper = np.array(model.jnt_range[joints, 1], dtype=np.float64)

    def current(self) -> FloatArray:
        """The arm's joint positions in the running simulation."""
        return np.array(self._scene.data.qpos[self._qpos], dtype=np.float64)

    def tool_pose(self, joints: FloatArray) -> tuple[FloatArray, FloatArray]:
        """World position of the tool point and the gripper rotation (columns: x approach, y fingers, z)."""
        self._load(joints)
        return self._pose()

    def solve(self, position: FloatArray, rotation: FloatArray, start: FloatArray, iterations: int = 300) -> IkResult:
        """Joint positions that put the tool point at ``position`` with the gripper at ``rotation``.

        Starts from ``start`` (e.g. the previous waypoint: the solution then stays on the same branch).
        """
        q = np.clip(np.asarray(start, dtype=np.float64), self.lower, self.upper)
        jac_p = np.zeros((3, self._model.nv))
        jac_r = np.zeros((3, self._model.nv))
        pos_err = rot_err = float("inf")
        for _ in range(iterations):
            self._load(q)
            point, current = self._pose()
            e_pos = np.asarray(position, dtype=np.float64) - point
            e_rot = 0.5 * sum((np.cross(current[:, i], rotation[:, i]) for i in range(3)), np.zeros(3))
            pos_err, rot_err = float(np.linalg.norm(e_pos)), float(np.linalg.norm(e_rot))
            if pos_err < 1e-5 and rot_err < 1e-4:
                break
            mujoco.mj_jac(self._model, self._data, jac_p, jac_r, point, self._body)
            jac = np.vstack([jac_p[:, self._dofs], _ORIENTATION_WEIGHT * jac_r[:, self._dofs]])
            err = np.concatenate([e_pos, _ORIENTATION_WEIGHT * e_rot])
            step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
            q = np.clip(q + np.clip(step, -0.2, 0.2), self.lower, self.upper)
        return IkResult(q, pos_err, rot_err)

    def _load(self, joints: FloatArray) -> None:
        data = self._data
        data.qpos[:] = self._scene.data.qpos
        data.qpos[self._qpos] = joints
        mujoco.mj_kinematics(self._model, data)
        mujoco.mj_comPos(self._model, data)

    def _pose(self) -> tuple[FloatArray, FloatArray]:
        rotation = np.array(self._data.xmat[self._body], dtype=np.float64).reshape(3, 3)
        point = np.array(self._data.xpos[self._body], dtype=np.float64) + TOOL_OFFSET_M * rotation[:, 0]
        return point, rotation
