"""Teleoperate: ``ros2 launch wallx_ros teleop.launch.py mode:=leader joint_names:="[joint1, joint2]"``.

``mode:=joy`` takes a gamepad instead (``joy_axes:="[0, 1]"``: the Joy axis of each joint).

Keyboard mode reads the terminal, which launch does not give a node: use
``ros2 run wallx_ros teleop_node --ros-args --params-file .../teleop.yaml -p mode:=keyboard -p joint_names:=...``
instead. ``command_topic`` is where the follower's command goes (e.g. /arm_controller/joint_trajectory).
Every teleop parameter a user must set is an argument of the same name (PARAMETER_ARGUMENTS below); given, it
overrides params_file (config/teleop.yaml by default), left out, the file's value holds. Unknown arguments are
refused with the valid list; the launch ends, with an error, when the teleop node exits with one.
"""

import importlib.util
from pathlib import Path

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

# launch argument = teleop node parameter of the same name; empty (the default) = as in params_file
PARAMETER_ARGUMENTS = {
    "joint_names": "follower joints in command order, e.g. \"[joint1, joint2]\" (required, here or in params_file)",
    "leader_joint_names": "leader mode: leader joint for each follower joint (teleop.yaml: the same names)",
    "joy_axes": "joy mode: Joy axis per joint in joint_names order, -1: none, e.g. \"[0, 1]\"",
    "max_velocity": "speed limit: one value for all joints or one per joint, e.g. \"[0.5]\"",
    "lower_limits": "joint lower limits, one per joint",
    "upper_limits": "joint upper limits, one per joint",
    "command_type": "JointTrajectory (~/joint_trajectory) | JointState (~/joint_command)",
    "use_sim_time": "true: run on /clock",
}


def _support():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("wallx_launch_support",
                                                  Path(__file__).with_name("wallx_launch_support.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUPPORT = _support()


def _teleop_node(context, *args, **kwargs):  # launch's OpaqueFunction signature
    mode = LaunchConfiguration("mode").perform(context)
    if mode == "keyboard":
        raise RuntimeError("teleop.launch.py: keyboard mode needs a terminal, which launch does not give a node: "
                           "ros2 run wallx_ros teleop_node --ros-args --params-file config/teleop.yaml "
                           "-p mode:=keyboard -p joint_names:=...")
    command = LaunchConfiguration("command_topic")
    teleop = Node(
        package="wallx_ros", executable="teleop_node", name="wallx_teleop", output="screen",
        parameters=[LaunchConfiguration("params_file"),
                    {"mode": mode, **SUPPORT.parameter_overrides(context, PARAMETER_ARGUMENTS)}],
        remappings=[("~/joint_trajectory", command), ("~/joint_command", command)],
    )
    return [SUPPORT.required(teleop, "the teleop node"), teleop]


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument("mode", default_value="leader", choices=["leader", "joy", "keyboard"],
                              description="leader | joy (keyboard: use ros2 run, it needs a terminal)"),
        DeclareLaunchArgument("command_topic", default_value="/wallx_teleop/joint_trajectory",
                              description="where the follower's command goes, e.g. /arm_controller/joint_trajectory"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("wallx_ros"), "config", "teleop.yaml"]),
            description="teleop parameters (joint_names, max_velocity, ...)"),
        *(DeclareLaunchArgument(name, default_value="", description=f"{text}; empty: as in params_file")
          for name, text in PARAMETER_ARGUMENTS.items()),
    ]
    names = SUPPORT.declared_arguments(args)
    return LaunchDescription([*args, SUPPORT.check_arguments(__file__, lambda context: names),
                              OpaqueFunction(function=_teleop_node)])
