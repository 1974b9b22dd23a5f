"""The policy's control state machine, ROS-free: chunks in, safe trajectory commands out.

Pipeline for each chunk (robot units from here on)::

    model actions -> ActionMapping (joint names, delta, gripper) -> ChunkExecutor (time alignment,
    cross-fade with the running plan, boundary jump) -> SafetyFilter (NaN/Inf, position and velocity
    limits, end velocity 0) -> joint_trajectory_rules.validate + hazards -> TrajectoryCommand

With real-time chunking (``ControlConfig.rtc``), ``rtc_request`` hands the running plan back to the model
before inference (mapped back to model actions); the chunk that comes back is merged without blending,
and its first rows are compared with the plan they were frozen to (``ChunkOutcome.prefix_error``). Every
published chunk is measured at its switch as the controller will execute it (``ChunkOutcome.switch``).

Modes: ``waiting`` (no plan yet or inputs recovering), ``running``, ``holding`` (inputs stale or bad:
the watchdog stopped motion), ``paused`` (service), ``estopped`` (latched until released), ``inactive``
(lifecycle). Inference is allowed only in waiting/running; a chunk whose observation predates the
last hold/pause/e-stop is discarded. A hold is a one-point trajectory at the current commanded
position with zero velocity, starting at the controller's next cycle (stamp 0).
"""

# size: one state machine (modes, holds, the chunk pipeline) whose transitions share its state; split, the
#   safety rules would be spread over modules

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.chunk_execution import ChunkExecutor, ExecutionConfig, Plan, PlanPrefix
from wallx_ros.core.errors import ActionMappingError, ControlConfigError
from wallx_ros.core.inference_delay import InferenceDelayEstimator
from wallx_ros.core.joint_trajectory_rules import JtcOptions, Point, hazards, validate
from wallx_ros.core.realtime_chunking import ActionPrefix, RtcConfig, prefix_weights
from wallx_ros.core.safety import SafetyFilter
from wallx_ros.core.switch_smoothness import SwitchSmoothness, measure_switch

__all__ = ["ChunkOutcome", "ControlConfig", "ControlMode", "PolicyControl", "RtcRequest", "TrajectoryCommand"]

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
    rtc: real-time chunking settings (``enabled`` only where the backend supports it).
    control_period_s: the receiving controller's period, for the switch figures (0 = the chunk period).
    """

    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    controller_joints: tuple[str, ...] = ()
    jtc: JtcOptions = field(default_factory=JtcOptions)
    hold_time_s: float = 0.02
    rtc: RtcConfig = field(default_factory=RtcConfig)
    control_period_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.hold_time_s > 0:
            raise ControlConfigError(f"hold_time_s must be > 0, got {self.hold_time_s}")
        if not (np.isfinite(self.control_period_s) and self.control_period_s >= 0):
            raise ControlConfigError(f"control_period_s must be >= 0, got {self.control_period_s}")


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
class RtcRequest:
    """The running plan handed to the model for one observation: ``prefix`` in the backend's units, ``robot``
    the same rows in robot units (to measure how closely the chunk followed it), ``source`` the plan itself."""

    prefix: ActionPrefix
    robot: PlanPrefix
    source: Plan


@dataclass(frozen=True)
class ChunkOutcome:
    """What became of one chunk: a command to publish, or the problems that stopped it.

    switch: the switch figures (published chunks that replaced a running plan); prefix_error: max |chunk -
    frozen plan| over the frozen rows, robot units (RTC chunks with frozen rows); frozen_steps: those rows.
    """

    command: TrajectoryCommand | None
    problems: tuple[str, ...] = ()
    adjustments: tuple[str, ...] = ()
    raw_jump: float | None = None
    published_jump: float | None = None
    past_points: int = 0
    plan: Plan | None = None
    switch: SwitchSmoothness | None = None
    prefix_error: float | None = None
    frozen_steps: int | None = None
    delay_steps: int | None = None

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
        # JointLimits carry max_acceleration once the safety layer knows it; the c1 blend stays within both
        self.executor = ChunkExecutor(config.execution, dt_s, max_velocity=safety.limits.max_velocity,
                                      max_acceleration=getattr(safety.limits, "max_acceleration", None))
        self.delay = InferenceDelayEstimator(config.rtc.delay_percentile, config.rtc.delay_window)
        self.control_period_ns = round((config.control_period_s or dt_s) * _NS)
        self.mode = ControlMode.INACTIVE
        self.reason = "not activated"
        self.since_ns = 0
        self.epoch_ns = 0
        self.hold_position: npt.NDArray[np.float64] | None = None
        self.last_measured: npt.NDArray[np.float64] | None = None
        # (time, position) of the last streamed command: a stream is a direct position command, so each one
        # moves at most max_velocity x the time since the previous one (see stream_sample)
        self.last_streamed: tuple[int, npt.NDArray[np.float64]] | None = None
        self.last_streamed_velocity: npt.NDArray[np.float64] = np.zeros(len(self.names))
        # with an acceleration limit a hold brakes along a plan of its own (the robot cannot stop at once):
        # the next chunk continues from it like from a running plan
        self.hold_plan: Plan | None = None

    # -- state --------------------------------------------------------------------------------------------
    @property
    def inference_allowed(self) -> bool:
        return self.mode in (ControlMode.WAITING, ControlMode.RUNNING)

    def replan_due(self, now_ns: int, expected_latency_s: float) -> bool:
        return self.inference_allowed and self.executor.replan_due(now_ns, expected_latency_s)

    def replan_in_s(self, now_ns: int, expected_latency_s: float) -> float:
        """Seconds until the next observation should go to the model (``inf`` while no chunk is wanted: paused,
        e-stopped, inactive): the time the model is free for other work (the language side)."""
        if not self.inference_allowed:
            return math.inf
        return self.executor.replan_in_ns(now_ns, expected_latency_s) / 1e9

    def observe(self, robot_state: npt.NDArray[np.float64]) -> None:
        """Remember the latest measured robot state (state-joint order) for holds without a plan."""
        self.last_measured = self.mapping.robot_action_joints_from_state(robot_state)

    def activate(self, now_ns: int) -> None:
        # the robot may have been moved while inactive: start from its measured state, not an old command
        self.last_streamed = None
        self.last_streamed_velocity = np.zeros(len(self.names))
        self.hold_position = None
        self.hold_plan = None
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
        self.hold_plan = None  # its times belong to the old timeline
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
        that jumped), else the plan sampled at now, else the last hold, else the last measured position.

        With ``max_acceleration`` a moving robot cannot stop at once: the hold is a braking trajectory from the
        commanded position and velocity, one point per control row, at rest at its end (``hold_plan``)."""
        plan = self.executor.plan
        velocity: npt.NDArray[np.float64] = np.zeros(len(self.names))
        position: npt.NDArray[np.float64]
        if self.last_streamed is not None:
            position = self.last_streamed[1]  # streaming: what was actually sent (it may trail a jumped plan)
            velocity = self.last_streamed_velocity
        elif plan is not None:  # the braking replaces the plan from now on: brake from the velocity it arrives with
            position, velocity = plan.sample(now_ns), plan.velocity_before(now_ns)
        elif self.hold_plan is not None:
            position, velocity = self.hold_plan.sample(now_ns), self.hold_plan.velocity_before(now_ns)
        elif self.hold_position is not None:
            position = self.hold_position
        elif self.last_measured is not None:
            position = self.last_measured
        else:
            return None
        position = np.asarray(position, dtype=np.float64)
        self.hold_plan = None
        if self.safety.limits_acceleration and np.any(velocity != 0.0):
            dt_ns = round(self.dt_s * _NS)
            points, speeds = self.safety.braking(position, velocity, self.dt_s)
            times = np.arange(1, len(points) + 1, dtype=np.int64) * dt_ns
            self.hold_plan = Plan(self.names, now_ns, now_ns + times, points, entry_velocity=velocity.copy())
            self.hold_position = points[-1].copy()
            return TrajectoryCommand("hold", self.names, 0, times, points, speeds)
        self.hold_position = position
        return TrajectoryCommand("hold", self.names, 0, np.array([round(self.config.hold_time_s * _NS)], np.int64),
                                 self.hold_position[None, :].copy(), np.zeros((1, len(self.names))))

    # -- chunks -------------------------------------------------------------------------------------------
    def rtc_request(self, observation_stamp_ns: int, robot_state: npt.NDArray[np.float64] | None,
                    rows: int | None = None) -> RtcRequest | None:
        """The running plan at the first ``rows`` rows (default: the running plan's length) of the chunk about to be
        computed for this observation, mapped back to model actions, or None (RTC off, not running, no plan or no
        overlap). Safe to call from another thread than ``on_chunk``: it reads the current plan once and the delay
        estimator (locked)."""
        plan = self.executor.plan
        if not self.config.rtc.enabled or self.mode is not ControlMode.RUNNING or plan is None:
            return None
        delay_s = self.delay.estimate_s() or 0.0
        robot = self.executor.prefix(observation_stamp_ns, delay_s, len(plan.times_ns) if rows is None else rows)
        if robot is None or self.executor.plan is not plan:
            return None
        try:
            actions = self.mapping.robot_to_actions(robot.positions, robot_state)
        except ActionMappingError:
            return None
        weights = prefix_weights(robot.frozen, len(robot.times_ns), self.config.rtc.schedule)
        return RtcRequest(ActionPrefix(actions, weights, robot.frozen), robot, plan)

    def on_chunk(self, actions: npt.NDArray[np.float64], robot_state: npt.NDArray[np.float64] | None,
                 observation_stamp_ns: int, now_ns: int, check: bool = True,
                 rtc: RtcRequest | None = None) -> ChunkOutcome:
        """Turn model actions into a command, or say why not. ``robot_state`` is the observed robot state
        (state-joint order, robot units). ``check=False`` skips the JTC rules here, for a caller that checks
        the final message itself (the node does) - but then it must not publish a failing one. ``rtc``: the
        request the chunk was computed with (it continues the running plan: no blending)."""
        if not self.inference_allowed:
            return ChunkOutcome(None, (f"discarded: {self.mode.value} ({self.reason})",))
        if observation_stamp_ns < self.epoch_ns:
            return ChunkOutcome(None, ("discarded: observation predates the last hold/resume",))
        self.delay.record((now_ns - observation_stamp_ns) / _NS)
        if rtc is not None and rtc.source is not self.executor.plan:
            rtc = None  # computed from a plan that has been replaced since: join this chunk like any other
        if not np.all(np.isfinite(actions)):
            return ChunkOutcome(None, ("model produced non-finite actions (NaN/Inf): nothing published",))
        try:
            targets = self.mapping.actions_to_robot(actions, robot_state)
        except ActionMappingError as err:
            return ChunkOutcome(None, (str(err),))
        rtc_base: dict[str, float | int | None] = {}
        if rtc is not None:
            frozen = min(rtc.robot.frozen, targets.shape[0])
            error = float(np.max(np.abs(targets[:frozen] - rtc.robot.positions[:frozen]))) if frozen else None
            rtc_base = {"prefix_error": error, "frozen_steps": frozen, "delay_steps": rtc.robot.delay_steps}
        old = self.executor.plan
        origin = rtc.robot.origin_ns if rtc is not None and self.config.execution.latency_compensation else None
        merge = self.executor.merge(targets, self.names, observation_stamp_ns, now_ns, commit=False,
                                    blend="none" if rtc is not None else None, origin_ns=origin)
        base = {"raw_jump": merge.raw_jump, "published_jump": merge.published_jump, "past_points": merge.past_points,
                **rtc_base}
        if merge.expired:
            return ChunkOutcome(None, (merge.expiry_reason,), **base)  # type: ignore[arg-type]
        # speed and acceleration limits start from the running plan (position and velocity), else the braking
        # hold, else the last hold, else the robot at the observation (at rest)
        anchor = None
        anchor_velocity = None
        prev_t = int(merge.plan.times_ns[0] - self.executor.dt_ns)
        running = self.executor.plan if self.executor.plan is not None else self.hold_plan
        if running is not None:
            # the velocity the robot arrives at prev_t with: at a point of the running plan, the segment before it
            # (the one after it is replaced by this chunk and never runs)
            anchor, anchor_velocity = (prev_t, running.sample(prev_t)), running.velocity_before(prev_t)
        elif self.hold_position is not None:
            anchor = (merge.plan.origin_ns, self.hold_position)
        elif robot_state is not None:
            start = self.mapping.robot_action_joints_from_state(robot_state)
            if start is not None:
                anchor = (merge.plan.origin_ns, start)
        safe = self.safety.apply(merge.plan.times_ns, merge.plan.positions, anchor, anchor_velocity)
        if not safe.ok or safe.positions is None or safe.velocities is None:
            return ChunkOutcome(None, (safe.rejected,), **base)  # type: ignore[arg-type]
        plan = Plan(self.names, merge.plan.origin_ns, merge.plan.times_ns, safe.positions, safe.velocities,
                    self._entry_velocity(anchor, anchor_velocity, int(merge.plan.times_ns[0]), safe.positions[0]))
        stamp = plan.origin_ns if self.config.execution.latency_compensation else 0
        command = TrajectoryCommand("chunk", self.names, stamp, plan.times_from_origin_ns(), safe.positions,
                                    safe.velocities)
        problems = self.check(command, now_ns) if check else []
        if problems:
            return ChunkOutcome(None, tuple(problems), safe.adjustments, **base)  # type: ignore[arg-type]
        self.executor.commit(plan)
        switch = None
        if old is not None and old.names == plan.names and self.mode is ControlMode.RUNNING:
            switch = measure_switch(old, plan, now_ns, self.control_period_ns)
        if self.mode is not ControlMode.RUNNING:
            self.since_ns = now_ns
        self.mode = ControlMode.RUNNING
        self.reason = ""
        self.hold_position = None
        self.hold_plan = None
        return ChunkOutcome(command, (), safe.adjustments, plan=plan, switch=switch, **base)  # type: ignore[arg-type]

    def _entry_velocity(self, anchor: tuple[int, npt.NDArray[np.float64]] | None,
                        anchor_velocity: npt.NDArray[np.float64] | None, first_ns: int,
                        first: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
        """The velocity of the step from the anchor to the plan's first point (as the safety filter limited it):
        what the next chunk accelerates from if it replaces this plan at or before its first point."""
        if anchor is None or not np.all(np.isfinite(anchor[1])):
            return None
        if first_ns <= anchor[0]:
            return anchor_velocity
        limits = self.safety.limits
        start = np.clip(anchor[1], np.asarray(limits.lower), np.asarray(limits.upper))
        return np.asarray((first - start) / ((first_ns - anchor[0]) / _NS), dtype=np.float64)

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
            position, velocity = self.safety.stream_step(position, velocity, last, self.last_streamed_velocity, dt_s)
        self.last_streamed = (now_ns, position.copy())
        self.last_streamed_velocity = velocity.copy()
        return position, velocity
