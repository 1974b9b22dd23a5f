"""launch/policy.launch.py and config/policy.yaml agree with the parameters the policy node declares.

launch_ros is not on PyPI: when it is importable the launch description is built for real; otherwise (and
always) the launch file is checked statically: its executable exists, its files exist, and every
parameter it sets is declared by the node.
"""

from __future__ import annotations

import ast
import importlib.util
import re

import pytest
import yaml
from ros_harness import REPO_ROOT

from wallx_ros.nodes.policy_parameters import PARAMETERS
from wallx_ros.policy.tiny_checkpoint import DEFAULT_CAMERAS

LAUNCH = REPO_ROOT / "launch" / "policy.launch.py"
YAML = REPO_ROOT / "config" / "policy.yaml"
DECLARED = {p.name for p in PARAMETERS} | {"use_sim_time"}  # rclpy declares use_sim_time itself


def _yaml_params() -> dict[str, object]:
    data = yaml.safe_load(YAML.read_text())
    return dict(data["/**"]["ros__parameters"])


def test_yaml_documents_every_declared_parameter_and_nothing_else() -> None:
    values = _yaml_params()
    assert set(values) <= DECLARED, f"undeclared in the node: {set(values) - DECLARED}"
    commented = set(re.findall(r"^\s*# (\w+): \[", YAML.read_text(), flags=re.M))
    missing = {p.name for p in PARAMETERS} - set(values) - commented
    assert not missing, f"config/policy.yaml does not document {sorted(missing)}"
    for spec in PARAMETERS:
        if spec.name in values and not hasattr(spec.default, "name"):  # typed array specs have no default
            assert type(values[spec.name]) is type(spec.default), (spec.name, values[spec.name], spec.default)
            assert values[spec.name] == spec.default, f"{spec.name}: yaml {values[spec.name]!r} != {spec.default!r}"


def _launch_tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def test_launch_file_names_existing_executables_files_and_declared_parameters() -> None:
    tree = _launch_tree()
    setup = (REPO_ROOT / "setup.py").read_text()
    policy_nodes = [c for c in _calls(tree, "Node")
                    if any(k.arg == "package" and getattr(k.value, "value", None) == "wallx_ros" for k in c.keywords)]
    assert len(policy_nodes) == 1
    kw = {k.arg: k.value for k in policy_nodes[0].keywords}
    executable = kw["executable"].value  # type: ignore[attr-defined]
    assert f'"{executable}": "wallx_ros.nodes.policy_node:main"' in setup
    # every key of the parameter dicts is declared by the node
    keys = {k.value for d in ast.walk(kw["parameters"]) if isinstance(d, ast.Dict) for k in d.keys
            if isinstance(k, ast.Constant)}
    assert keys and keys <= DECLARED, f"launch sets undeclared parameters {keys - DECLARED}"
    # every file under share/wallx_ros it names exists in the source tree (setup.py installs config/* and launch/*)
    joined = [c for c in _calls(tree, "PathJoinSubstitution")]
    for call in joined:
        parts = [e.value for e in call.args[0].elts if isinstance(e, ast.Constant)]  # type: ignore[attr-defined]
        assert (REPO_ROOT.joinpath(*parts)).is_file(), parts
    # launch arguments used through LaunchConfiguration are declared
    declared_args = {c.args[0].value for c in _calls(tree, "DeclareLaunchArgument")
                     if isinstance(c.args[0], ast.Constant)}
    assert {f"{cam}_topic" for cam in DEFAULT_CAMERAS} <= declared_args
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration") if isinstance(c.args[0], ast.Constant)}
    assert used <= declared_args, used - declared_args
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
    assert {"checkpoint", "device", "mode", "rviz", "face_view_topic"} <= names


def test_rviz_config_shows_the_policy_topics() -> None:
    rviz = (REPO_ROOT / "config" / "policy.rviz").read_text()
    data = yaml.safe_load(rviz)
    topics = {d.get("Topic", {}).get("Value") for d in data["Visualization Manager"]["Displays"]}
    assert "/wallx_policy/predicted_path" in topics
