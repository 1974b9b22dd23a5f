"""Model action/state dimensions <-> robot joints: names, absolute or delta actions, gripper scaling.

The model speaks in its own units (a LeRobot dataset's units: e.g. ALOHA grippers normalised to
[0, 1]); the robot in its own (e.g. gripper finger opening in metres). For each listed gripper
joint ``robot = offset + scale * model`` (actions) and ``model = (robot - offset) / scale`` (state).

``action_type="delta"``: a model action is an offset from the robot's position at the observation,
so ``target = observed[joint] + delta`` (every action joint must then also be a state joint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import ActionMappingError

__all__ = ["ACTION_TYPES", "ActionMapping"]

ACTION_TYPES = ("absolute", "delta")


@dataclass(frozen=True)
class ActionMapping:
    """state_names: robot joint of each model state dim; action_names: robot joint of each action column."""

    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    action_type: str = "absolute"
    gripper_joints: tuple[str, ...] = ()
    gripper_scale: float = 1.0
    gripper_offset: float = 0.0
    _state_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_names", tuple(self.state_names))
        object.__setattr__(self, "action_names", tuple(self.action_names))
        object.__setattr__(self, "gripper_joints", tuple(self.gripper_joints))
        if self.action_type not in ACTION_TYPES:
            raise ActionMappingError(f"action_type must be one of {ACTION_TYPES}, got {self.action_type!r}")
        for label, names in (("state", self.state_names), ("action", self.action_names)):
            if not names or any(not n for n in names):
                raise ActionMappingError(f"{label} joint names must be non-empty, got {list(names)}")
            if len(set(names)) != len(names):
                raise ActionMappingError(f"{label} joint names repeat: {list(names)}")
        if not (np.isfinite(self.gripper_scale) and self.gripper_scale != 0 and np.isfinite(self.gripper_offset)):
            raise ActionMappingError(f"gripper_scale must be finite and non-zero and gripper_offset finite, got "
                                     f"{self.gripper_scale}, {self.gripper_offset}")
        unknown = [g for g in self.gripper_joints if g not in self.action_names and g not in self.state_names]
        if unknown:
            raise ActionMappingError(f"gripper_joints {unknown} are neither state nor action joints")
        index = {n: i for i, n in enumerate(self.state_names)}
        object.__setattr__(self, "_state_index", index)
        if self.action_type == "delta":
            missing = [n for n in self.action_names if n not in index]
            if missing:
                raise ActionMappingError(f"delta actions need the robot position of every action joint, but "
                                         f"{missing} are not state joints; use action_type absolute or add them")

    def state_to_model(self, robot_state: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """Robot joint positions (state_names order, robot units) -> model ``observation.state``."""
        out = np.array(robot_state, dtype=np.float64, copy=True)
        for g in self.gripper_joints:
            if g in self._state_index:
                i = self._state_index[g]
                out[i] = (out[i] - self.gripper_offset) / self.gripper_scale
        return out.astype(np.float32)

    def actions_to_robot(self, actions: npt.NDArray[np.float64],
                         robot_state: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        """Model actions (rows x action_names) -> absolute robot joint targets, robot units."""
        out = np.array(actions, dtype=np.float64, copy=True)
        if out.ndim != 2 or out.shape[1] != len(self.action_names):
            raise ActionMappingError(f"actions {out.shape} do not have {len(self.action_names)} columns "
                                     f"({list(self.action_names)})")
        for j, name in enumerate(self.action_names):
            if name in self.gripper_joints:
                out[:, j] = self.gripper_offset + self.gripper_scale * out[:, j]
        if self.action_type == "delta":
            if robot_state is None:
                raise ActionMappingError("delta actions need the observed robot state")
            base = np.array([robot_state[self._state_index[n]] for n in self.action_names], dtype=np.float64)
            out += base[None, :]
        return out

    def robot_to_actions(self, targets: npt.NDArray[np.float64],
                         robot_state: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        """The inverse of ``actions_to_robot``: absolute robot targets -> model actions (rows x action_names),
        for the same ``robot_state`` (delta actions are relative to it). Used to hand the running plan back to
        the model (real-time chunking)."""
        out = np.array(targets, dtype=np.float64, copy=True)
        if out.ndim != 2 or out.shape[1] != len(self.action_names):
            raise ActionMappingError(f"targets {out.shape} do not have {len(self.action_names)} columns "
                                     f"({list(self.action_names)})")
        if self.action_type == "delta":
            if robot_state is None:
                raise ActionMappingError("delta actions need the observed robot state")
            base = np.array([robot_state[self._state_index[n]] for n in self.action_names], dtype=np.float64)
            out -= base[None, :]
        for j, name in enumerate(self.action_names):
            if name in self.gripper_joints:
                out[:, j] = (out[:, j] - self.gripper_offset) / self.gripper_scale
        return out

    def robot_action_joints_from_state(self, robot_state: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
        """The observed positions of the action joints (robot units), or None if some are not measured."""
        if any(n not in self._state_index for n in self.action_names):
            return None
        return np.array([robot_state[self._state_index[n]] for n in self.action_names], dtype=np.float64)

    @classmethod
    def build(cls, state_names: Sequence[str], action_names: Sequence[str], action_type: str = "absolute",
              gripper_joints: Sequence[str] = (), gripper_scale: float = 1.0,
              gripper_offset: float = 0.0) -> ActionMapping:
        return cls(tuple(state_names), tuple(action_names), action_type, tuple(gripper_joints),
                   float(gripper_scale), float(gripper_offset))
