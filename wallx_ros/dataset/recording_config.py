"""The recording settings, once: shared by the recorder node (ROS parameters) and the bag converter (YAML, flags).

``PARAMETERS`` is the one table of names, defaults and descriptions: the node declares exactly the ``live``
and ``shared`` ones, ``bag_config`` reads the ``shared`` and ``bag`` ones from the same
``/**: ros__parameters:`` YAML (a recorder.yaml converts its robot's bags as is). :class:`RecordingConfig`
holds and validates the values; it is what both turn into a dataset spec, the per-stream alignment rules
(``core.frame_alignment``) and the gap policy (``core.frame_gaps``). ROS-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from wallx_ros.core.frame_alignment import RULES, AlignmentConfig, StreamSpec
from wallx_ros.core.frame_gaps import GAP_POLICIES
from wallx_ros.dataset.errors import DatasetSpecError
from wallx_ros.dataset.spec import VIDEO_CODECS, CameraSpec, DatasetSpec

__all__ = [
    "ACTION_SOURCES",
    "ACTION_STREAM",
    "IGNORED_PARAMETERS",
    "PARAMETERS",
    "STATE_STREAM",
    "Parameter",
    "RecordingConfig",
    "coerce_value",
    "parameters",
    "stream_specs",
]

STATE_STREAM = "observation.state"
ACTION_STREAM = "action"
ACTION_SOURCES = ("JointState", "JointTrajectory", "Float64MultiArray")
TRANSPORTS = ("raw", "compressed")
ON_SHUTDOWN = ("save", "discard")
_SAME = object()


@dataclass(frozen=True)
class Parameter:
    """One setting: name, default, what it does, where it means something (``shared``: recorder node and bag
    converter, ``live``: node only, ``bag``: converter only) and the converter's default where it differs."""

    name: str
    default: Any
    description: str
    scope: str = "shared"
    bag_default: Any = _SAME

    def default_for(self, scope: str) -> Any:
        return self.default if scope != "bag" or self.bag_default is _SAME else self.bag_default


PARAMETERS: tuple[Parameter, ...] = (
    # --- the dataset ---
    Parameter("root", "", "dataset folder (LeRobot root); created, or appended to when it exists"),
    Parameter("repo_id", "local/wallx_demos", "LeRobot repo_id <user>/<name>"),
    Parameter("fps", 30, "frame rate of the dataset (integer, LeRobot)"),
    Parameter("use_videos", True, "cameras as mp4 videos (true) or PNG images in parquet (false)"),
    Parameter("video_codec", "libsvtav1", "libsvtav1, h264, hevc or auto (a hardware encoder)", bag_default="h264"),
    Parameter("robot_type", "", "robot type stored in the dataset (e.g. aloha)"),
    Parameter("streaming_encoding", True, "encode videos while recording: frames are spooled to disk and encoded "
              "behind by one process per camera (capture never waits); false: PNG frames, encoded at save"),
    Parameter("image_writer_threads", 4, "threads writing the PNG frames LeRobot encodes at save"),
    Parameter("min_free_mb", 500.0, "refuse to record when the dataset disk has less free space"),
    # --- inputs ---
    Parameter("cameras", ["face_view", "left_wrist_view", "right_wrist_view"],
              "camera keys; topics <camera>/image_raw[/compressed]; [\"\"]: no cameras (a state-only dataset)"),
    Parameter("camera_transport", "raw", "raw: sensor_msgs/Image; compressed: CompressedImage"),
    Parameter("joint_names", [""], "joints of observation.state, picked by name from joint_states"),
    Parameter("action_joint_names", [""], "joints of action (empty: joint_names)"),
    Parameter("action_topic", "/wallx_teleop/action", "topic of the command being recorded as action"),
    Parameter("action_type", "JointState", "JointState, JointTrajectory (first point) or Float64MultiArray"),
    Parameter("instruction", "", "task of the next episodes; ~/instruction (std_msgs/String) replaces it"),
    # --- alignment and gaps ---
    Parameter("max_age_s", 0.1, "a camera/joint sample farther than this from a frame time is a gap"),
    Parameter("action_max_age_s", 0.5, "the same for the action stream"),
    Parameter("camera_rule", "nearest", "how a frame picks a camera image: nearest (in time) or latest (at or "
              "before the frame time)"),
    Parameter("state_rule", "latest", "how a frame picks the joint state: latest (as of the frame time, never "
              "from the future) or nearest"),
    Parameter("action_rule", "latest", "how a frame picks the action: latest or nearest"),
    Parameter("gap_policy", "split", "a stream gap longer than max_age_s: split (end the episode, start a new one "
              "after the gap), hold (repeat the last sample, ages stored per frame in sample_age_s) or fail"),
    Parameter("watermark_delay_s", 2.0, "delivery latency allowance: frames wait this long for a late stream",
              bag_default=1.0),
    # --- live only ---
    Parameter("encoder_nice", 10, "CPU niceness of the video encoder processes (capture keeps the CPU)", "live"),
    Parameter("max_episode_s", 0.0, "save an episode automatically after this long (0: never); with autostart the "
              "next episode continues at the next frame", "live"),
    Parameter("autostart", False, "record continuously: start an episode as soon as every stream is there; "
              "max_episode_s or ~/stop_episode cut it", "live"),
    Parameter("max_queued_frames", 90, "frames waiting for the dataset writer in memory; more wait on disk", "live"),
    Parameter("on_shutdown", "save", "what SIGINT/SIGTERM does with an open episode: save or discard", "live"),
    Parameter("diagnostics_period_s", 1.0, "period of /diagnostics", "live"),
    Parameter("progress_log_period_s", 5.0, "period of progress log lines while recording", "live"),
    # --- bag conversion only ---
    Parameter("joint_states_topic", "joint_states", "joint state topic (relative names resolve in namespace)", "bag"),
    Parameter("instruction_topic", "", "std_msgs/String topic carrying the task", "bag"),
    Parameter("namespace", "/", "namespace the relative topic names are resolved in", "bag"),
    Parameter("topic_remaps", [], "topic renames 'from:=to'", "bag"),
    Parameter("episode_split", "bag", "bag: one episode per bag | marker: episode_marker_topic | gap: pauses", "bag"),
    Parameter("episode_marker_topic", "", "marker topic (std_msgs/String start/stop/discard or Bool)", "bag"),
    Parameter("episode_gap_s", 1.0, "episode_split gap: a pause this long between messages ends an episode", "bag"),
    Parameter("skip_non_monotonic", False, "drop messages whose header stamp does not increase instead of failing",
              "bag"),
)

# Names accepted in a params file and ignored (they used to exist, or belong to ROS itself).
IGNORED_PARAMETERS = frozenset({"encoder_queue_frames", "use_sim_time"})


def stream_specs(cameras: tuple[str, ...], max_age_s: float, action_max_age_s: float, camera_rule: str = "nearest",
                 state_rule: str = "latest", action_rule: str = "latest") -> tuple[StreamSpec, ...]:
    """The aligned streams of a recording: cameras, then the joint state and the action, with their rules."""
    cams = tuple(StreamSpec(c, max_age_s, camera_rule) for c in cameras)
    return (*cams, StreamSpec(STATE_STREAM, max_age_s, state_rule),
            StreamSpec(ACTION_STREAM, action_max_age_s, action_rule))


def parameters(scope: str) -> tuple[Parameter, ...]:
    """The parameters that mean something for ``live`` (the node) or ``bag`` (the converter)."""
    return tuple(p for p in PARAMETERS if p.scope in ("shared", scope))


def coerce_value(param: Parameter, value: Any) -> Any:
    """``value`` as the type of ``param``'s default (lists become tuples of strings); DatasetSpecError if it is not."""
    default = param.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise DatasetSpecError(f"{param.name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DatasetSpecError(f"{param.name} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DatasetSpecError(f"{param.name} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, list):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise DatasetSpecError(f"{param.name} must be a list, got {value!r}")
        return tuple(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class RecordingConfig:
    """Validated values of the ``shared`` and ``live`` parameters (see ``PARAMETERS`` for their meaning)."""

    joint_names: tuple[str, ...] = ()
    fps: int = 30
    cameras: tuple[str, ...] = ("face_view", "left_wrist_view", "right_wrist_view")
    root: str = ""
    repo_id: str = "local/wallx_demos"
    use_videos: bool = True
    video_codec: str = "libsvtav1"
    robot_type: str = ""
    streaming_encoding: bool = True
    image_writer_threads: int = 4
    min_free_mb: float = 500.0
    camera_transport: str = "raw"
    action_joint_names: tuple[str, ...] = ()
    action_topic: str = "/wallx_teleop/action"
    action_type: str = "JointState"
    instruction: str = ""
    max_age_s: float = 0.1
    action_max_age_s: float = 0.5
    camera_rule: str = "nearest"
    state_rule: str = "latest"
    action_rule: str = "latest"
    gap_policy: str = "split"
    watermark_delay_s: float = 2.0
    encoder_nice: int = 10
    max_episode_s: float = 0.0
    autostart: bool = False
    max_queued_frames: int = 90
    on_shutdown: str = "save"
    diagnostics_period_s: float = 1.0
    progress_log_period_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("cameras", "joint_names", "action_joint_names"):
            # ROS string arrays cannot be empty in YAML without a type: [""] means "none"
            object.__setattr__(self, name, tuple(str(n) for n in getattr(self, name) if n))
        if not self.joint_names:
            raise DatasetSpecError("joint_names is required: the joints of observation.state, by name")
        object.__setattr__(self, "action_joint_names", self.action_joint_names or self.joint_names)
        for what in ("cameras", "joint_names", "action_joint_names"):
            names = getattr(self, what)
            if len(set(names)) != len(names):
                raise DatasetSpecError(f"{what} repeat: {list(names)}")
        if isinstance(self.fps, bool) or int(self.fps) != self.fps or not 0 < self.fps <= 1000:
            raise DatasetSpecError(f"fps must be an integer in 1..1000 (LeRobot stores integer fps), got {self.fps}")
        object.__setattr__(self, "fps", int(self.fps))
        choices = {"camera_transport": TRANSPORTS, "action_type": ACTION_SOURCES, "camera_rule": RULES,
                   "state_rule": RULES, "action_rule": RULES, "gap_policy": GAP_POLICIES,
                   "on_shutdown": ON_SHUTDOWN, "video_codec": VIDEO_CODECS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise DatasetSpecError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("max_age_s", "action_max_age_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise DatasetSpecError(f"{name} must be > 0, got {value}")
        for name in ("watermark_delay_s", "max_episode_s", "min_free_mb", "diagnostics_period_s",
                     "progress_log_period_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise DatasetSpecError(f"{name} must be finite and >= 0, got {value}")
        if self.max_queued_frames < 1:
            raise DatasetSpecError(f"max_queued_frames must be >= 1, got {self.max_queued_frames}")
        if not self.action_topic:
            raise DatasetSpecError("action_topic must be set")

    # -- construction --------------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any], scope: str = "live") -> RecordingConfig:
        """From a flat dict of parameter values (unknown names are an error; ``bag`` ones are skipped)."""
        known = {p.name: p for p in PARAMETERS}
        unknown = sorted(set(params) - set(known) - IGNORED_PARAMETERS)
        if unknown:
            raise DatasetSpecError(f"unknown parameters {unknown}; known: {sorted(known)}")
        own = {f.name for f in fields(cls)}
        values = {name: coerce_value(known[name], value) for name, value in params.items() if name in own}
        return cls(**values)

    # -- what the values imply ---------------------------------------------------------------------------
    def stream_specs(self) -> tuple[StreamSpec, ...]:
        """The aligned streams: cameras (``camera_rule``), then the joint state and the action."""
        return stream_specs(self.cameras, self.max_age_s, self.action_max_age_s, self.camera_rule, self.state_rule,
                            self.action_rule)

    def alignment(self) -> AlignmentConfig:
        return AlignmentConfig(fps=float(self.fps), streams=self.stream_specs(), hold_stale=self.gap_policy == "hold")

    def dataset_spec(self, root: str | Path, image_shapes: Mapping[str, tuple[int, ...]], *,
                     encoder_nice: int | None = None) -> DatasetSpec:
        """The dataset these settings write, at ``root``, with each camera's (height, width, ...)."""
        streams = tuple(s.name for s in self.stream_specs()) if self.gap_policy == "hold" else ()
        return DatasetSpec(
            root=Path(root), repo_id=self.repo_id, fps=self.fps,
            cameras=tuple(CameraSpec(c, int(image_shapes[c][0]), int(image_shapes[c][1])) for c in self.cameras),
            state_names=self.joint_names, action_names=self.action_joint_names, robot_type=self.robot_type,
            use_videos=self.use_videos, video_codec=self.video_codec,
            image_writer_threads=0 if self.streaming_encoding and self.use_videos else self.image_writer_threads,
            streaming_encoding=self.streaming_encoding and self.use_videos,
            encoder_nice=self.encoder_nice if encoder_nice is None else encoder_nice, min_free_mb=self.min_free_mb,
            sample_age_streams=streams)
