"""What WALL-OSS needs to know about a robot, derived from a recorded LeRobot dataset.

WALL-OSS works in a unified 20-dimensional action/proprioception space (``max_action_dim`` /
``max_state_dim``); its backbone config names the groups of that space in ``dof_config`` (actions) and
``agent_pos_config`` (proprioception), and LeRobot's ``wall_x`` pads a robot's vectors with zeros and a
zero DOF mask up to 20. This module reads a dataset's ``meta/info.json`` and ``meta/stats.json`` and
produces:

* the joint-name <-> dimension mapping (:class:`~wallx_ros.core.robot_mapping.RobotMapping`,
  ``wallx_ros_robot.json``, which the policy node reads next to a checkpoint);
* ``dof_config`` / ``agent_pos_config``: contiguous joint groups in dimension order, padded to 20;
* normalisation statistics per joint (mean/std/min/max and quantiles when LeRobot computed them), in
  the robot's order and padded to 20 (padding: mean 0, std 1, i.e. left as is);
* joint limits from an optional URDF, and which recorded values fall outside them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wallx_ros.core.errors import UrdfError
from wallx_ros.core.robot_mapping import RobotMapping
from wallx_ros.core.urdf import UrdfModel
from wallx_ros.dataset.errors import DatasetSpecError
from wallx_ros.dataset.spec import IMAGE_KEY_PREFIX

__all__ = [
    "WALLX_DIMS",
    "DatasetDescription",
    "JointLimit",
    "describe_dataset",
    "dof_groups",
    "normalisation_stats",
    "padded",
    "urdf_limits",
    "write_mapping",
]

WALLX_DIMS = 20
_SIDES = ("left", "right", "l", "r")


@dataclass(frozen=True)
class JointLimit:
    lower: float
    upper: float
    velocity: float


@dataclass(frozen=True)
class DatasetDescription:
    """The parts of a dataset's metadata the mapping needs."""

    root: Path
    fps: float
    robot_type: str
    cameras: tuple[str, ...]
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    stats: dict[str, dict[str, Any]]
    episodes: int
    frames: int

    def robot_mapping(self) -> RobotMapping:
        return RobotMapping(state_names=self.state_names, action_names=self.action_names, cameras=self.cameras,
                            fps=self.fps, robot_type=self.robot_type)


def describe_dataset(root: Path) -> DatasetDescription:
    """Read ``meta/info.json`` and ``meta/stats.json`` of a LeRobot v3 dataset."""
    root = Path(root)
    try:
        info = json.loads((root / "meta" / "info.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetSpecError(f"{root} is not a readable LeRobot dataset (meta/info.json: {err})") from err
    try:
        stats = json.loads((root / "meta" / "stats.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetSpecError(f"{root}/meta/stats.json is missing or unreadable ({err}): record or "
                               "finalize at least one episode") from err
    feats = info.get("features", {})
    names = {}
    for key in ("observation.state", "action"):
        if key not in feats:
            raise DatasetSpecError(f"{root} has no {key} feature: WALL-OSS needs joint states and actions")
        raw = feats[key].get("names")
        if isinstance(raw, dict):  # LeRobot also allows {"motors": [...]}
            raw = next(iter(raw.values()), None)
        dim = int(feats[key]["shape"][0])
        if not raw or len(raw) != dim:
            raw = [f"{key.split('.')[-1]}_{i}" for i in range(dim)]
        names[key] = tuple(str(n) for n in raw)
    for key, joints in names.items():
        if len(joints) > WALLX_DIMS:
            raise DatasetSpecError(f"{key} has {len(joints)} dimensions; WALL-OSS takes at most {WALLX_DIMS}")
    cameras = tuple(k[len(IMAGE_KEY_PREFIX):] for k, v in feats.items()
                    if k.startswith(IMAGE_KEY_PREFIX) and v.get("dtype") in ("video", "image"))
    return DatasetDescription(root=root, fps=float(info["fps"]), robot_type=str(info.get("robot_type") or ""),
                              cameras=cameras, state_names=names["observation.state"],
                              action_names=names["action"], stats=stats,
                              episodes=int(info.get("total_episodes", 0)), frames=int(info.get("total_frames", 0)))


def _group_key(name: str) -> str:
    tokens = [t for t in re.split(r"[_\-/.\s]+", name.lower()) if t]
    side = tokens[0] if tokens and tokens[0] in _SIDES else ""
    side = {"l": "left", "r": "right"}.get(side, side)
    part = "gripper" if any("grip" in t or "finger" in t for t in tokens) else "arm_joints"
    return f"{side}_{part}" if side else part


def dof_groups(names: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, int]:
    """``dof_config``-style groups of consecutive dimensions, padded to 20 with ``padding``.

    Without ``groups`` joints are grouped by side (left/right prefix) and gripper vs arm, in dimension
    order (e.g. ALOHA: left_arm_joints 6, left_gripper 1, right_arm_joints 6, right_gripper 1,
    padding 6). ``groups`` (group -> its joints, consecutive and in order) overrides the heuristic.
    """
    out: dict[str, int] = {}
    if groups:
        flat = [j for js in groups.values() for j in js]
        if flat != list(names):
            raise DatasetSpecError(f"groups must list every joint once, in dimension order {list(names)}; got {flat}")
        out = {g: len(js) for g, js in groups.items() if js}
    else:
        keys: list[str] = []
        for name in names:
            key = _group_key(name)
            if keys and keys[-1].rsplit("#", 1)[0] == key:
                out[keys[-1]] += 1
                continue
            n = sum(1 for k in keys if k.rsplit("#", 1)[0] == key)
            unique = key if n == 0 else f"{key}#{n + 1}"
            keys.append(unique)
            out[unique] = 1
        out = {k.replace("#", "_"): v for k, v in out.items()}
    if len(names) < WALLX_DIMS:
        out["padding"] = WALLX_DIMS - len(names)
    return out


def padded(values: Sequence[float], fill: float) -> list[float]:
    """A per-joint vector extended to WALL-OSS's 20 dimensions."""
    return [*map(float, values), *([fill] * (WALLX_DIMS - len(values)))]


def normalisation_stats(desc: DatasetDescription) -> dict[str, Any]:
    """Per-joint statistics of ``observation.state`` and ``action`` (robot order and padded to 20)."""
    out: dict[str, Any] = {}
    for key, names in (("observation.state", desc.state_names), ("action", desc.action_names)):
        raw = desc.stats.get(key)
        if not raw:
            raise DatasetSpecError(f"{desc.root}/meta/stats.json has no statistics for {key}")
        entry: dict[str, Any] = {"names": list(names)}
        for stat, values in raw.items():
            if stat == "count":
                entry["count"] = int(values[0] if isinstance(values, list) else values)
                continue
            vec = [float(v) for v in values]
            if len(vec) != len(names) or not all(math.isfinite(v) for v in vec):
                raise DatasetSpecError(f"stats {key}.{stat} has {len(vec)} values or non-finite ones")
            entry[stat] = vec
            fill = 1.0 if stat == "std" else 0.0
            entry[f"{stat}_padded_{WALLX_DIMS}"] = padded(vec, fill)
        out[key] = entry
    return out


def urdf_limits(urdf: Path, joints: Sequence[str]) -> dict[str, JointLimit | None]:
    """Limits of ``joints`` from a URDF (``core.urdf``); None for joints the URDF does not move.
    Continuous joints have infinite position limits."""
    try:
        limits = UrdfModel.from_file(urdf).limits()
    except UrdfError as err:
        raise DatasetSpecError(f"cannot use URDF {urdf}: {err}") from err
    return {j: JointLimit(*limits[j]) if j in limits else None for j in joints}


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_mapping(desc: DatasetDescription, out_dir: Path, *, urdf: Path | None = None,
                  groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, Path]:
    """Write ``wallx_ros_robot.json``, ``wallx_dof_config.json``, ``norm_stats.json`` (and ``limits.json``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"robot": desc.robot_mapping().save(out_dir)}
    dof = {
        "dof_config": dof_groups(desc.action_names, groups),
        "agent_pos_config": dof_groups(desc.state_names, groups if groups and
                                       [j for js in groups.values() for j in js] == list(desc.state_names) else None),
        "action_dims": {n: i for i, n in enumerate(desc.action_names)},
        "state_dims": {n: i for i, n in enumerate(desc.state_names)},
        "max_action_dim": WALLX_DIMS, "max_state_dim": WALLX_DIMS,
        "note": "dimensions beyond the robot's joints are padding: LeRobot wall_x fills them with 0 and a 0 DOF mask",
    }
    files["dof"] = out_dir / "wallx_dof_config.json"
    files["dof"].write_text(json.dumps(dof, indent=2) + "\n")
    stats = normalisation_stats(desc)
    files["stats"] = out_dir / "norm_stats.json"
    files["stats"].write_text(json.dumps(stats, indent=2) + "\n")
    if urdf is not None:
        joints = list(dict.fromkeys([*desc.state_names, *desc.action_names]))
        limits = urdf_limits(urdf, joints)
        report: dict[str, Any] = {}
        for key, names in (("observation.state", desc.state_names), ("action", desc.action_names)):
            lo, hi = stats[key].get("min", []), stats[key].get("max", [])
            for i, name in enumerate(names):
                lim = limits.get(name)
                entry: dict[str, Any] = report.setdefault(name, {"in_urdf": lim is not None})
                if lim is None:
                    continue
                entry.update(lower=_finite_or_none(lim.lower), upper=_finite_or_none(lim.upper),
                             velocity=_finite_or_none(lim.velocity))
                if lo and hi and (lo[i] < lim.lower - 1e-6 or hi[i] > lim.upper + 1e-6):
                    entry.setdefault("recorded_outside_limits", []).append(
                        {"feature": key, "min": lo[i], "max": hi[i]})
        files["limits"] = out_dir / "limits.json"
        files["limits"].write_text(json.dumps({"urdf": str(urdf), "joints": report}, indent=2) + "\n")
    return files
