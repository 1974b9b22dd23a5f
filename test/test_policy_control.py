"""The control state machine without ROS: chunk -> safe, JTC-valid command; holds, pause, e-stop, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
