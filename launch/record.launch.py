"""Record demonstrations: ``ros2 launch wallx_ros record.launch.py root:=/data/demos joint_names:=...``.

Starts the recorder node (and, with ``teleop:=true``, the teleop node in leader or joy mode; keyboard
teleop needs a terminal: run ``ros2 run wallx_ros teleop_node`` in one). Call
``ros2 service call /wallx_recorder/start_episode std_srvs/srv/Trigger`` to start and ``.../stop_episode``
to save. Stopping the launch saves the open episode (``on_shutdown``) and finalizes the dataset; the
recorder gets time for that before launch escalates to SIGTERM/SIGKILL.
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    config = PathJoinSubstitution([FindPackageShare("wallx_ros"), "config"])
    args = [
        DeclareLaunchArgument("root", description="dataset folder (created, or appended to)"),
        DeclareLaunchArgument("repo_id", default_value="local/wallx_demos", description="LeRobot repo_id"),
        DeclareLaunchArgument("instruction", default_value="", description="task of the episodes"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([config, "recorder.yaml"]),
                              description="recorder parameters (joint_names, cameras, fps, ...)"),
        DeclareLaunchArgument("teleop", default_value="false", description="also start the teleop node"),
        DeclareLaunchArgument("teleop_params_file", default_value=PathJoinSubstitution([config, "teleop.yaml"]),
                              description="teleop parameters (mode leader or joy inside launch)"),
    ]
    recorder = Node(
        package="wallx_ros", executable="recorder_node", name="wallx_recorder", output="screen",
        parameters=[LaunchConfiguration("params_file"), {
            "root": LaunchConfiguration("root"), "repo_id": LaunchConfiguration("repo_id"),
            "instruction": LaunchConfiguration("instruction")}],
        # saving an episode encodes its videos: give SIGINT time before escalating
        sigterm_timeout="120", sigkill_timeout="30",
    )
    teleop = Node(
        package="wallx_ros", executable="teleop_node", name="wallx_teleop", output="screen",
        parameters=[LaunchConfiguration("teleop_params_file")], condition=IfCondition(LaunchConfiguration("teleop")),
    )
    return LaunchDescription([*args, recorder, teleop])
