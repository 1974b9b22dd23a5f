"""The ALOHA bimanual MuJoCo scenes of gym-aloha, seen as a robot with named joints.

The MJCF files ship in the ``gym-aloha`` PyPI package (the canonical LeRobot simulation; the
``lerobot/aloha_sim_*`` datasets were recorded in them). They are loaded with ``mujoco`` directly (no
dm_control / gymnasium wrapper) so that the simulation owns stepping, time and rendering.

Robot joints follow the ALOHA naming used by wallx_ros (``left_waist`` ... ``right_gripper``): 6 arm
joints per side map to ``vx300s_<side>/<joint>``; ``<side>_gripper`` is gym-aloha's normalised gripper
position (0 closed, 1 open) driving the two mirrored finger slides, exactly as gym-aloha's
``BimanualViperXTask`` does. Position actuators of the MJCF do the low-level control.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt

from wallx_ros.sim.config import SCENES
from wallx_ros.sim.errors import SceneError
from wallx_ros.sim.joint_limits import ActuatorLimits

__all__ = ["ARM_JOINTS", "SIDES", "AlohaScene", "aloha_assets_dir"]

SIDES: tuple[str, ...] = ("left", "right")
ARM_JOINTS: tuple[str, ...] = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")

FloatArray = npt.NDArray[np.float64]


def aloha_assets_dir() -> Path:
    """gym_aloha/assets without importing gym_aloha (whose import registers gymnasium environments)."""
    spec = importlib.util.find_spec("gym_aloha")
    if spec is None or not spec.submodule_search_locations:
        raise SceneError("gym-aloha is not installed: pip install gym-aloha==0.1.5 (bash scripts/setup.sh does)")
    return Path(next(iter(spec.submodule_search_locations))) / "assets"


def _gripper_constants() -> tuple[float, float, npt.NDArray[np.float64]]:
    """gym-aloha's puppet gripper normalisation (close, open finger positions) and start arm pose."""
    from gym_aloha.constants import (  # small module of plain constants
        PUPPET_GRIPPER_POSITION_CLOSE,
        PUPPET_GRIPPER_POSITION_OPEN,
        START_ARM_POSE,
    )

    return float(PUPPET_GRIPPER_POSITION_CLOSE), float(PUPPET_GRIPPER_POSITION_OPEN), np.asarray(START_ARM_POSE, float)


class AlohaScene:
    """MuJoCo model + data of one gym-aloha scene, read and commanded by robot joint name."""

    def __init__(self, scene: str = "aloha_insertion", seed: int = -1, max_joint_velocity: float = 3.0,
                 max_gripper_velocity: float = 2.0) -> None:
        if scene not in SCENES:
            raise SceneError(f"unknown scene {scene!r}: choose one of {sorted(SCENES)}")
        path = aloha_assets_dir() / SCENES[scene]
        try:
            self.model: Any = mujoco.MjModel.from_xml_path(str(path))
        except (ValueError, OSError) as err:
            raise SceneError(f"cannot load {path}: {err} (reinstall gym-aloha==0.1.5)") from err
        self.data: Any = mujoco.MjData(self.model)
        self._scratch: Any = mujoco.MjData(self.model)  # forward kinematics of hypothetical poses
        self.scene = scene
        self._close, self._open, self._start_pose = _gripper_constants()

        names: list[str] = []
        qpos_adr: list[int] = []
        dof_adr: list[int] = []
        lower: list[float] = []
        upper: list[float] = []
        self._arm_actuators: list[int] = []
        self._arm_index: list[int] = []  # robot joint index of each arm actuator
        self._finger_actuators: list[tuple[int, int]] = []
        self._gripper_index: list[int] = []
        for side in SIDES:
            for joint in ARM_JOINTS:
                jid = self._joint_id(f"vx300s_{side}/{joint}")
                self._arm_index.append(len(names))
                self._arm_actuators.append(self._actuator_for(jid))
                names.append(f"{side}_{joint}")
                qpos_adr.append(int(self.model.jnt_qposadr[jid]))
                dof_adr.append(int(self.model.jnt_dofadr[jid]))
                lo, hi = self.model.jnt_range[jid]
                lower.append(float(lo))
                upper.append(float(hi))
            left = self._joint_id(f"vx300s_{side}/left_finger")
            right = self._joint_id(f"vx300s_{side}/right_finger")
            self._gripper_index.append(len(names))
            self._finger_actuators.append((self._actuator_for(left), self._actuator_for(right)))
            names.append(f"{side}_gripper")
            qpos_adr.append(int(self.model.jnt_qposadr[left]))
            dof_adr.append(int(self.model.jnt_dofadr[left]))
            lo, hi = self.model.jnt_range[left]
            lower.append(self.normalise_gripper(float(lo)))
            upper.append(self.normalise_gripper(float(hi)))
        self.joint_names: tuple[str, ...] = tuple(names)
        self._qpos_adr = np.array(qpos_adr, dtype=np.intp)
        self._dof_adr = np.array(dof_adr, dtype=np.intp)
        self._is_gripper = np.zeros(len(names), dtype=bool)
        self._is_gripper[self._gripper_index] = True
        self.limits = ActuatorLimits(np.array(lower), np.array(upper),
                                  np.where(self._is_gripper, max_gripper_velocity, max_joint_velocity))
        # Stiff joint-limit constraints (2 physics steps, the stiffest MuJoCo integrates stably): with the
        # scene's default 20 ms a whipping wrist drags the finger slides centimetres past their stops.
        limited = self.model.jnt_limited.astype(bool)
        self.model.jnt_solref[limited] = [2.0 * self.timestep_s, 1.0]
        self.camera_names: tuple[str, ...] = tuple(self.model.camera(i).name for i in range(self.model.ncam))
        self.reset(seed)

    # -- set-up ------------------------------------------------------------------------------------------
    def _joint_id(self, name: str) -> int:
        jid = int(mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, name))
        if jid < 0:
            raise SceneError(f"scene {self.scene} has no joint {name!r}: is this a gym-aloha 0.1.5 scene?")
        return jid

    def _actuator_for(self, joint_id: int) -> int:
        for act in range(self.model.nu):
            if int(self.model.actuator_trnid[act, 0]) == joint_id:
                return act
        raise SceneError(f"no actuator drives joint {self.model.joint(joint_id).name!r} in scene {self.scene}")

    def reset(self, seed: int = -1) -> None:
        """Keyframe 0 (gym-aloha's start pose); with seed >= 0 the objects are placed as gym-aloha samples them."""
        mujoco.mj_resetDataKeyframe(self.model, self.data, 0)
        if seed >= 0:
            from gym_aloha.utils import sample_box_pose, sample_insertion_pose

            if self.scene == "aloha_insertion":
                peg, socket = sample_insertion_pose(seed)
                self.data.qpos[-14:] = np.concatenate([peg, socket])
            else:
                self.data.qpos[-7:] = sample_box_pose(seed)
        self.data.ctrl[:] = self._start_pose
        mujoco.mj_forward(self.model, self.data)

    @property
    def start_pose(self) -> FloatArray:
        """gym-aloha's start arm pose in robot joint order (grippers normalised)."""
        out = np.empty(len(self.joint_names))
        out[self._arm_index] = self._start_pose[self._arm_actuators]
        for idx, (left, _right) in zip(self._gripper_index, self._finger_actuators, strict=True):
            out[idx] = self.normalise_gripper(float(self._start_pose[left]))
        return out

    # -- gripper units -----------------------------------------------------------------------------------
    def normalise_gripper(self, finger_position: float) -> float:
        return (finger_position - self._close) / (self._open - self._close)

    def finger_position(self, normalised: float) -> float:
        return normalised * (self._open - self._close) + self._close

    # -- state and command -------------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        return float(self.data.time)

    @property
    def timestep_s(self) -> float:
        return float(self.model.opt.timestep)

    def positions(self) -> FloatArray:
        """Robot joint positions (grippers normalised), in ``joint_names`` order."""
        q = np.array(self.data.qpos[self._qpos_adr], dtype=np.float64)
        q[self._is_gripper] = (q[self._is_gripper] - self._close) / (self._open - self._close)
        return q

    def velocities(self) -> FloatArray:
        v = np.array(self.data.qvel[self._dof_adr], dtype=np.float64)
        v[self._is_gripper] = v[self._is_gripper] / (self._open - self._close)
        return v

    def command(self) -> FloatArray:
        """The position targets the actuators currently hold, in robot units."""
        out = np.empty(len(self.joint_names))
        out[self._arm_index] = self.data.ctrl[self._arm_actuators]
        for idx, (left, _right) in zip(self._gripper_index, self._finger_actuators, strict=True):
            out[idx] = self.normalise_gripper(float(self.data.ctrl[left]))
        return out

    def set_command(self, positions: FloatArray) -> bool:
        """Set position targets (robot joint order), clamped to the position limits; True if clamping happened."""
        if positions.shape != (len(self.joint_names),) or not np.all(np.isfinite(positions)):
            raise SceneError(f"command must be {len(self.joint_names)} finite positions, got {positions!r}")
        target, clamped = self.limits.clip(positions)
        self.data.ctrl[self._arm_actuators] = target[self._arm_index]
        for idx, (left, right) in zip(self._gripper_index, self._finger_actuators, strict=True):
            finger = self.finger_position(float(target[idx]))
            self.data.ctrl[left] = finger
            self.data.ctrl[right] = -finger
        return clamped

    def advance(self, substeps: int) -> None:
        """Run ``substeps`` physics steps with the current targets."""
        mujoco.mj_step(self.model, self.data, nstep=substeps)

    # -- objects ----------------------------------------------------------------------------------------
    def object_poses(self) -> dict[str, FloatArray]:
        """Pose of every free-floating object (the cube; the peg and socket): body name -> [x y z qw qx qy qz]."""
        out = {}
        for jid in range(self.model.njnt):
            if int(self.model.jnt_type[jid]) == int(mujoco.mjtJoint.mjJNT_FREE):
                adr = int(self.model.jnt_qposadr[jid])
                body = self.model.body(int(self.model.jnt_bodyid[jid])).name
                out[body] = np.array(self.data.qpos[adr:adr + 7], dtype=np.float64)
        return out

    def contacts(self) -> set[tuple[str, str]]:
        """Named geom pairs in contact now (as MuJoCo lists them: ``(geom1, geom2)``)."""
        pairs = set()
        for i in range(int(self.data.ncon)):
            contact = self.data.contact[i]
            pairs.add((self.model.geom(int(contact.geom1)).name, self.model.geom(int(contact.geom2)).name))
        return pairs

    # -- geometry (for RViz markers) ---------------------------------------------------------------------
    def arm_chain_points(self, side: str) -> FloatArray:
        """World positions (N, 3) of the bodies from the base of one arm to its fingertip site."""
        root = int(mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, f"vx300s_{side}"))
        tip = int(mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, f"vx300s_{side}/camera_focus"))
        chain = []
        body = tip
        while body > 0:
            chain.append(body)
            if body == root:
                break
            body = int(self.model.body_parentid[body])
        return np.array(self.data.xpos[chain[::-1]], dtype=np.float64)

    def gripper_positions_for(self, joint_positions: FloatArray) -> FloatArray:
        """World positions (2, 3) of the left/right gripper tips if the arms stood at ``joint_positions``.

        Forward kinematics on a scratch copy of the data: the simulation state is not touched.
        """
        scratch = self._scratch
        scratch.qpos[:] = self.data.qpos
        q = np.array(joint_positions, dtype=np.float64)
        q[self._is_gripper] = q[self._is_gripper] * (self._open - self._close) + self._close
        scratch.qpos[self._qpos_adr] = q
        mujoco.mj_kinematics(self.model, scratch)
        tips = [int(mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, f"vx300s_{s}/camera_focus"))
                for s in SIDES]
        return np.array(scratch.xpos[tips], dtype=np.float64)
