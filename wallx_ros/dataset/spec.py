"""What a recorded dataset holds: cameras, joint names, fps — and the LeRobot v3 features it implies.

Feature keys follow LeRobot (and the policy node): ``observation.images.<camera>`` (video or image),
``observation.state`` and ``action`` with the joint names in ``names``; the task string is LeRobot's
per-frame ``task``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wallx_ros.dataset.errors import DatasetSpecError

__all__ = [
    "IMAGE_KEY_PREFIX",
    "SAMPLE_AGE_KEY",
    "VIDEO_CODECS",
    "CameraSpec",
    "DatasetSpec",
    "spec_mismatches",
]

IMAGE_KEY_PREFIX = "observation.images."
# Per frame, how old each stream's sample is (gap_policy hold). Not under "observation.": LeRobot would take
# it for a policy input (a second state vector); policies ignore it, analysis finds held frames by it.
SAMPLE_AGE_KEY = "sample_age_s"
# Software encoders LeRobot drives through PyAV; "auto" picks a hardware encoder when there is one.
VIDEO_CODECS = ("libsvtav1", "h264", "hevc", "auto")
_CAMERA_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_REPO_ID = re.compile(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class CameraSpec:
    """One camera: its key (e.g. ``face_view``) and the frame size stored in the dataset."""

    name: str
    height: int
    width: int

    def __post_init__(self) -> None:
        if not _CAMERA_NAME.match(self.name):
            raise DatasetSpecError(f"camera name {self.name!r} must be letters, digits and '_' (e.g. face_view)")
        if not (0 < self.height <= 8192 and 0 < self.width <= 8192):
            raise DatasetSpecError(f"camera {self.name!r}: size {self.width}x{self.height} is empty or too large")

    @property
    def key(self) -> str:
        return IMAGE_KEY_PREFIX + self.name


@dataclass(frozen=True)
class DatasetSpec:
    """Settings of one LeRobot v3 dataset written by :class:`~wallx_ros.dataset.writer.DatasetWriter`.

    root: the dataset folder (LeRobot's ``root``); repo_id: ``<user>/<name>`` as LeRobot and the hub want.
    fps: integer frame rate (LeRobot timestamps are ``frame_index / fps``).
    use_videos: cameras as mp4 videos (True) or PNG images inside the parquet files (False).
    video_codec: libsvtav1 (LeRobot's default, smallest files, slowest), h264, hevc or auto.
    image_writer_threads: threads writing the per-frame PNGs that LeRobot encodes at save time.
    streaming_encoding: encode video while recording instead of at save: frames are spooled to disk and
        encoded behind by one process per camera (``video_spool``); capture never waits for the encoder.
    encoder_nice: CPU niceness of those encoder processes (a live recorder: > 0, so capture keeps the CPU).
    min_free_mb: refuse frames when the disk holding ``root`` has less free space than this.
    sample_age_streams: streams whose per-frame sample age is stored in the ``sample_age_s`` column
        (gap_policy hold), in this order; empty: no such column.
    cameras may be empty for a state-only dataset (no images: it cannot train WALL-OSS, which needs a camera).
    """

    root: Path
    repo_id: str
    fps: int
    cameras: tuple[CameraSpec, ...]
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    robot_type: str = ""
    use_videos: bool = True
    video_codec: str = "libsvtav1"
    image_writer_threads: int = 4
    streaming_encoding: bool = False
    encoder_nice: int = 0
    min_free_mb: float = 200.0
    sample_age_streams: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().absolute())
        for attr in ("cameras", "state_names", "action_names", "sample_age_streams"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if not _REPO_ID.match(self.repo_id):
            raise DatasetSpecError(f"repo_id {self.repo_id!r} must look like '<user>/<dataset>' (e.g. local/pick_cube)")
        if isinstance(self.fps, bool) or not isinstance(self.fps, int) or not 0 < self.fps <= 1000:
            raise DatasetSpecError(f"fps must be an integer in 1..1000 (LeRobot stores integer fps), got {self.fps!r}")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise DatasetSpecError(f"camera names repeat: {names}")
        for what, joints in (("state_names", self.state_names), ("action_names", self.action_names)):
            if not joints or any(not n for n in joints):
                raise DatasetSpecError(f"{what} must be non-empty joint names")
            if len(set(joints)) != len(joints):
                raise DatasetSpecError(f"{what} repeat: {list(joints)}")
        if self.video_codec not in VIDEO_CODECS:
            raise DatasetSpecError(f"video_codec must be one of {VIDEO_CODECS}, got {self.video_codec!r}")
        if self.image_writer_threads < 0:
            raise DatasetSpecError(f"image_writer_threads must be >= 0, got {self.image_writer_threads}")
        if not 0 <= self.encoder_nice <= 19:
            raise DatasetSpecError(f"encoder_nice must be in 0..19, got {self.encoder_nice}")
        if len(set(self.sample_age_streams)) != len(self.sample_age_streams):
            raise DatasetSpecError(f"sample_age_streams repeat: {list(self.sample_age_streams)}")
        if self.streaming_encoding and not self.use_videos:
            raise DatasetSpecError("streaming_encoding needs use_videos")
        if not (math.isfinite(self.min_free_mb) and self.min_free_mb >= 0):
            raise DatasetSpecError(f"min_free_mb must be >= 0, got {self.min_free_mb}")

    @property
    def camera_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.cameras)

    def features(self) -> dict[str, dict[str, Any]]:
        """The ``features`` argument of ``LeRobotDataset.create``."""
        kind = "video" if self.use_videos else "image"
        feats: dict[str, dict[str, Any]] = {
            cam.key: {"dtype": kind, "shape": (cam.height, cam.width, 3), "names": ["height", "width", "channels"]}
            for cam in self.cameras
        }
        feats["observation.state"] = {"dtype": "float32", "shape": (len(self.state_names),),
                                      "names": list(self.state_names)}
        feats["action"] = {"dtype": "float32", "shape": (len(self.action_names),), "names": list(self.action_names)}
        if self.sample_age_streams:
            feats[SAMPLE_AGE_KEY] = {"dtype": "float32", "shape": (len(self.sample_age_streams),),
                                     "names": list(self.sample_age_streams)}
        return feats


def spec_mismatches(spec: DatasetSpec, info: dict[str, Any]) -> list[str]:
    """How an existing dataset's ``meta/info.json`` differs from ``spec`` (empty list: compatible)."""
    problems = []
    if int(info.get("fps", -1)) != spec.fps:
        problems.append(f"fps {info.get('fps')} on disk, {spec.fps} configured")
    have = info.get("features", {})
    for key, want in spec.features().items():
        got = have.get(key)
        if got is None:
            problems.append(f"feature {key} is missing on disk")
            continue
        if got.get("dtype") != want["dtype"]:
            problems.append(f"{key} is {got.get('dtype')} on disk, {want['dtype']} configured (use_videos)")
        if tuple(got.get("shape", ())) != tuple(want["shape"]):
            problems.append(f"{key} has shape {tuple(got.get('shape', ()))} on disk, {tuple(want['shape'])} configured")
        if key in ("observation.state", "action", SAMPLE_AGE_KEY) and list(got.get("names") or []) != want["names"]:
            problems.append(f"{key} joint names {got.get('names')} on disk, {want['names']} configured")
    extra = sorted(k for k in have if k.startswith(IMAGE_KEY_PREFIX) and k not in spec.camera_keys)
    if extra:
        problems.append(f"cameras {extra} are on disk but not configured")
    if SAMPLE_AGE_KEY in have and not spec.sample_age_streams:
        problems.append(f"the dataset has a {SAMPLE_AGE_KEY} column (recorded with gap_policy hold); configure hold")
    return problems
