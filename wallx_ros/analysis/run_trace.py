"""What a closed-loop run leaves to analyse: commanded trajectories, executed joint states, latencies.

Filled from either source by :mod:`wallx_ros.analysis.run_log` (the simulator's JSONL log) or
:mod:`wallx_ros.analysis.bag_trace` (a rosbag2 of /joint_states, the trajectory topic and /diagnostics).
Times are nanoseconds on the ROS clock of the run (sim time in simulation).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["RunTrace", "TrajectoryRecord"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrajectoryRecord:
    """One trajectory message as the controller saw it.

    arrival_ns: controller clock when it arrived; stamp_ns: its header.stamp (0 = start on arrival);
    times_ns[i]: time_from_start of point i; positions: (points, joints) in ``RunTrace.joint_names`` order.
    """

    arrival_ns: int
    stamp_ns: int
    times_ns: npt.NDArray[np.int64]
    positions: FloatArray
    accepted: bool = True

    @property
    def start_ns(self) -> int:
        return self.stamp_ns if self.stamp_ns != 0 else self.arrival_ns

    @property
    def point_times_ns(self) -> npt.NDArray[np.int64]:
        """Absolute time each point is due."""
        return self.start_ns + self.times_ns


@dataclass
class RunTrace:
    """Everything the plots need. ``state_*`` arrays have one row per executed sample."""

    joint_names: tuple[str, ...]
    state_time_ns: npt.NDArray[np.int64]
    state_positions: FloatArray
    trajectories: list[TrajectoryRecord] = field(default_factory=list)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    lower_limits: FloatArray | None = None
    upper_limits: FloatArray | None = None
    source: str = ""

    def add_latency(self, name: str, value_ms: float) -> None:
        if np.isfinite(value_ms):
            self.latencies_ms.setdefault(name, []).append(float(value_ms))

    def arrival_ages_ms(self) -> list[float]:
        """For stamped, accepted trajectories: arrival time minus header.stamp (how late the chunk is)."""
        return [(t.arrival_ns - t.stamp_ns) * 1e-6 for t in self.trajectories if t.accepted and t.stamp_ns != 0]

    def inter_arrival_ms(self) -> list[float]:
        arrivals = sorted(t.arrival_ns for t in self.trajectories if t.accepted)
        return [float(b - a) * 1e-6 for a, b in itertools.pairwise(arrivals)]

    def tracking_error(self) -> FloatArray:
        """Per joint RMS of executed position minus the newest trajectory's interpolated target (NaN if none)."""
        errs: list[FloatArray] = []
        accepted = sorted((t for t in self.trajectories if t.accepted), key=lambda t: t.arrival_ns)
        k = -1
        for t_ns, q in zip(self.state_time_ns, self.state_positions, strict=True):
            while k + 1 < len(accepted) and accepted[k + 1].arrival_ns <= t_ns:
                k += 1
            if k < 0:
                continue
            times = accepted[k].point_times_ns
            if t_ns < times[0] or t_ns > times[-1]:
                continue
            pos = accepted[k].positions
            errs.append(q - np.array([np.interp(t_ns, times, pos[:, j]) for j in range(pos.shape[1])]))
        if not errs:
            return np.full(len(self.joint_names), np.nan)
        return np.asarray(np.sqrt(np.mean(np.square(errs), axis=0)), dtype=np.float64)
