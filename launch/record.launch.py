"""Record demonstrations: ``ros2 launch wallx_ros record.launch.py root:=/data/demos joint_names:="[j1, j2]"``.

Starts the recorder node and, with ``teleop:=true``, teleop.launch.py (leader or joy mode, the same
``joint_names``; keyboard teleop needs a terminal: run ``ros2 run wallx_ros teleop_node`` in one). Start and
stop episodes with ``ros2 service call /wallx_recorder/start_episode std_srvs/srv/Trigger`` / ``.../stop_episode``
(or ``wallx-ros-ctl record start|stop|discard`` where ros2cli is not installed). Stopping the launch saves the
open episode (``on_shutdown``) and finalizes the dataset; the recorder gets time for that before launch escalates
to SIGTERM/SIGKILL.

Every recorder parameter a user must set is an argument of the same name (PARAMETER_ARGUMENTS below); given, it
overrides params_file (config/recorder.yaml by default), left out, the file's value holds. The teleop node's
arguments carry a ``teleop_`` prefix where the name would be ambiguous here (``teleop_mode``,
``teleop_params_file``). Unknown arguments are refused with the valid list; the launch ends, with an error, when
the recorder (or the teleop node) exits with one.
"""

import importlib.util
from pathlib import Path

from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

# launch argument = recorder node parameter of the same name; empty (the default) = as in params_file
PARAMETER_ARGUMENTS = {
    "repo_id": "LeRobot repo_id <user>/<name>",
    "instruction": "task of the episodes (~/instruction replaces it)",
    "fps": "integer frame rate of the dataset",
    "robot_type": "stored in meta/info.json, e.g. aloha",
    "joint_names": "joints of observation.state, e.g. \"[j1, j2]\" (required, here or in params_file)",
    "action_joint_names": "joints of action (default: joint_names)",
    "cameras": "camera keys, topics <camera>/image_raw[/compressed], e.g. \"[face_view]\"",
    "camera_transport": "raw (sensor_msgs/Image) | compressed (sensor_msgs/CompressedImage)",
    "action_topic": "the command recorded as action (default /wallx_teleop/action)",
    "action_type": "JointState | JointTrajectory | Float64MultiArray",
    "video_codec": "libsvtav1 | h264 | hevc | auto",
    "autostart": "true: record continuously, episodes cut by max_episode_s or ~/stop_episode",
    "max_episode_s": "save an episode automatically after this long (0: never)",
    "use_sim_time": "true: run on /clock",
}
# teleop.launch.py argument -> this file's argument
TELEOP_ARGUMENTS = {"mode": "teleop_mode", "params_file": "teleop_params_file", "command_topic": "command_topic",
                    "joint_names": "joint_names", "use_sim_time": "use_sim_time"}


def _support():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("wallx_launch_support",
                                                  Path(__file__).with_name("wallx_launch_support.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUPPORT = _support()


def _recorder_node(context, *args, **kwargs):  # launch's OpaqueFunction signature
    overrides = {"root": LaunchConfiguration("root").perform(context),
                 **SUPPORT.parameter_overrides(context, PARAMETER_ARGUMENTS)}
    recorder = Node(
        package="wallx_ros", executable="recorder_node", name="wallx_recorder", output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
        # saving an episode encodes its videos: give SIGINT time before escalating
        sigterm_timeout="120", sigkill_timeout="30",
    )
    return [SUPPORT.required(recorder, "the recorder node"), recorder]


def _teleop(context, *args, **kwargs):  # launch's OpaqueFunction signature
    share = Path(FindPackageShare("wallx_ros").perform(context))
    arguments = {theirs: LaunchConfiguration(ours) for theirs, ours in TELEOP_ARGUMENTS.items()}
    source = PythonLaunchDescriptionSource(str(share / "launch" / "teleop.launch.py"))
    return [GroupAction([IncludeLaunchDescription(source, launch_arguments=arguments.items())])]


def generate_launch_description() -> LaunchDescription:
    config = PathJoinSubstitution([FindPackageShare("wallx_ros"), "config"])
    args = [
        DeclareLaunchArgument("root", description="dataset folder (created, or appended to)"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([config, "recorder.yaml"]),
                              description="recorder parameters (joint_names, cameras, fps, ...)"),
        *(DeclareLaunchArgument(name, default_value="", description=f"{text}; empty: as in params_file")
          for name, text in PARAMETER_ARGUMENTS.items()),
        DeclareLaunchArgument("teleop", default_value="false", description="also start teleop.launch.py"),
        DeclareLaunchArgument("teleop_mode", default_value="leader", choices=["leader", "joy"],
                              description="teleop: leader | joy"),
        DeclareLaunchArgument("teleop_params_file", default_value=PathJoinSubstitution([config, "teleop.yaml"]),
                              description="teleop parameters"),
        DeclareLaunchArgument("command_topic", default_value="/wallx_teleop/joint_trajectory",
                              description="teleop: where the follower's command goes"),
    ]
    names = SUPPORT.declared_arguments(args)
    return LaunchDescription([*args, SUPPORT.check_arguments(__file__, lambda context: names),
                              OpaqueFunction(function=_recorder_node),
                              OpaqueFunction(function=_teleop, condition=IfCondition(LaunchConfiguration("teleop")))])
