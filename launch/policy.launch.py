"""Launch the WALL-OSS policy node.

    ros2 launch wallx_ros policy.launch.py checkpoint_dir:=/models/my_policy device:=cuda \
        trajectory_topic:=/arm_controller/joint_trajectory face_view_topic:=/front/color/image_raw

Every node parameter a user must set is an argument of the same name (PARAMETER_ARGUMENTS below); given,
it overrides params_file (config/policy.yaml by default), left out, the file's value holds. Lists are
YAML: ``state_joint_names:="[shoulder, elbow]"``. Topics: ``<camera>_topic`` (the raw Image topic; its
CompressedImage sibling <topic>/compressed is remapped with it), ``joint_states_topic``, ``trajectory_topic``.
``urdf_path`` also feeds RViz (``rviz:=true``: the predicted path markers and a "ghost" robot driven by
~/ghost/joint_states through a second robot_state_publisher). Unknown arguments are refused with the valid
list; the launch ends, with an error, when the policy node exits with one (e.g. a checkpoint it cannot load).
"""

import importlib.util
from pathlib import Path

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

CAMERAS = ("face_view", "left_wrist_view", "right_wrist_view")
NODE_NAME = "wallx_policy"
# launch argument = policy node parameter of the same name; empty (the default) = as in params_file
PARAMETER_ARGUMENTS = {
    "device": "cpu | cuda | cuda:N | auto",
    "mode": "prediction mode: diffusion | fast",
    "instruction": "task instruction (~/instruction replaces it at run time)",
    "backbone_dir": "local WALL-OSS backbone folder when the checkpoint has none",
    "allow_random_weights": "true only for the tiny test checkpoint",
    "output_mode": "trajectory | action | joint_state | array",
    "dry_run": "true: publish to ~/dry_run/... only",
    "autostart": "false: wait for a lifecycle manager (configure / activate)",
    "cameras": "model camera keys to use, e.g. \"[face_view]\" (policy.yaml: the checkpoint's)",
    "camera_transport": "raw (sensor_msgs/Image) | compressed (sensor_msgs/CompressedImage)",
    "state_joint_names": "robot joint of each model state dimension (policy.yaml: the checkpoint's mapping)",
    "action_joint_names": "robot joint of each used action dimension (policy.yaml: the checkpoint's mapping)",
    "urdf_path": "URDF file: joint limits, predicted-path markers, ghost robot",
    "use_sim_time": "true: run on /clock",
}


def _support():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("wallx_launch_support",
                                                  Path(__file__).with_name("wallx_launch_support.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUPPORT = _support()


def _policy_node(context, *args, **kwargs):  # launch's OpaqueFunction signature
    """The node, with only the given arguments overriding params_file, and its exit watched."""
    checkpoint_dir = LaunchConfiguration("checkpoint_dir").perform(context)
    if not checkpoint_dir:
        raise RuntimeError("policy.launch.py: checkpoint_dir:=<LeRobot wall_x policy folder> is required "
                           "(a tiny test one: wallx-ros-make-test-checkpoint DIR, with allow_random_weights:=true)")
    remappings = [("joint_states", LaunchConfiguration("joint_states_topic")),
                  ("~/joint_trajectory", LaunchConfiguration("trajectory_topic"))]
    for cam in CAMERAS:
        topic = LaunchConfiguration(f"{cam}_topic")
        remappings += [(f"{cam}/image_raw", topic), (f"{cam}/image_raw/compressed", [topic, "/compressed"])]
    overrides = SUPPORT.parameter_overrides(context, PARAMETER_ARGUMENTS)
    policy = Node(
        package="wallx_ros",
        executable="policy_node",
        name=NODE_NAME,
        output="screen",
        parameters=[LaunchConfiguration("params_file"), {"checkpoint_dir": checkpoint_dir, **overrides}],
        remappings=remappings,
    )
    return [SUPPORT.required(policy, "the policy node"), policy]


def _rviz(context, *args, **kwargs):  # launch's OpaqueFunction signature
    """RViz with config/policy.rviz and, when a URDF is given, a second robot_state_publisher for the ghost."""
    if LaunchConfiguration("rviz").perform(context).lower() not in ("true", "1"):
        return []
    sim_time = LaunchConfiguration("use_sim_time").perform(context) or "false"
    share = FindPackageShare("wallx_ros")
    actions = [Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                    arguments=["-d", PathJoinSubstitution([share, "config", "policy.rviz"])],
                    parameters=[{"use_sim_time": sim_time}])]
    urdf = LaunchConfiguration("urdf_path").perform(context)
    if urdf:
        with open(urdf) as f:
            description = f.read()
        actions.append(Node(package="robot_state_publisher", executable="robot_state_publisher", namespace="ghost",
                            name="robot_state_publisher", output="screen",
                            parameters=[{"robot_description": description, "frame_prefix": "ghost/",
                                         "use_sim_time": sim_time}],
                            remappings=[("joint_states", f"/{NODE_NAME}/ghost/joint_states")]))
    return actions


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("wallx_ros")
    args = [
        # required, but checked by _policy_node: launch's own check of required arguments would come first and
        # not say which arguments exist when the name is misspelt
        DeclareLaunchArgument("checkpoint_dir", default_value="",
                              description="LeRobot wall_x policy folder (required)"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "policy.yaml"]),
                              description="parameter file of the policy node"),
        *(DeclareLaunchArgument(name, default_value="", description=f"{text}; empty: as in params_file")
          for name, text in PARAMETER_ARGUMENTS.items()),
        DeclareLaunchArgument("joint_states_topic", default_value="joint_states", description="JointState input"),
        DeclareLaunchArgument("trajectory_topic", default_value=f"/{NODE_NAME}/joint_trajectory",
                              description="where trajectories go, e.g. /arm_controller/joint_trajectory"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz (config/policy.rviz)"),
        # one per camera of CAMERAS, spelled out so that static checks can read them
        DeclareLaunchArgument("face_view_topic", default_value="face_view/image_raw",
                              description="Image topic of the face_view (front) camera"),
        DeclareLaunchArgument("left_wrist_view_topic", default_value="left_wrist_view/image_raw",
                              description="Image topic of the left wrist camera"),
        DeclareLaunchArgument("right_wrist_view_topic", default_value="right_wrist_view/image_raw",
                              description="Image topic of the right wrist camera"),
    ]
    names = SUPPORT.declared_arguments(args)
    return LaunchDescription([*args, SUPPORT.check_arguments(__file__, lambda context: names),
                              OpaqueFunction(function=_policy_node), OpaqueFunction(function=_rviz)])
