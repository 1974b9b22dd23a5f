"""What to read from a bag and how it becomes dataset features: the recorder's configuration, offline.

The converter reads the SAME parameters as the recorder node (cameras, camera transport, joint names,
action source, fps, instruction, dataset settings), from the same ``/**: ros__parameters:`` YAML form, so
one file describes a robot for both live recording and bag conversion. Topic names are the recorder's
relative names resolved in ``namespace`` (``<camera>/image_raw`` -> ``/face_view/image_raw``); any of them can
be renamed with ``topic_remaps`` (``["/face_view/image_raw:=/cam0/color/image_raw"]``), as ``-r`` would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wallx_ros.dataset.episode_segmentation import SplitConfig
from wallx_ros.dataset.errors import BagConfigError

__all__ = ["ACTION_SOURCES", "BagConversionConfig", "load_params_file"]

ACTION_SOURCES = ("joint_trajectory", "joint_state", "float64_multi_array")
_TRANSPORTS = ("raw", "compressed")
_RULES = ("latest", "nearest")


@dataclass(frozen=True)
class BagConversionConfig:
    """Topic -> feature mapping and dataset settings of a bag conversion (see config/bag2dataset.yaml)."""

    cameras: tuple[str, ...]
    state_joint_names: tuple[str, ...]
    action_joint_names: tuple[str, ...]
    fps: float
    camera_transport: str = "raw"
    joint_states_topic: str = "joint_states"
    action_topic: str = "action"
    action_type: str = "joint_trajectory"
    instruction: str = ""
    instruction_topic: str = ""
    namespace: str = "/"
    topic_remaps: tuple[tuple[str, str], ...] = ()
    max_age_s: float = 0.1
    alignment_rule: str = "latest"
    repo_id: str = "local/wallx_ros_dataset"
    robot_type: str = ""
    use_videos: bool = True
    episode_split: SplitConfig = field(default_factory=SplitConfig)
    skip_non_monotonic: bool = False
    max_latency_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("cameras", "state_joint_names", "action_joint_names", "topic_remaps"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.cameras or any(not c for c in self.cameras) or len(set(self.cameras)) != len(self.cameras):
            raise BagConfigError(f"cameras must be distinct, non-empty camera keys, got {list(self.cameras)}")
        for what in ("state_joint_names", "action_joint_names"):
            names = getattr(self, what)
            if not names or any(not n for n in names) or len(set(names)) != len(names):
                raise BagConfigError(f"{what} must be distinct, non-empty joint names, got {list(names)}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise BagConfigError(f"fps must be > 0, got {self.fps}")
        if self.camera_transport not in _TRANSPORTS:
            raise BagConfigError(f"camera_transport must be one of {_TRANSPORTS}, got {self.camera_transport!r}")
        if self.action_type not in ACTION_SOURCES:
            raise BagConfigError(f"action_type must be one of {ACTION_SOURCES}, got {self.action_type!r}")
        if self.alignment_rule not in _RULES:
            raise BagConfigError(f"alignment_rule must be one of {_RULES}, got {self.alignment_rule!r}")
        if not (math.isfinite(self.max_age_s) and self.max_age_s > 0):
            raise BagConfigError(f"max_age_s must be > 0, got {self.max_age_s}")
        if not (math.isfinite(self.max_latency_s) and self.max_latency_s >= 0):
            raise BagConfigError(f"max_latency_s must be >= 0, got {self.max_latency_s}")
        if not self.action_topic or not self.joint_states_topic:
            raise BagConfigError("joint_states_topic and action_topic must be set")
        if "/" not in self.repo_id:
            raise BagConfigError(f"repo_id must look like 'owner/name', got {self.repo_id!r}")

    # -- topics --------------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """Absolute topic name of a relative (recorder) name, after ``topic_remaps``."""
        if not name:
            return ""
        full = name if name.startswith("/") else "/" + "/".join(p for p in (*self.namespace.split("/"), name) if p)
        for src, dst in self.topic_remaps:
            if src in (name, full):
                return dst if dst.startswith("/") else "/" + dst
        return full

    def camera_topic(self, camera: str) -> str:
        suffix = "image_raw/compressed" if self.camera_transport == "compressed" else "image_raw"
        return self.resolve(f"{camera}/{suffix}")

    @property
    def state_topic(self) -> str:
        return self.resolve(self.joint_states_topic)

    @property
    def action_topic_name(self) -> str:
        return self.resolve(self.action_topic)

    @property
    def instruction_topic_name(self) -> str:
        return self.resolve(self.instruction_topic)

    @property
    def marker_topic_name(self) -> str:
        return self.resolve(self.episode_split.marker_topic)

    @property
    def action_msgtype(self) -> str:
        return {
            "joint_trajectory": "trajectory_msgs/msg/JointTrajectory",
            "joint_state": "sensor_msgs/msg/JointState",
            "float64_multi_array": "std_msgs/msg/Float64MultiArray",
        }[self.action_type]

    # -- construction --------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BagConversionConfig:
        """Build from a flat parameter dict (recorder parameter names; unknown names are an error)."""
        p = dict(params)
        known = {f for f in cls.__dataclass_fields__ if f != "episode_split"} | {
            "episode_split", "episode_marker_topic", "episode_gap_s"}
        ignored = _RECORDER_ONLY & p.keys()
        unknown = sorted(p.keys() - known - ignored)
        if unknown:
            raise BagConfigError(f"unknown conversion parameters {unknown}; known: {sorted(known)}")
        split = SplitConfig(mode=str(p.pop("episode_split", "bag")),
                            marker_topic=str(p.pop("episode_marker_topic", "")),
                            gap_s=float(p.pop("episode_gap_s", 1.0)))
        for key in ignored:
            p.pop(key)
        remaps = []
        for item in p.pop("topic_remaps", []) or []:
            src, sep, dst = str(item).partition(":=")
            if not sep or not src or not dst:
                raise BagConfigError(f"topic_remaps entries look like 'from:=to', got {item!r}")
            remaps.append((src, dst))
        try:
            return cls(**p, topic_remaps=tuple(remaps), episode_split=split)
        except TypeError as err:
            raise BagConfigError(f"conversion parameters: {err}") from err

    def with_overrides(self, **changes: Any) -> BagConversionConfig:
        """A copy with some fields replaced (None values are ignored)."""
        current = {f: getattr(self, f) for f in self.__dataclass_fields__}
        current.update({k: v for k, v in changes.items() if v is not None})
        return BagConversionConfig(**current)


# Recorder parameters that mean nothing offline (services, live-only tuning, output paths given on the CLI).
_RECORDER_ONLY = frozenset({
    "root", "root_dir", "start_on_launch", "use_sim_time", "qos_depth", "image_writer_threads",
    "diagnostics_period_s", "watermark_latency_s", "vcodec", "streaming_encoding",
})


def load_params_file(path: str | Path, node_names: tuple[str, ...] = ("wallx_bag2dataset", "wallx_recorder")
                     ) -> dict[str, Any]:
    """Flat parameters from a ROS params file: ``/**`` entries, then the named nodes' entries over them."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BagConfigError(f"cannot read params file {path}: {err}") from err
    if not isinstance(doc, dict):
        raise BagConfigError(f"{path}: expected '/**: ros__parameters: ...' at the top level")
    params: dict[str, Any] = {}
    found = False
    for key in ("/**", *node_names, *(f"/{n}" for n in node_names)):
        section = doc.get(key)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            params.update(section["ros__parameters"])
            found = True
    if not found:
        raise BagConfigError(f"{path}: no '/**' (or {'/'.join(node_names)}) section with ros__parameters")
    return params
