"""The simulator's trajectory executor behaves like ros2_control's joint_trajectory_controller (jazzy/kilted).

Pure numpy: acceptance (JTC's rules via core.joint_trajectory_rules), replacement at the next cycle
without splicing, header.stamp handling (0 = now, past points skipped), interpolation (linear / cubic /
quintic) and holding after the end.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallx_ros.core.joint_trajectory_rules import JtcOptions, Point
from wallx_ros.sim.errors import SimConfigError
from wallx_ros.sim.trajectory_executor import ExecutionPhase, ReceivedTrajectory, TrajectoryExecutor
from wallx_ros.sim.trajectory_interpolation import PointState, interpolate

JOINTS = ("a", "b", "c")
MS = 1_000_000
ZERO = np.zeros(3)


def _cmd(rows: list[list[float]], times_ms: list[int], stamp_ns: int = 0, names: tuple[str, ...] = JOINTS,
         velocities: list[list[float]] | None = None) -> ReceivedTrajectory:
    points = tuple(Point(positions=tuple(r), time_from_start=t * MS,
                         velocities=tuple(velocities[i]) if velocities else ())
                   for i, (r, t) in enumerate(zip(rows, times_ms, strict=True)))
    return ReceivedTrajectory(names, points, stamp_ns)


def test_idle_holds_the_start_position() -> None:
    ex = TrajectoryExecutor(JOINTS)
    sp = ex.update(0, np.array([0.1, 0.2, 0.3]), ZERO)
    assert sp.phase is ExecutionPhase.IDLE
    np.testing.assert_allclose(ex.update(20 * MS, np.array([9.0, 9.0, 9.0]), ZERO).positions, [0.1, 0.2, 0.3])


@pytest.mark.parametrize(("command", "reason"), [
    (_cmd([[0, 0]], [100], names=("a", "b")), "joint names but the controller has"),
    (_cmd([[0, 0, 0]], [100], names=("a", "b", "x")), "not controller joints"),
    (ReceivedTrajectory(JOINTS, (), 0), "no points"),
    (_cmd([[0, 0, 0], [1, 1, 1]], [100, 100]), "not strictly increasing"),
    (_cmd([[0, 0, 0]], [100], velocities=[[0.0, 0.5, 0.0]]), "non-zero velocity"),
    (_cmd([[0, 0, 0]], [100], stamp_ns=1_000 * MS), "ends in the past"),
    (_cmd([[0, np.nan, 0]], [100]), "non-finite"),
    (_cmd([[0, 0, 0]], [100], names=("a", "a", "b")), "repeat"),
])
def test_rejects_what_jtc_rejects_and_unsafe_values(command: ReceivedTrajectory, reason: str) -> None:
    ex = TrajectoryExecutor(JOINTS)
    problems = ex.offer(command, now_ns=2_000 * MS)
    assert any(reason in p for p in problems), problems
    assert ex.stats.rejected == 1 and ex.stats.accepted == 0
    assert ex.update(2_000 * MS, ZERO, ZERO).phase is ExecutionPhase.IDLE


def test_nonzero_end_velocity_accepted_when_the_option_allows_it() -> None:
    ex = TrajectoryExecutor(JOINTS, JtcOptions(allow_nonzero_velocity_at_trajectory_end=True))
    assert ex.offer(_cmd([[0, 0, 0]], [100], velocities=[[0.0, 0.5, 0.0]]), 0) == []


def test_partial_goals_are_not_supported() -> None:
    with pytest.raises(SimConfigError, match="allow_partial_joints_goal"):
        TrajectoryExecutor(JOINTS, JtcOptions(allow_partial_joints_goal=True))


def test_columns_are_matched_by_name() -> None:
    ex = TrajectoryExecutor(JOINTS)
    assert ex.offer(_cmd([[3.0, 1.0, 2.0]], [100], names=("c", "a", "b")), 0) == []
    ex.update(0, ZERO, ZERO)
    np.testing.assert_allclose(ex.update(100 * MS, ZERO, ZERO).positions, [1.0, 2.0, 3.0])


def test_stamp_zero_starts_at_the_next_cycle_and_approaches_linearly_from_the_measured_state() -> None:
    ex = TrajectoryExecutor(JOINTS)
    ex.update(0, ZERO, ZERO)
    assert ex.offer(_cmd([[1.0, 2.0, 4.0]], [100]), now_ns=5 * MS) == []
    # activation at the next cycle (t = 20 ms) from the measured state; first point due at 20 + 100 ms
    measured = np.array([0.0, 0.0, 1.0])
    sp = ex.update(20 * MS, measured, ZERO)
    assert sp.phase is ExecutionPhase.APPROACH
    np.testing.assert_allclose(sp.positions, measured)
    sp = ex.update(70 * MS, measured, ZERO)
    np.testing.assert_allclose(sp.positions, [0.5, 1.0, 2.5])  # half-way, linear (no velocities given)
    np.testing.assert_allclose(sp.velocities, [10.0, 20.0, 30.0])
    assert ex.update(120 * MS, measured, ZERO).phase is ExecutionPhase.HOLDING


def test_points_already_in_the_past_are_skipped() -> None:
    """A stamp in the past with the end in the future: sampling starts on the segment containing now."""
    ex = TrajectoryExecutor(JOINTS)
    rows = [[float(i), 0.0, 0.0] for i in range(1, 11)]  # point i at (i + 1) * 20 ms, a = i + 1
    stamp = 1_000 * MS
    now = stamp + 110 * MS  # between points 4 (100 ms, a=5) and 5 (120 ms, a=6)
    assert ex.offer(_cmd(rows, [20 * (i + 1) for i in range(10)], stamp_ns=stamp), now) == []
    sp = ex.update(now, np.array([-5.0, 0.0, 0.0]), ZERO)
    assert sp.phase is ExecutionPhase.TRACKING
    assert sp.positions[0] == pytest.approx(5.5)  # not an approach from the measured -5
    assert ex.stats.skipped_points == 5


def test_newest_message_replaces_the_running_trajectory_without_splicing() -> None:
    ex = TrajectoryExecutor(JOINTS)
    ex.update(0, ZERO, ZERO)
    ex.offer(_cmd([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], [100, 200]), 0)
    ex.update(20 * MS, ZERO, ZERO)
    ex.update(140 * MS, ZERO, ZERO)
    # two messages before the next cycle: only the newest runs
    ex.offer(_cmd([[9.0, 9.0, 9.0]], [100]), 150 * MS)
    ex.offer(_cmd([[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]], [50, 100]), 150 * MS)
    measured = np.array([1.4, 1.4, 1.4])
    sp = ex.update(160 * MS, measured, ZERO)
    np.testing.assert_allclose(sp.positions, measured)  # starts from the measured state, old points gone
    np.testing.assert_allclose(ex.update(210 * MS, measured, ZERO).positions, -1.0)
    np.testing.assert_allclose(ex.update(400 * MS, measured, ZERO).positions, -2.0)
    assert ex.stats.replaced_while_running == 1 and ex.stats.accepted == 3


def test_cubic_with_velocities_matches_end_conditions() -> None:
    ex = TrajectoryExecutor(JOINTS)
    ex.update(0, ZERO, ZERO)
    rows = [[0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [2.0, 0.0, 0.5]]
    vels = [[0.0, 0.0, 0.0], [5.0, 0.0, -1.0], [0.0, 0.0, 0.0]]
    ex.offer(_cmd(rows, [20, 220, 420], stamp_ns=100 * MS, velocities=vels), 0)
    # points due at stamp + time_from_start: 120, 320, 520 ms
    samples = {t: ex.update(t * MS, ZERO, ZERO) for t in (120, 121, 319, 320, 321, 520)}
    np.testing.assert_allclose(samples[320].positions, rows[1], atol=1e-12)
    np.testing.assert_allclose(samples[320].velocities, vels[1], atol=1e-12)
    np.testing.assert_allclose(samples[319].positions, rows[1], atol=0.02)  # continuous across the point
    assert samples[520].phase is ExecutionPhase.HOLDING
    # with velocities the path is not linear: mid-segment velocity differs from the secant
    mid = ex.update(420 * MS, ZERO, ZERO)
    assert not np.allclose(mid.velocities, (np.array(rows[2]) - rows[1]) / 0.2)


def test_holding_cycles_count_missed_periods_after_the_first_trajectory() -> None:
    ex = TrajectoryExecutor(JOINTS)
    for t in range(0, 100, 20):
        ex.update(t * MS, ZERO, ZERO)
    assert ex.stats.holding_cycles == 0  # idle before the first trajectory is not a miss
    ex.offer(_cmd([[1.0, 1.0, 1.0]], [40]), 100 * MS)
    phases = [ex.update(t * MS, ZERO, ZERO).phase for t in range(100, 240, 20)]
    assert phases[:2] == [ExecutionPhase.APPROACH] * 2
    assert ex.stats.holding_cycles == phases.count(ExecutionPhase.HOLDING) == 5


def test_interpolate_from_desired_state_uses_the_last_command() -> None:
    ex = TrajectoryExecutor(JOINTS, interpolate_from_desired_state=True)
    ex.update(0, np.array([1.0, 1.0, 1.0]), ZERO)
    ex.offer(_cmd([[3.0, 3.0, 3.0]], [100]), 0)
    sp = ex.update(20 * MS, np.array([7.0, 7.0, 7.0]), ZERO)
    np.testing.assert_allclose(sp.positions, 1.0)


finite = st.floats(-10, 10, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(p0=finite, p1=finite, v0=finite, v1=finite, a0=finite, a1=finite, duration=st.floats(0.01, 2.0))
def test_interpolation_meets_both_ends(p0: float, p1: float, v0: float, v1: float, a0: float, a1: float,
                                       duration: float) -> None:
    def state(p: float, v: float | None, a: float | None) -> PointState:
        return PointState(np.array([p]), None if v is None else np.array([v]), None if a is None else np.array([a]))

    for va, vb, aa, ab in ((None, None, None, None), (v0, v1, None, None), (v0, v1, a0, a1)):
        a, b = state(p0, va, aa), state(p1, vb, ab)
        start, end = interpolate(a, b, duration, 0.0), interpolate(a, b, duration, duration)
        assert start.positions[0] == pytest.approx(p0, abs=1e-6)
        assert end.positions[0] == pytest.approx(p1, abs=1e-6)
        if va is not None:
            assert start.velocities is not None and end.velocities is not None
            assert start.velocities[0] == pytest.approx(v0, abs=1e-6)
            assert end.velocities[0] == pytest.approx(v1, abs=1e-5)
        if aa is not None:
            assert start.accelerations is not None and end.accelerations is not None
            assert start.accelerations[0] == pytest.approx(a0, abs=1e-5)
            assert end.accelerations[0] == pytest.approx(a1, rel=1e-5, abs=1e-4)
