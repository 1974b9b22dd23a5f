"""The policy's control state machine, ROS-free: chunks in, safe trajectory commands out.

Pipeline for each chunk (robot units from here on)::

    model actions -> ActionMapping (joint names, delta, gripper) -> ChunkExecutor (time alignment,
    cross-fade with the running plan, boundary jump) -> SafetyFilter (NaN/Inf, position and velocity
    limits, end velocity 0) -> joint_trajectory_rules.validate + hazards -> TrajectoryCommand

Modes: ``waiting`` (no plan yet or inputs recovering), ``running``, ``holding`` (inputs stale or bad:
the watchdog stopped motion), ``paused`` (service), ``estopped`` (latched until released), ``inactive``
(lifecycle). Inference is allowed only in waiting/running; a chunk whose observation predates the
last hold/pause/e-stop is discarded. A hold is a one-point trajectory at the current commanded
position with zero velocity, starting at the controller's next cycle (stamp 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.chunk_execution import ChunkExecutor, ExecutionConfig, Plan
from wallx_ros.core.errors import ActionMappingError, ControlConfigError
from wallx_ros.core.joint_trajectory_rules import JtcOptions, Point, hazards, validate
from wallx_ros.core.safety import SafetyFilter

__all__ = ["ChunkOutcome", "ControlConfig", "ControlMode", "PolicyControl", "TrajectoryCommand"]

_NS = 1_000_000_000


class ControlMode(str, Enum):
    INACTIVE = "inactive"
    WAITING = "waiting"
    RUNNING = "running"
    HOLDING = "holding"
    PAUSED = "paused"
    ESTOPPED = "estopped"


@dataclass(frozen=True)
class ControlConfig:
    """controller_joints: the joints of the receiving joint_trajectory_controller (default: action joints).
    hold_time_s: time_from_start of the single hold point.
    """

    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    controller_joints: tuple[str, ...] = ()
    jtc: JtcOptions = field(default_factory=JtcOptions)
    hold_time_s: float = 0.02

    def __post_init__(self) -> None:
        if not self.hold_time_s > 0:
            raise ControlConfigError(f"hold_time_s must be > 0, got {self.hold_time_s}")


@dataclass(frozen=True)
class TrajectoryCommand:
    """A trajectory ready to become a JointTrajectory: stamp 0 = start at the controller's next cycle."""

    kind: str  # "chunk" or "hold"
    names: tuple[str, ...]
    stamp_ns: int
    times_from_start_ns: npt.NDArray[np.int64]
    positions: npt.NDArray[np.float64]
    velocities: npt.NDArray[np.float64]

    def points(self) -> list[Point]:
        return [Point(tuple(p), int(t), tuple(v)) for p, v, t in
                zip(self.positions.tolist(), self.velocities.tolist(), self.times_from_start_ns.tolist(), strict=True)]


@dataclass(frozen=True)
class ChunkOutcome:
    """What became of one chunk: a command to publish, or the problems that stopped it."""

    command: TrajectoryCommand | None
    problems: tuple[str, ...] = ()
    adjustments: tuple[str, ...] = ()
    raw_jump: float | None = None
    published_jump: float | None = None
    past_points: int = 0
    plan: Plan | None = None

    @property
    def published(self) -> bool:
        return self.command is not None


class PolicyControl:
    """State machine + chunk pipeline. Not thread-safe: call it from one executor callback group."""

    def __init__(self, config: ControlConfig, mapping: ActionMapping, safety: SafetyFilter, dt_s: float) -> None:
        self.config = config
        self.mapping = mapping
        self.safety = safety
        self.dt_s = dt_s
        self.names = mapping.action_names
        if tuple(safety.limits.names) != self.names:
            raise ControlConfigError(f"safety limits are for {list(safety.limits.names)}, actions are "
                                     f"{list(self.names)}")
        self.controller_joints = config.controller_joints or self.names
        self.executor = ChunkExecutor(config.execution, dt_s)
        self.mode = ControlMode.INACTIVE
        self.reason = "not activated"
        self.since_ns = 0
        self.epoch_ns = 0
        self.hold_position: npt.NDArray[np.float64] | None = None
        self.last_measured: npt.NDArray[np.float64] | None = None
        # (time, position) of the last streamed command: a stream is a direct position command, so each one
        # moves at most max_velocity x the time since the previous one (see stream_sample)
        self.last_streamed: tuple[int, npt.NDArray[np.float64]] | None = None
        self._vmax = np.asarray(safety.limits.max_velocity, dtype=np.float64)

    # -- state --------------------------------------------------------------------------------------------
    @property
    def inference_allowed(self) -> bool:
        return self.mode in (ControlMode.WAITING, ControlMode.RUNNING)

    def replan_due(self, now_ns: int, expected_latency_s: float) -> bool:
        return self.inference_allowed and self.executor.replan_due(now_ns, expected_latency_s)

    def observe(self, robot_state: npt.NDArray[np.float64]) -> None:
        """Remember the latest measured robot state (state-joint order) for holds without a plan."""
        self.last_measured = self.mapping.robot_action_joints_from_state(robot_state)

    def activate(self, now_ns: int) -> None:
        # the robot may have been moved while inactive: start from its measured state, not an old command
        self.last_streamed = None
        self.hold_position = None
        self._enter(ControlMode.WAITING, "waiting for the first synced observation", now_ns, hold=False)

    def deactivate(self, now_ns: int) -> TrajectoryCommand | None:
        return self._enter(ControlMode.INACTIVE, "deactivated", now_ns, hold=True)

    def pause(self, now_ns: int) -> TrajectoryCommand | None:
        if self.mode in (ControlMode.ESTOPPED, ControlMode.INACTIVE):
            return None
        return self._enter(ControlMode.PAUSED, "paused by service call", now_ns, hold=True)

    def resume(self, now_ns: int) -> str:
        """Leave pause (not an e-stop: that needs release first). Returns '' or why it was refused."""
        if self.mode is ControlMode.ESTOPPED:
            return "e-stop is engaged: release it first (~/estop with data false), then resume"
        if self.mode is ControlMode.INACTIVE:
            return "node is not active: activate it through its lifecycle first"
        if self.mode is ControlMode.PAUSED:
            self._enter(ControlMode.WAITING, "resumed: waiting for a fresh observation", now_ns, hold=False)
        return ""

    def estop(self, now_ns: int) -> TrajectoryCommand | None:
        return self._enter(ControlMode.ESTOPPED, "e-stop engaged", now_ns, hold=True, force=True)

    def release_estop(self, now_ns: int) -> str:
        if self.mode is not ControlMode.ESTOPPED:
            return "e-stop is not engaged"
        self._enter(ControlMode.PAUSED, "e-stop released: paused until ~/resume", now_ns, hold=False)
        return ""

    def watchdog(self, now_ns: int, input_problems: Sequence[str]) -> TrajectoryCommand | None:
        """Called every control period with the input problems (stale/missing/bad streams, '' if none).

        Running with bad inputs -> hold (once). Holding with good inputs -> waiting (next chunk resumes).
        """
        if input_problems:
            reason = "inputs: " + "; ".join(input_problems)
            if self.mode is ControlMode.RUNNING:
                return self._enter(ControlMode.HOLDING, reason, now_ns, hold=True)
            if self.mode in (ControlMode.WAITING, ControlMode.HOLDING):
                self.reason = reason
            return None
        if self.mode is ControlMode.HOLDING:
            self._enter(ControlMode.WAITING, "inputs recovered: waiting for a fresh observation", now_ns, hold=False)
        elif self.mode is ControlMode.WAITING and self.reason.startswith("inputs:"):
            self.reason = "waiting for the next chunk"
        return None

    def clock_jumped(self, now_ns: int, before_ns: int) -> TrajectoryCommand | None:
        """The clock went back from ``before_ns`` to ``now_ns`` (a simulation reset, a replayed bag).

        The running plan and the epoch belong to the old timeline: drop them. If the robot was moving, hold
        where it was commanded to be just before the jump; then wait for observations of the new timeline.
        Paused / e-stopped stay so; inactive does nothing.
        """
        if self.mode is ControlMode.INACTIVE:
            return None
        reason = (f"clock jumped back {(before_ns - now_ns) / _NS:.3f} s (simulation reset?): plan and inputs of the "
                  "old timeline dropped, waiting for fresh observations")
        command = None
        if self.mode is ControlMode.RUNNING and self.executor.plan is not None:
            command = self.hold_command(before_ns)
        self.executor.reset()
        self.epoch_ns = now_ns
        self.since_ns = now_ns
        if self.mode in (ControlMode.RUNNING, ControlMode.HOLDING, ControlMode.WAITING):
            self.mode = ControlMode.WAITING
            self.reason = reason
        return command

    def _enter(self, mode: ControlMode, reason: str, now_ns: int, hold: bool,
               force: bool = False) -> TrajectoryCommand | None:
        was_moving = self.executor.plan is not None and self.mode is ControlMode.RUNNING
        command = None
        if hold and (was_moving or force or self.hold_position is not None):
            command = self.hold_command(now_ns)
        if hold or mode is ControlMode.WAITING:
            self.executor.reset()
            self.epoch_ns = now_ns
        if mode is not self.mode:
            self.since_ns = now_ns
        self.mode = mode
        self.reason = reason
        return command

    def hold_command(self, now_ns: int) -> TrajectoryCommand | None:
        """Hold at the commanded position now: the last streamed command when streaming (it may trail a plan
        that jumped), else the plan sampled at now, else the last hold, else the last measured position."""
        plan = self.executor.plan
        if self.last_streamed is not None:
            position = self.last_streamed[1]  # streaming: what was actually sent (it may trail a jumped plan)
        elif plan is not None:
            position = plan.sample(now_ns)
        elif self.hold_position is not None:
            position = self.hold_position
        elif self.last_measured is not None:
            position = self.last_measured
        else:
            return None
        self.hold_position = np.asarray(position, dtype=np.float64)
        return TrajectoryCommand("hold", self.names, 0, np.array([round(self.config.hold_time_s * _NS)], np.int64),
                                 self.hold_position[None, :].copy(), np.zeros((1, len(self.names))))

    # -- chunks -------------------------------------------------------------------------------------------
    def on_chunk(self, actions: npt.NDArray[np.float64], robot_state: npt.NDArray[np.float64] | None,
                 observation_stamp_ns: int, now_ns: int, check: bool = True) -> ChunkOutcome:
        """Turn model actions into a command, or say why not. ``robot_state`` is the observed robot state
        (state-joint order, robot units). ``check=False`` skips the JTC rules here, for a caller that checks
        the final message itself (the node does) - but then it must not publish a failing one."""
        if not self.inference_allowed:
            return ChunkOutcome(None, (f"discarded: {self.mode.value} ({self.reason})",))
        if observation_stamp_ns < self.epoch_ns:
            return ChunkOutcome(None, ("discarded: observation predates the last hold/resume",))
        if not np.all(np.isfinite(actions)):
            return ChunkOutcome(None, ("model produced non-finite actions (NaN/Inf): nothing published",))
        try:
            targets = self.mapping.actions_to_robot(actions, robot_state)
        except ActionMappingError as err:
            return ChunkOutcome(None, (str(err),))
        merge = self.executor.merge(targets, self.names, observation_stamp_ns, now_ns, commit=False)
        base = {"raw_jump": merge.raw_jump, "published_jump": merge.published_jump, "past_points": merge.past_points}
        if merge.expired:
            return ChunkOutcome(None, (merge.expiry_reason,), **base)  # type: ignore[arg-type]
        # speed limits start from the running plan, else the last hold, else the robot at the observation
        anchor = None
        if self.executor.plan is not None:
            prev_t = int(merge.plan.times_ns[0] - self.executor.dt_ns)
            anchor = (prev_t, self.executor.plan.sample(prev_t))
        elif self.hold_position is not None:
            anchor = (merge.plan.origin_ns, self.hold_position)
        elif robot_state is not None:
            start = self.mapping.robot_action_joints_from_state(robot_state)
            if start is not None:
                anchor = (merge.plan.origin_ns, start)
        safe = self.safety.apply(merge.plan.times_ns, merge.plan.positions, anchor)
        if not safe.ok or safe.positions is None or safe.velocities is None:
            return ChunkOutcome(None, (safe.rejected,), **base)  # type: ignore[arg-type]
        plan = Plan(self.names, merge.plan.origin_ns, merge.plan.times_ns, safe.positions, safe.velocities)
        stamp = plan.origin_ns if self.config.execution.latency_compensation else 0
        command = TrajectoryCommand("chunk", self.names, stamp, plan.times_from_origin_ns(), safe.positions,
                                    safe.velocities)
        problems = self.check(command, now_ns) if check else []
        if problems:
            return ChunkOutcome(None, tuple(problems), safe.adjustments, **base)  # type: ignore[arg-type]
        self.executor.commit(plan)
        if self.mode is not ControlMode.RUNNING:
            self.since_ns = now_ns
        self.mode = ControlMode.RUNNING
        self.reason = ""
        self.hold_position = None
        return ChunkOutcome(command, (), safe.adjustments, plan=plan, **base)  # type: ignore[arg-type]

    def check(self, command: TrajectoryCommand, now_ns: int) -> list[str]:
        """JTC acceptance + hazards for a command about to be published at ``now_ns``."""
        points = command.points()
        return [*validate(command.names, points, self.controller_joints, now_ns, command.stamp_ns, self.config.jtc),
                *hazards(command.names, points)]

    def stream_sample(self, now_ns: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
        """Position and velocity to command now in streaming mode (None: nothing to command yet).

        The plan can be ahead of the last command: a chunk that follows a hold starts from where the robot
        was at the observation and is sampled at now, one latency later. A position stream has no
        controller between it and the robot to interpolate that, so each command moves at most
        max_velocity x the time since the previous one, and catches up with the plan at that speed.
        """
        plan = self.executor.plan
        if self.mode is ControlMode.RUNNING and plan is not None:
            position, velocity = plan.sample(now_ns), plan.sample_velocity(now_ns)
        elif self.hold_position is not None:
            position, velocity = self.hold_position.copy(), np.zeros(len(self.names))
        else:
            return None
        if self.last_streamed is not None:
            last_ns, last = self.last_streamed
            dt_s = max(now_ns - last_ns, 0) / _NS  # a clock jumped back allows no motion this tick
            step = self._vmax * dt_s
            limited = last + np.clip(position - last, -step, step)
            if not np.array_equal(limited, position):
                position = limited
                velocity = (limited - last) / dt_s if dt_s > 0 else np.zeros(len(self.names))
        self.last_streamed = (now_ns, position.copy())
        return position, velocity
