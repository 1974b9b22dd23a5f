"""launch/policy.launch.py and config/policy.yaml agree with the parameters the policy node declares.

launch_ros is not on PyPI: when it is importable the launch description is built for real; otherwise (and
always) the launch file is checked statically (here its camera remaps; the rest in test_launch_files.py).
"""

from __future__ import annotations

import ast
import importlib.util

import pytest
import yaml
from ros_harness import REPO_ROOT

from wallx_ros.nodes.policy_parameters import TABLE
from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS

LAUNCH = REPO_ROOT / "launch" / "policy.launch.py"
YAML = REPO_ROOT / "config" / "policy.yaml"
DECLARED = set(TABLE.names) | {"use_sim_time"}  # rclpy declares use_sim_time itself


def _yaml_params() -> dict[str, object]:
    data = yaml.safe_load(YAML.read_text())
    return dict(data["/**"]["ros__parameters"])


def _launch_tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def test_launch_file_remaps_the_topics_the_node_subscribes() -> None:
    """(Arguments, parameters, files and exits of every launch file: test_launch_files.py.)"""
    tree = _launch_tree()
    declared_args = {c.args[0].value for c in ast.walk(tree) if isinstance(c, ast.Call)
                     and getattr(c.func, "id", None) == "DeclareLaunchArgument" and isinstance(c.args[0], ast.Constant)}
    assert {f"{cam}_topic" for cam in DEFAULT_CAMERAS} <= declared_args
    # the camera remaps are the topics the node subscribes by default
    source = LAUNCH.read_text()
    cameras = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                   and getattr(n.targets[0], "id", "") == "CAMERAS")
    assert tuple(cameras) == tuple(DEFAULT_CAMERAS)
    assert '"~/joint_trajectory"' in source and '"joint_states"' in source


def test_launch_file_imports_with_launch_ros() -> None:
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not installed (not on PyPI); the static check above covers the launch file")
    spec = importlib.util.spec_from_file_location("policy_launch", LAUNCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {getattr(e, "name", None) for e in description.entities}
    assert {"checkpoint_dir", "device", "mode", "rviz", "face_view_topic"} <= names


def test_rviz_config_shows_the_policy_topics() -> None:
    rviz = (REPO_ROOT / "config" / "policy.rviz").read_text()
    data = yaml.safe_load(rviz)
    topics = {d.get("Topic", {}).get("Value") for d in data["Visualization Manager"]["Displays"]}
    assert "/wallx_policy/predicted_path" in topics
