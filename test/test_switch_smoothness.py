"""The switch figures the node publishes are what a joint_trajectory_controller executes: checked against the
embedded simulator's JTC-like trajectory executor (``wallx_ros.sim``), which follows ros2_controllers' rules."""

from __future__ import annotations

import numpy as np
import pytest

from wallx_ros.core.chunk_execution import Plan
from wallx_ros.core.policy_control import TrajectoryCommand as Command
from wallx_ros.core.switch_smoothness import measure_switch
from wallx_ros.core.trajectory_sampling import sample_controller
from wallx_ros.sim.trajectory_executor import ReceivedTrajectory, TrajectoryExecutor
from wallx_ros.sim.trajectory_interpolation import PointState, interpolate

MS = 1_000_000
S = 1_000_000_000
NAMES = ("a", "b")
PERIOD = 10 * MS


def _plan(origin_ns: int, positions: np.ndarray, dt_s: float = 0.02) -> Plan:
    times = origin_ns + np.round(np.arange(1, len(positions) + 1) * dt_s * S).astype(np.int64)
    vel = np.gradient(positions, times / S, axis=0)
    vel[-1] = 0.0
    return Plan(NAMES, origin_ns, times, positions, vel)


def _command(plan: Plan) -> ReceivedTrajectory:
    cmd = Command("chunk", NAMES, plan.origin_ns, plan.times_from_origin_ns(), plan.positions, plan.velocities)
    return ReceivedTrajectory(NAMES, tuple(cmd.points()), plan.origin_ns)


def test_sampling_is_the_controllers_cubic() -> None:
    rng = np.random.default_rng(0)
    plan = _plan(S, rng.normal(size=(8, 2)))
    query = np.arange(S + 20 * MS, S + 160 * MS, 3 * MS, dtype=np.int64)
    pos, vel, acc = sample_controller(plan.times_ns, plan.positions, plan.velocities, query)
    for k, t in enumerate(query):
        i = int(np.searchsorted(plan.times_ns, t, side="right")) - 1
        a = PointState(plan.positions[i], plan.velocities[i])
        b = PointState(plan.positions[i + 1], plan.velocities[i + 1])
        ref = interpolate(a, b, (plan.times_ns[i + 1] - plan.times_ns[i]) / S, (t - plan.times_ns[i]) / S)
        np.testing.assert_allclose(pos[k], ref.positions, atol=1e-12)
        np.testing.assert_allclose(vel[k], ref.velocities, atol=1e-9)
        np.testing.assert_allclose(acc[k], ref.accelerations, atol=1e-6)
    # linear without velocities, the last point held after the end
    lin, _, _ = sample_controller(plan.times_ns, plan.positions, None, np.array([S + 30 * MS, S + 999 * MS]))
    np.testing.assert_allclose(lin[0], (plan.positions[0] + plan.positions[1]) / 2)
    np.testing.assert_allclose(lin[1], plan.positions[-1])


@pytest.mark.parametrize("offset", [0.0, 0.3])
def test_switch_figures_are_what_the_controller_executes(offset: float) -> None:
    """Two controllers: one keeps the old trajectory, the other gets the new one at the switch. The position and
    velocity jumps are the difference of their commands at the switch, the peak acceleration the largest second
    difference of the switched controller's commands around it."""
    t = np.arange(1, 33) * 0.02
    old = _plan(S, np.stack([np.sin(4 * t), t], axis=1))
    switch = S + 250 * MS
    new = _plan(S + 200 * MS, np.stack([np.sin(4 * (t + 0.2)) + offset, t + 0.2 - offset * t], axis=1))
    keep, switched = TrajectoryExecutor(NAMES), TrajectoryExecutor(NAMES)
    zero = np.zeros(2)
    for ex in (keep, switched):
        assert ex.offer(_command(old), S) == []
    commands = []
    kept = None
    for tick in range(S, S + 400 * MS, PERIOD):
        if tick == switch:
            assert switched.offer(_command(new), tick) == []
        kept = keep.update(tick, zero, zero)
        sp = switched.update(tick, zero, zero)
        commands.append((tick, sp.positions.copy()))
        if tick == switch:
            position_jump = np.max(np.abs(sp.positions - kept.positions))
            velocity_jump = np.max(np.abs(sp.velocities - kept.velocities))
    figures = measure_switch(old, new, switch, PERIOD)
    assert figures.position_jump == pytest.approx(position_jump, abs=1e-9)
    assert figures.velocity_jump == pytest.approx(velocity_jump, abs=1e-6)
    window = np.array([p for tick, p in commands if switch - 2 * PERIOD <= tick <= switch + 4 * PERIOD])
    peak = np.max(np.abs(np.diff(window, n=2, axis=0))) / (PERIOD / S) ** 2
    assert figures.peak_acceleration == pytest.approx(peak, rel=1e-6)
    if offset == 0.0:  # the new chunk continues the old one: nothing to see
        assert figures.position_jump < 1e-9 and figures.velocity_jump < 1e-6
    else:
        assert figures.position_jump > 0.2 and figures.peak_acceleration > 1000
