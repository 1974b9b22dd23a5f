"""LeRobot dataset -> rosbag2 with the topics the policy node consumes, for open-loop evaluation.

Topics (``namespace`` prefixes them): ``<camera>/image_raw`` (sensor_msgs/Image, rgb8) or
``<camera>/image_raw/compressed`` (jpeg), ``joint_states`` (the dataset's ``observation.state`` with its joint
names), ``wallx_policy/instruction`` (std_msgs/String, the episode's task: the node's ``~/instruction``), plus
the recorded ``action`` as a JointState on ``wallx_ros/dataset_action`` and start/stop markers on
``wallx_ros/episode``. Frame ``k`` of an episode is stamped ``episode_start + round(k * 1e9 / fps)``, the
alignment grid, so converting the bag back gives the same frames; episodes are separated by a pause.

A ``wallx_ros_conversion.yaml`` written into the bag folder is the bag2dataset config for that round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wallx_ros.dataset.bag_messages import COMPRESSED_IMAGE, IMAGE, JOINT_STATE, STD_STRING
from wallx_ros.dataset.bag_writer import BagWriter
from wallx_ros.dataset.dataset_reader import DatasetReader
from wallx_ros.dataset.errors import BagConfigError

__all__ = ["ROUND_TRIP_CONFIG", "BagExportConfig", "BagExportSummary", "dataset_to_bag"]

ROUND_TRIP_CONFIG = "wallx_ros_conversion.yaml"
_NS = 1_000_000_000


@dataclass(frozen=True)
class BagExportConfig:
    camera_transport: str = "raw"
    namespace: str = "/"
    instruction_topic: str = "wallx_policy/instruction"
    action_topic: str = "wallx_ros/dataset_action"
    marker_topic: str = "wallx_ros/episode"
    storage: str = "mcap"
    compression: str = "none"
    start_ns: int = 1_700_000_000 * _NS
    episode_gap_s: float = 1.0
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.camera_transport not in ("raw", "compressed"):
            raise BagConfigError(f"camera_transport must be raw or compressed, got {self.camera_transport!r}")
        if self.start_ns <= 0 or self.episode_gap_s <= 0:
            raise BagConfigError("start_ns and episode_gap_s must be > 0")
        if not 1 <= self.jpeg_quality <= 100:
            raise BagConfigError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")

    def topic(self, name: str) -> str:
        return "/" + "/".join(p for p in (*self.namespace.split("/"), *name.split("/")) if p)

    def camera_topic(self, camera: str) -> str:
        return self.topic(f"{camera}/image_raw" + ("/compressed" if self.camera_transport == "compressed" else ""))


@dataclass
class BagExportSummary:
    path: Path
    episodes: int = 0
    frames: int = 0
    messages: dict[str, int] = field(default_factory=dict)


def dataset_to_bag(reader: DatasetReader, out: str | Path, config: BagExportConfig | None = None,
                   progress: Callable[[int], Any] | None = None) -> BagExportSummary:
    """Write every frame of ``reader`` into a new bag folder ``out`` (must not exist)."""
    cfg = config or BagExportConfig()
    out = Path(out)
    period = _NS / reader.fps
    gap_ns = round(cfg.episode_gap_s * _NS)
    cam_topics = {cam: cfg.camera_topic(cam) for cam in reader.cameras}
    state_topic, action_topic = cfg.topic("joint_states"), cfg.topic(cfg.action_topic)
    instr_topic, marker_topic = cfg.topic(cfg.instruction_topic), cfg.topic(cfg.marker_topic)
    summary = BagExportSummary(out)
    with BagWriter(out, cfg.storage, cfg.compression) as writer:
        make = writer.factory
        for topic in cam_topics.values():
            writer.add_topic(topic, COMPRESSED_IMAGE if cfg.camera_transport == "compressed" else IMAGE)
        writer.add_topic(state_topic, JOINT_STATE)
        writer.add_topic(action_topic, JOINT_STATE)
        writer.add_topic(instr_topic, STD_STRING)
        writer.add_topic(marker_topic, STD_STRING)
        episode = None
        episode_start = cfg.start_ns
        last_stamp = cfg.start_ns
        for frame in reader.frames():
            if frame.episode_index != episode:
                if episode is not None:
                    writer.write(marker_topic, last_stamp + round(period / 2), make.string("stop"))
                    episode_start = last_stamp + gap_ns
                episode = frame.episode_index
                summary.episodes += 1
                writer.write(instr_topic, episode_start - 2_000, make.string(frame.task))
                writer.write(marker_topic, episode_start - 1_000, make.string("start"))
            stamp = episode_start + round(frame.frame_index * _NS / reader.fps)
            for cam, topic in cam_topics.items():
                rgb = frame.images[cam]
                msg = (make.compressed_image(rgb, stamp, cam, quality=cfg.jpeg_quality)
                       if cfg.camera_transport == "compressed" else make.image(rgb, stamp, cam))
                writer.write(topic, stamp, msg)
            writer.write(state_topic, stamp, make.joint_state(reader.state_names, frame.state, stamp))
            writer.write(action_topic, stamp, make.joint_state(reader.action_names, frame.action, stamp))
            last_stamp = stamp
            summary.frames += 1
            if progress is not None:
                progress(1)
        if episode is not None:
            writer.write(marker_topic, last_stamp + round(period / 2), make.string("stop"))
        summary.messages = dict(writer.counts)
        writer.add_side_file(ROUND_TRIP_CONFIG, _round_trip_config(reader, cfg))
    return summary


def _round_trip_config(reader: DatasetReader, cfg: BagExportConfig) -> str:
    """The bag2dataset parameters that turn this bag back into the dataset it came from."""
    params = {
        "cameras": list(reader.cameras),
        "camera_transport": cfg.camera_transport,
        "namespace": cfg.namespace,
        "joint_states_topic": "joint_states",
        "joint_names": list(reader.state_names),
        "action_topic": cfg.action_topic,
        "action_type": "JointState",
        "action_joint_names": list(reader.action_names),
        "fps": round(reader.fps),
        "instruction_topic": cfg.instruction_topic,
        "episode_split": "marker",
        "episode_marker_topic": cfg.marker_topic,
        "robot_type": reader.robot_type,
    }
    text = ("# bag2dataset parameters for this bag (written by wallx-ros-dataset2bag):\n"
            "#   wallx-ros-bag2dataset <this bag> --params-file <this file> --root <new dataset>\n")
    return text + str(yaml.safe_dump({"/**": {"ros__parameters": params}}, sort_keys=False))
