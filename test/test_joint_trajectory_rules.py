"""The ROS-free JTC acceptance rules: every rejection branch of validate_trajectory_msg, plus hazards."""

from __future__ import annotations

import math

import pytest

from wallx_ros.core.joint_trajectory_rules import JtcOptions, Point, hazards, time_from_start_ns, validate

JOINTS = ("j1", "j2", "j3")
S = 1_000_000_000
NOW = 100 * S


def _points(n: int = 3, dt_ns: int = 20_000_000, last_vel: float = 0.0) -> list[Point]:
    pts = [Point(positions=(0.1 * i, 0.2, 0.3), velocities=(0.5, 0.0, 0.0), time_from_start=(i + 1) * dt_ns)
           for i in range(n)]
    pts[-1] = Point(positions=pts[-1].positions, velocities=(last_vel, 0.0, 0.0), time_from_start=n * dt_ns)
    return pts


def test_a_good_trajectory_is_accepted() -> None:
    assert validate(JOINTS, _points(), JOINTS, NOW, NOW) == []
    assert validate(JOINTS, _points(), JOINTS, NOW, 0) == []  # stamp 0 = start now
    # any joint order is fine, JTC sorts to its own order
    assert validate(("j3", "j1", "j2"), _points(), JOINTS, NOW, NOW) == []
    # past stamp whose END is still in the future: accepted (JTC skips the past points)
    assert validate(JOINTS, _points(), JOINTS, NOW, NOW - 50_000_000) == []
    # velocities may be omitted entirely
    assert validate(JOINTS, [Point((0, 0, 0), 1), Point((1, 1, 1), 2)], JOINTS, NOW, 0) == []


@pytest.mark.parametrize(
    ("names", "points", "stamp", "expected"),
    [
        (("j1", "j2"), _points(), NOW, "controller has 3 joints"),
        ((), _points(), NOW, "joint_names is empty"),
        (JOINTS, [], NOW, "no points"),
        (("j1", "j2", "elbow"), _points(), NOW, "['elbow'] are not controller joints"),
        (JOINTS, _points(last_vel=0.01), NOW, "last point has non-zero velocity for ['j1']"),
        (JOINTS, _points(), NOW - 200_000_000, "ends in the past"),
        (JOINTS, _points(), -5, "negative"),
        (JOINTS, [Point((0, 0, 0), 20), Point((0, 0, 0), 20)], NOW, "not strictly increasing at point 1"),
        (JOINTS, [Point((0, 0, 0), 20), Point((0, 0, 0), 10)], NOW, "not strictly increasing"),
        (JOINTS, [Point((0, 0), 20)], NOW, "2 positions for 3 joint names"),
        (JOINTS, [Point((), 20)], NOW, "0 positions"),
        (JOINTS, [Point((0, 0, 0), 20, velocities=(0, 0))], NOW, "2 velocities"),
        (JOINTS, [Point((0, 0, 0), 20, accelerations=(0,))], NOW, "1 accelerations"),
        (JOINTS, [Point((0, 0, 0), 20, effort=(0, 0, 0))], NOW, "effort"),
    ],
)
def test_each_jtc_rejection(names: tuple[str, ...], points: list[Point], stamp: int, expected: str) -> None:
    problems = validate(names, points, JOINTS, NOW, stamp)
    assert any(expected in p for p in problems), problems


def test_velocity_within_float_epsilon_counts_as_zero() -> None:
    assert validate(JOINTS, _points(last_vel=1e-8), JOINTS, NOW, NOW) == []


def test_end_exactly_now_is_accepted() -> None:
    pts = _points(n=2, dt_ns=10)
    assert validate(JOINTS, pts, JOINTS, NOW, NOW - 20) == []
    assert validate(JOINTS, pts, JOINTS, NOW, NOW - 21) != []


def test_options_relax_rules() -> None:
    opt = JtcOptions(allow_partial_joints_goal=True, allow_nonzero_velocity_at_trajectory_end=True,
                     allow_integration_in_goal_trajectories=True, has_effort_command_interface=True)
    pts = [Point((), 20, velocities=(0.1, 0.2)), Point((), 40, velocities=(0.3, 0.4), effort=(1.0, 1.0))]
    assert validate(("j1", "j2"), pts, JOINTS, NOW, NOW, opt) == []
    assert any("no positions, velocities or accelerations" in p
               for p in validate(("j1", "j2"), [Point((), 20)], JOINTS, NOW, NOW, opt))


def test_hazards_jtc_lets_through() -> None:
    assert hazards(JOINTS, _points()) == []
    assert "joint names repeat: ['j1']" in hazards(("j1", "j1", "j2"), _points())
    bad = [Point((0.0, math.nan, 0.0), 20, velocities=(math.inf, 0, 0))]
    found = hazards(JOINTS, bad)
    assert "point 0: non-finite positions for ['j2']" in found and "point 0: non-finite velocities for ['j1']" in found
    # JTC itself would accept the NaN trajectory: that is why hazards() exists
    assert validate(JOINTS, [Point((0.0, math.nan, 0.0), 20)], JOINTS, NOW, 0) == []


def test_ros_messages_work_directly() -> None:
    trajectory_msgs = pytest.importorskip("trajectory_msgs.msg", reason="ROS message wheels not installed")
    point = trajectory_msgs.JointTrajectoryPoint()
    point.positions = [0.0, 0.0, 0.0]
    point.velocities = [0.0, 0.0, 0.0]
    point.time_from_start.sec = 1
    point.time_from_start.nanosec = 5
    assert time_from_start_ns(point) == S + 5
    assert validate(JOINTS, [point], JOINTS, NOW, NOW) == []
    point.velocities = [0.0, 1.0, 0.0]
    assert any("non-zero velocity for ['j2']" in p for p in validate(JOINTS, [point], JOINTS, NOW, NOW))
