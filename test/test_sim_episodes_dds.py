"""The sim node's episode interface over real DDS: object poses, the task stage, the seed parameter and ~/reset.

The node runs the transfer-cube scene without cameras (nothing here needs an image); the cube placement
each seed must give is gym-aloha's own ``sample_box_pose``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from policy_sim_driver import call_service
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import RosTestNode, running_node, wait_until
from sensor_msgs.msg import JointState
from std_msgs.msg import Int32
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from wallx_ros.nodes.ros_conversions import duration_from_s, stamp_to_ns
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS

NODE = "wallx_sim"
SIM_ENV = {"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"}


def _set_seed(ros: RosTestNode, value: int, kind: int = ParameterType.PARAMETER_INTEGER) -> bool:
    param = ParameterValue(type=kind, integer_value=value) if kind == ParameterType.PARAMETER_INTEGER else \
        ParameterValue(type=kind, string_value=str(value))
    result = call_service(ros, SetParameters, f"/{NODE}/set_parameters",
                          SetParameters.Request(parameters=[ParameterMsg(name="seed", value=param)]))
    return bool(result.results[0].successful)


def _cube_xy(seed: int) -> np.ndarray:
    from gym_aloha.utils import sample_box_pose

    return np.asarray(sample_box_pose(seed)[:2])


def test_reset_places_the_cube_for_the_seed_and_drops_the_running_trajectory(ros: RosTestNode,
                                                                              tmp_path: Path) -> None:
    cubes = ros.collect(PoseStamped, "/objects/box/pose")
    states = ros.collect(JointState, "/joint_states")
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    stages = ros.collect(Int32, f"/{NODE}/task_stage", latched)
    traj_pub = ros.publisher(JointTrajectory, "/arm_controller/joint_trajectory")
    params = {"scene": "aloha_transfer_cube", "seed": 3, "camera_rate_hz": 0.0, "real_time_factor": 1.0,
              "objects_in_joint_states": True}
    with running_node("wallx_ros.nodes.sim_node", NODE, params, tmp_path, extra_env=SIM_ENV):
        assert cubes.wait_for(5, 120), "no cube pose"
        first = cubes.messages[-1]
        assert first.header.frame_id == "world"
        np.testing.assert_allclose([first.pose.position.x, first.pose.position.y], _cube_xy(3), atol=2e-3)
        assert stages.wait_for(1, 30) and stages.messages[-1].data == 0  # latched: the cube lies on the table
        # objects_in_joint_states: the robot's joints, then the cube's position as box_x/_y/_z
        last = states.messages[-1]
        assert list(last.name) == [*ALOHA_JOINTS, "box_x", "box_y", "box_z"]
        np.testing.assert_allclose(last.position[-3:-1], _cube_xy(3), atol=2e-3)
        start = np.array(last.position[:len(ALOHA_JOINTS)])

        # a slow trajectory starts moving the left shoulder, then the episode is reset with another seed
        assert ros.wait_for_subscribers(traj_pub)
        msg = JointTrajectory()
        msg.joint_names = list(ALOHA_JOINTS)
        target = start.copy()
        target[1] -= 0.6
        msg.points = [JointTrajectoryPoint(positions=target.tolist(), time_from_start=duration_from_s(6.0))]
        traj_pub.publish(msg)
        assert wait_until(lambda: states.messages[-1].position[1] < start[1] - 0.1, 60), "the arm did not move"

        assert not _set_seed(ros, -5), "a seed below -1 must be refused"
        assert _set_seed(ros, 7)
        reset = call_service(ros, Trigger, f"/{NODE}/reset", Trigger.Request())
        assert reset.success and "seed 7" in reset.message, reset.message
        after_reset_ns = stamp_to_ns(states.messages[-1].header.stamp)
        cubes.clear()
        assert cubes.wait_for(10, 60)
        newest = cubes.messages[-1]
        assert stamp_to_ns(newest.header.stamp) >= after_reset_ns  # sim time went on
        np.testing.assert_allclose([newest.pose.position.x, newest.pose.position.y], _cube_xy(7), atol=2e-3)
        # the trajectory was dropped: the arm is back at the start pose and stays there
        settled_from = len(states.messages)
        assert wait_until(lambda: len(states.messages) > settled_from + 50, 60)
        positions = np.array([m.position for m in states.messages[settled_from:]])
        np.testing.assert_allclose(positions[:, 1], start[1], atol=0.02)
        np.testing.assert_allclose(positions[-1, -3:-1], _cube_xy(7), atol=2e-3)
