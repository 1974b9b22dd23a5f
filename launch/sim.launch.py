"""The main job in simulation: a simulator + the WALL-OSS policy node in closed loop, RViz optional.

    ros2 launch wallx_ros sim.launch.py checkpoint_dir:=/path [allow_random_weights:=true] [rviz:=true]
    ros2 launch wallx_ros sim.launch.py sim:=gazebo checkpoint_dir:=/path   # Gazebo through ros_gz_bridge
    ros2 launch wallx_ros sim.launch.py sim:=isaac checkpoint_dir:=/path    # Isaac Sim's ROS 2 bridge
    ros2 launch wallx_ros sim.launch.py policy:=false                       # the simulator alone

sim:=embedded (default) starts the MuJoCo simulator node (sim_node, config/sim.yaml). sim:=gazebo starts
ros_gz_bridge with config/gz_bridge.yaml (start gz sim yourself). sim:=isaac starts nothing for the simulator
(Isaac Sim's action graph publishes). Each choice switches the topic set of the policy node to
config/topics_<sim>.yaml (remappings applied with SetRemap, the simulated robot's joint limits with SetParameter:
the policy node refuses to activate without limits) and runs it on sim time. The policy node is
policy.launch.py, included: its arguments (device, mode, instruction, params_file, state_joint_names, ...) are
arguments of this file too, except those this file decides (use_sim_time, rviz, the topic arguments: the topic
set does). Without launch_ros (a pip venv without launch), scripts/demo.sh starts the same processes.
"""

import importlib.util
from pathlib import Path

import yaml
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node, SetParameter, SetRemap
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

SIMULATORS = ("embedded", "gazebo", "isaac")
# launch argument = sim_node parameter of the same name; empty (the default) = as in sim_params_file
SIM_PARAMETER_ARGUMENTS = {
    "real_time_factor": "sim seconds per wall second (e.g. 0.1 for a CPU policy)",
    "run_log": "JSONL run log for wallx-ros-plot-run",
    "scene": "aloha_insertion | aloha_transfer_cube",
    "seed": ">= 0: place the objects as gym-aloha samples them; -1: the scene keyframe",
}
# policy.launch.py arguments this file sets itself (the policy runs on the simulator's clock, the topic set
# names its topics, RViz is this file's config/wallx.rviz); every other one is passed through
POLICY_FIXED_ARGUMENTS = {"use_sim_time": "true", "rviz": "false"}


def _support():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("wallx_launch_support",
                                                  Path(__file__).with_name("wallx_launch_support.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUPPORT = _support()


def _policy_source(context) -> PythonLaunchDescriptionSource:  # type: ignore[no-untyped-def]
    share = Path(FindPackageShare("wallx_ros").perform(context))
    return PythonLaunchDescriptionSource(str(share / "launch" / "policy.launch.py"))


def _passed_through(context) -> set[str]:  # type: ignore[no-untyped-def]
    """policy.launch.py's arguments that reach it from this file's command line."""
    declared = {a.name for a in _policy_source(context).get_launch_description(context).get_launch_arguments()}
    return {n for n in declared if n not in POLICY_FIXED_ARGUMENTS and not n.endswith("_topic")}


def _simulator(context, *args, **kwargs):  # launch's OpaqueFunction signature
    sim = LaunchConfiguration("sim").perform(context)
    if sim == "embedded":
        overrides = SUPPORT.parameter_overrides(context, SIM_PARAMETER_ARGUMENTS)
        node = Node(package="wallx_ros", executable="sim_node", name="wallx_sim", output="screen",
                    parameters=[LaunchConfiguration("sim_params_file"), overrides])
        return [SUPPORT.required(node, "the simulator (sim_node)"), node]
    if sim == "gazebo":
        node = Node(package="ros_gz_bridge", executable="parameter_bridge", name="wallx_gz_bridge", output="screen",
                    parameters=[{"config_file": LaunchConfiguration("gz_bridge_config"), "use_sim_time": True}])
        return [SUPPORT.required(node, "ros_gz_bridge"), node]
    return []


def _with_policy(context) -> bool:  # type: ignore[no-untyped-def]
    return LaunchConfiguration("policy").perform(context).lower() in ("true", "1")


def _validate(context) -> None:  # type: ignore[no-untyped-def]
    """Refuse what cannot work before anything starts."""
    if _with_policy(context) and not LaunchConfiguration("checkpoint_dir").perform(context):
        raise RuntimeError("sim.launch.py: checkpoint_dir:=<LeRobot wall_x policy folder> is required, or "
                           "policy:=false for the simulator alone (a tiny test checkpoint: "
                           "wallx-ros-make-test-checkpoint DIR, with allow_random_weights:=true)")


def _policy_group(context, *args, **kwargs):  # launch's OpaqueFunction signature
    """Read the chosen topic set and include the policy launch file under its remappings, on sim time."""
    if not _with_policy(context):
        return []
    sim = LaunchConfiguration("sim").perform(context)
    topics_file = LaunchConfiguration("topics_file").perform(context)
    share = Path(FindPackageShare("wallx_ros").perform(context))
    path = Path(topics_file) if topics_file else share / "config" / f"topics_{sim}.yaml"
    topic_set = yaml.safe_load(path.read_text()) or {}
    remappings = topic_set.get("remappings") or {}
    actions = [SetParameter(name="use_sim_time", value=True)]
    actions += [SetRemap(src=str(src), dst=str(dst)) for src, dst in remappings.items()]
    # the simulated robot's joint limits: the policy node refuses to activate without limits
    actions += [SetParameter(name=str(k), value=v) for k, v in (topic_set.get("policy_parameters") or {}).items()]
    arguments = {name: LaunchConfiguration(name) for name in _passed_through(context)
                 if name in context.launch_configurations}
    arguments.update(POLICY_FIXED_ARGUMENTS)
    actions.append(IncludeLaunchDescription(_policy_source(context), launch_arguments=arguments.items()))
    return [GroupAction(actions)]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("wallx_ros")
    args = [
        DeclareLaunchArgument("sim", default_value="embedded", choices=list(SIMULATORS),
                              description="embedded MuJoCo simulator, gazebo (ros_gz_bridge) or isaac (Isaac Sim)"),
        DeclareLaunchArgument("policy", default_value="true", description="start the policy node (policy.launch.py)"),
        DeclareLaunchArgument("checkpoint_dir", default_value="", description="LeRobot wall_x policy folder "
                              "(required with policy:=true; a tiny test one: wallx-ros-make-test-checkpoint DIR, "
                              "with allow_random_weights:=true)"),
        # the policy.launch.py arguments most runs set (all others pass through as well)
        DeclareLaunchArgument("device", default_value="", description="policy: cpu | cuda | cuda:N | auto"),
        DeclareLaunchArgument("mode", default_value="", description="policy: diffusion | fast | '' (checkpoint's)"),
        DeclareLaunchArgument("allow_random_weights", default_value="",
                              description="policy: true only for the tiny test checkpoint"),
        DeclareLaunchArgument("instruction", default_value="", description="policy: task instruction"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/wallx.rviz"),
        *(DeclareLaunchArgument(name, default_value="", description=f"embedded sim: {text}; empty: as in "
                                "sim_params_file") for name, text in SIM_PARAMETER_ARGUMENTS.items()),
        DeclareLaunchArgument("sim_params_file", default_value=PathJoinSubstitution([share, "config", "sim.yaml"]),
                              description="embedded sim: parameter file of sim_node"),
        DeclareLaunchArgument("gz_bridge_config",
                              default_value=PathJoinSubstitution([share, "config", "gz_bridge.yaml"]),
                              description="gazebo: ros_gz_bridge config_file"),
        DeclareLaunchArgument("topics_file", default_value="",
                              description="topic set of the policy node; default config/topics_<sim>.yaml"),
    ]
    names = SUPPORT.declared_arguments(args)
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
    return LaunchDescription([
        *args, SUPPORT.check_arguments(__file__, lambda context: {*names, *_passed_through(context)}, _validate),
        OpaqueFunction(function=_simulator), OpaqueFunction(function=_policy_group), rviz, diagnostics_text])
