"""Interpolation between two trajectory points, as joint_trajectory_controller's ``Trajectory`` does it.

``interpolate_between_points`` in ros2_controllers ``joint_trajectory_controller/src/trajectory.cpp``
(jazzy/kilted): positions only -> linear (constant velocity over the segment); positions and
velocities at both ends -> cubic Hermite; positions, velocities and accelerations -> quintic. A
sample time outside the segment is clamped to it and falls back to linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PointState", "interpolate"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PointState:
    """A trajectory point's state: positions, and velocities / accelerations when given (else None)."""

    positions: FloatArray
    velocities: FloatArray | None = None
    accelerations: FloatArray | None = None


def interpolate(a: PointState, b: PointState, duration_s: float, elapsed_s: float) -> PointState:
    """State at ``elapsed_s`` into the segment a -> b that lasts ``duration_s``.

    Returns positions, velocities and accelerations (always all three).
    """
    has_vel = a.velocities is not None and b.velocities is not None
    has_acc = has_vel and a.accelerations is not None and b.accelerations is not None
    t = elapsed_s
    if t < 0.0:
        t, has_vel, has_acc = 0.0, False, False
    if t > duration_s:
        t, has_vel, has_acc = duration_s, False, False
    p0, p1 = a.positions, b.positions
    if duration_s <= 0.0:
        zeros = np.zeros_like(p1)
        return PointState(p1.copy(), zeros, zeros.copy())
    T = duration_s
    if not has_vel:
        vel = (p1 - p0) / T
        return PointState(p0 + vel * t, vel, np.zeros_like(p0))
    assert a.velocities is not None and b.velocities is not None
    v0, v1 = a.velocities, b.velocities
    if not has_acc:
        c2 = (-3.0 * p0 + 3.0 * p1 - 2.0 * T * v0 - T * v1) / T**2
        c3 = (2.0 * p0 - 2.0 * p1 + T * v0 + T * v1) / T**3
        pos = p0 + v0 * t + c2 * t**2 + c3 * t**3
        vel = v0 + 2.0 * c2 * t + 3.0 * c3 * t**2
        acc = 2.0 * c2 + 6.0 * c3 * t
        return PointState(pos, vel, acc)
    assert a.accelerations is not None and b.accelerations is not None
    a0, a1 = a.accelerations, b.accelerations
    T2, T3, T4, T5 = T**2, T**3, T**4, T**5
    c3 = (20.0 * (p1 - p0) - (8.0 * v1 + 12.0 * v0) * T - (3.0 * a0 - a1) * T2) / (2.0 * T3)
    c4 = (30.0 * (p0 - p1) + (14.0 * v1 + 16.0 * v0) * T + (3.0 * a0 - 2.0 * a1) * T2) / (2.0 * T4)
    c5 = (12.0 * (p1 - p0) - (6.0 * v1 + 6.0 * v0) * T - (a0 - a1) * T2) / (2.0 * T5)
    pos = p0 + v0 * t + 0.5 * a0 * t**2 + c3 * t**3 + c4 * t**4 + c5 * t**5
    vel = v0 + a0 * t + 3.0 * c3 * t**2 + 4.0 * c4 * t**3 + 5.0 * c5 * t**4
    acc = a0 + 6.0 * c3 * t + 12.0 * c4 * t**2 + 20.0 * c5 * t**3
    return PointState(pos, vel, acc)
