"""The main job in simulation: a simulator + the WALL-OSS policy node in closed loop, RViz optional.

    ros2 launch wallx_ros sim.launch.py checkpoint_dir:=/path [allow_random_weights:=true] [rviz:=true]
    ros2 launch wallx_ros sim.launch.py sim:=gazebo checkpoint_dir:=/path   # Gazebo through ros_gz_bridge
    ros2 launch wallx_ros sim.launch.py sim:=isaac checkpoint_dir:=/path    # Isaac Sim's ROS 2 bridge

sim:=embedded (default) starts the MuJoCo simulator node (sim_node, config/sim.yaml). sim:=gazebo starts
ros_gz_bridge with config/gz_bridge.yaml (start gz sim yourself). sim:=isaac starts nothing for the simulator
(Isaac Sim's action graph publishes). Each choice switches the topic set of the policy (and recorder) nodes
to config/topics_<sim>.yaml (remappings applied with SetRemap) and runs them on sim time. The policy node is
policy.launch.py, included. Without launch_ros (a pip venv), scripts/demo.sh starts the same processes.
"""

from pathlib import Path

import yaml
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import EqualsSubstitution, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node, SetParameter, SetRemap
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

SIMULATORS = ("embedded", "gazebo", "isaac")
# policy.launch.py argument -> this file's launch configuration (passed when policy.launch.py declares it;
# the checkpoint argument is named checkpoint or checkpoint_dir depending on the policy launch file's version)
POLICY_ARGUMENTS = {"checkpoint": "checkpoint_dir", "checkpoint_dir": "checkpoint_dir", "device": "device",
                    "mode": "mode", "allow_random_weights": "allow_random_weights"}
# fixed values: the policy runs on the simulator's clock; RViz is this file's (config/wallx.rviz)
POLICY_FIXED_ARGUMENTS = {"use_sim_time": "true", "rviz": "false"}


def _policy_group(context, *args, **kwargs):
    """Read the chosen topic set and include the policy launch file under its remappings, on sim time."""
    sim = LaunchConfiguration("sim").perform(context)
    if sim not in SIMULATORS:
        raise RuntimeError(f"sim:={sim} is not one of {SIMULATORS}")
    topics_file = LaunchConfiguration("topics_file").perform(context)
    share = Path(FindPackageShare("wallx_ros").perform(context))
    path = Path(topics_file) if topics_file else share / "config" / f"topics_{sim}.yaml"
    remappings = (yaml.safe_load(path.read_text()) or {}).get("remappings") or {}
    actions = [SetParameter(name="use_sim_time", value=True)]
    actions += [SetRemap(src=str(src), dst=str(dst)) for src, dst in remappings.items()]
    source = PythonLaunchDescriptionSource(str(share / "launch" / "policy.launch.py"))
    declared = {arg.name for arg in source.get_launch_description(context).get_launch_arguments()}
    arguments = {name: LaunchConfiguration(ours) for name, ours in POLICY_ARGUMENTS.items() if name in declared}
    arguments.update({name: value for name, value in POLICY_FIXED_ARGUMENTS.items() if name in declared})
    actions.append(IncludeLaunchDescription(source, launch_arguments=arguments.items()))
    return [GroupAction(actions, condition=IfCondition(LaunchConfiguration("policy")))]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("wallx_ros")
    args = [
        DeclareLaunchArgument("sim", default_value="embedded", choices=list(SIMULATORS),
                              description="embedded MuJoCo simulator, gazebo (ros_gz_bridge) or isaac (Isaac Sim)"),
        DeclareLaunchArgument("checkpoint_dir", description="LeRobot wall_x policy folder "
                              "(a tiny test one: wallx-ros-make-test-checkpoint DIR, with allow_random_weights:=true)"),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu | cuda | cuda:N | auto"),
        DeclareLaunchArgument("mode", default_value="", description="diffusion | fast | '' (checkpoint's)"),
        DeclareLaunchArgument("allow_random_weights", default_value="false",
                              description="true only for the tiny test checkpoint"),
        DeclareLaunchArgument("policy", default_value="true", description="start the policy node"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/wallx.rviz"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0",
                              description="embedded sim: sim seconds per wall second (e.g. 0.1 for a CPU policy)"),
        DeclareLaunchArgument("run_log", default_value="", description="embedded sim: JSONL run log for "
                              "wallx-ros-plot-run"),
        DeclareLaunchArgument("sim_params_file", default_value=PathJoinSubstitution([share, "config", "sim.yaml"]),
                              description="embedded sim: parameter file of sim_node"),
        DeclareLaunchArgument("gz_bridge_config",
                              default_value=PathJoinSubstitution([share, "config", "gz_bridge.yaml"]),
                              description="gazebo: ros_gz_bridge config_file"),
        DeclareLaunchArgument("topics_file", default_value="",
                              description="topic set of the policy/recorder nodes; default config/topics_<sim>.yaml"),
    ]
    sim_node = Node(
        package="wallx_ros", executable="sim_node", name="wallx_sim", output="screen",
        parameters=[LaunchConfiguration("sim_params_file"),
                    {"real_time_factor": LaunchConfiguration("real_time_factor"),
                     "run_log": LaunchConfiguration("run_log")}],
        condition=IfCondition(EqualsSubstitution(LaunchConfiguration("sim"), "embedded")),
    )
    gz_bridge = Node(
        package="ros_gz_bridge", executable="parameter_bridge", name="wallx_gz_bridge", output="screen",
        parameters=[{"config_file": LaunchConfiguration("gz_bridge_config"), "use_sim_time": True}],
        condition=IfCondition(EqualsSubstitution(LaunchConfiguration("sim"), "gazebo")),
    )
    rviz = Node(
        package="rviz2", executable="rviz2", name="wallx_rviz", output="screen",
        arguments=["-d", PathJoinSubstitution([share, "config", "wallx.rviz"])],
        parameters=[{"use_sim_time": True}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    diagnostics_text = Node(
        package="wallx_ros", executable="diagnostics_markers", name="wallx_diagnostics_markers", output="screen",
        parameters=[{"use_sim_time": True}], condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*args, sim_node, gz_bridge, OpaqueFunction(function=_policy_group), rviz,
                              diagnostics_text])
