"""Property-based fuzzing of the path from model output to robot command, and of input synchronisation.

* ``PolicyControl`` (mapping, chunk execution, blending, safety limits, JTC rules, hold/pause/e-stop state
  machine) is driven by a hypothesis state machine: chunks of arbitrary values (NaN, Inf, huge, jumps),
  observations of any age, the clock moving forwards and backwards, input problems, pause/resume/e-stop
  in any order. Every command it emits must pass the controller rules, be finite, stay within the position
  limits, respect max_velocity between consecutive points (and from where the robot is commanded to be),
  end at zero velocity, and never come from an observation older than the last hold (a stale command).
* ``StreamSync``: arbitrary sequences of good and bad messages with any stamps: an observation is only ever
  made of fresh samples of every stream, within the sync tolerance, with no stream in error.
"""

from __future__ import annotations

import numpy as np
from fuzz_ledger import count, examples, fuzz_settings, trial
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.chunk_execution import ExecutionConfig
from wallx_ros.core.errors import CoreError
from wallx_ros.core.policy_control import ControlConfig, ControlMode, PolicyControl, TrajectoryCommand
from wallx_ros.core.safety import JointLimits, SafetyFilter
from wallx_ros.core.stream_sync import StreamSync

S = 1_000_000_000
MS = 1_000_000
JOINTS = ("j0", "j1", "j2", "gripper")
LOWER = np.array([-1.5, -1.0, -2.0, 0.0])
UPPER = np.array([1.5, 1.0, 2.0, 0.08])
VMAX = np.array([2.0, 1.5, 3.0, 0.5])
DT_S = 0.02
TOL = 1e-9


def _actions(seed: int, kind: str, rows: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(scale=0.05, size=(rows, len(JOINTS))), axis=0) + rng.uniform(LOWER, UPPER)
    if kind == "huge":
        walk *= 10.0 ** rng.integers(1, 300)
    elif kind == "jump":
        walk += rng.choice([-5, 5], size=len(JOINTS))
    elif kind in ("nan", "inf"):
        walk[rng.integers(rows), rng.integers(len(JOINTS))] = np.nan if kind == "nan" else -np.inf
    elif kind == "constant":
        walk[:] = walk[0]
    elif kind == "outside":
        walk = np.where(rng.random(walk.shape) < 0.5, LOWER - 1, UPPER + 1)
    return walk


class ControlMachine(RuleBasedStateMachine):
    """PolicyControl under arbitrary event sequences; ``check`` runs on everything it emits."""

    TARGET = "model chunk -> PolicyControl -> trajectory command"

    @initialize(horizon=st.integers(1, 32), blend=st.sampled_from(["none", "crossfade"]),
                blend_steps=st.integers(0, 12),
                latency_compensation=st.booleans(), offset_ms=st.integers(-50, 200), violation=st.sampled_from(
                    ["clamp", "reject"]), delta=st.booleans())
    def setup(self, horizon: int, blend: str, blend_steps: int, latency_compensation: bool, offset_ms: int,
              violation: str, delta: bool) -> None:
        execution = ExecutionConfig(execution_horizon=horizon, blend=blend, blend_steps=blend_steps,
                                    latency_compensation=latency_compensation, latency_offset_s=offset_ms / 1e3)
        mapping = ActionMapping.build(JOINTS, JOINTS, "delta" if delta else "absolute", ("gripper",), 1.0, 0.0)
        limits = JointLimits(JOINTS, tuple(LOWER), tuple(UPPER), tuple(VMAX))
        self.control = PolicyControl(ControlConfig(execution, hold_time_s=2 * DT_S), mapping,
                                     SafetyFilter(limits, violation), DT_S)
        self.now = 1000 * S
        self.control.activate(self.now)
        self.measured = np.clip(np.zeros(len(JOINTS)), LOWER, UPPER)
        self.commanded: np.ndarray | None = None  # where the robot was last told to be (plan sampled at now)

    # -- events -------------------------------------------------------------------------------------------
    @rule(step_ms=st.one_of(st.integers(0, 100), st.integers(0, 100), st.integers(-20_000, 3_000)))
    def clock(self, step_ms: int) -> None:
        before = self.now
        self.now = max(S, self.now + step_ms * MS)
        if self.now < before - 10 * MS:  # what the node does when its control clock goes back
            self._hold_check(self.control.clock_jumped(self.now, before))

    @rule(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["walk"] * 6 + ["huge", "jump", "nan", "inf",
                                                                             "constant", "outside"]),
          rows=st.sampled_from([1, 2, 8, 32, 32]), gap_ms=st.integers(0, 60),
          age_ms=st.one_of(st.integers(0, 20), st.integers(0, 20), st.integers(-100, 5_000)),
          latency_ms=st.one_of(st.integers(0, 200), st.integers(0, 2_000)), state_seed=st.integers(0, 1000))
    def chunk(self, seed: int, kind: str, rows: int, gap_ms: int, age_ms: int, latency_ms: int,
              state_seed: int) -> None:
        """An observation taken ``age_ms`` before "now" (after ``gap_ms`` of quiet), a model taking ``latency_ms``."""
        c = self.control
        actions = _actions(seed, kind, rows)
        state = np.random.default_rng(state_seed).uniform(LOWER - 0.2, UPPER + 0.2)
        self.now += gap_ms * MS
        obs_stamp = self.now - age_ms * MS
        self.now += latency_ms * MS
        allowed, epoch = c.inference_allowed, c.epoch_ns
        before, hold_before = c.executor.plan, c.hold_position
        with trial(self.TARGET, (CoreError,)) as flag:
            outcome = c.on_chunk(actions, state, obs_stamp, self.now)
            if outcome.command is None:
                raise CoreError("; ".join(outcome.problems))  # refused: nothing published
            if not allowed:
                flag(f"a chunk was published in mode {c.mode}")
            if obs_stamp < epoch:
                flag("a chunk from an observation older than the last hold/pause/e-stop was published (stale)")
            if not np.all(np.isfinite(actions)):
                flag("a chunk with NaN/Inf actions was published")
            self._check_chunk(outcome.command, before, hold_before, state, flag)
            self.measured = state

    @rule(bad=st.sampled_from([False, False, False, True]))
    def watchdog(self, bad: bool) -> None:
        self._hold_check(self.control.watchdog(self.now, ["cam: stale"] if bad else []))

    @rule(kind=st.sampled_from(["pause", "resume", "resume", "estop", "release", "release", "resume"]))
    def service(self, kind: str) -> None:
        c, was = self.control, self.control.mode
        if kind == "pause":
            self._hold_check(c.pause(self.now))
        elif kind == "resume":
            c.resume(self.now)
        elif kind == "estop":
            self._hold_check(c.estop(self.now))
            assert c.mode is ControlMode.ESTOPPED
        else:
            c.release_estop(self.now)
            if was is ControlMode.ESTOPPED:
                assert c.mode is ControlMode.PAUSED

    @precondition(lambda self: self.control.mode is not ControlMode.INACTIVE)
    @rule(state_seed=st.integers(0, 1000))
    def observe(self, state_seed: int) -> None:
        self.control.observe(np.random.default_rng(state_seed).uniform(LOWER - 0.2, UPPER + 0.2))

    @rule()
    def stream(self) -> None:
        sample = self.control.stream_sample(self.now)
        if sample is not None:
            assert np.all(np.isfinite(sample[0])) and np.all(np.isfinite(sample[1]))
            if self.control.mode is ControlMode.RUNNING:
                assert np.all(sample[0] >= LOWER - TOL) and np.all(sample[0] <= UPPER + TOL)

    # -- checks -------------------------------------------------------------------------------------------
    def _check_chunk(self, cmd: TrajectoryCommand, before, hold_before, state, flag) -> None:  # type: ignore[no-untyped-def]
        c = self.control
        problems = c.check(cmd, self.now)
        if problems:
            flag(f"published chunk fails the controller rules: {problems}")
        pos, vel = cmd.positions, cmd.velocities
        if np.any(pos < LOWER - TOL) or np.any(pos > UPPER + TOL):
            flag(f"positions outside the limits: {pos.min(axis=0)} .. {pos.max(axis=0)}")
        if np.any(np.abs(vel) > VMAX * (1 + 1e-9) + TOL) or np.any(vel[-1] != 0):
            flag("velocities beyond max_velocity or a non-zero end velocity")
        times = (cmd.times_from_start_ns + (cmd.stamp_ns if cmd.stamp_ns else 0)) / S
        steps = np.abs(np.diff(pos, axis=0))
        if np.any(steps > np.diff(times)[:, None] * VMAX * (1 + 1e-6) + 1e-9):
            flag("consecutive points faster than max_velocity")
        # the first point is reachable from where the robot is commanded to be (running plan, hold, or the robot)
        plan = c.executor.plan
        t_first = int(plan.times_ns[0])
        if before is not None:
            start, gap_s = before.sample(t_first - round(DT_S * S)), DT_S
        elif hold_before is not None:
            start, gap_s = hold_before, (t_first - plan.origin_ns) / S
        else:
            start, gap_s = state, (t_first - plan.origin_ns) / S
        start = np.clip(start, LOWER, UPPER)
        if np.any(np.abs(pos[0] - start) > VMAX * gap_s * (1 + 1e-6) + 1e-9):
            flag(f"the first point jumps from {start} to {pos[0]}: faster than max_velocity")

    def _hold_check(self, cmd: TrajectoryCommand | None) -> None:
        if cmd is None:
            return
        count("hold commands (watchdog, pause, e-stop)", "accepted")
        assert cmd.kind == "hold" and cmd.stamp_ns == 0 and cmd.positions.shape == (1, len(JOINTS))
        assert np.all(np.isfinite(cmd.positions)) and np.all(cmd.velocities == 0)
        assert self.control.check(cmd, self.now) == []

    @invariant()
    def no_motion_unless_running(self) -> None:
        if hasattr(self, "control") and self.control.mode is not ControlMode.RUNNING:
            assert self.control.executor.plan is None, f"a plan survives in mode {self.control.mode}"


TestControlMachine = ControlMachine.TestCase
TestControlMachine.settings = settings(fuzz_settings(40), stateful_step_count=40)


# -- StreamSync -----------------------------------------------------------------------------------------
STREAMS = ("face_view", "left_wrist_view", "joint_states")
op = st.tuples(st.sampled_from(["put", "put", "put", "error", "clear", "tick"]), st.sampled_from(STREAMS),
               st.integers(-2_000, 2_000), st.integers(0, 400))


@fuzz_settings(300)
@given(st.lists(op, max_size=60), st.integers(1, 200), st.integers(10, 1000))
def test_fuzz_stream_sync(ops: list[tuple[str, str, int, int]], tol_ms: int, max_age_ms: int) -> None:
    """However messages arrive, an observation is fresh, consistent and free of bad streams."""
    sync: StreamSync[int] = StreamSync(STREAMS, tol_ms / 1e3, max_age_ms / 1e3)
    now = 100 * S
    bad: set[str] = set()
    for kind, stream, stamp_offset_ms, advance_ms in ops:
        now += advance_ms * MS
        with trial("message sequence -> StreamSync observation", (CoreError,)) as flag:
            if kind == "put":
                sync[stream].put(stamp_offset_ms, now + stamp_offset_ms * MS, now)
                bad.discard(stream)
            elif kind == "error":
                sync[stream].put_error("bad message", now)
                bad.add(stream)
            elif kind == "clear":
                sync.clear()
                bad.clear()
            result = sync.latest_synced(now)
            if result.ok:
                assert result.samples is not None
                stamps = [s.stamp_ns for s in result.samples.values()]
                if set(result.samples) != set(STREAMS):
                    flag("an observation without every stream")
                if bad:
                    flag(f"an observation while {bad} last sent a bad message")
                if any(now - s > max_age_ms * MS for s in stamps):
                    flag("an observation with a stale sample")
                if max(stamps) - min(stamps) > tol_ms * MS:
                    flag("an observation whose stamps differ by more than the tolerance")
            else:
                stale = set(sync.stale_streams(now))
                if not bad <= stale:
                    flag(f"streams {bad - stale} sent bad messages but are not reported")


def test_examples_scale_with_the_bench_setting(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WALLX_FUZZ_SCALE", "10")
    assert examples(40) == 400
    monkeypatch.setenv("WALLX_FUZZ_SCALE", "1")
    assert examples(40) == 40
