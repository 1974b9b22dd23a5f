"""Scripted demonstrations, episode after episode: what the expert node does, without ROS.

One episode: bring the leader back to the start pose (and wait until the follower is there), ask for a scene
reset with the episode's seed, let the cube settle, plan the transfer from the cube's pose
(:func:`~wallx_ros.sim.transfer_cube.plan_transfer_cube`), ask for recording to start, play the plan on the
leader, ask for the episode to be saved (or discarded, when the task did not succeed and failures are not
kept). The caller (the node) performs each request (services) and reports the outcome with ``done``; the
sequencer holds the leader still while a request is pending. Times are sim seconds.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.errors import SceneError, SimConfigError
from wallx_ros.sim.transfer_cube import SUCCESS_STAGE, ExpertPlan, Keyframe, plan_transfer_cube

__all__ = ["DemoConfig", "DemoRequest", "DemoSequencer", "EpisodeRecord", "Phase"]

FloatArray = npt.NDArray[np.float64]


class Phase(enum.Enum):
    HOMING = "homing"
    RESETTING = "resetting"
    SETTLING = "settling"
    STARTING = "starting recording"
    DEMONSTRATING = "demonstrating"
    SAVING = "saving"
    DONE = "done"


class DemoRequest(enum.Enum):
    """What the sequencer needs from outside before it can go on."""

    RESET = "reset"          # reset the scene with ``sequencer.seed``
    START = "start"          # start recording an episode
    SAVE = "save"            # save the recorded episode
    DISCARD = "discard"      # throw the recorded episode away


@dataclass(frozen=True)
class DemoConfig:
    """episodes: demonstrations to keep; first_seed: seed of the first attempt (one seed per attempt);
    max_attempts: give up after this many attempts (0: 2 x episodes); record: ask for START/SAVE (False: only
    demonstrate); keep_failed: save episodes whose final task stage is not success too."""

    episodes: int = 30
    first_seed: int = 0
    max_attempts: int = 0
    record: bool = True
    keep_failed: bool = False
    settle_s: float = 0.5
    lead_in_s: float = 0.5
    tail_s: float = 0.5
    home_velocity: float = 1.0
    home_tolerance: float = 0.05
    home_timeout_s: float = 10.0
    max_velocity: float = 1.0
    max_gripper_velocity: float = 1.5

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.first_seed < 0 or self.max_attempts < 0:
            raise SimConfigError("episodes must be >= 1, first_seed and max_attempts >= 0")
        for name in ("settle_s", "lead_in_s", "tail_s", "home_timeout_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise SimConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("home_velocity", "home_tolerance", "max_velocity", "max_gripper_velocity"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise SimConfigError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def attempts(self) -> int:
        return self.max_attempts or 2 * self.episodes


@dataclass
class EpisodeRecord:
    """What happened to one attempt (for the log the resumable pipeline reads)."""

    attempt: int
    seed: int
    cube: list[float] = field(default_factory=list)
    final_stage: int = -1
    kept: bool = False
    note: str = ""


class DemoSequencer:
    """See module doc. ``step(now_s, follower, cube, stage)`` returns the leader command to publish now."""

    def __init__(self, scene: AlohaScene, config: DemoConfig) -> None:
        self.scene = scene
        self.config = config
        self.start_pose = scene.start_pose
        self.phase = Phase.HOMING
        self.attempt = 0
        self.kept = 0
        self.records: list[EpisodeRecord] = []
        self.pending: DemoRequest | None = None
        self._leader = self.start_pose.copy()
        self._motion: ExpertPlan | None = None  # the plan being played (homing or the demonstration)
        self._plan: ExpertPlan | None = None  # this attempt's demonstration
        self._t0 = 0.0
        self._phase_since = 0.0
        self._reset_at = math.inf
        self._grippers = np.array(["gripper" in n for n in scene.joint_names])

    @property
    def seed(self) -> int:
        return self.config.first_seed + self.attempt

    @property
    def record(self) -> EpisodeRecord | None:
        return self.records[-1] if self.records and self.records[-1].attempt == self.attempt else None

    def step(self, now_s: float, follower: FloatArray | None, cube: tuple[float, FloatArray] | None,
             stage: int) -> FloatArray:
        """Advance at sim time ``now_s``; ``cube`` is (stamp_s, position) of the newest cube pose, ``stage``
        the scene's task stage (-1 unknown). Returns the leader's joint command (robot joint order)."""
        if self.pending is None:
            self._advance(now_s, follower, cube, stage)
        if self._motion is not None:
            self._leader = self._motion.command_at(now_s - self._t0)
        return self._leader.copy()

    def done(self, request: DemoRequest, ok: bool, now_s: float, message: str = "") -> None:
        """The outcome of the pending ``request`` (``ok`` False: it failed; the attempt is abandoned)."""
        if request is not self.pending:
            raise SimConfigError(f"outcome of {request} while {self.pending} is pending")
        self.pending = None
        if not ok:
            if self.record is not None:
                self.record.note = f"{request.value} failed: {message}"
            self._next_attempt(now_s)
            return
        if request is DemoRequest.RESET:
            self._enter(Phase.SETTLING, now_s)
            self._reset_at = now_s
        elif request is DemoRequest.START:
            self._play(now_s)
        else:
            if request is DemoRequest.SAVE and self.record is not None:
                self.record.kept = True
                self.kept += 1
            self._next_attempt(now_s)

    # -- internals ---------------------------------------------------------------------------------------
    def _enter(self, phase: Phase, now_s: float) -> None:
        self.phase = phase
        self._phase_since = now_s

    def _advance(self, now_s: float, follower: FloatArray | None, cube: tuple[float, FloatArray] | None,
                 stage: int) -> None:
        if self.phase is Phase.HOMING:
            if self._motion is None:
                self._motion = self._home(now_s)
            arrived = now_s - self._t0 >= self._motion.duration_s
            # arm joints only: a gripper closed on the cube cannot reach its start opening (the reset frees it)
            close = follower is not None and float(np.max(np.abs(follower - self.start_pose)[~self._grippers])) \
                <= self.config.home_tolerance
            timed_out = now_s - self._t0 > self._motion.duration_s + self.config.home_timeout_s
            if arrived and (close or timed_out):
                self._motion = None
                self._leader = self.start_pose.copy()
                self.records.append(EpisodeRecord(self.attempt, self.seed))
                if timed_out and not close:
                    self.records[-1].note = "the follower did not reach the start pose"
                self._enter(Phase.RESETTING, now_s)
                self.pending = DemoRequest.RESET
        elif self.phase is Phase.SETTLING:
            fresh = cube is not None and cube[0] >= self._reset_at + self.config.settle_s
            if now_s - self._reset_at >= self.config.settle_s and fresh:
                assert cube is not None and self.record is not None
                self.record.cube = [round(float(v), 4) for v in cube[1]]
                try:
                    self._plan = plan_transfer_cube(self.scene, self.config.max_velocity,
                                                    self.config.max_gripper_velocity, cube_position=cube[1])
                except SceneError as err:
                    self.record.note = f"no plan: {err}"
                    self._next_attempt(now_s)
                    return
                if self.config.record:
                    self._enter(Phase.STARTING, now_s)
                    self.pending = DemoRequest.START
                else:
                    self._play(now_s)
        elif self.phase is Phase.DEMONSTRATING:
            assert self._motion is not None and self.record is not None
            if now_s - self._t0 >= self._motion.duration_s + self.config.tail_s:
                self.record.final_stage = stage
                success = stage == SUCCESS_STAGE
                self._enter(Phase.SAVING, now_s)
                if not self.config.record:
                    self.record.kept = success
                    self.kept += int(success)
                    self._next_attempt(now_s)
                else:
                    keep = success or self.config.keep_failed
                    self.pending = DemoRequest.SAVE if keep else DemoRequest.DISCARD

    def _play(self, now_s: float) -> None:
        assert self._plan is not None
        self._motion = self._plan
        self._t0 = now_s + self.config.lead_in_s
        self._enter(Phase.DEMONSTRATING, now_s)

    def _home(self, now_s: float) -> ExpertPlan:
        """A minimum-jerk move of the leader from where it is to the start pose, within the velocities."""
        speed = np.where(self._grippers, self.config.max_gripper_velocity, self.config.home_velocity)
        duration = max(0.02, float(np.max(1.875 * np.abs(self.start_pose - self._leader) / speed)))
        self._t0 = now_s
        return ExpertPlan(self.scene.joint_names,
                          [Keyframe(0.0, self._leader.copy()), Keyframe(duration, self.start_pose)])

    def _next_attempt(self, now_s: float) -> None:
        if self._motion is not None:  # the leader stays where the motion took it
            self._leader = self._motion.command_at(now_s - self._t0)
        self._motion = self._plan = None
        self.attempt += 1
        finished = self.kept >= self.config.episodes or self.attempt >= self.config.attempts
        self._enter(Phase.DONE if finished else Phase.HOMING, now_s)
