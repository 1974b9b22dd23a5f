"""Which robot joint and camera feeds which model feature: the robot <-> WALL-OSS contract.

Stored as ``wallx_ros_robot.json`` next to a policy checkpoint (written by the checkpoint builder and by
the dataset mapping tool) so that a checkpoint says by itself which joint each state/action dimension
is. Node parameters may override it. Action dimensions whose name is empty are model outputs the robot
does not use (WALL-OSS pads to 20 dims).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from wallx_ros.core.errors import RobotMappingError

__all__ = ["ROBOT_MAPPING_FILENAME", "RobotMapping"]

ROBOT_MAPPING_FILENAME = "wallx_ros_robot.json"


@dataclass(frozen=True)
class RobotMapping:
    """state_names[i] is the joint of observation.state[i]; action_names[j] the joint of action[:, j]."""

    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    cameras: tuple[str, ...]
    fps: float
    robot_type: str = ""

    def __post_init__(self) -> None:
        if not self.state_names or any(not n for n in self.state_names):
            raise RobotMappingError("state_names must be non-empty joint names")
        if len(set(self.state_names)) != len(self.state_names):
            raise RobotMappingError(f"state_names repeat: {list(self.state_names)}")
        used = [n for n in self.action_names if n]
        if not used:
            raise RobotMappingError("action_names maps no action dimension to a joint")
        if len(set(used)) != len(used):
            raise RobotMappingError(f"action_names repeat: {used}")
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise RobotMappingError(f"cameras must be distinct and non-empty: {list(self.cameras)}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise RobotMappingError(f"fps must be > 0, got {self.fps}")

    @property
    def action_joint_names(self) -> tuple[str, ...]:
        """The joints the robot receives, in action-dimension order (unused dims dropped)."""
        return tuple(n for n in self.action_names if n)

    @property
    def action_columns(self) -> tuple[int, ...]:
        """Indices of the action dimensions that drive a joint."""
        return tuple(i for i, n in enumerate(self.action_names) if n)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        path = Path(directory) / ROBOT_MAPPING_FILENAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> RobotMapping:
        path = Path(directory) / ROBOT_MAPPING_FILENAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise RobotMappingError(f"{path} not found: give the joint names as parameters instead") from err
        except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, absurd nesting
            raise RobotMappingError(f"{path} is not valid UTF-8 JSON: {err}") from err
        except OSError as err:
            raise RobotMappingError(f"{path} cannot be read: {err}") from err
        if not isinstance(raw, dict):
            raise RobotMappingError(f"{path}: expected a JSON object with state_names, action_names, cameras, fps")
        try:
            lists = {key: raw[key] for key in ("state_names", "action_names", "cameras")}
            bad = [key for key, value in lists.items() if not isinstance(value, list)]
            if bad:
                raise TypeError(f"{bad} must be lists of names")
            return cls(
                state_names=tuple(str(n) for n in lists["state_names"]),
                action_names=tuple(str(n) for n in lists["action_names"]),
                cameras=tuple(str(c) for c in lists["cameras"]),
                fps=float(raw["fps"]),
                robot_type=str(raw.get("robot_type", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise RobotMappingError(f"{path}: missing or malformed field ({err!r})") from err
