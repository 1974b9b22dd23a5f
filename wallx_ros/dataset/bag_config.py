"""What to read from a bag and how it becomes dataset features: the recorder's configuration, offline.

The converter reads the SAME parameters as the recorder node (cameras, camera transport, joint names,
action source, fps, instruction, dataset settings), from the same ``/**: ros__parameters:`` YAML form, so
one file describes a robot for both live recording and bag conversion. Topic names are the recorder's
relative names resolved in ``namespace`` (``<camera>/image_raw`` -> ``/face_view/image_raw``); any of them can
be renamed with ``topic_remaps`` (``["/face_view/image_raw:=/cam0/color/image_raw"]``), as ``-r`` would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from wallx_ros.dataset.episode_segmentation import SplitConfig
from wallx_ros.dataset.errors import BagConfigError, DatasetSpecError
from wallx_ros.dataset.recording_config import (
    ACTION_SOURCES,
    IGNORED_PARAMETERS,
    PARAMETERS,
    RecordingConfig,
    coerce_value,
    parameters,
)
from wallx_ros.dataset.spec import DatasetSpec

__all__ = ["ACTION_SOURCES", "BagConversionConfig", "load_params_file"]


@dataclass(frozen=True)
class BagConversionConfig(RecordingConfig):
    """Topic -> feature mapping and dataset settings of a bag conversion (see config/bag2dataset.yaml).

    The recording settings are the recorder's (``RecordingConfig``, the ``shared`` parameters of
    ``recording_config.PARAMETERS``: same names, meaning and validation); the fields below are the converter's
    own (``bag`` parameters). Live-only recorder parameters in a params file are accepted and ignored.
    """

    video_codec: str = "h264"  # the converter's defaults where they differ from the node's
    watermark_delay_s: float = 1.0
    encoder_nice: int = 0
    # bag-only
    joint_states_topic: str = "joint_states"
    instruction_topic: str = ""
    namespace: str = "/"
    topic_remaps: tuple[tuple[str, str], ...] = ()
    episode_split: SplitConfig = field(default_factory=SplitConfig)
    skip_non_monotonic: bool = False

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except DatasetSpecError as err:
            raise BagConfigError(str(err)) from err
        object.__setattr__(self, "topic_remaps", tuple(self.topic_remaps))
        if not self.joint_states_topic:
            raise BagConfigError("joint_states_topic must be set")

    def dataset_spec(self, root: str | Path, image_shapes: Mapping[str, tuple[int, ...]], *,
                     encoder_nice: int | None = None) -> DatasetSpec:
        """The recorder's dataset settings for a dataset at ``root`` with these camera sizes."""
        try:
            return super().dataset_spec(root, image_shapes, encoder_nice=encoder_nice)
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
    def from_params(cls, params: Mapping[str, Any], scope: str = "bag") -> BagConversionConfig:
        """Build from a flat parameter dict (recorder parameter names; unknown names are an error)."""
        p = dict(params)
        if "joint_names" not in p and "state_joint_names" in p:
            p["joint_names"] = p.pop("state_joint_names")
        table = {q.name: q for q in PARAMETERS}
        unknown = sorted(set(p) - set(table) - IGNORED_PARAMETERS)
        if unknown:
            raise BagConfigError(f"unknown conversion parameters {unknown}; known: {sorted(table)}")
        try:
            split = SplitConfig(mode=str(p.pop("episode_split", "bag")),
                                marker_topic=str(p.pop("episode_marker_topic", "") or ""),
                                gap_s=float(p.pop("episode_gap_s", 1.0)))
            remaps = []
            for item in p.pop("topic_remaps", []) or []:
                src, sep, dst = str(item).partition(":=")
                if not sep or not src or not dst:
                    raise BagConfigError(f"topic_remaps entries look like 'from:=to', got {item!r}")
                remaps.append((src, dst))
            own = {f.name for f in fields(cls)}
            values = {name: coerce_value(table[name], value) for name, value in p.items()
                      if name in own and name in {q.name for q in parameters("bag")}}
            return cls(**values, topic_remaps=tuple(remaps), episode_split=split)
        except DatasetSpecError as err:
            raise BagConfigError(str(err)) from err
        except (TypeError, ValueError) as err:
            raise BagConfigError(f"conversion parameters: {err}") from err

    def with_overrides(self, **changes: Any) -> BagConversionConfig:
        """A copy with some fields replaced (None values are ignored)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update({k: v for k, v in changes.items() if v is not None})
        return BagConversionConfig(**current)


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
