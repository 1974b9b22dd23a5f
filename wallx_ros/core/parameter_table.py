"""A node's parameters as one table: name, type, default, range, description - and the checks built on it.

Every node of the package describes its parameters once, as a :class:`ParameterTable`. The node layer
(``wallx_ros.nodes.parameters``) declares them from it with descriptors; this module, ROS-free, does what
rcl cannot be asked to do:

* ``--help`` text (:meth:`ParameterTable.help_text`), printed without starting ROS;
* a check of every override the command line carries (``-p NAME:=VALUE`` and ``--params-file`` entries that
  match the node, as rcl parses them: :func:`overrides_from_args`), BEFORE rcl sees them. rcl itself
  ignores unknown names, and when a params file and a ``-p`` give one name two different types it silently
  keeps the file's value; here an unknown name, a wrong type or an out-of-range value ends the node with one
  line (:class:`~wallx_ros.core.errors.ParameterError`). An integer given for a double is accepted (and a list
  of integers for a list of doubles), as the value's meaning is unambiguous.

Values are typed with rcl's own rules (``rcl_yaml_param_parser``'s ``get_value``): quoted scalars are
strings; ``true/yes/on/y`` (and their capitalised forms) are booleans; what C's ``strtol(base 0)`` reads
completely is an integer (``010`` is 8, ``0x10`` is 16), what ``strtod`` reads is a double (``1e3``, ``.inf``);
anything else is a string; a list holds values of one type.
"""

# size: one contract: the table type and what is built on it (help text, override parsing as rcl does it,
#   validation)

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, cast

import yaml

from wallx_ros.core.errors import ParameterError

__all__ = ["BUILTIN_PARAMETERS", "Override", "Param", "ParamType", "ParameterTable", "overrides_from_args",
           "rcl_value", "yaml_parameters"]


class ParamType(str, Enum):
    BOOL = "bool"
    INTEGER = "integer"
    DOUBLE = "double"
    STRING = "string"
    BOOL_ARRAY = "bool[]"
    INTEGER_ARRAY = "integer[]"
    DOUBLE_ARRAY = "double[]"
    STRING_ARRAY = "string[]"

    @property
    def element(self) -> ParamType:
        return ParamType(self.value[:-2]) if self.is_array else self

    @property
    def is_array(self) -> bool:
        return self.value.endswith("[]")


_PYTHON_TYPE: dict[ParamType, type] = {ParamType.BOOL: bool, ParamType.INTEGER: int, ParamType.DOUBLE: float,
                                       ParamType.STRING: str}
_ARTICLE = {ParamType.BOOL: "a bool", ParamType.INTEGER: "an integer", ParamType.DOUBLE: "a double",
            ParamType.STRING: "a string"}
# parameters rclpy declares on every node itself: accepted on the command line, never declared by the table
BUILTIN_PARAMETERS: dict[str, ParamType] = {"use_sim_time": ParamType.BOOL,
                                            "start_type_description_service": ParamType.BOOL}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a double"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        kinds = sorted({_kind(v) for v in value})
        return "an empty list" if not kinds else f"a list of {' and '.join(k.split(' ', 1)[1] + 's' for k in kinds)}"
    return type(value).__name__


def _choices(choices: Sequence[str]) -> str:
    return " | ".join(c or "''" for c in choices)


def _number(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")


@dataclass(frozen=True)
class Param:
    """One parameter. ``default`` None: a list left unset (YAML cannot type an empty list). ``low``/``high``:
    inclusive bounds of a number (of each element of a list). ``choices``: the allowed strings. ``length``: the
    number of elements a list must have. ``read_only``: only these may change at run time when False."""

    name: str
    type: ParamType
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    length: int | None = None
    read_only: bool = True

    def __post_init__(self) -> None:
        if self.default is not None:
            object.__setattr__(self, "default", self.check(self.default, "the table"))

    def expected(self) -> str:
        """What a value must be, in words: 'a double in [0, inf]', 'a string, one of raw | compressed'."""
        element = self.type.element
        text = _ARTICLE[element]
        if self.type.is_array:
            text = f"a list of {text.split(' ', 1)[1]}s" + (f" with {self.length} values" if self.length else "")
        if self.low is not None or self.high is not None:
            low = "-inf" if self.low is None else _number(self.low)
            high = "inf" if self.high is None else _number(self.high)
            text += f" {'each ' if self.type.is_array else ''}in [{low}, {high}]"
        if self.choices:
            text += f", {'each ' if self.type.is_array else ''}one of {_choices(self.choices)}"
        return text

    def _element(self, value: Any) -> Any:
        element = self.type.element
        if element is ParamType.DOUBLE and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # an integer for a double means the same number
        if not isinstance(value, _PYTHON_TYPE[element]) or (element is ParamType.INTEGER and isinstance(value, bool)):
            raise TypeError
        if element in (ParamType.INTEGER, ParamType.DOUBLE):
            number = float(cast(float, value))
            if math.isnan(number) or (self.low is not None and number < self.low) or \
                    (self.high is not None and number > self.high):
                raise ValueError
        if self.choices and value not in self.choices:
            raise ValueError
        return value

    def check(self, value: Any, origin: str) -> Any:
        """The value as the node will hold it (integers given for doubles become doubles), or ParameterError."""
        try:
            if self.type.is_array:
                if not isinstance(value, list | tuple):
                    raise TypeError
                out: Any = [self._element(v) for v in value]
                if self.length is not None and len(out) != self.length:
                    raise ValueError
                if not out and self.default is not None:
                    raise ValueError  # rclpy cannot carry an empty list into a typed declaration
            else:
                out = self._element(value)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"parameter {self.name}: expected {self.expected()}, got {value!r} "
                                 f"({_kind(value)}) from {origin}") from err
        return out

    def default_text(self) -> str:
        if self.default is None:
            return "unset"
        text = str(yaml.safe_dump(self.default, default_flow_style=True, width=1000))
        return text.strip().removesuffix("...").strip()


@dataclass(frozen=True)
class Override:
    """One value for one parameter, and where it came from (for the error line)."""

    name: str
    value: Any
    origin: str


class ParameterTable:
    """Every parameter of one node (``node_name``: its default ROS name)."""

    def __init__(self, node_name: str, params: Iterable[Param], summary: str = "") -> None:
        self.node_name = node_name
        self.summary = summary
        self.params: tuple[Param, ...] = tuple(params)
        self._by_name = {p.name: p for p in self.params}
        if len(self._by_name) != len(self.params):
            raise ParameterError(f"{node_name}: a parameter name appears twice in the table")

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def check(self, overrides: Iterable[Override]) -> dict[str, Any]:
        """Every override checked (unknown names included); returns the last value given for each name."""
        out: dict[str, Any] = {}
        for item in overrides:
            builtin = BUILTIN_PARAMETERS.get(item.name)
            if builtin is not None:
                out[item.name] = Param(item.name, builtin, None, "").check(item.value, item.origin)
                continue
            if item.name not in self._by_name:
                close = difflib.get_close_matches(item.name, self.names, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ParameterError(f"unknown parameter {item.name!r} from {item.origin}{hint}: {self.node_name} "
                                     "has no such parameter (see --help)")
            out[item.name] = self._by_name[item.name].check(item.value, item.origin)
        return out

    def check_args(self, argv: Sequence[str]) -> dict[str, Any]:
        """Overrides the command line gives this node (``argv[0]`` is the program), checked."""
        return self.check(overrides_from_args(argv, self.node_name))

    def help_text(self, program: str) -> str:
        lines = [f"usage: {program} [--help] [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] [-r FROM:=TO ...]]",
                 ""]
        if self.summary:
            lines += [self.summary, ""]
        lines.append(f"parameters of node {self.node_name} (name, type, default: description):")
        for p in self.params:
            constraint = self.constraint_text(p)
            lines.append(f"  {p.name} ({p.type.value}{constraint}, default {p.default_text()}): {p.description}")
        lines += ["", "ROS arguments as usual: -p NAME:=VALUE, --params-file FILE, -r FROM:=TO, use_sim_time; an "
                      "unknown name, a wrong type or a value out of range ends the node with one line."]
        return "\n".join(lines)

    @staticmethod
    def constraint_text(p: Param) -> str:
        parts = []
        if p.low is not None or p.high is not None:
            parts.append(f"[{'-inf' if p.low is None else _number(p.low)}, "
                         f"{'inf' if p.high is None else _number(p.high)}]")
        if p.choices:
            parts.append(_choices(p.choices))
        if p.length:
            parts.append(f"{p.length} values")
        return (" " + "; ".join(parts)) if parts else ""


# -- rcl's value typing -------------------------------------------------------------------------------------
_BOOL_TRUE = {"Y", "y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_BOOL_FALSE = {"N", "n", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_YAML_INF_NAN = {".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan, ".inf": math.inf, ".Inf": math.inf,
                 ".INF": math.inf, "+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf, "-.inf": -math.inf,
                 "-.Inf": -math.inf, "-.INF": -math.inf}
_C_SPACE = "[ \t\n\v\f\r]*"
_STRTOL = re.compile(rf"{_C_SPACE}([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_STRTOD_DEC = re.compile(
    rf"{_C_SPACE}[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan(\([0-9a-z_]*\))?)", re.IGNORECASE)
_STRTOD_HEX = re.compile(rf"{_C_SPACE}[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?[0-9]+)?")


def _strtol(text: str) -> int | None:
    match = _STRTOL.fullmatch(text)
    if match is None:
        return None
    digits = match.group(2)
    value = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8) if digits.startswith("0") \
        else int(digits)
    value = -value if match.group(1) == "-" else value
    return value if -(2 ** 63) <= value < 2 ** 63 else None  # ERANGE: not an integer for rcl


def _strtod(text: str) -> float | None:
    stripped = text.lstrip(" \t\n\v\f\r")
    if _STRTOD_HEX.fullmatch(text):
        sign = -1.0 if stripped.startswith("-") else 1.0
        body = stripped.lstrip("+-")
        value = sign * float.fromhex(body if "p" in body.lower() else body + "p0")
    elif _STRTOD_DEC.fullmatch(text):
        value = float(stripped.replace("(", " ").split()[0] if "(" in stripped else stripped)
    else:
        return None
    literal = re.search("inf|nan", stripped, re.IGNORECASE) is not None
    if not literal and (math.isinf(value) or (value != 0 and abs(value) < 2.2250738585072014e-308) or
                        (value == 0 and re.search("[1-9]", stripped.split("e")[0].split("E")[0]) is not None)):
        return None  # ERANGE (overflow / underflow): rcl keeps the text as a string
    return value


def rcl_value(text: str, quoted: bool) -> bool | int | float | str:
    """A YAML scalar as rcl types it (module docstring)."""
    if quoted:
        return text
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    integer = _strtol(text)
    if integer is not None:
        return integer
    if text in _YAML_INF_NAN:
        return _YAML_INF_NAN[text]
    number = _strtod(text)
    return number if number is not None else text


def _node_value(node: yaml.Node, where: str) -> Any:
    if isinstance(node, yaml.ScalarNode):
        quoted = node.style in ("'", '"')
        if not quoted and node.value == "":
            raise ParameterError(f"{where}: no value")
        return rcl_value(node.value, quoted)
    if isinstance(node, yaml.SequenceNode):
        values = [_node_value(item, where) if isinstance(item, yaml.ScalarNode) else None for item in node.value]
        if any(v is None for v in values):
            raise ParameterError(f"{where}: a list may only hold plain values (no nested lists or mappings)")
        kinds = {_kind(v) for v in values}
        if len(kinds) > 1:
            raise ParameterError(f"{where}: the values of a list must have one type, got {sorted(kinds)} "
                                 "(write 1.0 rather than 1 in a list of doubles)")
        return values
    raise ParameterError(f"{where}: a value must be a plain value or a list, not a mapping")


# -- the command line as rcl reads it ------------------------------------------------------------------------
_ROS_FLAGS_WITH_VALUE = ("-e", "--enclave", "--log-level", "--log-config-file", "--log-file-name")
_ROS_FLAGS = ("--enable-rosout-logs", "--disable-rosout-logs", "--enable-stdout-logs", "--disable-stdout-logs",
              "--enable-external-lib-logs", "--disable-external-lib-logs")


def _node_pattern(key: str) -> re.Pattern[str]:
    """rcl's node-name key of a params file (``/**``, ``/*``, ``ns/name``, wildcards) as a regex on the FQN."""
    tokens = [t for t in key.strip("/").split("/") if t]
    parts = []
    for token in tokens:
        if token == "**":
            parts.append("(?:/[^/]+)*")
        else:
            parts.append("/" + re.escape(token).replace(r"\*", "[^/]*"))
    return re.compile("".join(parts) or "/")


def _file_overrides(path: str, fqn: str) -> list[Override]:
    origin = f"--params-file {path}"
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ParameterError(f"cannot read the params file {path}: {err.strerror or err}") from err
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise ParameterError(f"params file {path} is not valid YAML: {str(err).splitlines()[0]}") from err
    out: list[Override] = []

    def parameters(node: yaml.Node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            raise ParameterError(f"{origin}: ros__parameters must be a mapping of names to values")
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            if isinstance(value, yaml.MappingNode):
                parameters(value, name + ".")
            else:
                out.append(Override(name, _node_value(value, f"{origin}: {name}"), origin))

    def walk(node: yaml.Node, path: list[str]) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key, value in node.value:
            if key.value == "ros__parameters":
                if _node_pattern("/".join(path)).fullmatch(fqn):
                    parameters(value, "")
            else:
                walk(value, [*path, str(key.value)])

    if root is not None:
        walk(root, [])
    return out


def overrides_from_args(argv: Sequence[str], node_name: str) -> list[Override]:
    """Every parameter value the command line gives node ``node_name``, in the order rcl applies them.

    ``--ros-args`` sections are read like rcl: ``-p/--param [node:]NAME:=VALUE``, ``--params-file FILE`` (entries
    whose node key matches this node's fully qualified name, after ``__node`` / ``__ns`` remaps), ``-r/--remap``,
    the logging and enclave flags. An argument outside ``--ros-args`` other than ``--help`` is refused: it would
    be ignored (``checkpoint_dir:=/x`` without ``-p`` is a common slip)."""
    name, namespace = node_name, "/"
    files_and_rules: list[tuple[str, str]] = []
    args = list(argv[1:])
    i, in_ros = 0, False
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--ros-args":
            in_ros = True
            continue
        if not in_ros:
            if token in ("-h", "--help"):
                continue
            raise ParameterError(f"unexpected argument {token!r}: parameters go after --ros-args as -p NAME:=VALUE "
                                 "(see --help)")
        if token == "--":
            in_ros = False
            continue
        if token in _ROS_FLAGS:
            continue
        if token in ("-p", "--param", "--params-file", "-r", "--remap", *_ROS_FLAGS_WITH_VALUE):
            if i >= len(args):
                raise ParameterError(f"{token} needs a value")
            value = args[i]
            i += 1
            if token in ("-r", "--remap"):
                head, assign, target = value.partition(":=")
                prefix, colon, source = head.rpartition(":")  # [node_name:]from:=to
                if not assign or (colon and prefix != node_name):
                    continue  # malformed rules are rcl's to report
                if source in ("__node", "__name"):
                    name = target
                elif source == "__ns":
                    namespace = target if target.startswith("/") else "/" + target
            elif token in ("-p", "--param", "--params-file"):
                files_and_rules.append((token, value))
            continue
        raise ParameterError(f"unknown ROS argument {token!r} (see ros2 run --help for --ros-args)")
    fqn = namespace.rstrip("/") + "/" + name
    out: list[Override] = []
    for kind, value in files_and_rules:
        if kind == "--params-file":
            out += _file_overrides(value, fqn)
            continue
        rule, _, text = value.partition(":=")
        if not _:
            raise ParameterError(f"-p {value}: expected NAME:=VALUE")
        target_node, _colon, param = rule.rpartition(":")
        if target_node and target_node != name:
            continue
        origin = f"-p {value}"
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader) if text.strip() else None
        except yaml.YAMLError as err:
            raise ParameterError(f"{origin}: the value is not valid YAML ({str(err).splitlines()[0]})") from err
        if node is None:
            raise ParameterError(f"{origin}: no value after :=")
        out.append(Override(param, _node_value(node, origin), origin))
    return out


def yaml_parameters(path: str | Path, node_name: str) -> Mapping[str, Any]:
    """The values a params file gives ``node_name`` (rcl typing): for tests that compare a config with a table."""
    return {o.name: o.value for o in _file_overrides(str(path), "/" + node_name)}
