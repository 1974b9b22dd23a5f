"""The two things the policy node needs from a URDF: joint limits, and forward kinematics of a chain.

A deliberately small reader (xml.etree, no urdfdom): ``<joint>`` type, parent/child, ``<origin>``,
``<axis>`` and ``<limit>``. Limits feed the safety filter; forward kinematics draws the predicted
end-effector paths as RViz markers. ``<limit acceleration="...">`` is read where present (standard URDF has
no acceleration limit; some robot descriptions add the attribute, as ros2_control's joint_limits YAML does
in a separate file).
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import UrdfError

__all__ = ["UrdfJoint", "UrdfModel"]

_MOVING = ("revolute", "continuous", "prismatic")


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    origin: npt.NDArray[np.float64]  # 4x4 parent -> joint frame
    axis: npt.NDArray[np.float64]
    lower: float
    upper: float
    velocity: float
    acceleration: float = float("inf")


def _floats(text: str | None, n: int, default: float, what: str) -> list[float]:
    if text is None:
        return [default] * n
    try:
        values = [float(v) for v in text.split()]
    except ValueError as err:
        raise UrdfError(f"{what}: {text!r} is not {n} numbers") from err
    if len(values) != n:
        raise UrdfError(f"{what}: {text!r} is not {n} numbers")
    return values


def _transform(xyz: Sequence[float], rpy: Sequence[float]) -> npt.NDArray[np.float64]:
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    t = np.eye(4)
    t[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                 [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                 [-sp, cp * sr, cp * cr]]
    t[:3, 3] = xyz
    return t


def _axis_motion(axis: npt.NDArray[np.float64], kind: str, q: float) -> npt.NDArray[np.float64]:
    t = np.eye(4)
    if kind == "prismatic":
        t[:3, 3] = axis * q
        return t
    x, y, z = axis
    c, s, v = math.cos(q), math.sin(q), 1 - math.cos(q)
    t[:3, :3] = [[x * x * v + c, x * y * v - z * s, x * z * v + y * s],
                 [y * x * v + z * s, y * y * v + c, y * z * v - x * s],
                 [z * x * v - y * s, z * y * v + x * s, z * z * v + c]]
    return t


class UrdfModel:
    """Joints and the kinematic tree of one URDF."""

    def __init__(self, joints: Sequence[UrdfJoint], links: Sequence[str], name: str = "") -> None:
        self.name = name
        self.joints = {j.name: j for j in joints}
        self.links = tuple(links)
        children = {j.child for j in joints}
        roots = [lk for lk in self.links if lk not in children]
        if len(roots) != 1:
            raise UrdfError(f"URDF {name!r} must have exactly one root link, found {roots}")
        self.root = roots[0]
        self._by_parent: dict[str, list[UrdfJoint]] = {}
        for j in joints:
            self._by_parent.setdefault(j.parent, []).append(j)

    @classmethod
    def from_string(cls, xml: str) -> UrdfModel:
        try:
            robot = ET.fromstring(xml)
        except ET.ParseError as err:
            raise UrdfError(f"robot description is not valid XML: {err}") from err
        if robot.tag != "robot":
            raise UrdfError(f"root element is <{robot.tag}>, a URDF starts with <robot>")
        links = [lk.get("name", "") for lk in robot.findall("link")]
        joints = []
        for el in robot.findall("joint"):
            name, kind = el.get("name", ""), el.get("type", "")
            parent, child = el.find("parent"), el.find("child")
            if not name or parent is None or child is None:
                raise UrdfError(f"joint {name!r} lacks a name, <parent> or <child>")
            origin = el.find("origin")
            xyz = _floats(origin.get("xyz") if origin is not None else None, 3, 0.0, f"joint {name} origin xyz")
            rpy = _floats(origin.get("rpy") if origin is not None else None, 3, 0.0, f"joint {name} origin rpy")
            axis_el = el.find("axis")
            axis = np.asarray(_floats(axis_el.get("xyz") if axis_el is not None else None, 3, 0.0,
                                      f"joint {name} axis"))
            if axis_el is None:
                axis = np.array([1.0, 0.0, 0.0])
            norm = float(np.linalg.norm(axis))
            if kind in _MOVING and norm == 0:
                raise UrdfError(f"joint {name} has a zero axis")
            axis = axis / norm if norm else axis
            lim = el.find("limit")
            inf = float("inf")
            lower, upper, vel = -inf, inf, inf
            if lim is not None and kind in ("revolute", "prismatic"):
                lower, upper = float(lim.get("lower", "0")), float(lim.get("upper", "0"))
            if lim is not None and lim.get("velocity") is not None and float(lim.get("velocity", "0")) > 0:
                vel = float(lim.get("velocity", "inf"))
            acc = inf
            if lim is not None and lim.get("acceleration") is not None:
                acc = _floats(lim.get("acceleration"), 1, inf, f"joint {name} limit acceleration")[0]
                if not acc > 0:
                    raise UrdfError(f"joint {name}: limit acceleration must be > 0, got {acc}")
            joints.append(UrdfJoint(name, kind, parent.get("link", ""), child.get("link", ""),
                                    _transform(xyz, rpy), axis, lower, upper, vel, acc))
        return cls(joints, links, robot.get("name", ""))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> UrdfModel:
        try:
            return cls.from_string(Path(path).read_text())
        except OSError as err:
            raise UrdfError(f"cannot read URDF {path}: {err}") from err

    def limits(self) -> dict[str, tuple[float, float, float]]:
        """``{joint: (lower, upper, max_velocity)}`` for the moving joints (continuous: no position limit)."""
        return {j.name: (j.lower, j.upper, j.velocity) for j in self.joints.values() if j.type in _MOVING}

    def acceleration_limits(self) -> dict[str, float]:
        """``{joint: max_acceleration}`` for the moving joints whose ``<limit>`` has an ``acceleration`` attribute."""
        return {j.name: j.acceleration for j in self.joints.values()
                if j.type in _MOVING and math.isfinite(j.acceleration)}

    def leaf_links(self) -> tuple[str, ...]:
        return tuple(lk for lk in self.links if lk not in self._by_parent and lk != self.root)

    def link_positions(self, q: Mapping[str, float], links: Sequence[str]) -> dict[str, npt.NDArray[np.float64]]:
        """Origins of ``links`` in the root frame for joint positions ``q`` (missing joints at 0)."""
        wanted = set(links)
        out: dict[str, npt.NDArray[np.float64]] = {}
        stack: list[tuple[str, npt.NDArray[np.float64]]] = [(self.root, np.eye(4))]
        while stack:
            link, frame = stack.pop()
            if link in wanted:
                out[link] = frame[:3, 3].copy()
            for j in self._by_parent.get(link, []):
                t = frame @ j.origin
                if j.type in _MOVING:
                    t = t @ _axis_motion(j.axis, j.type, float(q.get(j.name, 0.0)))
                stack.append((j.child, t))
        missing = wanted - set(out)
        if missing:
            raise UrdfError(f"links {sorted(missing)} are not in the URDF tree")
        return out
