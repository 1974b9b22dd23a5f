"""core/safety.py pinned by quantity, not only by feature (issue 21, mutation testing): the exact boundary of every
limit (1.0x passes untouched, 1.2x is cut to exactly the limit), apply() without an anchor, URDF columns and
joints missing from a mapping, acceleration from the anchor's velocity, rest at the end, braking, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wallx_ros.core.errors import JointLimitsError
from wallx_ros.core.safety import JointLimits, SafetyFilter

MS = 1_000_000
DT = 0.02
INF = math.inf


def _times(n: int, start_ms: int = 20) -> np.ndarray:
    return (start_ms + np.arange(n) * 20).astype(np.int64) * MS


def _limits(vmax: float = INF, amax: float = INF, lower: float = -INF, upper: float = INF, n: int = 1) -> JointLimits:
    names = tuple(f"j{i}" for i in range(n))
    return JointLimits(names, (lower,) * n, (upper,) * n, (vmax,) * n, (amax,) * n)


@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_speed_at_or_below_the_limit_passes_untouched(ratio: float) -> None:
    step = 1.0 * DT * ratio  # vmax 1: a step of DT is exactly the limit
    pos = np.cumsum(np.full((5, 1), step), axis=0)
    res = SafetyFilter(_limits(vmax=1.0)).apply(_times(5), pos, anchor=(0, np.zeros(1)))
    assert res.ok and res.adjustments == ()
    np.testing.assert_array_equal(res.positions, pos)


@pytest.mark.parametrize("ratio", [1.2, 2.0, 5.0])
def test_speed_over_the_limit_is_cut_to_exactly_the_limit(ratio: float) -> None:
    pos = np.cumsum(np.full((5, 1), DT * ratio), axis=0)
    res = SafetyFilter(_limits(vmax=1.0)).apply(_times(5), pos, anchor=(0, np.zeros(1)))
    assert res.positions is not None and res.velocities is not None
    np.testing.assert_allclose(res.positions[:, 0], DT * np.arange(1, 6), rtol=1e-12)
    np.testing.assert_allclose(res.velocities[:-1, 0], 1.0)
    # one step over (then the target stays): the report names that step's ratio
    single = np.array([[DT * ratio], [DT * ratio]])
    res = SafetyFilter(_limits(vmax=1.0)).apply(_times(2), single, anchor=(0, np.zeros(1)))
    assert res.adjustments == (f"rate-limited: max_velocity exceeded on ['j0'] (up to {ratio:.2f}x the limit)",)
    np.testing.assert_allclose(res.positions[:, 0], [DT, min(DT * ratio, 2 * DT)])  # type: ignore[index]
    rejected = SafetyFilter(_limits(vmax=1.0), "reject").apply(_times(2), single, anchor=(0, np.zeros(1)))
    assert not rejected.ok and rejected.rejected == f"max_velocity exceeded on ['j0'] (up to {ratio:.2f}x the limit)"


def test_without_an_anchor_the_first_point_is_kept_and_limits_apply_from_it() -> None:
    pos = np.array([[5.0], [5.0 + 3 * DT], [5.0 + 3 * DT]])
    res = SafetyFilter(_limits(vmax=1.0)).apply(_times(3), pos)
    assert res.positions is not None
    np.testing.assert_allclose(res.positions[:, 0], [5.0, 5.0 + DT, 5.0 + 2 * DT])
    # with an acceleration limit too: no anchor velocity is known, the second point is free within the speed
    res = SafetyFilter(_limits(vmax=1.0, amax=10.0)).apply(_times(4), np.array([[0.0], [0.02], [0.04], [0.06]]))
    assert res.positions is not None and res.positions[0, 0] == 0.0


def test_points_at_or_before_the_anchor_time_are_not_limited() -> None:
    """A point before the anchor (already past for the controller) is kept; the next ones are limited from it."""
    times = np.array([10, 20, 40], dtype=np.int64) * MS
    pos = np.array([[3.0], [9.0], [9.0]])
    res = SafetyFilter(_limits(vmax=1.0)).apply(times, pos, anchor=(20 * MS, np.zeros(1)))
    assert res.positions is not None
    np.testing.assert_allclose(res.positions[:, 0], [3.0, 3.01, 3.03])
    at_anchor = SafetyFilter(_limits(vmax=1.0)).apply(times, pos, anchor=(10 * MS, np.zeros(1)))
    np.testing.assert_allclose(at_anchor.positions[:, 0], [3.0, 3.01, 3.03])  # type: ignore[index]


def test_an_anchor_outside_the_limits_starts_from_the_limit() -> None:
    res = SafetyFilter(_limits(vmax=1.0, lower=-1.0, upper=1.0)).apply(_times(2), np.array([[1.0], [1.0]]),
                                                                        anchor=(0, np.array([3.0])))
    assert res.positions is not None
    np.testing.assert_allclose(res.positions[:, 0], [1.0, 1.0])
    nan_anchor = SafetyFilter(_limits(vmax=1.0)).apply(_times(2), np.array([[1.0], [1.0]]),
                                                         anchor=(0, np.array([math.nan])))
    np.testing.assert_allclose(nan_anchor.positions[:, 0], [1.0, 1.0])  # type: ignore[index]


def test_position_clamp_reports_the_worst_joint_and_excess() -> None:
    lim = JointLimits(("a", "b"), (-1.0, -2.0), (1.0, 2.0), (INF, INF))
    pos = np.array([[0.0, 2.5], [-1.25, 0.0], [1.0, -2.0]])
    res = SafetyFilter(lim).apply(_times(3), pos)
    assert res.adjustments == ("clamped: position limits exceeded on ['a', 'b'] (worst b by 0.5)",)
    np.testing.assert_array_equal(res.positions, [[0.0, 2.0], [-1.0, 0.0], [1.0, -2.0]])
    exact = SafetyFilter(lim).apply(_times(3), np.array([[1.0, 2.0], [-1.0, -2.0], [0.0, 0.0]]))
    assert exact.adjustments == ()


def test_malformed_input_is_rejected_with_its_shape_or_joints() -> None:
    f = SafetyFilter(_limits(n=2))
    res = f.apply(_times(3), np.zeros((3, 3)))
    assert res.rejected == "trajectory shape (3, 3) does not match 3 points x 2 joints"
    assert f.apply(_times(2), np.zeros((3, 2))).rejected.startswith("trajectory shape (3, 2)")
    assert f.apply(_times(3), np.zeros(3)).rejected.startswith("trajectory shape (3,)")
    pos = np.zeros((3, 2))
    pos[1, 1] = pos[2, 1] = -math.inf
    assert f.apply(_times(3), pos).rejected == ("non-finite positions (NaN/Inf) at 2 values, joints ['j1']: "
                                                "nothing published")


def test_mapping_and_reorder_take_the_right_columns_and_leave_missing_joints_unlimited() -> None:
    urdf = {"a": (-1.0, 2.0, 3.0), "b": (-4.0, 5.0, 6.0)}
    lim = JointLimits.from_mapping(("b", "x", "a"), urdf, {"a": 7.0})
    assert lim.lower == (-4.0, -INF, -1.0) and lim.upper == (5.0, INF, 2.0)
    assert lim.max_velocity == (6.0, INF, 3.0) and lim.max_acceleration == (INF, INF, 7.0)
    again = lim.reorder(("a", "y", "b"))
    assert again.names == ("a", "y", "b")
    assert again.lower == (-1.0, -INF, -4.0) and again.upper == (2.0, INF, 5.0)
    assert again.max_velocity == (3.0, INF, 6.0) and again.max_acceleration == (7.0, INF, INF)
    assert JointLimits.from_mapping(("a",), urdf).max_acceleration == (INF,)
    assert lim.unbounded() == {"position range": ("x",), "max_velocity": ("x",)}
    assert JointLimits.from_mapping(("a", "b"), urdf).unbounded() == {}
    assert JointLimits(("a",), (-1.0,), (INF,), (1.0,)).unbounded() == {"position range": ("a",)}
    assert JointLimits(("a",), (-INF,), (1.0,), (1.0,)).unbounded() == {"position range": ("a",)}


def test_from_parameters_one_value_per_joint_or_for_all() -> None:
    base = JointLimits(("a", "b"), (-1.0, -2.0), (1.0, 2.0), (3.0, 4.0), (5.0, 6.0))
    lim = JointLimits.from_parameters(("b", "a"), [-9.0], [], [0.5, 0.7], base, [8.0])
    assert lim.lower == (-9.0, -9.0) and lim.upper == (2.0, 1.0)
    assert lim.max_velocity == (0.5, 0.7) and lim.max_acceleration == (8.0, 8.0)
    assert JointLimits.from_parameters(("a",), [], [], []).upper == (INF,)
    with pytest.raises(JointLimitsError, match="parameter max_acceleration has 3 values: give 0, 1 or 2"):
        JointLimits.from_parameters(("a", "b"), [], [], [], None, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lower": (0.0, 0.0, 0.0)}, "lower has 3 values for 2 joints ['a', 'b']"),
    ({"max_acceleration": (1.0,)}, "max_acceleration has 1 values for 2 joints ['a', 'b']"),
    ({"upper": (math.nan, 1.0)}, "upper contains NaN: use inf for 'no limit'"),
    ({"max_acceleration": (1.0, math.nan)}, "max_acceleration contains NaN: use inf for 'no limit'"),
    ({"lower": (2.0, 0.0)}, "lower > upper for joints ['a']"),
    ({"max_velocity": (1.0, -1.0)}, "max_velocity must be > 0 (inf = unlimited) for joints ['b']"),
    ({"max_acceleration": (0.0, 1.0)}, "max_acceleration must be > 0 (inf = unlimited) for joints ['a']"),
])
def test_limit_validation(kwargs: dict[str, tuple[float, ...]], message: str) -> None:
    args = {"lower": (0.0, 0.0), "upper": (1.0, 1.0), "max_velocity": (1.0, 1.0), "max_acceleration": (1.0, 1.0)}
    args.update(kwargs)
    with pytest.raises(JointLimitsError) as err:
        JointLimits(("a", "b"), **args)
    assert str(err.value) == message
    assert JointLimits(("a", "b"), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)).max_acceleration == (INF, INF)
    assert not JointLimits.unlimited(("a",)).any_limit
    assert JointLimits(("a",), (-INF,), (INF,), (INF,), (1.0,)).any_limit


def test_acceleration_ramps_up_from_rest_and_comes_to_rest_at_the_end() -> None:
    amax, vmax = 10.0, 1.0  # 0.2 rad/s per 20 ms row
    target = np.full((20, 1), 5.0)  # far away: the filter ramps, cruises, then must stop by the last point
    res = SafetyFilter(_limits(vmax=vmax, amax=amax)).apply(_times(20), target, anchor=(0, np.zeros(1)))
    assert res.positions is not None
    p = np.concatenate([[0.0], res.positions[:, 0]])
    v = np.diff(p) / DT
    np.testing.assert_allclose(v[:5], [0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-12)  # +a*dt per row from rest
    assert np.all(np.abs(np.diff(np.concatenate([[0.0], v, [0.0]]))) <= amax * DT + 1e-12)  # and down to rest
    assert v[-1] == pytest.approx(0.2) and np.all(v <= vmax + 1e-12)
    assert any("max_acceleration exceeded on ['j0'] (up to" in a for a in res.adjustments)
    rejected = SafetyFilter(_limits(vmax=vmax, amax=amax), "reject").apply(_times(20), target,
                                                                          anchor=(0, np.zeros(1)))
    assert not rejected.ok and "max_acceleration exceeded on ['j0']" in rejected.rejected


def test_acceleration_starts_from_the_anchors_velocity() -> None:
    f = SafetyFilter(_limits(vmax=2.0, amax=10.0))
    moving = np.array([1.0])
    # the plan would stop at once: with the anchor moving at 1 rad/s it can only slow down by 0.2 per row
    res = f.apply(_times(8), np.zeros((8, 1)), anchor=(0, np.zeros(1)), anchor_velocity=moving)
    assert res.positions is not None
    v = np.diff(np.concatenate([[0.0], res.positions[:, 0]])) / DT
    np.testing.assert_allclose(v[:5], [0.8, 0.6, 0.4, 0.2, 0.0], atol=1e-12)
    # a plan that keeps the anchor's speed passes untouched until it has to stop
    cruise = np.cumsum(np.full((30, 1), DT), axis=0)
    res = f.apply(_times(30), cruise, anchor=(0, np.zeros(1)), anchor_velocity=moving)
    assert res.positions is not None
    np.testing.assert_allclose(res.positions[:20, 0], cruise[:20, 0], atol=1e-12)


def test_no_room_to_stop_before_a_position_limit() -> None:
    f = SafetyFilter(_limits(vmax=5.0, amax=10.0, upper=0.1))
    res = f.apply(_times(30), np.full((30, 1), 0.1), anchor=(0, np.zeros(1)))
    assert res.positions is not None and np.all(res.positions <= 0.1 + 1e-12)
    v = np.diff(np.concatenate([[0.0], res.positions[:, 0], [res.positions[-1, 0]]])) / DT
    assert np.all(np.abs(np.diff(np.concatenate([[0.0], v]))) <= 10.0 * DT + 1e-9)
    # arriving at full speed next to the limit: braking as hard as allowed, reported
    res = f.apply(_times(5), np.full((5, 1), 0.1), anchor=(0, np.array([0.09])), anchor_velocity=np.array([5.0]))
    assert res.positions is not None and np.all(res.positions <= 0.1 + 1e-12)
    assert any("start velocity is too high" in a for a in res.adjustments)


def test_point_velocities_are_central_differences_clipped_and_zero_at_the_end() -> None:
    f = SafetyFilter(_limits(vmax=3.0))
    times = np.array([0.0, 0.1, 0.3, 0.4])
    pos = np.array([[0.0], [0.1], [0.9], [1.5]])
    vel = f.velocities(times, pos)
    np.testing.assert_allclose(vel[:, 0], [1.0, 3.0, 3.0, 0.0])  # (0.9-0)/0.3 = 3.0, (1.5-0.1)/0.3 = 4.67 -> 3
    np.testing.assert_allclose(f.velocities(np.array([0.0, 0.1, 0.2]), np.array([[0.0], [-0.1], [-0.4]]))[:, 0],
                               [-1.0, -2.0, 0.0])
    np.testing.assert_array_equal(f.velocities(np.array([0.0]), np.array([[2.0]])), [[0.0]])


def test_stream_step_obeys_speed_acceleration_and_meets_the_target_without_overshoot() -> None:
    f = SafetyFilter(_limits(vmax=1.0, amax=10.0, lower=-1.0, upper=1.0))
    pos, vel = np.zeros(1), np.zeros(1)
    trace = []
    for _ in range(100):
        pos, vel = f.stream_step(np.array([0.5]), np.zeros(1), pos, vel, DT)
        trace.append((pos[0], vel[0]))
    p = np.array([t[0] for t in trace])
    v = np.array([t[1] for t in trace])
    assert np.all(p <= 0.5 + 1e-12) and p[-1] == pytest.approx(0.5, abs=1e-9)
    assert np.all(np.abs(v) <= 1.0 + 1e-12) and np.all(np.abs(np.diff(np.concatenate([[0.0], v]))) <= 0.2 + 1e-12)
    np.testing.assert_allclose(v[:3], [0.2, 0.4, 0.6])
    # a target outside the limits is clamped; no time: no motion
    p2, _v2 = f.stream_step(np.array([9.0]), np.zeros(1), np.array([0.99]), np.zeros(1), DT)
    assert p2[0] <= 1.0
    same, still = f.stream_step(np.array([0.5]), np.zeros(1), np.array([0.1]), np.array([0.3]), 0.0)
    assert same[0] == 0.1 and still[0] == 0.0
    # speed only (no acceleration limit): the old rule, at most vmax * dt towards the target
    g = SafetyFilter(_limits(vmax=1.0))
    np.testing.assert_allclose(g.stream_step(np.array([0.5]), np.zeros(1), np.zeros(1), np.zeros(1), DT)[0], [DT])
    np.testing.assert_allclose(g.stream_step(np.array([0.01]), np.zeros(1), np.zeros(1), np.zeros(1), DT)[0], [0.01])


def test_stream_step_follows_a_moving_target_without_lag() -> None:
    f = SafetyFilter(_limits(vmax=2.0, amax=10.0))
    pos, vel = np.zeros(1), np.array([1.0])
    for k in range(1, 20):  # target moving at 1 rad/s, the stream already on it
        pos, vel = f.stream_step(np.array([k * DT]), np.array([1.0]), pos, vel, DT)
        assert pos[0] == pytest.approx(k * DT) and vel[0] == pytest.approx(1.0)


def test_braking_decelerates_at_the_limit_until_rest() -> None:
    lim = JointLimits(("a", "b"), (-INF, -INF), (INF, INF), (2.0, 2.0), (10.0, INF))
    points, speeds = SafetyFilter(lim).braking(np.array([0.0, 1.0]), np.array([1.0, 5.0]), DT)
    assert points.shape == (5, 2)
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], points[:, 0]])) / DT, [0.8, 0.6, 0.4, 0.2, 0.0],
                               atol=1e-12)
    np.testing.assert_array_equal(points[:, 1], 1.0)  # no acceleration limit: stops at once
    np.testing.assert_array_equal(speeds[-1], [0.0, 0.0])
    np.testing.assert_allclose(speeds[:-1, 0], [0.8, 0.6, 0.4, 0.2])
    rest_p, rest_v = SafetyFilter(lim).braking(np.array([0.3, 0.4]), np.zeros(2), DT)
    np.testing.assert_array_equal(rest_p, [[0.3, 0.4]])
    np.testing.assert_array_equal(rest_v, [[0.0, 0.0]])
    fast = SafetyFilter(lim).braking(np.zeros(2), np.array([-50.0, math.nan]), DT)[0]
    assert len(fast) == 10 and fast[-1, 0] == pytest.approx(-0.02 * (1.8 + 1.6 + 1.4 + 1.2 + 1.0 + 0.8 + 0.6 + 0.4
                                                                     + 0.2))


def test_violation_policy_is_checked() -> None:
    with pytest.raises(JointLimitsError, match="on_violation must be one of"):
        SafetyFilter(_limits(), "ignore")


def test_records_defaults_and_any_limit() -> None:
    import dataclasses

    from wallx_ros.core.safety import SafetyResult

    bare = SafetyResult(None, None)
    assert bare.ok and bare.rejected == "" and bare.adjustments == ()
    lim = _limits(vmax=1.0)
    window = SafetyFilter(lim).step_limits(np.zeros(1), None, DT)
    for record, field_name in ((lim, "names"), (bare, "rejected"), (window, "low")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, field_name, None)
    assert JointLimits(("a",), (0.0,), (INF,), (INF,)).any_limit
    assert JointLimits(("a",), (-INF,), (0.0,), (INF,)).any_limit
    for label in ("max_velocity", "lower"):
        args = {"lower": (0.0,), "upper": (1.0,), "max_velocity": (1.0,)}
        args[label] = (math.nan,)
        with pytest.raises(JointLimitsError, match=f"^{label} contains NaN"):
            JointLimits(("a",), **args)  # type: ignore[arg-type]
    for label, values in (("position_lower", ([0, 1, 2], [], [])), ("position_upper", ([], [0, 1, 2], [])),
                          ("max_velocity", ([], [], [0, 1, 2]))):
        with pytest.raises(JointLimitsError, match=f"^parameter {label} has 3 values"):
            JointLimits.from_parameters(("a", "b"), *values)


def test_relative_slack_is_one_part_in_a_billion() -> None:
    f = SafetyFilter(_limits(vmax=1.0))
    within = f.apply(_times(2), np.array([[DT * (1 + 5e-10)], [DT * (1 + 5e-10)]]), anchor=(0, np.zeros(1)))
    assert within.adjustments == ()
    over = f.apply(_times(2), np.array([[DT * (1 + 1.5e-9)], [DT * (1 + 1.5e-9)]]), anchor=(0, np.zeros(1)))
    assert over.adjustments == ("rate-limited: max_velocity exceeded on ['j0'] (up to 1.00x the limit)",)


def test_anchor_time_and_velocity_are_used_as_given() -> None:
    f = SafetyFilter(_limits(vmax=1.0, amax=10.0))
    times = np.array([40, 60], dtype=np.int64) * MS
    res = f.apply(times, np.full((2, 1), 5.0), anchor=(20 * MS, np.zeros(1)))  # 20 ms before the first point
    np.testing.assert_allclose(res.positions[:, 0], [0.004, 0.008])  # type: ignore[index]  # 0.2 then 0.2 (rest)
    nan_velocity = f.apply(times, np.full((2, 1), 5.0), anchor=(20 * MS, np.zeros(1)),
                           anchor_velocity=np.array([math.nan]))
    np.testing.assert_allclose(nan_velocity.positions, res.positions)  # type: ignore[arg-type]
    # a point before the anchor keeps the anchor's velocity for the acceleration limit of the next one
    before = f.apply(np.array([10, 30], dtype=np.int64) * MS, np.array([[0.5], [0.5]]),
                     anchor=(20 * MS, np.zeros(1)), anchor_velocity=np.array([1.0]))
    np.testing.assert_allclose(before.positions[:, 0], [0.5, 0.5 + 0.2 * DT])  # type: ignore[index]


def test_rest_caps_follow_the_real_row_spacing() -> None:
    f = SafetyFilter(_limits(vmax=5.0, amax=10.0))
    # anchor at 0 moving at 1 rad/s; rows at 30 and 50 ms: caps a*(0.02 + 0.02) = 0.4 and a*0.02 = 0.2
    res = f.apply(np.array([30, 50], dtype=np.int64) * MS, np.full((2, 1), 10.0), anchor=(0, np.zeros(1)),
                  anchor_velocity=np.array([1.0]))
    np.testing.assert_allclose(res.positions[:, 0], [0.4 * 0.03, 0.4 * 0.03 + 0.2 * 0.02])  # type: ignore[index]
    assert any("start velocity is too high" in a for a in res.adjustments)
    one = f.apply(np.array([30], dtype=np.int64) * MS, np.full((1, 1), 10.0), anchor=(10 * MS, np.zeros(1)),
                  anchor_velocity=np.array([1.0]))  # one row: the cap comes from the anchor's spacing (20 ms)
    np.testing.assert_allclose(one.positions[:, 0], [0.2 * 0.02])  # type: ignore[index]


def test_both_adjustments_are_reported_and_the_lower_limit_brakes_too() -> None:
    f = SafetyFilter(_limits(vmax=1.0, lower=-0.05, upper=0.05))
    res = f.apply(_times(3), np.array([[0.2], [0.2], [0.2]]), anchor=(0, np.zeros(1)))
    assert [a.split(":")[0] for a in res.adjustments] == ["clamped", "rate-limited"]
    g = SafetyFilter(_limits(vmax=5.0, amax=10.0, lower=-0.1))
    down = g.apply(_times(30), np.full((30, 1), -0.1), anchor=(0, np.zeros(1)))
    assert down.positions is not None and np.all(down.positions >= -0.1 - 1e-12)
    v = np.diff(np.concatenate([[0.0], down.positions[:, 0]])) / DT
    assert np.all(np.abs(np.diff(np.concatenate([[0.0], v]))) <= 10.0 * DT + 1e-9)
    assert down.positions[-1, 0] == pytest.approx(-0.1, abs=1e-3)


def test_a_window_of_one_value_is_feasible() -> None:
    """At the upper limit moving towards it at exactly a*dt: the only allowed velocity is 0, and it is allowed."""
    f = SafetyFilter(_limits(vmax=1.0, amax=10.0, upper=0.0))
    res = f.apply(_times(3), np.zeros((3, 1)), anchor=(0, np.zeros(1)), anchor_velocity=np.array([0.2]))
    assert res.positions is not None and not any("start velocity" in a for a in res.adjustments)
    window = f.step_limits(np.zeros(1), np.array([0.2]), DT)
    assert window.low[0] == window.high[0] == 0.0 and window.feasible.all()


# -- second round (issue 21, mutation run of the whole module: survivors in velocities(), the reports, _speeding) --
def test_velocities_are_the_finite_differences_at_every_point() -> None:
    """First point: forward difference; inner points: central; last: zero (rest); all clipped to max_velocity."""
    f = SafetyFilter(_limits(vmax=3.0, n=2))
    t = np.array([0.0, 0.02, 0.05, 0.09])
    pos = np.array([[0.0, 1.0], [0.01, 0.9], [0.03, 0.75], [0.02, 0.8]])
    vel = f.velocities(t, pos)
    np.testing.assert_allclose(vel[0], [(0.01 - 0.0) / 0.02, -3.0])  # -5 clipped to -3
    np.testing.assert_allclose(vel[1], [(0.03 - 0.0) / 0.05, -3.0])  # -5 clipped
    np.testing.assert_allclose(vel[2], [(0.02 - 0.01) / 0.07, (0.8 - 0.9) / 0.07])
    np.testing.assert_array_equal(vel[3], [0.0, 0.0])
    two = f.velocities(t[:2], pos[:2])  # two points: forward difference, then rest
    np.testing.assert_allclose(two, [[0.5, -3.0], [0.0, 0.0]])
    np.testing.assert_array_equal(f.velocities(t[:1], pos[:1]), [[0.0, 0.0]])


def test_reports_name_the_joint_and_the_exact_ratio() -> None:
    # speed only: one point 2x max_velocity (0.5) away from an anchor at rest (with more points, each next step is
    # measured from the point as cut, and asks for more)
    res = SafetyFilter(_limits(vmax=0.5)).apply(_times(1), np.array([[2 * 0.5 * DT]]), anchor=(0, np.zeros(1)))
    assert res.adjustments == ("rate-limited: max_velocity exceeded on ['j0'] (up to 2.00x the limit)",)
    # acceleration only: moving at +0.5 (the anchor's velocity), the trajectory asks for -0.7 at once: a change of
    # 1.2 in one 20 ms step where max_acceleration 10 allows 0.2, i.e. 6x
    pos = np.array([[-0.7 * DT]])
    res = SafetyFilter(_limits(amax=10.0)).apply(_times(1), pos, anchor=(0, np.zeros(1)),
                                                 anchor_velocity=np.array([0.5]))
    # (the one point must also bring 0.5 to rest: more than max_acceleration can, which the second line says)
    assert res.adjustments[0].startswith(
        "rate-limited: max_acceleration exceeded on ['j0'] (up to 6.00x the limit"), res.adjustments
    # both: -0.5 is 1.25x max_velocity 0.4 AND a change of 1.0 from +0.5 (5x max_acceleration 10 over 20 ms)
    res = SafetyFilter(_limits(vmax=0.4, amax=10.0)).apply(_times(1), np.array([[-0.5 * DT]]),
                                                          anchor=(0, np.zeros(1)), anchor_velocity=np.array([0.5]))
    assert res.adjustments[0] == "rate-limited: max_velocity exceeded on ['j0'] (up to 1.25x the limit)"
    assert res.adjustments[1].startswith("rate-limited: max_acceleration exceeded on ['j0'] (up to 5.00x"), \
        res.adjustments


def test_a_far_anchor_is_a_speeding_start_even_when_the_points_are_slow() -> None:
    """The anchor (where the robot is commanded) is 1 rad from a slow trajectory that starts near 0: the first
    step is 50 rad/s. The pre-check must see it from the anchor's position (not from zero) and the step is cut."""
    pos = 0.001 * np.arange(4)[:, None]
    res = SafetyFilter(_limits(vmax=1.0)).apply(_times(4), pos, anchor=(0, np.array([1.0])))
    assert res.ok and res.positions is not None
    assert res.positions[0, 0] == pytest.approx(1.0 - 1.0 * DT)
    assert res.adjustments and "max_velocity exceeded" in res.adjustments[0]
    # a slow limit (0.5): a step at 2x it is speeding (the pre-check scales the step time by the limit)
    res = SafetyFilter(_limits(vmax=0.5)).apply(_times(1), np.array([[1.0 * DT]]), anchor=(0, np.zeros(1)))
    assert res.positions is not None and res.positions[0, 0] == pytest.approx(0.5 * DT)


@pytest.mark.parametrize("start_velocity", [0.0, 0.5, -0.5])
@pytest.mark.parametrize("target_velocity", [0.0, 0.3])
@pytest.mark.parametrize("error", [0.002, 0.05, 2.0])
def test_a_streamed_approach_from_below_mirrors_the_one_from_above(start_velocity: float, target_velocity: float,
                                                                   error: float) -> None:
    """stream_step towards a target below is the mirror image of the approach to one above (the same limits,
    every sign flipped): the braking window on each side must use its own direction."""
    f = SafetyFilter(_limits(vmax=1.0, amax=10.0))
    up = f.stream_step(np.array([error]), np.array([target_velocity]), np.zeros(1), np.array([start_velocity]), DT)
    down = f.stream_step(np.array([-error]), np.array([-target_velocity]), np.zeros(1), np.array([-start_velocity]),
                         DT)
    np.testing.assert_allclose(down[0], -up[0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(down[1], -up[1], rtol=0, atol=1e-15)
