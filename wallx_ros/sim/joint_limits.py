"""Joint limits enforced on every command, as ros2_control does with ``enforce_command_limits``.

ros2_control (jazzy/kilted controller_manager) saturates each position command to the joint's position
limits and to a step of at most ``max_velocity * dt`` from the previous command (joint_limits'
``SaturationJointLimiter`` with URDF limits). The embedded simulator does the same, so a policy that
commands jumps sees what a robot would do with them: a rate-limited move, never a teleport.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wallx_ros.sim.errors import SimConfigError

__all__ = ["ActuatorLimits"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ActuatorLimits:
    """Position limits and maximum velocity of each joint, in robot joint order."""

    lower: FloatArray
    upper: FloatArray
    max_velocity: FloatArray

    def __post_init__(self) -> None:
        n = len(self.lower)
        if len(self.upper) != n or len(self.max_velocity) != n:
            raise SimConfigError("lower, upper and max_velocity must have one entry per joint")
        if not np.all(self.lower < self.upper):
            raise SimConfigError(f"every lower limit must be below its upper limit: {self.lower} / {self.upper}")
        if not np.all(self.max_velocity > 0):
            raise SimConfigError(f"max velocities must be > 0, got {self.max_velocity}")

    def clip(self, positions: FloatArray) -> tuple[FloatArray, bool]:
        """Positions clamped to the position limits, and whether anything was clamped."""
        clipped = np.clip(positions, self.lower, self.upper)
        return clipped, bool(np.any(clipped != positions))

    def saturate(self, target: FloatArray, previous: FloatArray, dt_s: float) -> tuple[FloatArray, bool]:
        """``target`` limited to the position range and to ``max_velocity * dt_s`` away from ``previous``."""
        step = self.max_velocity * dt_s
        clipped, clamped = self.clip(target)
        limited = np.clip(clipped, previous - step, previous + step)
        return limited, clamped or bool(np.any(limited != clipped))

    def contains(self, positions: FloatArray, tolerance: float | FloatArray = 0.0) -> bool:
        return bool(np.all(positions >= self.lower - tolerance) and np.all(positions <= self.upper + tolerance))
