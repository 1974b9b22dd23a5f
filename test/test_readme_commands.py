"""The documented commands are the ones that exist: every fenced command's executable and arguments, in README.md
and docs/*.md, is checked.

Each ```bash block is split into commands (continuation lines joined, comments dropped, ``&&`` / ``;`` / ``|``
split). What this project provides is checked against what it really has:

* ``ros2 launch wallx_ros <file> name:=value``: the file exists and declares (or passes through) each argument;
* ``ros2 run wallx_ros <exe>`` / ``.../lib/wallx_ros/<exe>``: a ROS executable of setup.py; ``-p name:=value`` a
  parameter its config file documents; ``--params-file`` a file of the repository;
* ``ros2 service call /wallx_<node>/<srv> <type>``, ``ros2 lifecycle set /wallx_policy <transition>``: a service
  the node creates, with that type; a lifecycle transition;
* console scripts (``wallx-ros-*``) and ``python -m wallx_ros...``: an entry point of setup.py (or a module), and
  every ``--flag`` / sub-command appears in its ``--help``;
* ``bash scripts/*.sh``, ``source scripts/env.sh``, ``python bench/*.py``: the file exists and knows each flag.

Other programs (git, colcon, gz, huggingface-cli, sudo, ...) are not ours to check.
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from ros_harness import REPO_ROOT, subprocess_env
from test_launch_files import _constant, _declared_arguments, _node_parameters, _setup_executables, _tree

README = REPO_ROOT / "README.md"
DOCUMENTS = (README, *sorted((REPO_ROOT / "docs").glob("*.md")))
CONFIG_OF_EXECUTABLE = {"policy_node": "policy.yaml", "recorder_node": "recorder.yaml", "teleop_node": "teleop.yaml",
                        "sim_node": "sim.yaml", "image_compressor": "image_compressor.yaml"}
NODE_MODULE = {"wallx_policy": "policy_node", "wallx_recorder": "recorder_node", "wallx_teleop": "teleop_node",
               "wallx_sim": "sim_node"}
LIFECYCLE = {"configure", "activate", "deactivate", "cleanup", "shutdown"}
# console scripts whose arguments belong to another program (checked there, not here)
FORWARDED_ARGUMENTS = {"wallx-ros-train": "LeRobot's lerobot-train arguments, passed through as they are"}


@dataclass(frozen=True)
class Command:
    line: int
    words: tuple[str, ...]
    document: str = "README.md"

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {shlex.join(self.words)}"


def readme_commands() -> list[Command]:
    """Every command of every ```bash block of the README and docs/, with the file and line it starts on."""
    return [c for path in DOCUMENTS for c in document_commands(path)]


def document_commands(path: Path) -> list[Command]:
    """Every command of every ```bash block of one Markdown file."""
    document = str(path.relative_to(REPO_ROOT))
    commands: list[Command] = []
    lines = path.read_text().splitlines()
    in_block, pending, start = False, "", 0
    for number, raw in enumerate(lines, 1):
        if raw.startswith("```"):
            in_block = raw.strip() == "```bash"
            continue
        if not in_block:
            continue
        if not pending:
            start = number
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        lexer = shlex.shlex(pending, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        words: list[str] = []
        for token in [*list(lexer), ";"]:
            if token in (";", "&&", "||", "|", "&"):
                if words:
                    commands.append(Command(start, tuple(words), document))
                words = []
            else:
                words.append(token)
        pending = ""
    return commands


def _options(words: tuple[str, ...]) -> list[str]:
    """The ``--options`` of a command (also inside the README's ``[--optional value]`` brackets)."""
    words = tuple(w.lstrip("[").rstrip("]") for w in words)
    return [w.split("=", 1)[0] for w in words if w.startswith("--") and len(w) > 2 and w != "--ros-args"]


@functools.cache
def _help(module: str, *sub: str) -> str:
    run = subprocess.run([sys.executable, "-m", module, *sub, "--help"], capture_output=True, text=True,
                         env=subprocess_env(), cwd=str(REPO_ROOT), timeout=300)
    assert run.returncode == 0, f"python -m {module} {' '.join(sub)} --help failed:\n{run.stderr[-2000:]}"
    return run.stdout


def _launch_arguments(name: str) -> set[str]:
    declared = _declared_arguments(_tree(name))
    if name == "sim.launch.py":  # policy.launch.py's arguments pass through, except those sim.launch.py sets
        fixed = set(_constant(_tree("sim.launch.py"), "POLICY_FIXED_ARGUMENTS"))  # type: ignore[arg-type]
        declared |= {a for a in _declared_arguments(_tree("policy.launch.py"))
                     if a not in fixed and not a.endswith("_topic")}
    return declared


def _services(module: str) -> dict[str, str]:
    """``{service name: type}`` a node creates (``create_service(Type, "~/name", ...)``)."""
    source = (REPO_ROOT / "wallx_ros" / "nodes" / f"{module}.py").read_text()
    return dict((name, kind) for kind, name in re.findall(r'create_service\((\w+), "~/(\w+)"', source))


def _positional_choices(helptext: str) -> list[str]:
    """The choices of the first positional argument that has some (an option's choices follow the option)."""
    found = re.search(r"^  {([\w,-]+)}", helptext, flags=re.M)
    return found.group(1).split(",") if found else []


def _check_ros_args(exe: str, words: list[str], where: Command) -> None:
    for i, word in enumerate(words):
        if word == "-p":
            name = words[i + 1].split(":=", 1)[0]
            config = CONFIG_OF_EXECUTABLE.get(exe)
            if config:
                assert name in _node_parameters(config), f"{where}: {exe} has no parameter {name}"
        elif word == "--params-file":
            path = words[i + 1]
            if not path.startswith(("/", "~", "$")):
                assert (REPO_ROOT / path).is_file(), f"{where}: no file {path}"


def check(command: Command) -> bool:
    """Check one command; False when it is another program's (not checked)."""
    words = list(command.words)
    while words and (re.fullmatch(r"\w+=.*", words[0]) or words[0] in ("export", "sudo", "time", "do", "then")):
        words = words[1:]
    if not words:
        return False
    exe, args = words[0], words[1:]
    executables = _setup_executables()
    if exe == "ros2" and args[:2] == ["launch", "wallx_ros"]:
        name = args[2]
        assert (REPO_ROOT / "launch" / name).is_file(), f"{command}: no launch file {name}"
        valid = _launch_arguments(name)
        for arg in args[3:]:
            if arg == "...":
                continue
            assert ":=" in arg, f"{command}: {arg!r} is not name:=value"
            assert arg.split(":=", 1)[0] in valid, f"{command}: {name} has no argument {arg.split(':=')[0]}"
        return True
    if (exe == "ros2" and args[:2] == ["run", "wallx_ros"]) or re.search(r"lib/wallx_ros/[\w-]+$", exe):
        name = args[2] if exe == "ros2" else exe.rsplit("/", 1)[-1]
        assert name in executables, f"{command}: no ROS executable {name} in setup.py"
        _check_ros_args(name, args[3:] if exe == "ros2" else args, command)
        if name.startswith("wallx-ros-") and "--ros-args" not in args:
            return check(Command(command.line, (name, *(args[3:] if exe == "ros2" else args))))
        return True
    if exe == "ros2" and args[:2] == ["service", "call"] and args[2].startswith("/wallx_"):
        node, service = args[2].strip("/").split("/", 1)
        services = _services(NODE_MODULE[node])
        assert service in services, f"{command}: {node} has no service {service} ({sorted(services)})"
        assert args[3].rsplit("/", 1)[-1] == services[service], f"{command}: {service} is a {services[service]}"
        return True
    if exe == "ros2" and args[:2] == ["lifecycle", "set"]:
        assert args[2] == "/wallx_policy" and args[3] in LIFECYCLE, str(command)
        return True
    if (exe in executables and exe.startswith("wallx-ros-")) or (exe == "python" and args[:1] == ["-m"] \
            and args[1].startswith("wallx_ros.")):
        if exe == "python":
            module, args = args[1], args[2:]
        else:
            module = (re.search(rf'"{re.escape(exe)}": "([\w.]+):main"', (REPO_ROOT / "setup.py").read_text())
                      or pytest.fail(f"{command}: {exe} is not a module:main entry point")).group(1)
        if exe in FORWARDED_ARGUMENTS:
            return True
        if "--ros-args" in args:  # a node: ROS arguments
            _check_ros_args(module.rsplit(".", 1)[-1], args[args.index("--ros-args") + 1:], command)
            return True
        helptext = _help(module)
        sub: tuple[str, ...] = ()
        commands = _positional_choices(helptext)  # argparse sub-commands: "  {status,lifecycle,...}"
        if args and not args[0].startswith("-") and commands:
            assert args[0] in commands, f"{command}: {exe} has no sub-command {args[0]}"
            sub = (args[0],)
            helptext = _help(module, *sub)
            choices = _positional_choices(helptext)  # its own positional choices, if any
            if choices and len(args) > 1 and not args[1].startswith("-"):
                assert args[1] in choices, f"{command}: {exe} {args[0]} has no {args[1]}"
        for option in _options(tuple(args)):
            assert re.search(rf"(?<![\w-]){re.escape(option)}\b", helptext), \
                f"{command}: {exe} {' '.join(sub)} has no option {option}"
        return True
    if (exe in ("bash", "source", ".") and args and args[0].startswith("scripts/")) or exe.startswith("scripts/"):
        script = args[0] if exe in ("bash", "source", ".") else exe
        path = REPO_ROOT / script
        assert path.is_file(), f"{command}: no {script}"
        rest = args[1:] if exe in ("bash", "source", ".") else args
        rest = rest[:rest.index("--")] if "--" in rest else rest  # after --: the arguments of what it runs
        text = path.read_text()
        for option in _options(tuple(rest)):
            assert option in text, f"{command}: {script} does not know {option}"
        return True
    if exe == "python" and args and args[0].startswith("bench/"):
        path = REPO_ROOT / args[0]
        assert path.is_file(), f"{command}: no {args[0]}"
        for option in _options(tuple(args[1:])):
            assert f'"{option}"' in path.read_text(), f"{command}: {args[0]} has no option {option}"
        return True
    return False


def test_readme_has_commands_of_every_kind() -> None:
    checked = [c for c in readme_commands() if check(c)]
    kinds = {" ".join(c.words[:2]) if c.words[0] == "ros2" else c.words[0] for c in checked}
    assert {"ros2 launch", "ros2 run", "ros2 service", "wallx-ros-ctl", "bash"} <= kinds, kinds
    assert len(checked) >= 40, len(checked)


@pytest.mark.parametrize("command", readme_commands(), ids=lambda c: f"{c.document}:{c.line}")
def test_readme_command_exists_as_written(command: Command) -> None:
    check(command)


def test_the_checker_catches_wrong_commands() -> None:
    wrong = ["ros2 launch wallx_ros policy.launch.py checkpoint:=/m",
             "ros2 launch wallx_ros record.launch.py root:=/d joint_name:=[a]",
             "ros2 run wallx_ros policy_node --ros-args -p checkpoint:=/m",
             "ros2 service call /wallx_recorder/start std_srvs/srv/Trigger",
             "ros2 service call /wallx_policy/estop std_srvs/srv/Trigger",
             "wallx-ros-ctl record begin",
             "wallx-ros-ctl estop --off",
             "wallx-ros-convert-checkpoint --chek /m",
             "bash scripts/test.sh --under-lod",
             "ros2 run wallx_ros no_such_node"]
    for text in wrong:
        with pytest.raises((AssertionError, pytest.fail.Exception)):
            check(Command(0, tuple(shlex.split(text))))


def test_readme_blocks_are_parsed_like_a_shell() -> None:
    cmds = readme_commands()
    launch = [c for c in cmds if c.words[:3] == ("ros2", "launch", "wallx_ros")]
    assert any("joint_names:=[joint1, joint2]" in c.words for c in launch), "quoted list arguments stay one word"
    assert not any("#" in w for c in cmds for w in c.words if w.startswith("#")), "comments are dropped"
