"""A published trajectory sampled the way joint_trajectory_controller samples it, vectorised.

JTC (ros2_controllers jazzy/kilted, ``trajectory.cpp``) interpolates between two points linearly when
they carry positions only and with a cubic Hermite segment when they carry velocities too; past the last
point it holds the last point. The node publishes positions and velocities, so what the robot executes
between two chunk rows is the cubic, not the straight line ``Plan.sample`` draws. Smoothness figures,
the frozen RTC prefix and the C1 blend therefore read the running plan through this module.
(``wallx_ros.sim.trajectory_interpolation`` is the simulator's per-segment copy of the same rules.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["sample_controller"]

FloatArray = npt.NDArray[np.float64]
_NS = 1e9


def sample_controller(times_ns: npt.NDArray[np.int64], positions: FloatArray, velocities: FloatArray | None,
                      query_ns: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Positions, velocities and accelerations (queries x joints) at ``query_ns``.

    ``times_ns``: absolute time of each point (strictly increasing); ``velocities`` None = linear segments.
    Before the first point the first point is held (the controller would approach it from wherever the
    robot is; callers that need that handle it themselves), after the last point the last one.
    """
    query = np.asarray(query_ns, dtype=np.int64)
    pos = np.asarray(positions, dtype=np.float64)
    n, joints = pos.shape
    out_p = np.empty((len(query), joints))
    out_v = np.zeros((len(query), joints))
    out_a = np.zeros((len(query), joints))
    before = query < times_ns[0]
    after = query >= times_ns[-1]
    out_p[before] = pos[0]
    out_p[after] = pos[-1]
    if velocities is not None:
        out_v[after] = np.asarray(velocities, dtype=np.float64)[-1]
    inside = ~(before | after)
    if n < 2 or not inside.any():
        return out_p, out_v, out_a
    q = query[inside]
    i = np.clip(np.searchsorted(times_ns, q, side="right") - 1, 0, n - 2)
    duration = ((times_ns[i + 1] - times_ns[i]) / _NS)[:, None]
    s = ((q - times_ns[i]) / _NS)[:, None]
    p0, p1 = pos[i], pos[i + 1]
    if velocities is None:
        slope = (p1 - p0) / duration
        out_p[inside], out_v[inside] = p0 + slope * s, slope
        return out_p, out_v, out_a
    vel = np.asarray(velocities, dtype=np.float64)
    v0, v1 = vel[i], vel[i + 1]
    c2 = (-3.0 * p0 + 3.0 * p1 - 2.0 * duration * v0 - duration * v1) / duration**2
    c3 = (2.0 * p0 - 2.0 * p1 + duration * v0 + duration * v1) / duration**3
    out_p[inside] = p0 + v0 * s + c2 * s**2 + c3 * s**3
    out_v[inside] = v0 + 2.0 * c2 * s + 3.0 * c3 * s**2
    out_a[inside] = 2.0 * c2 + 6.0 * c3 * s
    return out_p, out_v, out_a
