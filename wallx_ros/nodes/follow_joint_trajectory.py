"""Optional output: send each trajectory as a control_msgs/FollowJointTrajectory goal (output_mode action).

control_msgs is not on PyPI, so this needs a ROS 2 install (or a colcon workspace) that provides it:
``apt install ros-$ROS_DISTRO-control-msgs``. Without it, configuring the node with output_mode action
fails with that instruction; every other output mode works without control_msgs.

A new goal replaces the previous one (joint_trajectory_controller preempts the active goal), which is the
same replace semantics as its topic interface.
"""

from __future__ import annotations

from typing import Any

from rclpy.action import ActionClient
from rclpy.node import Node
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.policy.errors import PolicyError

__all__ = ["FollowJointTrajectoryOutput", "control_msgs_available"]


def control_msgs_available() -> bool:
    try:
        from control_msgs.action import FollowJointTrajectory  # noqa: F401
    except ImportError:
        return False
    return True


class FollowJointTrajectoryOutput:
    """Thin FollowJointTrajectory action client: ``send(trajectory)`` sends a goal, results are logged."""

    def __init__(self, node: Node, action_name: str, callback_group: Any = None) -> None:
        try:
            from control_msgs.action import FollowJointTrajectory
        except ImportError as err:
            raise PolicyError(
                "output_mode action needs control_msgs (FollowJointTrajectory), which is not on PyPI: install "
                "ros-$ROS_DISTRO-control-msgs (or build control_msgs in your workspace), or use output_mode "
                "trajectory, the controller's ~/joint_trajectory topic"
            ) from err
        self._node = node
        self._name = action_name
        self._action = FollowJointTrajectory
        self._client = ActionClient(node, FollowJointTrajectory, action_name, callback_group=callback_group)
        self.sent = 0
        self.rejected = 0

    def send(self, trajectory: JointTrajectory) -> bool:
        if not self._client.server_is_ready():
            self._node.get_logger().error(
                f"FollowJointTrajectory server {self._name} is not available: goal not sent",
                throttle_duration_sec=2.0)
            return False
        goal = self._action.Goal()
        goal.trajectory = trajectory
        future = self._client.send_goal_async(goal)
        future.add_done_callback(self._on_goal_response)
        self.sent += 1
        return True

    def _on_goal_response(self, future: Any) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self.rejected += 1
            self._node.get_logger().error("FollowJointTrajectory goal rejected by the controller",
                                          throttle_duration_sec=2.0)

    def destroy(self) -> None:
        self._client.destroy()
