"""A node's ``core.parameter_table.ParameterTable`` on rclpy: declare with descriptors, read back checked.

The one pattern every node of the package follows::

    TABLE = ParameterTable("wallx_teleop", [Param("rate_hz", ParamType.DOUBLE, 50.0, "command rate", low=1.0), ...])

    class TeleopNode(Node):
        def __init__(self, **kwargs):
            super().__init__(TABLE.node_name, **kwargs)
            values = declare_and_read(self, TABLE)       # descriptors: type, range, choices, read-only

    def main(args=None):
        return spin_node(TeleopNode, args=args, table=TABLE, ...)   # --help, command-line check, exit codes

``spin_node`` (``nodes.executors``) answers ``--help`` from the table and checks every override on the command
line before ROS starts (``ParameterTable.check_args``): the checked values are handed to the node as
``parameter_overrides``, so what the node runs with is exactly what the user gave (rcl alone would keep a
params file's value over a ``-p`` of another type, and would not coerce an integer given for a double).
``config/<node>.yaml`` documents the same table (test_parameter_tables.py keeps the two equal).
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from wallx_ros.core.errors import ParameterError
from wallx_ros.core.parameter_table import BUILTIN_PARAMETERS, Param, ParameterTable, ParamType

__all__ = ["PARAMETER_ERROR_EXIT", "command_line", "declare", "declare_and_read", "descriptor", "read",
           "ros_overrides"]

PARAMETER_ERROR_EXIT = 2  # exit code of a node refused at start-up for its parameters (as argparse's usage errors)

ROS_TYPE = {ParamType.BOOL: Parameter.Type.BOOL, ParamType.INTEGER: Parameter.Type.INTEGER,
            ParamType.DOUBLE: Parameter.Type.DOUBLE, ParamType.STRING: Parameter.Type.STRING,
            ParamType.BOOL_ARRAY: Parameter.Type.BOOL_ARRAY, ParamType.INTEGER_ARRAY: Parameter.Type.INTEGER_ARRAY,
            ParamType.DOUBLE_ARRAY: Parameter.Type.DOUBLE_ARRAY, ParamType.STRING_ARRAY: Parameter.Type.STRING_ARRAY}
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def descriptor(p: Param) -> ParameterDescriptor:
    """The ROS descriptor of one table entry (``ros2 param describe`` shows it): description, read-only, range,
    and the choices / list length as additional constraints."""
    d = ParameterDescriptor(description=p.description, read_only=p.read_only)
    constraints = ParameterTable.constraint_text(p).strip()
    if constraints:
        d.additional_constraints = constraints
    if p.type is ParamType.INTEGER and (p.low is not None or p.high is not None):
        low = _INT64[0] if p.low is None else math.ceil(p.low)
        high = _INT64[1] if p.high is None else math.floor(p.high)
        d.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    elif p.type is ParamType.DOUBLE and (p.low is not None or p.high is not None):
        d.floating_point_range = [FloatingPointRange(from_value=-math.inf if p.low is None else float(p.low),
                                                     to_value=math.inf if p.high is None else float(p.high), step=0.0)]
    return d


def declare(node: Node, table: ParameterTable) -> None:
    """Declare every table entry (a default of None: a typed list left unset). A value rclpy refuses (an
    in-process ``parameter_overrides`` entry of the wrong type or range) becomes a one-line ParameterError."""
    for p in table.params:
        default: Any = ROS_TYPE[p.type] if p.default is None else p.default
        try:
            node.declare_parameter(p.name, default, descriptor(p))
        except ParameterException as err:
            raise ParameterError(f"parameter {p.name}: expected {p.expected()} ({type(err).__name__})") from err


def read(node: Node, table: ParameterTable) -> dict[str, Any]:
    """Every table parameter's value (None: an unset list), checked against the table."""
    out: dict[str, Any] = {}
    for p in table.params:
        try:
            value = node.get_parameter(p.name).value
        except ParameterUninitializedException:
            value = None
        if value is None:
            if p.default is not None:
                raise ParameterError(f"parameter {p.name}: expected {p.expected()}, got no value (an empty list or "
                                     "null in a params file?)")
            out[p.name] = None
            continue
        out[p.name] = p.check(list(value) if p.type.is_array else value, "the node's parameters")
    return out


def declare_and_read(node: Node, table: ParameterTable) -> dict[str, Any]:
    declare(node, table)
    return read(node, table)


def ros_overrides(values: dict[str, Any], table: ParameterTable) -> list[Parameter]:
    """Checked command-line values as rclpy ``parameter_overrides`` (typed; an empty list for an unset list
    parameter means unset and is left out)."""
    out = []
    for name, value in values.items():
        kind = table[name].type if name in table else BUILTIN_PARAMETERS[name]
        if kind.is_array and not value:
            continue
        out.append(Parameter(name, ROS_TYPE[kind], list(value) if kind.is_array else value))
    return out


def command_line(table: ParameterTable, args: list[str] | None) -> tuple[int | None, list[Parameter]]:
    """Before ROS starts: ``--help`` prints the table (returns (0, [])); a bad override prints one line to stderr
    (returns (PARAMETER_ERROR_EXIT, [])); otherwise (None, the checked overrides for the node)."""
    argv = list(sys.argv if args is None else args)
    program = os.path.basename(argv[0]).removesuffix(".py") if argv else table.node_name
    before_ros = argv[1:argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "--help" in before_ros or "-h" in before_ros:
        print(table.help_text(program))
        return 0, []
    try:
        return None, ros_overrides(table.check_args(argv), table)
    except ParameterError as err:
        print(f"[{table.node_name}] {err}", file=sys.stderr)
        return PARAMETER_ERROR_EXIT, []
