"""Static checks of the simulation configs: the Gazebo bridge, the topic sets, sim.launch.py and the RViz config
name real executables, declared parameters, supported message types and the topics the nodes use.

(The same configs are checked against the RUNNING nodes' parameters and topics in test_sim_closed_loop.py.)
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml
from ros_harness import REPO_ROOT

from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS

CONFIG = REPO_ROOT / "config"
# ros_gz_bridge's supported ROS <-> Gazebo pairs for the types used here (ros_gz_bridge README, jazzy / rolling)
GZ_PAIRS = {
    "rosgraph_msgs/msg/Clock": "gz.msgs.Clock",
    "sensor_msgs/msg/Image": "gz.msgs.Image",
    "sensor_msgs/msg/CameraInfo": "gz.msgs.CameraInfo",
    "sensor_msgs/msg/JointState": "gz.msgs.Model",
    "trajectory_msgs/msg/JointTrajectory": "gz.msgs.JointTrajectory",
}
GZ_KEYS = {"topic_name", "ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "subscriber_queue",
           "publisher_queue", "lazy", "direction"}
SIMULATORS = ("embedded", "gazebo", "isaac")


def _setup_executables() -> set[str]:
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EXECUTABLES" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no EXECUTABLES")


def _yaml_params(name: str) -> set[str]:
    return set(yaml.safe_load((CONFIG / name).read_text())["/**"]["ros__parameters"])


def test_gz_bridge_config_is_a_valid_ros_gz_bridge_file() -> None:
    entries = yaml.safe_load((CONFIG / "gz_bridge.yaml").read_text())
    assert isinstance(entries, list) and entries
    for e in entries:
        assert set(e) <= GZ_KEYS, f"unknown ros_gz_bridge keys {set(e) - GZ_KEYS}"
        assert GZ_PAIRS.get(e["ros_type_name"]) == e["gz_type_name"], e
        assert e["direction"] in ("GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL")
        assert e["ros_topic_name"].startswith("/") and e["gz_topic_name"].startswith("/")
        pkg, _, msg = e["ros_type_name"].split("/")
        assert hasattr(importlib.import_module(f"{pkg}.msg"), msg)
    ros_topics = {e["ros_topic_name"]: e for e in entries}
    assert len(ros_topics) == len(entries), "a ROS topic is bridged twice"
    for cam in DEFAULT_CAMERAS:  # the policy's cameras, under the names the policy node subscribes to
        assert ros_topics[f"/{cam}/image_raw"]["direction"] == "GZ_TO_ROS"
    assert ros_topics["/joint_states"]["direction"] == "GZ_TO_ROS"
    assert ros_topics["/clock"]["direction"] == "GZ_TO_ROS"
    assert ros_topics["/arm_controller/joint_trajectory"]["direction"] == "ROS_TO_GZ"


@pytest.mark.parametrize("sim", SIMULATORS)
def test_topic_sets(sim: str) -> None:
    remaps = yaml.safe_load((CONFIG / f"topics_{sim}.yaml").read_text())["remappings"]
    assert remaps["/wallx_policy/joint_trajectory"] == "/arm_controller/joint_trajectory"
    for src, dst in remaps.items():
        assert src.startswith("/") and dst.startswith("/"), "topic sets use absolute names"
    cams = {src for src in remaps if src.endswith("/image_raw")}
    assert cams <= {f"/{c}/image_raw" for c in DEFAULT_CAMERAS}


def test_sim_launch_ships_its_files() -> None:
    """(Arguments, nodes and exits of the launch files: test_launch_files.py.)"""
    source = (REPO_ROOT / "launch" / "sim.launch.py").read_text()
    executables = _setup_executables()
    assert '"policy.launch.py"' in source
    # every file it points at is shipped (setup.py globs config/*.yaml, *.rviz)
    for sim in SIMULATORS:
        assert (CONFIG / f"topics_{sim}.yaml").is_file()
    for name in ("sim.yaml", "gz_bridge.yaml", "wallx.rviz"):
        assert f'"{name}"' in source and (CONFIG / name).is_file()
    assert "diagnostics_markers" in executables and "sim_node" in executables and "wallx-ros-plot-run" in executables


def test_sim_launch_builds_with_launch_ros_when_available() -> None:
    pytest.importorskip("launch_ros", reason="launch_ros is not on PyPI: the static checks above cover the pip venv")
    spec = importlib.util.spec_from_file_location("sim_launch", REPO_ROOT / "launch" / "sim.launch.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities


def test_rviz_config_shows_cameras_robot_ghost_and_diagnostics() -> None:
    config = yaml.safe_load((CONFIG / "wallx.rviz").read_text())
    displays = {d["Name"]: d for d in config["Visualization Manager"]["Displays"]}
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == "world"
    for cam in DEFAULT_CAMERAS:
        topic = displays[cam]["Topic"]
        assert topic["Value"] == f"/{cam}/image_raw" and topic["Reliability Policy"] == "Best Effort"
    assert displays["Robot"]["Description Topic"]["Value"] == "/robot_description"
    assert displays["Predicted chunk ghost"]["TF Prefix"] == "ghost"
    assert displays["Predicted chunk ghost"]["Description Topic"]["Value"] == "/ghost/robot_description"
    assert displays["Policy predicted path"]["Topic"]["Value"] == "/wallx_policy/predicted_path"
    assert displays["Predicted gripper path"]["Topic"]["Value"] == "/wallx_sim/predicted_path"
    assert displays["Diagnostics"]["Topic"]["Value"] == "/wallx_diagnostics_markers/markers"


def test_packaging_lists_the_sim_files() -> None:
    setup = (REPO_ROOT / "setup.py").read_text()
    assert 'glob("config/*.rviz")' in setup and 'glob("config/*.yaml")' in setup and 'glob("launch/*.py")' in setup
    assert Path(REPO_ROOT / "launch" / "sim.launch.py").is_file()
