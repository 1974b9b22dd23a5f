"""How smooth a chunk switch is, for the trajectory as the controller will sample it.

At the switch time the controller stops sampling the running trajectory and samples the new one (JTC
jazzy/kilted replace, they do not splice). Both carry positions and velocities, so the controller runs
cubic segments (``trajectory_sampling``). Per switch:

* position jump: max over joints of |new(t_s) - old(t_s)|;
* velocity jump: max over joints of |new'(t_s) - old'(t_s)|;
* peak acceleration: max over joints of the second difference of the positions the controller commands at
  its control period around the switch (old before t_s, new from t_s; from two periods before to
  ``after_ns`` after), divided by the period squared. A position jump shows up as jump / period^2, a velocity
  jump as jump / period, on top of the trajectories' own curvature.

If the switch comes before the new trajectory's first point, the controller approaches that point from its
current state; assuming it tracked the old trajectory, that is a cubic from (old(t_s), old'(t_s)) to the
first point, so there is no jump at t_s and the approach shows up in the peak acceleration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wallx_ros.core.chunk_execution import Plan
from wallx_ros.core.trajectory_sampling import sample_controller

__all__ = ["SwitchSmoothness", "measure_switch"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SwitchSmoothness:
    """Figures of one switch (joint units: rad, rad/s, rad/s^2 for revolute joints)."""

    position_jump: float
    velocity_jump: float
    peak_acceleration: float


def _sample(plan: Plan, query: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    pos, vel, _ = sample_controller(plan.times_ns, plan.positions, plan.velocities, query)
    return pos, vel


def _sample_new(new: Plan, query: npt.NDArray[np.int64], start_pos: FloatArray, start_vel: FloatArray,
                switch_ns: int) -> FloatArray:
    """Positions of the new trajectory from the switch on, with the approach to its first point."""
    pos, _ = _sample(new, query)
    first = int(new.times_ns[0])
    approach = query < first
    if approach.any() and first > switch_ns:
        duration = (first - switch_ns) / 1e9
        end_vel = new.velocities[0] if new.velocities is not None else np.zeros_like(start_vel)
        p0, v0, p1, v1 = start_pos, start_vel, new.positions[0], end_vel
        c2 = (-3.0 * p0 + 3.0 * p1 - 2.0 * duration * v0 - duration * v1) / duration**2
        c3 = (2.0 * p0 - 2.0 * p1 + duration * v0 + duration * v1) / duration**3
        s = ((query[approach] - switch_ns) / 1e9)[:, None]
        pos[approach] = p0 + v0 * s + c2 * s**2 + c3 * s**3
    return pos


def measure_switch(old: Plan, new: Plan, switch_ns: int, period_ns: int,
                   after_ns: int | None = None) -> SwitchSmoothness:
    """Figures of switching from ``old`` to ``new`` at ``switch_ns`` for a controller running every ``period_ns``
    (``after_ns``: how long after the switch the acceleration is watched; default four periods)."""
    if period_ns <= 0:
        raise ValueError(f"period_ns must be > 0, got {period_ns}")
    after = 4 * period_ns if after_ns is None else max(int(after_ns), period_ns)
    at = np.array([switch_ns], dtype=np.int64)
    old_pos, old_vel = _sample(old, at)
    if switch_ns < int(new.times_ns[0]):
        new_pos, new_vel = old_pos, old_vel  # the controller starts from where it is
    else:
        new_pos, new_vel = _sample(new, at)
    ticks = switch_ns + period_ns * np.arange(-2, math.ceil(after / period_ns) + 1, dtype=np.int64)
    before = ticks < switch_ns
    commanded = np.empty((len(ticks), len(old.names)))
    commanded[before] = _sample(old, ticks[before])[0]
    commanded[~before] = _sample_new(new, ticks[~before], old_pos[0], old_vel[0], switch_ns)
    accel = np.diff(commanded, n=2, axis=0) / (period_ns / 1e9) ** 2
    return SwitchSmoothness(position_jump=float(np.max(np.abs(new_pos - old_pos))),
                            velocity_jump=float(np.max(np.abs(new_vel - old_vel))),
                            peak_acceleration=float(np.max(np.abs(accel))))
