"""Safety limits and action mapping, without ROS: NaN/Inf, position and velocity limits, URDF limits, gripper."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.errors import ActionMappingError, JointLimitsError, UrdfError
from wallx_ros.core.safety import JointLimits, SafetyFilter
from wallx_ros.core.urdf import UrdfModel

MS = 1_000_000
NAMES = ("a", "b")
TIMES = np.arange(1, 5, dtype=np.int64) * 20 * MS

URDF = """<robot name="arm">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="tip"/>
  <joint name="a" type="revolute"><parent link="base"/><child link="l1"/><axis xyz="0 0 1"/>
    <limit lower="-1.0" upper="1.5" velocity="2.0" effort="1"/></joint>
  <joint name="b" type="continuous"><parent link="l1"/><child link="l2"/><origin xyz="1 0 0"/>
    <axis xyz="0 0 1"/><limit velocity="3.0" effort="1"/></joint>
  <joint name="fixed_tip" type="fixed"><parent link="l2"/><child link="tip"/><origin xyz="1 0 0"/></joint>
</robot>"""


def test_non_finite_positions_are_rejected() -> None:
    f = SafetyFilter(JointLimits.unlimited(NAMES))
    pos = np.zeros((4, 2))
    pos[2, 1] = math.nan
    res = f.apply(TIMES, pos)
    assert not res.ok and "non-finite" in res.rejected and "['b']" in res.rejected
    pos[2, 1] = math.inf
    assert not f.apply(TIMES, pos).ok


def test_position_limits_clamp_or_reject() -> None:
    limits = JointLimits(NAMES, (-1.0, -math.inf), (1.0, math.inf), (math.inf, math.inf))
    pos = np.array([[0.5, 5.0], [1.2, 6.0], [0.9, 7.0], [-3.0, 8.0]])
    res = SafetyFilter(limits, "clamp").apply(TIMES, pos)
    assert res.ok and res.positions is not None
    np.testing.assert_allclose(res.positions[:, 0], [0.5, 1.0, 0.9, -1.0])
    np.testing.assert_allclose(res.positions[:, 1], pos[:, 1])
    assert "worst a by 2" in res.adjustments[0]
    rej = SafetyFilter(limits, "reject").apply(TIMES, pos)
    assert not rej.ok and "position limits exceeded on ['a']" in rej.rejected


def test_velocity_limit_from_anchor_and_between_points() -> None:
    limits = JointLimits(NAMES, (-math.inf,) * 2, (math.inf,) * 2, (1.0, 100.0))  # a: 1 unit/s = 0.02 per row
    pos = np.array([[0.1, 0.0], [0.1, 0.0], [0.1, 0.0], [0.1, 0.0]])
    res = SafetyFilter(limits).apply(TIMES, pos, anchor=(0, np.zeros(2)))
    assert res.positions is not None and res.velocities is not None
    np.testing.assert_allclose(res.positions[:, 0], [0.02, 0.04, 0.06, 0.08])
    assert "max_velocity exceeded on ['a'] (up to 5.00x" in res.adjustments[0]
    assert np.all(np.abs(res.velocities[:, 0]) <= 1.0 + 1e-9)
    np.testing.assert_array_equal(res.velocities[-1], [0.0, 0.0])  # JTC: zero end velocity
    assert not SafetyFilter(limits, "reject").apply(TIMES, pos, anchor=(0, np.zeros(2))).ok


def test_velocities_are_finite_differences() -> None:
    res = SafetyFilter(JointLimits.unlimited(NAMES)).apply(TIMES, np.outer(np.arange(4), [1.0, 2.0]))
    assert res.velocities is not None
    np.testing.assert_allclose(res.velocities[:-1], [[50.0, 100.0]] * 3)


def test_limits_from_parameters_and_urdf() -> None:
    urdf = UrdfModel.from_string(URDF)
    base = JointLimits.from_mapping(("b", "a", "c"), urdf.limits())
    assert base.lower == (-math.inf, -1.0, -math.inf) and base.max_velocity == (3.0, 2.0, math.inf)
    lim = JointLimits.from_parameters(("a", "b"), [], [2.0], [0.5, 0.7], base=JointLimits.from_mapping(
        ("a", "b"), urdf.limits()))
    assert lim.lower == (-1.0, -math.inf) and lim.upper == (2.0, 2.0) and lim.max_velocity == (0.5, 0.7)
    with pytest.raises(JointLimitsError, match="give 0, 1 or 2"):
        JointLimits.from_parameters(("a", "b"), [0, 1, 2], [], [])
    with pytest.raises(JointLimitsError, match="lower > upper"):
        JointLimits(NAMES, (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))
    with pytest.raises(JointLimitsError, match="max_velocity must be > 0"):
        JointLimits(NAMES, (0.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def test_urdf_forward_kinematics() -> None:
    urdf = UrdfModel.from_string(URDF)
    assert urdf.root == "base" and urdf.leaf_links() == ("tip",)
    tip = urdf.link_positions({"a": math.pi / 2, "b": -math.pi / 2}, ["tip", "l2"])
    np.testing.assert_allclose(tip["l2"], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(tip["tip"], [1.0, 1.0, 0.0], atol=1e-12)
    with pytest.raises(UrdfError, match="not valid XML"):
        UrdfModel.from_string("<robot>")
    with pytest.raises(UrdfError, match="not in the URDF"):
        urdf.link_positions({}, ["nope"])


def test_gripper_scaling_both_ways_and_delta_actions() -> None:
    m = ActionMapping.build(("a", "grip"), ("a", "grip"), "delta", ("grip",), gripper_scale=0.04, gripper_offset=0.01)
    robot_state = np.array([0.5, 0.03])
    np.testing.assert_allclose(m.state_to_model(robot_state), [0.5, 0.5])
    targets = m.actions_to_robot(np.array([[0.1, 1.0]]), robot_state)
    np.testing.assert_allclose(targets, [[0.6, 0.03 + 0.01 + 0.04]])
    absolute = ActionMapping.build(("a", "grip"), ("grip",), gripper_joints=("grip",), gripper_scale=2.0)
    np.testing.assert_allclose(absolute.actions_to_robot(np.array([[0.25]]), None), [[0.5]])


def test_action_mapping_errors_say_what_to_fix() -> None:
    with pytest.raises(ActionMappingError, match="not state joints"):
        ActionMapping.build(("a",), ("b",), "delta")
    with pytest.raises(ActionMappingError, match="action_type"):
        ActionMapping.build(("a",), ("a",), "velocity")
    with pytest.raises(ActionMappingError, match="neither state nor action"):
        ActionMapping.build(("a",), ("a",), gripper_joints=("g",))
    with pytest.raises(ActionMappingError, match="columns"):
        ActionMapping.build(("a",), ("a",)).actions_to_robot(np.zeros((2, 3)), None)
