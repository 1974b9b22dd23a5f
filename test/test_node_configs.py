"""config/<node>.yaml documents exactly the parameters each node declares, with the same defaults."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from ros_harness import REPO_ROOT


def _declared(module: Path) -> dict[str, object]:
    out = {}
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_declare":
            name, default = node.args[1], node.args[2]
            if isinstance(name, ast.Constant):
                try:
                    out[name.value] = ast.literal_eval(default)
                except ValueError:  # a module constant
                    out[name.value] = ast.literal_eval(_constant(module, default))
    return out


def _constant(module: Path, expr: ast.expr) -> ast.expr:
    assert isinstance(expr, ast.Name)
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == expr.id for t in node.targets):
            return node.value
    raise AssertionError(f"{expr.id} not found in {module}")


@pytest.mark.parametrize(("node", "config"), [("recorder_node", "recorder.yaml"), ("teleop_node", "teleop.yaml")])
def test_yaml_matches_declared_parameters(node: str, config: str) -> None:
    declared = _declared(REPO_ROOT / "wallx_ros" / "nodes" / f"{node}.py")
    documented = yaml.safe_load((REPO_ROOT / "config" / config).read_text())["/**"]["ros__parameters"]
    assert set(documented) == set(declared), (set(documented) ^ set(declared))
    for name, default in declared.items():
        assert documented[name] == default, f"{config}: {name} is {documented[name]!r}, the node's default {default!r}"


def test_bag_converter_accepts_the_recorder_config() -> None:
    """wallx-ros-bag2dataset takes config/recorder.yaml as is: every recorder parameter is known to it."""
    from wallx_ros.dataset.bag_config import BagConversionConfig, load_params_file

    params = load_params_file(REPO_ROOT / "config" / "recorder.yaml")
    params.update(joint_names=["a", "b"], action_joint_names=["a", "b"])  # the yaml leaves them to the user
    config = BagConversionConfig.from_params(params)
    assert config.fps == params["fps"] and config.video_codec == params["video_codec"]
