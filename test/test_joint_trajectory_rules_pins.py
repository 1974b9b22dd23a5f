"""core/joint_trajectory_rules.py pinned by quantity (issue 21, mutation testing): exact boundaries (float32 epsilon,
one effort entry), values beyond the joint names, the times in the messages, hazards row by row."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from wallx_ros.core.joint_trajectory_rules import JtcOptions, Point, hazards, validate

JOINTS = ("j1", "j2", "j3")
S = 1_000_000_000
NOW = 100 * S
EPS32 = float(np.finfo(np.float32).eps)


def _good(n: int = 2) -> list[Point]:
    return [Point((0.0, 0.0, 0.0), (i + 1) * 20_000_000, velocities=(0.0, 0.0, 0.0)) for i in range(n)]


def test_defaults_are_jtcs_and_the_records_are_immutable() -> None:
    opt = JtcOptions()
    assert (opt.allow_partial_joints_goal, opt.allow_nonzero_velocity_at_trajectory_end,
            opt.allow_integration_in_goal_trajectories, opt.has_effort_command_interface) == (False,) * 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        opt.allow_partial_joints_goal = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        _good()[0].time_from_start = 5  # type: ignore[misc]


def test_end_velocity_exactly_float32_epsilon_is_zero_and_extra_values_are_numbered() -> None:
    last = Point((0.0, 0.0, 0.0), 40_000_000, velocities=(EPS32, -EPS32, 0.0))
    assert validate(JOINTS, [_good(1)[0], last], JOINTS, NOW, 0) == []
    over = Point((0.0, 0.0, 0.0), 40_000_000, velocities=(0.0, 0.0, 0.0, 0.5))
    problems = validate(JOINTS, [_good(1)[0], over], JOINTS, NOW, 0)
    assert any("last point has non-zero velocity for ['#3']" in p for p in problems), problems


def test_the_times_in_the_messages() -> None:
    problems = validate(JOINTS, _good(2), JOINTS, NOW, NOW - 50_000_000)
    assert problems == ["trajectory ends in the past: stamp + last time_from_start = 99.990000 s < now 100.000000 s"]
    pts = [Point((0, 0, 0), 40_000_000), Point((0, 0, 0), 30_000_000)]
    assert validate(JOINTS, pts, JOINTS, NOW, 0) == [
        "time_from_start is not strictly increasing at point 1 (0.040000000 s then 0.030000000 s)"]
    assert validate(JOINTS, [Point((0, 0, 0), 0), Point((0, 0, 0), 1)], JOINTS, NOW, 0) == []  # first point at 0


def test_size_problems_name_the_field_in_both_modes() -> None:
    short = [Point((0.0, 0.0), 20, velocities=(0.0,), accelerations=(0.0, 0.0))]
    assert validate(JOINTS, short, JOINTS, NOW, 0) == [
        "point 0: 2 positions for 3 joint names (JTC needs one per joint)",
        "point 0: 1 velocities for 3 joint names (JTC needs one per joint)",
        "point 0: 2 accelerations for 3 joint names (JTC needs one per joint)"]
    opt = JtcOptions(allow_integration_in_goal_trajectories=True)
    assert validate(JOINTS, short, JOINTS, NOW, 0, opt) == [
        "point 0: 2 positions for 3 joint names (JTC needs one per joint)",
        "point 0: 1 velocities for 3 joint names (JTC needs one per joint)",
        "point 0: 2 accelerations for 3 joint names (JTC needs one per joint)"]
    assert validate(JOINTS, [Point((), 20, velocities=(0.0, 0.0, 0.0))], JOINTS, NOW, 0, opt) == []


def test_one_effort_entry_is_refused_without_an_effort_interface() -> None:
    pts = [Point((0.0, 0.0, 0.0), 20, effort=(1.0,))]
    assert validate(JOINTS, pts, JOINTS, NOW, 0) == [
        "point 0 has effort entries: only controllers with an effort command interface take them"]
    assert validate(JOINTS, pts, JOINTS, NOW, 0, JtcOptions(has_effort_command_interface=True)) == []


def test_every_problem_is_listed_in_jtcs_order() -> None:
    problems = validate(("j1", "x"), [], JOINTS, NOW, -1)
    assert problems == ["2 joint names but the controller has 3 joints (allow_partial_joints_goal is false: send every "
                        "controller joint)", "the trajectory has no points",
                        "joints ['x'] are not controller joints ['j1', 'j2', 'j3']",
                        "header.stamp is negative (-1 ns): rclcpp::Time throws"]
    assert validate((), _good(), JOINTS, NOW, 0)[:2] == [
        "0 joint names but the controller has 3 joints (allow_partial_joints_goal is false: send every controller "
        "joint)", "joint_names is empty"]


def test_hazards_row_by_row() -> None:
    assert hazards(JOINTS, []) == []
    rows = [Point((0.0, 0.0, 0.0), 20, velocities=(0.0, 0.0, 0.0)),
            Point((0.0, 0.0, 0.0), 40, velocities=(0.0, math.nan, 0.0), accelerations=(math.inf, 0.0, 0.0, -math.inf)),
            Point((0.0, 0.0, 0.0), 60, velocities=(0.0, 0.0, 0.0))]
    assert hazards(JOINTS, rows) == ["point 1: non-finite velocities for ['j2']",
                                     "point 1: non-finite accelerations for ['j1', '#3']"]
    effort = [Point((0.0, 0.0, 0.0), 20, effort=(math.nan,))]
    assert hazards(JOINTS, effort) == ["point 0: non-finite effort for ['j1']"]
    assert hazards(("a", "b", "a", "b", "c"), _good()) == ["joint names repeat: ['a', 'b']"]
