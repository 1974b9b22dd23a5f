"""The launch files: what a user must set is an argument, one name per concept, errors end the launch.

launch/launch_ros are not on PyPI, so the suite checks the launch files statically everywhere (their nodes,
arguments and files) and, where launch_ros is importable (a ROS install, or launch built from source into the
venv), runs them for real through launch's own LaunchService (``launch_driver.py``): an unknown argument is
refused with the valid list, a node that fails at start ends the launch with exit code 1, a good launch
starts its nodes and stops cleanly.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from ros_harness import REPO_ROOT, subprocess_env

LAUNCH = REPO_ROOT / "launch"
LAUNCH_FILES = ("policy.launch.py", "sim.launch.py", "record.launch.py", "teleop.launch.py")
# launch file -> (constant naming its parameter arguments, the config file documenting that node's parameters)
PARAMETER_TABLES = {"policy.launch.py": ("PARAMETER_ARGUMENTS", "policy.yaml"),
                    "sim.launch.py": ("SIM_PARAMETER_ARGUMENTS", "sim.yaml"),
                    "record.launch.py": ("PARAMETER_ARGUMENTS", "recorder.yaml"),
                    "teleop.launch.py": ("PARAMETER_ARGUMENTS", "teleop.yaml")}
# what users must be able to set on each launch file's command line
MUST_SET = {"policy.launch.py": {"checkpoint_dir", "params_file", "use_sim_time", "device", "instruction", "cameras",
                                 "state_joint_names", "action_joint_names"},
            "sim.launch.py": {"checkpoint_dir", "policy", "sim", "sim_params_file", "real_time_factor"},
            "record.launch.py": {"root", "params_file", "joint_names", "cameras", "use_sim_time", "repo_id",
                                 "instruction", "fps"},
            "teleop.launch.py": {"mode", "params_file", "joint_names", "use_sim_time", "command_topic", "joy_axes"}}
# second spellings of one concept that no launch file may declare (the node parameter's name is the one)
FORBIDDEN = {"checkpoint": "checkpoint_dir", "urdf": "urdf_path", "sim_time": "use_sim_time",
             "params": "params_file"}


def _support() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wallx_launch_support", LAUNCH / "wallx_launch_support.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(name: str) -> ast.Module:
    return ast.parse((LAUNCH / name).read_text(), filename=name)


def _calls(tree: ast.Module, func: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == func or getattr(n.func, "attr", None) == func)]


def _constant(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no module constant {name}")


def _declared_arguments(tree: ast.Module) -> set[str]:
    """Names of DeclareLaunchArgument calls, literal or generated from a parameter table."""
    names = {c.args[0].value for c in _calls(tree, "DeclareLaunchArgument") if isinstance(c.args[0], ast.Constant)}
    for node in ast.walk(tree):  # *(DeclareLaunchArgument(name, ...) for name, text in TABLE.items())
        if isinstance(node, ast.GeneratorExp) and isinstance(node.elt, ast.Call) \
                and getattr(node.elt.func, "id", None) == "DeclareLaunchArgument":
            table = node.generators[0].iter.func.value.id  # type: ignore[attr-defined]
            names |= set(_constant(tree, table))  # type: ignore[arg-type]
    return names


def _node_parameters(config: str) -> set[str]:
    """The parameters config/<node>.yaml documents (set, or commented out: arrays without a default)."""
    text = (REPO_ROOT / "config" / config).read_text()
    documented = set(yaml.safe_load(text)["/**"]["ros__parameters"])
    return documented | set(re.findall(r"^\s*# (\w+): \[", text, flags=re.M)) | {"use_sim_time"}


def _setup_executables() -> set[str]:
    return set(_constant(ast.parse((REPO_ROOT / "setup.py").read_text()), "EXECUTABLES"))  # type: ignore[arg-type]


def test_argument_check_reads_the_command_line() -> None:
    s = _support()
    argv = ["checkpoint_dir:=/m", "checkpoint:=/m", "launch-prefix:=gdb -ex run", "x:=a:=b"]
    assert s.given_arguments(argv) == ["checkpoint_dir", "checkpoint", "launch-prefix", "x"]
    assert s.unknown_arguments(argv, {"checkpoint_dir", "x"}) == ["checkpoint"]
    # ros2 launch <pkg> <file> or a path: this file's arguments; a file that includes it: not ours to judge
    assert s.is_command_line_file("/share/wallx_ros/launch/policy.launch.py",
                                  ["ros2", "launch", "wallx_ros", "policy.launch.py", "checkpoint_dir:=/m"])
    assert s.is_command_line_file("/a/policy.launch.py",
                                  ["ros2", "launch", "/b/policy.launch.py", "a:=policy.launch.py"])
    assert not s.is_command_line_file("/share/wallx_ros/launch/policy.launch.py",
                                      ["ros2", "launch", "my_robot", "bringup.launch.py", "x:=policy.launch.py"])
    message = s.unknown_arguments_message("/x/policy.launch.py", ["checkpoint"], {"checkpoint_dir", "device"})
    assert "unknown launch argument(s) checkpoint" in message and "valid: checkpoint_dir, device" in message


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_arguments_nodes_and_files(name: str) -> None:
    tree = _tree(name)
    source = (LAUNCH / name).read_text()
    declared = _declared_arguments(tree)
    assert MUST_SET[name] <= declared, f"{name} lacks the arguments {MUST_SET[name] - declared}"
    assert not set(FORBIDDEN) & declared, {a: FORBIDDEN[a] for a in set(FORBIDDEN) & declared}
    # every launch configuration read by name is declared here
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")
            if c.args and isinstance(c.args[0], ast.Constant)}
    assert used <= declared, f"{name} reads undeclared launch configurations {used - declared}"
    # an argument that sets a node parameter has that parameter's name (the node documents it in config/)
    table, config = PARAMETER_TABLES[name]
    arguments = set(_constant(tree, table))  # type: ignore[arg-type]
    parameters = _node_parameters(config)
    assert arguments <= parameters, f"{name}: {arguments - parameters} are no parameters of the node ({config})"
    # ... and literal parameter dicts set declared parameters only
    for node in _calls(tree, "Node"):
        kw = {k.arg: k.value for k in node.keywords}
        if getattr(kw.get("package"), "value", None) != "wallx_ros":
            continue
        assert kw["executable"].value in _setup_executables()  # type: ignore[attr-defined]
        keys = {k.value for d in ast.walk(kw["parameters"]) if isinstance(d, ast.Dict) for k in d.keys
                if isinstance(k, ast.Constant)}
        if kw["executable"].value != "diagnostics_markers":  # type: ignore[attr-defined]
            assert keys <= parameters, f"{name} sets undeclared parameters {keys - parameters}"
    # every wallx_ros process but RViz's helper is required: its failure ends the launch with an error
    wallx_nodes = [n for n in _calls(tree, "Node") if any(k.arg == "package" and getattr(k.value, "value", None)
                                                          in ("wallx_ros", "ros_gz_bridge") for k in n.keywords)]
    helpers = [n for n in wallx_nodes if any(getattr(k.value, "value", None) == "diagnostics_markers"
                                             for k in n.keywords)]
    assert len(_calls(tree, "required")) == len(wallx_nodes) - len(helpers), name
    # unknown arguments are checked before any process starts (first action after the declarations)
    assert len(_calls(tree, "check_arguments")) == 1
    description = _calls(tree, "LaunchDescription")[-1].args[0]
    first_action = next(e for e in description.elts if not isinstance(e, ast.Starred))  # type: ignore[attr-defined]
    assert getattr(first_action.func, "attr", None) == "check_arguments", name  # type: ignore[attr-defined]
    # every file under share/wallx_ros it names exists in the source tree
    for call in _calls(tree, "PathJoinSubstitution"):
        parts = [e.value for e in call.args[0].elts if isinstance(e, ast.Constant)]  # type: ignore[attr-defined]
        if len(parts) == 2:
            assert (REPO_ROOT.joinpath(*parts)).is_file(), parts
    for included in re.findall(r'"(\w+\.launch\.py)"', source):
        assert (LAUNCH / included).is_file(), included


def test_sim_launch_passes_policy_arguments_through_under_their_own_names() -> None:
    sim, policy = _tree("sim.launch.py"), _tree("policy.launch.py")
    common = _declared_arguments(sim) & _declared_arguments(policy)
    assert {"checkpoint_dir", "device", "mode", "allow_random_weights", "instruction"} <= common
    fixed = _constant(sim, "POLICY_FIXED_ARGUMENTS")
    assert fixed == {"use_sim_time": "true", "rviz": "false"}


# -- for real, where launch_ros exists --------------------------------------------------------------------
def _launch(tmp_path: Path, name: str, *arguments: str, seconds: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run launch/<name> through LaunchService (launch_driver.py) for up to ``seconds``; its log (stdout) and code."""
    driver = Path(__file__).with_name("launch_driver.py")
    return subprocess.run([sys.executable, str(driver), name, str(seconds), *arguments], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=subprocess_env(), cwd=tmp_path,
                          timeout=seconds + 120)


def _need_launch() -> None:
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not installed (not on PyPI; a ROS install or launch built from source has it): "
                    "the static checks above cover the launch files")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("wallx_ros")
    except PackageNotFoundError:
        pytest.fail("wallx_ros is not in the ament index: run scripts/setup.sh (it registers the venv)")


def test_unknown_argument_is_refused_with_the_valid_list(tmp_path: Path) -> None:
    _need_launch()
    run = _launch(tmp_path, "policy.launch.py", "checkpoint:=/models/x")
    assert run.returncode == 1, run.stdout
    assert "unknown launch argument(s) checkpoint; valid: " in run.stdout and "checkpoint_dir" in run.stdout
    assert "process started" not in run.stdout


def test_sim_without_checkpoint_needs_policy_false(tmp_path: Path) -> None:
    _need_launch()
    run = _launch(tmp_path, "sim.launch.py")
    assert run.returncode == 1 and "checkpoint_dir:=" in run.stdout and "policy:=false" in run.stdout, run.stdout
    assert "process started" not in run.stdout


def test_a_node_failing_at_start_ends_the_launch_with_an_error(tmp_path: Path) -> None:
    _need_launch()
    run = _launch(tmp_path, "record.launch.py", f"root:={tmp_path / 'ds'}")  # no joint_names anywhere
    assert run.returncode == 1, run.stdout
    assert "joint_names is required" in run.stdout and "the recorder node exited with code 1" in run.stdout


def test_record_launch_sets_joint_names_and_stops_cleanly(tmp_path: Path) -> None:
    _need_launch()
    run = _launch(tmp_path, "record.launch.py", f"root:={tmp_path / 'ds'}", 'joint_names:=[shoulder, elbow]',
                  "fps:=15", "teleop:=true", seconds=25)
    assert run.returncode == 0, run.stdout
    assert re.search(r"ready: dataset .*15 fps.*joints \['shoulder', 'elbow'\]", run.stdout), run.stdout
    assert re.search(r"ready: leader teleop of \['shoulder', 'elbow'\]", run.stdout), run.stdout
    assert "process has died" not in run.stdout
