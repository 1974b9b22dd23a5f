"""Execute JointTrajectory commands the way ros2_control's joint_trajectory_controller (JTC) does.

So that what runs in the embedded simulation runs on a robot (ros2_controllers jazzy/kilted,
``joint_trajectory_controller.cpp`` + ``trajectory.cpp``):

* acceptance: exactly JTC's ``validate_trajectory_msg`` rules, from
  :mod:`wallx_ros.core.joint_trajectory_rules` (evaluated when the message arrives, on the controller's
  clock). What JTC accepts but must never reach an actuator (NaN/Inf, repeated joint names) is refused too;
* replacement: the newest valid message replaces the running trajectory at the next control cycle
  (jazzy/kilted do not splice or blend);
* timing: ``header.stamp`` 0 means "start at the first control cycle that samples it"; otherwise point i
  is due at stamp + time_from_start[i]. Points already in the past when it starts are skipped: sampling
  lands directly on the segment that contains "now";
* before the first point: interpolation from the state at activation (the measured state, or the last
  command with ``interpolate_from_desired_state``) to the first point;
* between points: linear with positions only, cubic with velocities, quintic with accelerations;
* after the last point: the last point is held.

Joint columns are matched by name (JTC reorders a message to its own joint order).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wallx_ros.core.joint_trajectory_rules import (
    JtcOptions,
    TrajectoryPointLike,
    hazards,
    time_from_start_ns,
    validate,
)
from wallx_ros.sim.errors import SimConfigError
from wallx_ros.sim.trajectory_interpolation import PointState, interpolate

__all__ = ["ExecutionPhase", "ExecutorStats", "ReceivedTrajectory", "Setpoint", "TrajectoryExecutor"]

FloatArray = npt.NDArray[np.float64]


class ExecutionPhase(enum.Enum):
    IDLE = "idle"  # no trajectory received yet: holding the position at start-up
    APPROACH = "approach"  # before the first point: moving from the state at activation
    TRACKING = "tracking"  # between two points
    HOLDING = "holding"  # past the last point: holding it (the next trajectory is late)


@dataclass(frozen=True)
class ReceivedTrajectory:
    """A JointTrajectory message as plain data (``points`` may be JointTrajectoryPoint messages)."""

    joint_names: tuple[str, ...]
    points: tuple[TrajectoryPointLike, ...]
    stamp_ns: int = 0


@dataclass(frozen=True)
class Setpoint:
    """What the controller commands at one control cycle (controller joint order)."""

    positions: FloatArray
    velocities: FloatArray
    phase: ExecutionPhase


@dataclass
class ExecutorStats:
    """Counters since start-up. ``holding_cycles`` counts control cycles spent past the end of the newest
    trajectory while one had been received before: the command source missed its control periods."""

    accepted: int = 0
    rejected: int = 0
    replaced_while_running: int = 0
    skipped_points: int = 0
    cycles: int = 0
    holding_cycles: int = 0
    last_rejection: list[str] = field(default_factory=list)


@dataclass
class _Trajectory:
    stamp_ns: int
    times_ns: npt.NDArray[np.int64]  # time_from_start of each point
    points: list[PointState]
    start_ns: int = -1  # resolved at the first sample
    before: PointState | None = None
    before_ns: int = 0
    segment: int = 0  # monotonic search start (JTC's last_sample_idx_)


def _column(values: Sequence[float], order: npt.NDArray[np.intp]) -> FloatArray | None:
    if len(values) == 0:
        return None
    return np.asarray(values, dtype=np.float64)[order]


class TrajectoryExecutor:
    """JTC-like trajectory execution for the joints ``joint_names`` (the controller's joints)."""

    def __init__(self, joint_names: Sequence[str], options: JtcOptions | None = None,
                 interpolate_from_desired_state: bool = False) -> None:
        self.joint_names = tuple(joint_names)
        self.options = options or JtcOptions()
        if self.options.allow_partial_joints_goal or self.options.allow_integration_in_goal_trajectories:
            raise SimConfigError("the simulator executes full position trajectories only: leave "
                                 "allow_partial_joints_goal and allow_integration_in_goal_trajectories false")
        self.interpolate_from_desired_state = interpolate_from_desired_state
        self.stats = ExecutorStats()
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self._pending: _Trajectory | None = None
        self._active: _Trajectory | None = None
        self._hold: FloatArray | None = None
        self._last_command: FloatArray | None = None
        self._ever_received = False

    # -- input -------------------------------------------------------------------------------------------
    def offer(self, command: ReceivedTrajectory, now_ns: int) -> list[str]:
        """Check a message on arrival (controller clock ``now_ns``); queue it for the next cycle if valid.

        Returns the reasons for rejection (empty when accepted). A newer valid message replaces a queued one.
        """
        problems = validate(command.joint_names, command.points, self.joint_names, now_ns, command.stamp_ns,
                            self.options)
        problems += [f"{p} (JTC would accept it; the simulator refuses it)"
                     for p in hazards(command.joint_names, command.points)]
        if problems:
            self.stats.rejected += 1
            self.stats.last_rejection = problems
            return problems
        order = np.array([command.joint_names.index(name) for name in self.joint_names], dtype=np.intp)
        points = [PointState(positions=np.asarray(p.positions, dtype=np.float64)[order],
                             velocities=_column(p.velocities, order),
                             accelerations=_column(p.accelerations, order))
                  for p in command.points]
        times = np.array([time_from_start_ns(p) for p in command.points], dtype=np.int64)
        self._pending = _Trajectory(stamp_ns=command.stamp_ns, times_ns=times, points=points)
        self.stats.accepted += 1
        return []

    # -- control cycle -----------------------------------------------------------------------------------
    def update(self, now_ns: int, measured_positions: FloatArray, measured_velocities: FloatArray) -> Setpoint:
        """One control cycle at controller time ``now_ns``: activate a pending trajectory, sample the active one."""
        self.stats.cycles += 1
        if self._hold is None:
            self._hold = np.array(measured_positions, dtype=np.float64)
        if self._pending is not None:
            if self._active is not None and self._phase_of(self._active, now_ns) is not ExecutionPhase.HOLDING:
                self.stats.replaced_while_running += 1
            traj, self._pending = self._pending, None
            self._activate(traj, now_ns, measured_positions, measured_velocities)
            self._active = traj
            self._ever_received = True
        if self._active is None:
            setpoint = Setpoint(self._hold.copy(), np.zeros_like(self._hold), ExecutionPhase.IDLE)
        else:
            setpoint = self._sample(self._active, now_ns)
            if setpoint.phase is ExecutionPhase.HOLDING:
                self.stats.holding_cycles += 1
        self._last_command = setpoint.positions
        return setpoint

    def reset(self, hold_positions: FloatArray) -> None:
        """Forget the running and the queued trajectory and hold ``hold_positions`` (the robot was re-placed,
        as when a controller is restarted on a re-homed robot); statistics are kept."""
        self._pending = self._active = None
        self._hold = np.array(hold_positions, dtype=np.float64)
        self._last_command = None

    @property
    def has_received(self) -> bool:
        """True once a trajectory has been activated."""
        return self._ever_received

    def _activate(self, traj: _Trajectory, now_ns: int, measured_pos: FloatArray, measured_vel: FloatArray) -> None:
        traj.start_ns = traj.stamp_ns if traj.stamp_ns != 0 else now_ns
        if self.interpolate_from_desired_state and self._last_command is not None:
            traj.before = PointState(self._last_command.copy(), None)
        else:
            traj.before = PointState(np.array(measured_pos, dtype=np.float64),
                                     np.array(measured_vel, dtype=np.float64))
        traj.before_ns = now_ns
        skipped = int(np.count_nonzero(traj.start_ns + traj.times_ns < now_ns))
        self.stats.skipped_points += min(skipped, len(traj.points) - 1)

    @staticmethod
    def _phase_of(traj: _Trajectory, now_ns: int) -> ExecutionPhase:
        if now_ns < traj.start_ns + int(traj.times_ns[0]):
            return ExecutionPhase.APPROACH
        if now_ns >= traj.start_ns + int(traj.times_ns[-1]):
            return ExecutionPhase.HOLDING
        return ExecutionPhase.TRACKING

    def _sample(self, traj: _Trajectory, now_ns: int) -> Setpoint:
        first_ns = traj.start_ns + int(traj.times_ns[0])
        if now_ns < first_ns:
            assert traj.before is not None
            state = interpolate(traj.before, traj.points[0], (first_ns - traj.before_ns) * 1e-9,
                                (now_ns - traj.before_ns) * 1e-9)
            assert state.velocities is not None
            return Setpoint(state.positions, state.velocities, ExecutionPhase.APPROACH)
        last = len(traj.points) - 1
        for i in range(traj.segment, last):
            t0 = traj.start_ns + int(traj.times_ns[i])
            t1 = traj.start_ns + int(traj.times_ns[i + 1])
            if t0 <= now_ns < t1:
                traj.segment = i
                state = interpolate(traj.points[i], traj.points[i + 1], (t1 - t0) * 1e-9, (now_ns - t0) * 1e-9)
                assert state.velocities is not None
                return Setpoint(state.positions, state.velocities, ExecutionPhase.TRACKING)
        end = traj.points[last]
        velocities = end.velocities if end.velocities is not None else np.zeros_like(end.positions)
        return Setpoint(end.positions.copy(), velocities.copy(), ExecutionPhase.HOLDING)
