"""The control state machine without ROS: chunk -> safe, JTC-valid command; holds, pause, e-stop, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from arriving_velocity import arriving_velocity

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.chunk_execution import ExecutionConfig
from wallx_ros.core.joint_trajectory_rules import validate
from wallx_ros.core.policy_control import ControlConfig, ControlMode, PolicyControl
from wallx_ros.core.safety import JointLimits, SafetyFilter

MS = 1_000_000
S = 1_000_000_000
NAMES = ("a", "b")


def _control(**execution: object) -> PolicyControl:
    mapping = ActionMapping.build(NAMES, NAMES)
    limits = JointLimits(NAMES, (-1.0, -1.0), (1.0, 1.0), (10.0, 10.0))
    ctl = PolicyControl(ControlConfig(ExecutionConfig(**execution)), mapping, SafetyFilter(limits), 0.02)  # type: ignore[arg-type]
    ctl.activate(0)
    return ctl


def _chunk(offset: float = 0.0) -> np.ndarray:
    t = np.arange(1, 33) * 0.02
    return np.stack([offset + 0.1 * t, offset - 0.1 * t], axis=1)


def test_chunk_becomes_a_valid_trajectory_stamped_at_the_observation() -> None:
    ctl = _control()
    out = ctl.on_chunk(_chunk(), np.zeros(2), observation_stamp_ns=10 * S, now_ns=10 * S + 100 * MS)
    assert out.command is not None and ctl.mode is ControlMode.RUNNING
    cmd = out.command
    assert cmd.stamp_ns == 10 * S and cmd.times_from_start_ns[0] == 20 * MS
    assert np.all(np.diff(cmd.times_from_start_ns) > 0)
    np.testing.assert_array_equal(cmd.velocities[-1], [0.0, 0.0])
    assert validate(cmd.names, cmd.points(), NAMES, 10 * S + 100 * MS, cmd.stamp_ns) == []
    assert out.past_points == 5


def test_non_finite_model_output_publishes_nothing() -> None:
    ctl = _control()
    bad = _chunk()
    bad[3, 0] = math.nan
    out = ctl.on_chunk(bad, np.zeros(2), 10 * S, 10 * S)
    assert out.command is None and "non-finite" in out.problems[0]
    assert ctl.mode is ControlMode.WAITING and ctl.executor.plan is None


def test_expired_chunk_is_refused_with_a_reason() -> None:
    ctl = _control()
    out = ctl.on_chunk(_chunk(), np.zeros(2), 10 * S, 11 * S)
    assert out.command is None and "expired" in out.problems[0]


def test_controller_rules_are_checked() -> None:
    mapping = ActionMapping.build(NAMES, NAMES)
    ctl = PolicyControl(ControlConfig(controller_joints=("a", "b", "c")), mapping,
                        SafetyFilter(JointLimits.unlimited(NAMES)), 0.02)
    ctl.activate(0)
    out = ctl.on_chunk(_chunk(), np.zeros(2), 10 * S, 10 * S)
    assert out.command is None and "controller has 3 joints" in out.problems[0]


def test_watchdog_holds_at_the_commanded_position_and_recovers() -> None:
    ctl = _control()
    ctl.on_chunk(_chunk(), np.zeros(2), 10 * S, 10 * S)
    hold = ctl.watchdog(10 * S + 100 * MS, ["face_view: stale (0.6 s old > max_age 0.5 s)"])
    assert hold is not None and hold.kind == "hold" and hold.stamp_ns == 0
    np.testing.assert_allclose(hold.positions[0], [0.01, -0.01])  # the plan at +100 ms
    np.testing.assert_array_equal(hold.velocities, [[0.0, 0.0]])
    assert ctl.mode is ControlMode.HOLDING and "stale" in ctl.reason and ctl.since_ns == 10 * S + 100 * MS
    assert ctl.watchdog(10 * S + 120 * MS, ["still stale"]) is None  # one hold, not a stream of them
    assert not ctl.inference_allowed
    assert ctl.on_chunk(_chunk(), np.zeros(2), 10 * S + 50 * MS, 10 * S + 130 * MS).command is None
    assert ctl.stream_sample(10 * S + 130 * MS) is not None
    ctl.watchdog(10 * S + 200 * MS, [])
    assert ctl.mode is ControlMode.WAITING and ctl.inference_allowed
    # a chunk from an observation taken before the recovery is stale
    late = ctl.on_chunk(_chunk(), np.zeros(2), 10 * S + 150 * MS, 10 * S + 210 * MS)
    assert late.command is None and "predates" in late.problems[0]
    assert ctl.on_chunk(_chunk(), np.zeros(2), 10 * S + 205 * MS, 10 * S + 210 * MS).command is not None


def test_pause_resume_estop() -> None:
    ctl = _control()
    ctl.on_chunk(_chunk(), np.zeros(2), 10 * S, 10 * S)
    assert ctl.pause(10 * S + 40 * MS) is not None and ctl.mode is ControlMode.PAUSED
    assert ctl.resume(10 * S + 50 * MS) == "" and ctl.mode is ControlMode.WAITING
    assert ctl.estop(10 * S + 60 * MS) is not None and ctl.mode is ControlMode.ESTOPPED
    assert "release it first" in ctl.resume(10 * S + 70 * MS)
    assert ctl.pause(10 * S + 70 * MS) is None and ctl.mode is ControlMode.ESTOPPED
    assert ctl.release_estop(10 * S + 80 * MS) == "" and ctl.mode is ControlMode.PAUSED
    assert ctl.resume(10 * S + 90 * MS) == "" and ctl.mode is ControlMode.WAITING
    assert ctl.deactivate(10 * S + 95 * MS) is not None and ctl.mode is ControlMode.INACTIVE


def test_hold_without_a_plan_uses_the_measured_state() -> None:
    ctl = _control()
    assert ctl.estop(0) is None  # nothing known yet: nothing to hold
    ctl.activate(0)
    ctl.observe(np.array([0.3, -0.2]))
    hold = ctl.estop(S)
    assert hold is not None
    np.testing.assert_allclose(hold.positions[0], [0.3, -0.2])


def test_streaming_samples_the_plan() -> None:
    ctl = _control(latency_compensation=False)
    ctl.on_chunk(_chunk(), np.zeros(2), 10 * S, 10 * S)
    pos, vel = ctl.stream_sample(10 * S + 30 * MS)  # type: ignore[misc]
    np.testing.assert_allclose(pos, [0.003, -0.003])
    np.testing.assert_allclose(vel, [0.1, -0.1])


def test_limits_are_applied_before_publishing() -> None:
    ctl = _control()
    out = ctl.on_chunk(_chunk(offset=0.99), np.array([0.99, 0.99]), 10 * S, 10 * S)
    assert out.command is not None
    assert out.command.positions[:, 0].max() <= 1.0 and out.adjustments
    assert pytest.approx(out.command.positions[-1, 0]) == 1.0


def test_clock_jump_back_drops_the_plan_and_holds_where_the_robot_was_commanded() -> None:
    """Regression (fault injection, issue 8): after a simulation reset the old plan and epoch must not be used."""
    names = ("a", "b")
    control = PolicyControl(ControlConfig(ExecutionConfig(execution_horizon=4)), ActionMapping.build(names, names),
                            SafetyFilter(JointLimits.unlimited(names)), 0.02)
    t = 100 * 10**9
    control.activate(t)
    actions = np.linspace([0.0, 0.0], [0.31, -0.31], 32)
    assert control.on_chunk(actions, np.zeros(2), t, t + 10**7).published
    before = t + 300 * 10**6
    commanded = control.executor.plan.sample(before)
    hold = control.clock_jumped(t - 50 * 10**9, before)
    assert hold is not None and np.allclose(hold.positions[0], commanded)
    assert control.mode is ControlMode.WAITING and "clock jumped back" in control.reason
    assert control.executor.plan is None and control.epoch_ns == t - 50 * 10**9
    assert control.replan_due(t - 50 * 10**9, 0.0)  # a new observation is wanted at once
    new = t - 49 * 10**9
    assert control.on_chunk(actions, np.zeros(2), new, new + 10**7).published  # the new timeline works


def test_stream_never_outruns_max_velocity_when_a_chunk_follows_a_hold() -> None:
    """Regression (CI, jazzy): after a hold, the next chunk starts where the robot was at the observation,
    one latency before now, so its sample at now can be far from the held command. A position stream has no
    controller to interpolate that: each streamed command moves at most max_velocity x the time since the last."""
    vmax = 0.5
    mapping = ActionMapping.build(NAMES, NAMES)
    limits = JointLimits(NAMES, (-1.0, -1.0), (1.0, 1.0), (vmax, vmax))
    ctl = PolicyControl(ControlConfig(ExecutionConfig()), mapping, SafetyFilter(limits), 0.02)
    ctl.activate(0)
    t = 10 * S
    assert ctl.on_chunk(_chunk(), np.zeros(2), t - 100 * MS, t).command is not None
    sent: list[tuple[int, np.ndarray]] = []

    def stream_until(end_ns: int) -> None:
        nonlocal t
        while t < end_ns:
            t += 20 * MS
            sample = ctl.stream_sample(t)
            assert sample is not None
            sent.append((t, sample[0]))

    stream_until(10 * S + 200 * MS)
    assert ctl.watchdog(t, ["face_view: stale"]) is not None  # hold where the stream is
    stream_until(10 * S + 400 * MS)
    ctl.watchdog(t, [])  # inputs back: the next observation's chunk resumes
    observed = t + 20 * MS
    stream_until(10 * S + 700 * MS)
    # the robot stood still since the hold; the new chunk moves away from where it was 280 ms ago
    out = ctl.on_chunk(_chunk(offset=0.3), np.zeros(2), observed, t)
    assert out.command is not None, out.problems
    stream_until(10 * S + 1100 * MS)
    times = np.array([ts for ts, _ in sent]) / S
    steps = np.abs(np.diff(np.array([p for _, p in sent]), axis=0))
    assert np.all(steps <= vmax * np.diff(times)[:, None] + 1e-12), steps.max(axis=1)
    # and it does follow the new plan, at max_velocity, rather than staying put
    assert sent[-1][1][0] > sent[20][1][0] + 0.1


def test_stream_restarts_from_the_measured_robot_after_reactivation() -> None:
    ctl = _control(latency_compensation=False)
    ctl.on_chunk(_chunk(), np.zeros(2), 10 * S, 10 * S)
    assert ctl.stream_sample(10 * S + 20 * MS) is not None
    ctl.deactivate(11 * S)
    ctl.activate(20 * S)  # someone may have moved the robot meanwhile: the old stream position means nothing
    assert ctl.last_streamed is None
    ctl.on_chunk(_chunk(offset=0.5), np.array([0.5, 0.5]), 20 * S, 20 * S)
    pos, _vel = ctl.stream_sample(20 * S + 20 * MS)  # type: ignore[misc]
    np.testing.assert_allclose(pos, [0.502, 0.498])


@pytest.mark.parametrize("blend", ["none", "crossfade", "c1"])
def test_acceleration_across_chunk_boundaries_holds_on_and_off_the_row_grid(blend: str) -> None:
    """Regression (jazzy CI under load: "acceleration across the boundary 8.000" = twice max_acceleration): a chunk
    that takes over at a point of the running plan must accelerate from the segment that ARRIVES there, not from
    the one after it that the chunk replaces; one that takes over at or before the plan's first point, from the
    step into that point. An adversarial model (every row, and every chunk, the other way) against limits, with
    observations on and off the running plan's row grid, measured on the trajectory the controller executes."""
    amax, dt_ns = 4.0, 20 * MS
    mapping = ActionMapping.build(("a",), ("a",))
    rng = np.random.default_rng(0)
    worst = 0.0
    for grid_ms in (20, 10, 7):
        for _ in range(10):
            ctl = PolicyControl(ControlConfig(ExecutionConfig(blend=blend)), mapping,
                                SafetyFilter(JointLimits(("a",), (-0.5,), (0.5,), (1.0,), (amax,))), 0.02)
            ctl.activate(0)
            previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
            obs = 3000 * S
            for k in range(30):
                rows = (-1.0) ** (k + np.arange(32)[:, None]) * 5.0
                now = obs + int(rng.integers(0, 20)) * 10 * MS
                out = ctl.on_chunk(rows, np.zeros(1), obs, now)
                obs = now + int(rng.integers(1, 30)) * grid_ms * MS
                if out.command is None:
                    continue
                t = out.command.stamp_ns + np.asarray(out.command.times_from_start_ns, dtype=np.int64)
                p = out.command.positions
                entry = np.zeros(1)
                if previous is not None:
                    pt, pp, previous_entry = previous
                    at = int(t[0]) - dt_ns  # the chunk replaces the running plan from here on
                    arriving = arriving_velocity(pt, pp, previous_entry, at)
                    entry = (p[0] - np.interp(at, pt, pp[:, 0])) / (dt_ns / S)
                    worst = max(worst, float(np.abs(entry - arriving).max()) / (dt_ns / S))
                previous = (t, p, entry)
    assert worst <= amax * (1 + 1e-6), f"acceleration across a boundary {worst:.3f} > {amax}"
    assert worst >= 0.95 * amax  # the adversarial model did press the limit
