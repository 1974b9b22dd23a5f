"""Where joint limits come from (parameters > URDF > the checkpoint's action statistics), what is derived from the
statistics and how, and why a waiting node waits (core.input_diagnosis) - ROS-free."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.errors import JointLimitsError
from wallx_ros.core.input_diagnosis import StreamView, clock_hint, explain_waiting
from wallx_ros.core.limit_sources import resolve_limits, stats_limits
from wallx_ros.core.safety import JointLimits

INF = math.inf
S = 1_000_000_000
NAMES = ("a", "grip", "c")


def test_stats_limits_widen_the_trained_range_and_divide_it_by_a_chunk() -> None:
    mapping = ActionMapping.build(NAMES, NAMES, gripper_joints=("grip",), gripper_scale=-2.0, gripper_offset=1.0)
    lim = stats_limits(mapping, [-1.0, 0.0, 2.0], [1.0, 0.5, 2.0], chunk_s=0.5, margin=0.1)
    assert lim is not None and lim.names == NAMES
    assert lim.lower[0] == pytest.approx(-1.2) and lim.upper[0] == pytest.approx(1.2)
    assert lim.max_velocity[0] == pytest.approx(2.4 / 0.5)
    # gripper: robot = 1 - 2 * model, so [-0.05, 0.55] becomes [-0.1, 1.1] (swapped), speed x |scale|
    assert lim.lower[1] == pytest.approx(-0.1) and lim.upper[1] == pytest.approx(1.1)
    assert lim.max_velocity[1] == pytest.approx(0.6 / 0.5 * 2.0)
    # a joint the data never moved: held where it was (a speed of almost nothing)
    assert lim.lower[2] == lim.upper[2] == 2.0 and 0 < lim.max_velocity[2] <= 1e-9
    assert lim.max_acceleration == (INF, INF, INF)
    assert stats_limits(mapping, [-1.0, 0.0, 2.0], [1.0, 0.5, 2.0], chunk_s=0.5, margin=0.0).upper[0] == 1.0  # type: ignore[union-attr]


def test_stats_limits_refuse_what_the_statistics_cannot_say() -> None:
    mapping = ActionMapping.build(("a",), ("a",))
    assert stats_limits(ActionMapping.build(("a",), ("a",), "delta"), [0.0], [1.0], 1.0, 0.1) is None  # offsets
    assert stats_limits(mapping, [math.nan], [1.0], 1.0, 0.1) is None
    assert stats_limits(mapping, [0.0], [math.inf], 1.0, 0.1) is None
    assert stats_limits(mapping, [2.0], [1.0], 1.0, 0.1) is None
    with pytest.raises(JointLimitsError, match=r"action statistics have \(2,\) / \(1,\) values for 1 action joints"):
        stats_limits(mapping, [0.0, 1.0], [1.0], 1.0, 0.1)
    for chunk_s, margin in ((0.0, 0.1), (math.inf, 0.1), (1.0, -0.1), (1.0, math.nan)):
        with pytest.raises(JointLimitsError, match="must be finite"):
            stats_limits(mapping, [0.0], [1.0], chunk_s, margin)


def test_each_value_comes_from_the_first_source_that_has_it() -> None:
    urdf = JointLimits(("c", "a"), (-3.0, -INF), (3.0, INF), (30.0, 10.0), (300.0, INF))  # a: continuous
    stats = JointLimits(NAMES, (-1.0, -2.0, -4.0), (1.0, 2.0, 4.0), (1.0, 2.0, 4.0))
    got = resolve_limits(NAMES, {"upper": [0.5], "max_velocity": []}, urdf, stats)
    lim = got.limits
    assert lim.upper == (0.5, 0.5, 0.5)  # the parameter, for every joint
    assert lim.lower == (-1.0, -2.0, -3.0)  # a: stats (the URDF has none), grip: stats (not in the URDF), c: URDF
    assert lim.max_velocity == (10.0, 2.0, 30.0) and lim.max_acceleration == (INF, INF, 300.0)
    assert got.sources["lower"] == {"a": "checkpoint stats", "grip": "checkpoint stats", "c": "URDF"}
    assert got.sources["upper"] == {"a": "parameter", "grip": "parameter", "c": "parameter"}
    assert got.sources["max_acceleration"] == {"a": "", "grip": "", "c": "URDF"}
    assert got.summary() == ("lower: checkpoint stats 2, URDF 1; upper: parameter 3; max_velocity: URDF 2, "
                             "checkpoint stats 1; max_acceleration: none 2, URDF 1")
    assert got.missing() == ""


def test_missing_limits_are_named_and_an_explicit_inf_counts_as_missing() -> None:
    got = resolve_limits(NAMES, {"lower": [-1.0, -1.0, -1.0], "upper": [1.0, INF, 1.0]})
    assert got.sources["upper"] == {"a": "parameter", "grip": "", "c": "parameter"}
    assert got.missing() == "no position range for ['grip']; no max_velocity for ['a', 'grip', 'c']"
    with pytest.raises(JointLimitsError, match="position_upper has 2 values: give 0, 1 or 3"):
        resolve_limits(NAMES, {"upper": [1.0, 2.0]})
    with pytest.raises(JointLimitsError, match=r"lower > upper after merging the limit sources for a \[2 "
                                                r"\(parameter\), 1 \(checkpoint stats\)\]"):
        resolve_limits(("a",), {"lower": [2.0]}, None, JointLimits(("a",), (0.0,), (1.0,), (1.0,)))


# -- why nothing moves ---------------------------------------------------------------------------------------
def _view(name: str = "face_view", publishers: int = 1, received: int = 5, error: str = "",
          stamp_ns: int | None = 1000 * S) -> StreamView:
    return StreamView(name, f"/{name}/image_raw", f"{name}/image_raw", publishers, received, error, stamp_ns)


def test_each_waiting_reason_names_its_fix() -> None:
    now = 1000 * S
    assert explain_waiting([_view()], now, True, 0.5) == []  # fresh
    no_pub = explain_waiting([_view(publishers=0, received=0, stamp_ns=None)], now, True, 0.5)
    assert no_pub == ["face_view: no publisher on /face_view/image_raw: start its driver, or remap the node's topic "
                      "to yours with -r face_view/image_raw:=/your/topic"]
    qos = explain_waiting([_view(publishers=2, received=0, stamp_ns=None)], now, True, 0.5)
    assert qos[0].startswith("face_view: 2 publisher(s) on /face_view/image_raw but no message received")
    bad = explain_waiting([_view(error="unsupported image encoding 'yuv422'")], now, True, 0.5)
    assert bad == ["face_view (/face_view/image_raw): the last message was refused: unsupported image encoding "
                   "'yuv422'"]
    slow = explain_waiting([_view(stamp_ns=now - 2 * S)], now, True, 0.5)
    assert slow == ["face_view (/face_view/image_raw): latest stamp 2.000 s old: the stream is slower than max_age_s "
                    "0.5 s or stalled: check its rate (ros2 topic hz /face_view/image_raw) or raise max_age_s"]
    edge = explain_waiting([_view(stamp_ns=now - S // 2)], now, True, 0.5)
    assert edge == []  # exactly max_age old: still fresh
    future = explain_waiting([_view(stamp_ns=now + S // 100)], now, False, 0.5, future_tolerance_s=0.005)
    assert "latest stamp 0.010 s in the future" in future[0] and "clock is ahead" in future[0]
    assert explain_waiting([_view(stamp_ns=now + S // 1000)], now, False, 0.5, future_tolerance_s=0.005) == []


def test_clock_hints_tell_sim_time_from_clock_offsets() -> None:
    wall = 1_800_000_000 * S
    assert "look like simulated time" in clock_hint(1000 * S, wall, sim_time=False)
    assert "use_sim_time:=true" in clock_hint(1000 * S, wall, sim_time=False)
    assert "use_sim_time:=false" in clock_hint(wall, 1000 * S, sim_time=True)
    assert "no /clock has arrived" in clock_hint(1000 * S, 0, sim_time=True)
    assert "behind this node's clock" in clock_hint(wall - 100 * S, wall, sim_time=False)
    assert "120.000 s in the future" in clock_hint(wall + 120 * S, wall, sim_time=False)
    stale = explain_waiting([_view(stamp_ns=1000 * S)], wall, False, 0.5)
    assert "use_sim_time:=true" in stale[0]
    waiting_for_clock = explain_waiting([_view(stamp_ns=5 * S)], 0, True, 0.5)
    assert "no /clock has arrived" in waiting_for_clock[0]


def test_transport_report_names_use_sim_time_for_a_sim_wall_mismatch() -> None:
    from wallx_ros.core.transport_timing import ClockStatus, TransportDelayMonitor

    wall = 1_800_000_000 * S
    mon = TransportDelayMonitor(("cam",))
    for k in range(30):
        mon.record("cam", 1000 * S + k * S // 30, wall + k * S // 30)
    report = mon.report(wall + S)
    assert report.status is ClockStatus.BEHIND_OR_SLOW and "use_sim_time:=true" in report.message
    mon = TransportDelayMonitor(("cam",))
    for k in range(30):
        mon.record("cam", wall + k * S // 30, 1000 * S + k * S // 30)
    report = mon.report(1001 * S, sim_time=True)
    assert report.status is ClockStatus.AHEAD and "use_sim_time:=false" in report.message
    mon = TransportDelayMonitor(("cam",))
    for k in range(30):  # 2 s behind: a real clock offset, clock advice as before
        mon.record("cam", wall + k * S // 30, wall + 2 * S + k * S // 30)
    assert "chronyc tracking" in mon.report(wall + 3 * S).message


def test_numbers_are_pinned_per_joint_not_only_for_the_first() -> None:
    """A mutant that mixes up joints j and j+1 somewhere in the merge must fail."""
    stats = JointLimits(NAMES, (-1.0, -2.0, -3.0), (1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    lim = resolve_limits(NAMES, {}, None, stats).limits
    np.testing.assert_array_equal(lim.lower, [-1.0, -2.0, -3.0])
    np.testing.assert_array_equal(lim.max_velocity, [4.0, 5.0, 6.0])
