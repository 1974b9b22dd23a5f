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
from wallx_ros.dataset.errors import BagConfigError, DatasetSpecError
from wallx_ros.dataset.spec import CameraSpec, DatasetSpec

__all__ = ["ACTION_SOURCES", "BagConversionConfig", "load_params_file"]

ACTION_SOURCES = ("JointState", "JointTrajectory", "Float64MultiArray")
_TRANSPORTS = ("raw", "compressed")


@dataclass(frozen=True)
class BagConversionConfig:
    """Topic -> feature mapping and dataset settings of a bag conversion (see config/bag2dataset.yaml).

    Field names are the recorder node's parameter names (``joint_names`` is ``observation.state``,
    ``action_joint_names`` defaults to it); the bag-only ones are documented in config/bag2dataset.yaml.
    """

    cameras: tuple[str, ...]
    joint_names: tuple[str, ...]
    fps: int
    action_joint_names: tuple[str, ...] = ()
    camera_transport: str = "raw"
    action_topic: str = "/wallx_teleop/action"
    action_type: str = "JointState"
    instruction: str = ""
    max_age_s: float = 0.1
    action_max_age_s: float = 0.5
    watermark_delay_s: float = 1.0
    root: str = ""
    repo_id: str = "local/wallx_demos"
    robot_type: str = ""
    use_videos: bool = True
    video_codec: str = "h264"
    image_writer_threads: int = 4
    min_free_mb: float = 500.0
    # bag-only
    joint_states_topic: str = "joint_states"
    instruction_topic: str = ""
    namespace: str = "/"
    topic_remaps: tuple[tuple[str, str], ...] = ()
    episode_split: SplitConfig = field(default_factory=SplitConfig)
    skip_non_monotonic: bool = False
    streaming_encoding: bool = True

    def __post_init__(self) -> None:
        for name in ("cameras", "joint_names", "action_joint_names", "topic_remaps"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "joint_names", tuple(n for n in self.joint_names if n))  # YAML's [""] = unset
        if not self.joint_names:
            raise BagConfigError("joint_names is required: the joints of observation.state, by name")
        object.__setattr__(self, "action_joint_names", tuple(n for n in self.action_joint_names if n)
                           or self.joint_names)
        if not self.cameras or any(not c for c in self.cameras) or len(set(self.cameras)) != len(self.cameras):
            raise BagConfigError(f"cameras must be distinct, non-empty camera keys, got {list(self.cameras)}")
        for what in ("joint_names", "action_joint_names"):
            names = getattr(self, what)
            if not names or any(not n for n in names) or len(set(names)) != len(names):
                raise BagConfigError(f"{what} must be distinct, non-empty joint names, got {list(names)}")
        if isinstance(self.fps, bool) or int(self.fps) != self.fps or not 0 < self.fps <= 1000:
            raise BagConfigError(f"fps must be an integer in 1..1000 (LeRobot stores integer fps), got {self.fps}")
        object.__setattr__(self, "fps", int(self.fps))
        if self.camera_transport not in _TRANSPORTS:
            raise BagConfigError(f"camera_transport must be one of {_TRANSPORTS}, got {self.camera_transport!r}")
        if self.action_type not in ACTION_SOURCES:
            raise BagConfigError(f"action_type must be one of {ACTION_SOURCES}, got {self.action_type!r}")
        for name in ("max_age_s", "action_max_age_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise BagConfigError(f"{name} must be > 0, got {value}")
        if not (math.isfinite(self.watermark_delay_s) and self.watermark_delay_s >= 0):
            raise BagConfigError(f"watermark_delay_s must be >= 0, got {self.watermark_delay_s}")
        if not self.action_topic or not self.joint_states_topic:
            raise BagConfigError("joint_states_topic and action_topic must be set")

    def dataset_spec(self, root: Path, image_shapes: Mapping[str, tuple[int, int, int]]) -> DatasetSpec:
        """The recorder's dataset settings for a dataset at ``root`` with these camera sizes."""
        try:
            return DatasetSpec(
                root=root, repo_id=self.repo_id, fps=self.fps,
                cameras=tuple(CameraSpec(c, image_shapes[c][0], image_shapes[c][1]) for c in self.cameras),
                state_names=self.joint_names, action_names=self.action_joint_names, robot_type=self.robot_type,
                use_videos=self.use_videos, video_codec=self.video_codec,
                image_writer_threads=0 if self.streaming_encoding and self.use_videos else self.image_writer_threads,
                streaming_encoding=self.streaming_encoding and self.use_videos, min_free_mb=self.min_free_mb)
        except DatasetSpecError as err:
            raise BagConfigError(str(err)) from err

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
            "JointTrajectory": "trajectory_msgs/msg/JointTrajectory",
            "JointState": "sensor_msgs/msg/JointState",
            "Float64MultiArray": "std_msgs/msg/Float64MultiArray",
        }[self.action_type]

    # -- construction --------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BagConversionConfig:
        """Build from a flat parameter dict (recorder parameter names; unknown names are an error)."""
        p = dict(params)
        known = {f for f in cls.__dataclass_fields__ if f != "episode_split"} | {
            "episode_split", "episode_marker_topic", "episode_gap_s"}
        ignored = _RECORDER_ONLY & p.keys()
        if "joint_names" not in p and "state_joint_names" in p:
            p["joint_names"] = p.pop("state_joint_names")
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


# Recorder parameters that mean nothing offline (live queueing, services, logging).
_RECORDER_ONLY = frozenset({
    "max_episode_s", "max_queued_frames", "on_shutdown", "diagnostics_period_s", "progress_log_period_s",
    "use_sim_time",
})


def load_params_file(path: str | Path, node_names: tuple[str, ...] = ("wallx_recorder", "wallx_bag2dataset")
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
