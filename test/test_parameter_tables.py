"""The parameter-table pattern, for every node: the table matches config/<node>.yaml, ``--help`` prints it without
starting ROS, and every bad override (unknown name, wrong type, out of range, a ``-p`` after ``--params-file``)
ends the node at start-up with ONE line and a non-zero exit - never a traceback, never silently ignored.

The node processes are real (``python -m wallx_ros.nodes.<node>``); the refusals happen before rclpy starts, so
they cost an import each. One real DDS check: the value a node holds is the command line's last word.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ros_harness import REPO_ROOT, RosTestNode, subprocess_env, wait_until

from wallx_ros.core.errors import ParameterError
from wallx_ros.core.parameter_table import (
    Param,
    ParameterTable,
    ParamType,
    overrides_from_args,
    rcl_value,
    yaml_parameters,
)

# executable -> (module, config file) for every node the package installs
NODES = {
    "policy_node": ("wallx_ros.nodes.policy_node", "policy.yaml"),
    "recorder_node": ("wallx_ros.nodes.recorder_node", "recorder.yaml"),
    "teleop_node": ("wallx_ros.nodes.teleop_node", "teleop.yaml"),
    "sim_node": ("wallx_ros.nodes.sim_node", "sim.yaml"),
    "image_compressor": ("wallx_ros.nodes.image_compressor", "image_compressor.yaml"),
    "diagnostics_markers": ("wallx_ros.nodes.diagnostics_markers_node", "diagnostics_markers.yaml"),
    "expert_node": ("wallx_ros.nodes.expert_node", "expert.yaml"),
    "evaluator_node": ("wallx_ros.nodes.evaluator_node", "evaluator.yaml"),
}


_NO_ROS = {"ROS_DOMAIN_ID": "not_a_number"}


def _table(module: str) -> ParameterTable:
    mod = importlib.import_module(module)
    if module.endswith("policy_node"):
        mod = importlib.import_module("wallx_ros.nodes.policy_parameters")
    return mod.TABLE  # type: ignore[no-any-return]


def _run(module: str, *args: str, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env(env), cwd=str(REPO_ROOT))


# -- the table and its config file ---------------------------------------------------------------------------
def test_every_installed_node_has_a_table_and_a_config() -> None:
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    executables = next(ast.literal_eval(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                       and any(getattr(t, "id", "") == "EXECUTABLES" for t in n.targets))
    nodes = {exe: target for exe, target in executables.items() if ".nodes." in target}
    assert set(nodes) == set(NODES), set(nodes) ^ set(NODES)
    for exe, target in nodes.items():
        assert target == f"{NODES[exe][0]}:main"


@pytest.mark.parametrize("exe", sorted(NODES))
def test_config_yaml_documents_exactly_the_table(exe: str) -> None:
    module, config = NODES[exe]
    table = _table(module)
    path = REPO_ROOT / "config" / config
    given = yaml_parameters(path, table.node_name)  # typed as rcl types them
    undeclared = set(given) - set(table.names) - {"use_sim_time"}
    assert not undeclared, f"{config} sets undeclared {undeclared}"
    commented = set(re.findall(r"^\s*# (\w+): \[", path.read_text(), flags=re.M))  # unset lists, shown commented
    missing = set(table.names) - set(given) - commented
    assert not missing, f"{config} does not document {sorted(missing)}"
    for p in table.params:
        if p.name in given:
            assert p.default is not None, f"{config} sets {p.name}, which is unset by default"
            assert p.check(given[p.name], config) == p.default, f"{config}: {p.name} {given[p.name]!r} != {p.default!r}"
        else:
            assert p.default is None, f"{config} leaves out {p.name}, whose default is {p.default!r}"


def test_nodes_declare_parameters_only_through_their_table() -> None:
    """One pattern: no node keeps a _declare helper or declares parameters by hand."""
    for path in (REPO_ROOT / "wallx_ros" / "nodes").glob("*.py"):
        if path.name == "parameters.py":
            continue
        text = path.read_text()
        assert "def _declare" not in text and "declare_parameter(" not in text, path.name


# -- --help ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exe", sorted(NODES))
def test_help_prints_the_table_and_starts_no_ros(exe: str) -> None:
    module, _ = NODES[exe]
    table = _table(module)
    # a ROS_DOMAIN_ID rcl refuses: had the node started ROS, it would have failed
    result = _run(module, "--help", env=_NO_ROS)
    assert result.returncode == 0, result.stderr
    for p in table.params:
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith(f"  {p.name} (")), None)
        assert line is not None, f"--help of {exe} lacks {p.name}"
        assert p.type.value in line and p.default_text() in line and p.description[:30] in line, line
    assert "Traceback" not in result.stderr and "rcl" not in result.stderr


def test_without_help_that_environment_stops_ros_in_one_line() -> None:
    """The check above can fail: the same environment makes rcl refuse to start (one line, not a traceback)."""
    result = _run("wallx_ros.nodes.diagnostics_markers_node", env=_NO_ROS)
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    assert result.returncode != 0 and len(lines) == 1 and "ROS_DOMAIN_ID" in lines[0], lines


# -- bad overrides ------------------------------------------------------------------------------------------
def _cases(table: ParameterTable) -> dict[str, tuple[list[str], str, str]]:
    """Bad-override classes -> (ros args, parameter named in the line, text the line must hold)."""
    number = next(p for p in table.params if p.type in (ParamType.DOUBLE, ParamType.INTEGER))
    ranged = next((p for p in table.params if p.type is ParamType.INTEGER and p.high is not None), None) or \
        next(p for p in table.params if p.low is not None or p.high is not None or p.choices)
    if ranged.choices:
        out_of_range = "not_a_choice"
    elif ranged.high is not None:
        out_of_range = str(int(ranged.high) + 7) if ranged.type is ParamType.INTEGER else f"{ranged.high * 10 + 1.0}"
    else:
        out_of_range = str(int(ranged.low) - 7) if ranged.type is ParamType.INTEGER else f"{ranged.low - 1.0}"
    wrong_type = "two"
    after, after_shown = ("0.5", "0.5 (a double)") if number.type is ParamType.INTEGER else ("abc", "'abc' (a string)")
    return {
        "unknown_name": (["-p", f"{number.name}_typo:=1"], f"{number.name}_typo", "no such parameter"),
        "wrong_type": (["-p", f"{number.name}:={wrong_type}"], number.name, f"got '{wrong_type}' (a string)"),
        "out_of_range": (["-p", f"{ranged.name}:={out_of_range}"], ranged.name, out_of_range),
        # rcl alone keeps the file's value when a later -p gives another type: silently ignored before
        "after_params_file": (["--params-file", "{config}", "-p", f"{number.name}:={after}"], number.name,
                              f"got {after_shown}"),
        "stray_argument": (["{stray}"], "", "unexpected argument"),
    }


@pytest.mark.parametrize("case", ["unknown_name", "wrong_type", "out_of_range", "after_params_file",
                                  "stray_argument"])
@pytest.mark.parametrize("exe", sorted(NODES))
def test_a_bad_override_ends_the_node_with_one_line(exe: str, case: str) -> None:
    module, config = NODES[exe]
    table = _table(module)
    args, name, text = _cases(table)[case]
    args = [a.replace("{config}", str(REPO_ROOT / "config" / config)) for a in args]
    argv = [f"{name or 'checkpoint_dir'}:=/x"] if case == "stray_argument" else ["--ros-args", *args]
    result = _run(module, *argv)
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    assert result.returncode != 0, f"{exe} accepted {argv}"
    assert len(lines) == 1, f"{exe} {case}: expected one line, got:\n" + "\n".join(lines)
    assert "Traceback" not in lines[0] and text in lines[0] and name in lines[0], lines[0]
    if case in ("wrong_type", "out_of_range"):
        assert table[name].expected() in lines[0], lines[0]


def test_an_integer_for_a_double_is_accepted() -> None:
    """max_age_s:=1 passes the check (before: a 20-line traceback); the node goes on to its next refusal, the
    missing checkpoint, which proves the parameter was taken."""
    result = _run("wallx_ros.nodes.policy_node", "--ros-args", "-p", "max_age_s:=1", "-p", "warmup:=false")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "checkpoint_dir is required" in out and "Traceback" not in out and "max_age_s" not in out


def test_the_last_word_on_the_command_line_is_what_the_node_holds(ros: RosTestNode, tmp_path: Path) -> None:
    """A params file gives rate_hz 2.0; -p rate_hz:=5 (an integer) follows it. rcl alone keeps the file's value
    (the two differ in type); the node must hold 5.0. Read back over DDS with the node's GetParameters service."""
    from rcl_interfaces.srv import GetParameters

    from wallx_ros.nodes.diagnostics_markers_node import TABLE

    params = tmp_path / "markers.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"rate_hz": 2.0, "text_height": 0.05}}}))
    proc = subprocess.Popen([sys.executable, "-m", "wallx_ros.nodes.diagnostics_markers_node", "--ros-args",
                             "--params-file", str(params), "-p", "rate_hz:=5"], env=subprocess_env(),
                            cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = ros.node.create_client(GetParameters, f"/{TABLE.node_name}/get_parameters")
        assert client.wait_for_service(timeout_sec=60), "the node never came up"
        future = client.call_async(GetParameters.Request(names=["rate_hz", "text_height"]))
        assert wait_until(future.done, 30)
        values = [v.double_value for v in future.result().values]
        assert values == [5.0, 0.05]
    finally:
        proc.terminate()
        proc.wait(30)


# -- the ROS-free checker -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("Yes", True), ("y", True), ("off", False), ("010", 8), ("0x10", 16), ("-12", -12), ("08", 8.0),
    ("1e3", 1000.0), (".inf", float("inf")), ("-.INF", float("-inf")), ("1e400", "1e400"), ("two", "two"),
    ("1_000", "1_000"), ("9223372036854775808", 9223372036854775808.0), ("0x", "0x")])
def test_values_are_typed_like_rcl(text: str, value: Any) -> None:
    got = rcl_value(text, quoted=False)
    assert got == value and type(got) is type(value)
    assert rcl_value(text, quoted=True) == text


def test_params_file_matching_remaps_and_node_prefixes(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    a: 1\n/n:\n  ros__parameters:\n    b: [x, z]\n    grp:\n      c: 3\n"
                    "/ns/n:\n  ros__parameters:\n    a: 7\n/other:\n  ros__parameters:\n    zz: 1\n")
    got = {o.name: o.value for o in overrides_from_args(["prog", "--ros-args", "--params-file", str(path),
                                                        "-p", "other:a:=9", "-p", "n:a:=4"], "n")}
    assert got == {"a": 4, "b": ["x", "z"], "grp.c": 3}
    moved = {o.name: o.value for o in overrides_from_args(["prog", "--ros-args", "-r", "__ns:=/ns", "--params-file",
                                                          str(path)], "n")}
    assert moved == {"a": 7}  # /n no longer matches, /ns/n does
    renamed = overrides_from_args(["prog", "--ros-args", "-r", "__node:=other", "--params-file", str(path)], "n")
    assert {o.name for o in renamed} == {"a", "zz"}


def test_table_check_explains_each_refusal() -> None:
    table = ParameterTable("n", [Param("rate", ParamType.DOUBLE, 1.0, "r", low=0.0),
                                 Param("mode", ParamType.STRING, "a", "m", choices=("a", "b")),
                                 Param("joints", ParamType.STRING_ARRAY, None, "j"),
                                 Param("xyz", ParamType.DOUBLE_ARRAY, [0.0, 0.0, 0.0], "p", length=3)])
    assert table.check_args(["p", "--ros-args", "-p", "rate:=2", "-p", "xyz:=[1, 2, 3]"]) == \
        {"rate": 2.0, "xyz": [1.0, 2.0, 3.0]}
    for args, text in ((["-p", "rate:=-1"], "expected a double in [0, inf], got -1"),
                       (["-p", "rate:=.nan"], "got nan"),
                       (["-p", "mode:=c"], "one of a | b, got 'c'"),
                       (["-p", "joints:=x"], "expected a list of strings, got 'x'"),
                       (["-p", "xyz:=[1.0, 2.0]"], "with 3 values"),
                       (["-p", "rat:=1"], "did you mean rate?"),
                       (["-p", "rate:=[1, 2.5]"], "must have one type"),
                       (["-p", "rate"], "expected NAME:=VALUE"),
                       (["--params-file", "/nonexistent.yaml"], "cannot read the params file"),
                       (["--bogus"], "unknown ROS argument")):
        with pytest.raises(ParameterError, match=re.escape(text)):
            table.check_args(["p", "--ros-args", *args])
    assert table.check_args(["p", "--ros-args", "-p", "use_sim_time:=true", "--log-level", "debug", "--",
                             "--ros-args", "-p", "joints:=[]"]) == {"use_sim_time": True, "joints": []}


RCL_SCALARS = ["true", "Yes", "y", "off", "N", "010", "0x1F", "-12", "+7", "08", "1e3", "-2.5", ".inf", "-.Inf", ".nan",
               "1e400", "inf", "two", "1_000", "'5'", '"true"', "9223372036854775807", "9223372036854775808", "0x",
               "[1, 2]", "[1.5, 2.0]", "[a, b]", "[true, false]", "['x', 'y']"]


def test_the_checker_types_values_exactly_as_rcl_does() -> None:
    """For each value, rcl itself (through rclpy's public API: a node that declares its overrides) and the checker
    agree on the type and the value - so a refusal is never a misunderstanding of what the user typed."""
    import math

    import rclpy
    from rclpy.node import Node
    from ros_harness import private_domain_id

    from wallx_ros.core.parameter_table import overrides_from_args

    domain = private_domain_id()
    for text in RCL_SCALARS:
        context = rclpy.Context()
        rclpy.init(args=["x", "--ros-args", "-p", f"p:={text}"], context=context, domain_id=domain)
        try:
            node = Node("probe", context=context, automatically_declare_parameters_from_overrides=True)
            theirs = node.get_parameter("p").value
            node.destroy_node()
        finally:
            rclpy.shutdown(context=context)
            context.destroy()
        ours = overrides_from_args(["x", "--ros-args", "-p", f"p:={text}"], "probe")[0].value
        if isinstance(theirs, float) and math.isnan(theirs):
            assert isinstance(ours, float) and math.isnan(ours), text
            continue
        theirs = list(theirs) if not isinstance(theirs, bool | int | float | str) else theirs
        assert ours == theirs and type(ours) is type(theirs), (text, ours, theirs)
        if isinstance(ours, list):
            assert [type(v) for v in ours] == [type(v) for v in theirs], text
