"""Launch the WALL-OSS policy node.

    ros2 launch wallx_ros policy.launch.py checkpoint:=/models/my_policy device:=cuda \
        trajectory_topic:=/arm_controller/joint_trajectory face_view_topic:=/front/color/image_raw

Arguments: checkpoint, device, mode (diffusion | fast), output_mode, dry_run, params_file, use_sim_time,
allow_random_weights, camera remaps (<camera>_topic, the raw Image topic; its CompressedImage sibling
<topic>/compressed is remapped with it), joint_states_topic, trajectory_topic, urdf, and rviz (RViz with
the predicted path markers and a "ghost" robot driven by ~/ghost/joint_states through a second
robot_state_publisher when a urdf is given).
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

CAMERAS = ("face_view", "left_wrist_view", "right_wrist_view")
NODE_NAME = "wallx_policy"


def _ghost_robot(context, *args, **kwargs):  # launch's OpaqueFunction signature
    """A second robot_state_publisher for the predicted pose, only when a URDF is given and rviz is on."""
    urdf = LaunchConfiguration("urdf").perform(context)
    if not urdf or LaunchConfiguration("rviz").perform(context).lower() not in ("true", "1"):
        return []
    with open(urdf) as f:
        description = f.read()
    return [Node(package="robot_state_publisher", executable="robot_state_publisher", namespace="ghost",
                 name="robot_state_publisher", output="screen",
                 parameters=[{"robot_description": description, "frame_prefix": "ghost/"}],
                 remappings=[("joint_states", f"/{NODE_NAME}/ghost/joint_states")])]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("wallx_ros")
    args = [
        DeclareLaunchArgument("checkpoint", description="LeRobot wall_x policy folder (checkpoint_dir)"),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu | cuda | cuda:N | auto"),
        DeclareLaunchArgument("mode", default_value="", description="prediction mode: diffusion | fast | '' "
                                                                    "(the checkpoint's)"),
        DeclareLaunchArgument("output_mode", default_value="trajectory",
                              description="trajectory | action | joint_state | array"),
        DeclareLaunchArgument("dry_run", default_value="false", description="publish to ~/dry_run/... only"),
        DeclareLaunchArgument("allow_random_weights", default_value="false",
                              description="true only for the tiny test checkpoint"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "policy.yaml"]),
                              description="parameter file of the policy node"),
        DeclareLaunchArgument("joint_states_topic", default_value="joint_states", description="JointState input"),
        DeclareLaunchArgument("trajectory_topic", default_value=f"/{NODE_NAME}/joint_trajectory",
                              description="where trajectories go, e.g. /arm_controller/joint_trajectory"),
        DeclareLaunchArgument("urdf", default_value="", description="URDF file: limits, markers, ghost robot"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz"),
        # one per camera of CAMERAS, spelled out so that static checks can read them
        DeclareLaunchArgument("face_view_topic", default_value="face_view/image_raw",
                              description="Image topic of the face_view (front) camera"),
        DeclareLaunchArgument("left_wrist_view_topic", default_value="left_wrist_view/image_raw",
                              description="Image topic of the left wrist camera"),
        DeclareLaunchArgument("right_wrist_view_topic", default_value="right_wrist_view/image_raw",
                              description="Image topic of the right wrist camera"),
    ]
    remappings = [("joint_states", LaunchConfiguration("joint_states_topic")),
                  ("~/joint_trajectory", LaunchConfiguration("trajectory_topic"))]
    for cam in CAMERAS:
        topic = LaunchConfiguration(f"{cam}_topic")
        remappings += [(f"{cam}/image_raw", topic), (f"{cam}/image_raw/compressed", [topic, "/compressed"])]
    policy = Node(
        package="wallx_ros",
        executable="policy_node",
        name=NODE_NAME,
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "checkpoint_dir": LaunchConfiguration("checkpoint"),
                "device": LaunchConfiguration("device"),
                "mode": LaunchConfiguration("mode"),
                "output_mode": LaunchConfiguration("output_mode"),
                "dry_run": LaunchConfiguration("dry_run"),
                "allow_random_weights": LaunchConfiguration("allow_random_weights"),
                "use_sim_time": LaunchConfiguration("use_sim_time"),
                "urdf_path": LaunchConfiguration("urdf"),
            },
        ],
        remappings=remappings,
    )
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                arguments=["-d", PathJoinSubstitution([share, "config", "policy.rviz"])],
                parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
                condition=IfCondition(LaunchConfiguration("rviz")))
    return LaunchDescription([*args, policy, rviz, OpaqueFunction(function=_ghost_robot)])
