"""What the wallx_ros launch files share: argument checking, parameter overrides, required nodes.

Launch files are loaded by path, not as a package, so each one loads this file from its own folder
(``share/wallx_ros/launch`` once installed); it needs only ``launch`` itself, not the wallx_ros package.

* ``check_arguments``: ``ros2 launch`` accepts any ``name:=value`` and silently ignores names no launch file
  declares (a typo, or an argument of another launch file). The check refuses them with the list of valid
  names. It can only check the file named on the command line: a launch file that includes one of ours
  passes its own arguments along, which are not ours to judge.
* ``parameter_overrides``: a launch argument named like a node parameter overrides the parameter file only
  when it is given (empty = "as in params_file"), so a YAML value is never replaced by a launch default.
* ``required``: the launch shuts down when a required node exits; with an error when the node failed, so
  ``ros2 launch`` exits non-zero instead of leaving the other nodes running.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

# arguments ros2 launch itself appends (--launch-prefix, --launch-prefix-filter)
LAUNCH_OWN_ARGUMENTS = frozenset({"launch-prefix", "launch-prefix-filter"})


def given_arguments(argv: Sequence[str]) -> list[str]:
    """Names of the ``name:=value`` items of a launch command line, in order."""
    return [item.split(":=", 1)[0] for item in argv if ":=" in item]


def unknown_arguments(argv: Sequence[str], valid: Iterable[str]) -> list[str]:
    """The given argument names that are neither in ``valid`` nor launch's own."""
    known = set(valid) | LAUNCH_OWN_ARGUMENTS
    return [name for name in given_arguments(argv) if name not in known]


def is_command_line_file(launch_file: str, command: Sequence[str] | None = None) -> bool:
    """True when ``launch_file`` is the file named on the command line (``ros2 launch <pkg> <file>`` or a path),
    i.e. the command line's ``name:=value`` items are its arguments, not those of a file that includes it."""
    command = sys.argv if command is None else command
    words = [word for word in command[1:] if ":=" not in word]
    return Path(launch_file).name in {Path(word).name for word in words}


def unknown_arguments_message(launch_file: str, unknown: Sequence[str], valid: Iterable[str]) -> str:
    return (f"{Path(launch_file).name}: unknown launch argument(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(set(valid)))} (ros2 launch wallx_ros {Path(launch_file).name} -s "
            "describes them)")


def check_arguments(launch_file: str, valid: Callable[[Any], Iterable[str]],
                    validate: Callable[[Any], None] | None = None) -> Any:
    """An action that fails the launch when the command line names an argument not in ``valid(context)``, or
    when ``validate(context)`` raises. Put it before every process: an error raised while launch is still
    starting a process can leave that process running after launch exits."""
    from launch.actions import OpaqueFunction

    def check(context: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if is_command_line_file(launch_file):
            names = set(valid(context))
            unknown = unknown_arguments(context.argv, names)
            if unknown:
                raise RuntimeError(unknown_arguments_message(launch_file, unknown, names))
        if validate is not None:
            validate(context)
        return []

    return OpaqueFunction(function=check)


def declared_arguments(entities: Iterable[Any]) -> list[str]:
    """Names of the DeclareLaunchArgument actions among ``entities``."""
    from launch.actions import DeclareLaunchArgument

    return [e.name for e in entities if isinstance(e, DeclareLaunchArgument)]


def parameter_overrides(context: Any, names: Iterable[str]) -> dict[str, Any]:
    """``{parameter: LaunchConfiguration}`` for each launch argument in ``names`` given a non-empty value.

    launch_ros reads a substituted value as YAML (``joint_names:="[a, b]"`` is a list, ``fps:=15`` an integer)."""
    from launch.substitutions import LaunchConfiguration

    return {name: LaunchConfiguration(name) for name in names
            if LaunchConfiguration(name, default="").perform(context) != ""}


def required(node: Any, what: str) -> Any:
    """Shut the launch down when ``node`` exits; with an error (exit code 1) when it exited non-zero.

    Exits while the launch is already shutting down (Ctrl-C, another required node) are not errors."""
    from launch.actions import RegisterEventHandler, Shutdown
    from launch.event_handlers import OnProcessExit

    def on_exit(event: Any, context: Any) -> list[Any]:
        if context.is_shutdown:
            return []
        if event.returncode != 0:
            raise RuntimeError(f"{what} exited with code {event.returncode}: shutting down (its log above says why)")
        return [Shutdown(reason=f"{what} exited")]

    return RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit))
