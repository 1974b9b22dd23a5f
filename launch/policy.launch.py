"""Launch the WALL-OSS policy node: ``ros2 launch wallx_ros policy.launch.py checkpoint_dir:=/path``."""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument("checkpoint_dir", description="LeRobot wall_x policy folder"),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu | cuda | cuda:N | auto"),
        DeclareLaunchArgument("mode", default_value="", description="diffusion | fast | '' (checkpoint's)"),
        DeclareLaunchArgument("allow_random_weights", default_value="false",
                              description="true only for the tiny test checkpoint"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("wallx_ros"), "config", "policy.yaml"]),
            description="parameter file of the policy node",
        ),
    ]
    policy = Node(
        package="wallx_ros",
        executable="policy_node",
        name="wallx_policy",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "checkpoint_dir": LaunchConfiguration("checkpoint_dir"),
                "device": LaunchConfiguration("device"),
                "mode": LaunchConfiguration("mode"),
                "allow_random_weights": LaunchConfiguration("allow_random_weights"),
            },
        ],
    )
    return LaunchDescription([*args, policy])
