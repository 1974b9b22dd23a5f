"""Teleoperate: ``ros2 launch wallx_ros teleop.launch.py mode:=leader`` (or ``mode:=joy``).

Keyboard mode reads the terminal, which launch does not give a node: use
``ros2 run wallx_ros teleop_node --ros-args --params-file .../teleop.yaml -p mode:=keyboard`` instead.
Remap ``/wallx_teleop/joint_trajectory`` to the follower's controller, e.g.
``command_topic:=/arm_controller/joint_trajectory``.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument("mode", default_value="leader", description="leader | joy"),
        DeclareLaunchArgument("command_topic", default_value="/wallx_teleop/joint_trajectory",
                              description="where the follower's JointTrajectory command goes"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("wallx_ros"), "config", "teleop.yaml"]),
            description="teleop parameters (joint_names, max_velocity, ...)"),
    ]
    teleop = Node(
        package="wallx_ros", executable="teleop_node", name="wallx_teleop", output="screen",
        parameters=[LaunchConfiguration("params_file"), {"mode": LaunchConfiguration("mode")}],
        remappings=[("~/joint_trajectory", LaunchConfiguration("command_topic"))],
    )
    return LaunchDescription([*args, teleop])
