"""Recorder node: cameras + joint states + the teleop command -> a LeRobot v3 dataset that trains WALL-OSS.

Data flow: subscriptions (same camera/joint conventions as the policy node, plus the action source)
push stamped samples into ``dataset.recording.Recorder`` -> fixed-fps frames aligned by header stamp
(``core.frame_alignment``) -> the writer thread (``dataset.writer.DatasetWriter``: LeRobot's own
``create / add_frame / save_episode / finalize``). Services ``~/start_episode``, ``~/stop_episode``
(save) and ``~/discard_episode`` (std_srvs/Trigger), or ``autostart`` (record continuously, episodes cut by
``max_episode_s`` or ``~/stop_episode``); progress in the log and on ``/diagnostics``.
SIGINT/SIGTERM save (or discard, ``on_shutdown``) the open episode and finalize the dataset, however many of
them arrive (``ros2 launch`` without a terminal sends two): ``nodes.shutdown_signals``.
Parameters: ``dataset.recording_config.PARAMETERS`` (shared with the bag converter).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from wallx_ros import ros_compat
from wallx_ros.core.cdr_image import parse_image_cdr
from wallx_ros.core.errors import CoreError, ParameterError
from wallx_ros.core.frame_alignment import RULES
from wallx_ros.core.frame_gaps import GAP_POLICIES
from wallx_ros.core.image_decoding import decode_raw
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.core.parameter_table import Param, ParameterTable, ParamType
from wallx_ros.dataset.errors import DatasetError
from wallx_ros.dataset.recording import Recorder, RecorderConfig
from wallx_ros.dataset.recording_config import (
    ACTION_SOURCES,
    ON_SHUTDOWN,
    TRANSPORTS,
    Parameter,
    RecordingConfig,
    parameters,
)
from wallx_ros.dataset.spec import VIDEO_CODECS
from wallx_ros.nodes.executors import MultiThreadedExecutor
from wallx_ros.nodes.parameters import PARAMETER_ERROR_EXIT, command_line, declare_and_read
from wallx_ros.nodes.ros_conversions import image_to_rgb, stamp_to_ns
from wallx_ros.nodes.shutdown_signals import ShutdownSignals

__all__ = ["ACTION_TYPES", "TABLE", "RecorderNode", "main"]

ACTION_TYPES = ACTION_SOURCES


def _qos_fields(profile: QoSProfile) -> dict[str, Any]:
    return {"history": profile.history, "depth": profile.depth, "reliability": profile.reliability,
            "durability": profile.durability}


# Ranges and choices of the recording parameters, for their descriptors and the command-line check.
_CONSTRAINTS: dict[str, dict[str, Any]] = {
    "fps": {"low": 1, "high": 1000},
    "video_codec": {"choices": VIDEO_CODECS},
    "camera_transport": {"choices": TRANSPORTS},
    "action_type": {"choices": ACTION_SOURCES},
    "camera_rule": {"choices": RULES}, "state_rule": {"choices": RULES}, "action_rule": {"choices": RULES},
    "gap_policy": {"choices": GAP_POLICIES},
    "on_shutdown": {"choices": ON_SHUTDOWN},
    "max_age_s": {"low": 1e-6}, "action_max_age_s": {"low": 1e-6}, "watermark_delay_s": {"low": 0.0},
    "image_writer_threads": {"low": 0}, "min_free_mb": {"low": 0.0}, "max_episode_s": {"low": 0.0},
    "max_queued_frames": {"low": 1}, "encoder_nice": {"low": 0, "high": 19},
    "diagnostics_period_s": {"low": 1e-3}, "progress_log_period_s": {"low": 0.0},
}


def _param(p: Parameter) -> Param:
    default = p.default
    kind = (ParamType.BOOL if isinstance(default, bool) else ParamType.INTEGER if isinstance(default, int)
            else ParamType.DOUBLE if isinstance(default, float) else ParamType.STRING_ARRAY
            if isinstance(default, list) else ParamType.STRING)
    return Param(p.name, kind, default, p.description, **_CONSTRAINTS.get(p.name, {}))


TABLE = ParameterTable("wallx_recorder", [_param(p) for p in parameters("live")],
                       summary="Cameras + joint states + the teleop command -> a LeRobot v3 dataset (services "
                               "~/start_episode, ~/stop_episode, ~/discard_episode).")


class RecorderNode(Node):
    """Records teleoperated episodes into one LeRobot dataset."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TABLE.node_name, **kwargs)
        self.config, self._transport, self._action_type, self._action_topic = self._read_parameters()
        self._instruction = self.recording.instruction
        self._on_shutdown = self.recording.on_shutdown
        spec = self.config.dataset
        self.recorder = Recorder(self.config, log=self.get_logger().info, error_log=self.get_logger().error)
        self._state_selector = JointSelector(spec.state_names)
        self._action_selector = JointSelector(spec.action_names)

        # Deeper queues than the policy node's: the recorder needs every sample, and a busy writer can keep
        # the executor from taking messages for a while (depth 5 / 10 then loses them). ~1 s of camera
        # frames, ~2 s of joint states at 100 Hz.
        camera_qos = QoSProfile(**{**_qos_fields(qos_profile_sensor_data), "depth": 30})
        sample_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200)
        inputs = MutuallyExclusiveCallbackGroup()
        services = ReentrantCallbackGroup()
        timers = MutuallyExclusiveCallbackGroup()
        for cam in self.config.cameras:
            if self._transport == "compressed":
                self.create_subscription(CompressedImage, f"{cam}/image_raw/compressed", self._image_callback(cam),
                                         camera_qos, callback_group=inputs)
            else:  # serialized bytes: no per-frame Python message with a copied pixel array (core.cdr_image)
                self.create_subscription(Image, f"{cam}/image_raw", self._raw_image_callback(cam),
                                         camera_qos, callback_group=inputs, raw=True)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, sample_qos, callback_group=inputs)
        action_msg = {"JointState": JointState, "JointTrajectory": JointTrajectory,
                      "Float64MultiArray": Float64MultiArray}[self._action_type]
        self.create_subscription(action_msg, self._action_topic, self._on_action, sample_qos, callback_group=inputs)
        self.create_subscription(String, "~/instruction", self._on_instruction, 10, callback_group=inputs)
        self.create_service(Trigger, "~/start_episode", self._on_start, callback_group=services)
        self.create_service(Trigger, "~/stop_episode", self._on_stop, callback_group=services)
        self.create_service(Trigger, "~/discard_episode", self._on_discard, callback_group=services)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(0.5 / spec.fps, self._tick, callback_group=timers)
        period = self.recording.diagnostics_period_s
        self.create_timer(period, self._publish_diagnostics, callback_group=timers)
        self._progress_every = self.recording.progress_log_period_s
        self._last_progress = 0.0
        self._autostart = self.recording.autostart
        self._autostart_thread: threading.Thread | None = None
        self._next_autostart = 0.0
        self._closing = threading.Event()
        self.get_logger().info(
            f"ready: dataset {spec.root} ({spec.repo_id}, {spec.fps} fps, {'videos' if spec.use_videos else 'images'}"
            f"), cameras {list(self.config.cameras) or 'none (state-only)'} ({self._transport}), joints "
            f"{list(spec.state_names)}, action {self.resolve_topic_name(self._action_topic)} ({self._action_type}); "
            f"gap_policy {self.config.gap_policy}; "
            + ("autostart: recording continuously" if self._autostart else "call ~/start_episode"))

    # -- parameters --------------------------------------------------------------------------------------
    def _read_parameters(self) -> tuple[RecorderConfig, str, str, str]:
        # one table for the node and the bag converter (dataset.recording_config.PARAMETERS), declared with
        # descriptors (type, range, choices) like every node's (core.parameter_table)
        values = declare_and_read(self, TABLE)
        recording = RecordingConfig.from_params(values)
        if not recording.root:
            raise DatasetError("parameter root is required (the dataset folder)")
        self.recording = recording
        # camera sizes are placeholders: the dataset on disk or the first images decide
        spec = recording.dataset_spec(Path(recording.root), {c: (1, 1) for c in recording.cameras})
        config = RecorderConfig.from_recording(recording, spec)
        return config, recording.camera_transport, recording.action_type, recording.action_topic

    # -- inputs ------------------------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _stamp(self, header: Any) -> int:
        """Header stamp; a zero stamp (e.g. a JointTrajectory meaning 'now') counts as the receive time."""
        ns = stamp_to_ns(header.stamp) if header is not None else 0
        return ns or self._now_ns()

    def _image_callback(self, cam: str) -> Any:
        def callback(msg: Image | CompressedImage) -> None:
            try:
                rgb = image_to_rgb(msg)
            except CoreError as err:
                self.get_logger().error(f"camera {cam}: {err}", throttle_duration_sec=2.0)
                return
            self.recorder.push_image(cam, self._stamp(msg.header), rgb)
        return callback

    def _raw_image_callback(self, cam: str) -> Any:
        def callback(buf: bytes) -> None:
            try:
                raw = parse_image_cdr(buf)
                rgb = decode_raw(raw.encoding, raw.height, raw.width, raw.step, raw.data)
            except CoreError as err:
                self.get_logger().error(f"camera {cam}: {err}", throttle_duration_sec=2.0)
                return
            self.recorder.push_image(cam, raw.stamp_ns or self._now_ns(), rgb)
        return callback

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            positions = self._state_selector.select(msg.name, msg.position)
        except CoreError as err:
            self.get_logger().error(f"joint_states: {err}", throttle_duration_sec=2.0)
            return
        self.recorder.push_state(self._stamp(msg.header), positions)

    def _on_action(self, msg: Any) -> None:
        try:
            if isinstance(msg, JointState):
                values = self._action_selector.select(msg.name, msg.position)
                stamp = self._stamp(msg.header)
            elif isinstance(msg, JointTrajectory):
                if not msg.points:
                    raise CoreError("JointTrajectory without points")
                values = self._action_selector.select(msg.joint_names, msg.points[0].positions)
                stamp = self._stamp(msg.header)
            else:
                values = np.asarray(msg.data, dtype=np.float64)
                if values.shape != (len(self._action_selector.wanted),) or not np.all(np.isfinite(values)):
                    raise CoreError(f"Float64MultiArray needs {len(self._action_selector.wanted)} finite values "
                                    f"(action_joint_names order), got {values.shape[0]}")
                stamp = self._now_ns()
        except CoreError as err:
            self.get_logger().error(f"action ({self._action_type}): {err}", throttle_duration_sec=2.0)
            return
        self.recorder.push_action(stamp, values)

    def _on_instruction(self, msg: String) -> None:
        self._instruction = msg.data
        self.get_logger().info(f"instruction for the next episodes: {msg.data!r}")

    # -- services ----------------------------------------------------------------------------------------
    def _on_start(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.recorder.start(self._instruction, self._now_ns())
        return response

    def _on_stop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        now = self._now_ns()
        self.get_logger().info(f"~/stop_episode: the episode ends at {now} ns; saving")
        response.success, response.message = self.recorder.stop(True, now)
        return response

    def _on_discard(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        now = self._now_ns()
        self.get_logger().info(f"~/discard_episode: the episode ends at {now} ns; discarding")
        response.success, response.message = self.recorder.stop(False, now)
        return response

    # -- periodic ----------------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self._now_ns()
        self.recorder.tick(now)
        self._maybe_autostart()
        if self._progress_every > 0 and now * 1e-9 - self._last_progress >= self._progress_every:
            status = self.recorder.status()
            if status.state == "recording":
                self._last_progress = now * 1e-9
                self.get_logger().info(
                    f"episode {status.episode_index}: {status.episode_frames} frames ({status.episode_s:.1f} s), "
                    f"{status.dropped} dropped at gaps, {status.held_frames} held, {status.queued} waiting for the "
                    f"writer ({status.spilled_frames} on disk), video encoders {status.encoder_backlog} frames "
                    f"behind, {status.episodes} saved so far")

    def _maybe_autostart(self) -> None:
        """autostart: open the next episode in a thread (start waits for the cameras) when the recorder is idle."""
        if not self._autostart or self._closing.is_set() or time.monotonic() < self._next_autostart:
            return
        if self._autostart_thread is not None and self._autostart_thread.is_alive():
            return
        if self.recorder.status().state != "idle":
            return
        self._next_autostart = time.monotonic() + 2.0  # retry pace when a start fails (no instruction, no camera)

        def start() -> None:
            if self._closing.is_set():
                return
            ok, message = self.recorder.start(self._instruction, self._now_ns())
            if not ok:
                self.get_logger().warning(f"autostart: {message}", throttle_duration_sec=10.0)

        self._autostart_thread = threading.Thread(target=start, name="wallx_recorder_autostart", daemon=True)
        self._autostart_thread.start()

    def _publish_diagnostics(self) -> None:
        status = self.recorder.status()
        diag = DiagnosticStatus()
        diag.name = f"{self.get_name()}: dataset"
        diag.hardware_id = str(self.config.dataset.root)
        if status.state == "error" or (status.last_error and status.state != "recording"):
            diag.level = DiagnosticStatus.ERROR
        elif status.dropped or status.overruns or status.held_frames:
            diag.level = DiagnosticStatus.WARN
        else:
            diag.level = DiagnosticStatus.OK
        if status.state == "recording":
            diag.message = (f"recording episode {status.episode_index}: {status.episode_frames} frames "
                            f"({status.episode_s:.1f} s)")
        else:
            diag.message = f"{status.state}: {status.episodes} episodes saved"
            if status.last_error:
                diag.message += f"; last error: {status.last_error}"
        values = {"state": status.state, "episodes": status.episodes, "total_frames": status.total_frames,
                  "episode_frames": status.episode_frames, "dropped_frames": status.dropped,
                  "alignment": status.dropped_detail, "writer_overruns": status.overruns,
                  "queued_frames": status.queued, "spilled_frames": status.spilled_frames,
                  "pending_saves": status.pending_saves, "encoder_backlog_frames": status.encoder_backlog,
                  "gap_policy": self.config.gap_policy, "held_frames": status.held_frames,
                  "gaps": ", ".join(f"{k} {v}" for k, v in status.gaps.items() if v) or "none",
                  "last_error": status.last_error, "instruction": self._instruction}
        for name, skew in status.skew.items():
            if skew.frames and name in self.config.cameras:
                values[f"skew_ms/{name}"] = f"p50 {skew.p50_ms:.1f}, max {skew.max_ms:.1f}"
        if status.last_saved is not None:
            values["last_episode"] = (f"{status.last_saved.index}: {status.last_saved.frames} frames, encode "
                                      f"{status.last_saved.encode_s:.2f} s (waiting for the encoders "
                                      f"{status.last_saved.encode_tail_s:.2f} s)")
        if status.last_notes is not None:
            values["last_episode_ended_by"] = status.last_notes.ended_by
        values.update({f"samples/{k}": v for k, v in status.samples.items()})
        diag.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diag]
        self._diagnostics.publish(array)

    def begin_shutdown(self) -> None:
        """The first SIGINT/SIGTERM: no new episode, and an open one stops waiting for late samples."""
        self._closing.set()
        self.recorder.begin_close()

    def shutdown(self) -> None:
        """Save or discard an open episode (``on_shutdown``), wait for every queued save, finalize."""
        self._closing.set()
        if self._autostart_thread is not None:
            self._autostart_thread.join(timeout=30)  # a start in progress opens its episode first, then it is closed
        # spinning has ended: no sample arrives any more, so keep only complete frames
        message = self.recorder.close(self._on_shutdown == "save", self._now_ns(), input_ended=True)
        if message:
            self.get_logger().info(f"shutdown: {message}")
        self.get_logger().info("shutdown complete: dataset finalized")


def main(args: list[str] | None = None) -> int:
    """Spin until SIGINT/SIGTERM, then save exactly once, whatever other signals arrive meanwhile."""
    code, overrides = command_line(TABLE, args)  # --help, and every command-line override checked before ROS
    if code is not None:
        return code
    logger = rclpy.logging.get_logger(TABLE.node_name)

    def repeated(signum: int, count: int) -> None:
        logger.warning(f"signal {signum} again ({count} so far): already stopping, the open episode is being saved "
                       "(SIGKILL aborts and loses it)")

    signals = ShutdownSignals(on_repeat=repeated).install()
    with ros_compat.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
        try:
            node = RecorderNode(parameter_overrides=overrides)
        except ParameterError as err:
            logger.fatal(f"cannot start: {err}")
            return PARAMETER_ERROR_EXIT
        except (DatasetError, CoreError) as err:
            logger.fatal(f"cannot start: {err}")
            return 1
        # several threads: start/stop services wait for camera frames and late samples while inputs keep arriving
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, name="wallx_recorder_spin", daemon=True)
        spinner.start()
        signals.wait(alive=spinner.is_alive)
        node.get_logger().info("stop requested: saving the open episode" if signals.requested.is_set()
                               else "the executor stopped: closing")
        node.begin_shutdown()
        executor.shutdown(timeout_sec=60)
        spinner.join(timeout=10)
        try:
            node.shutdown()
        finally:
            node.destroy_node()
    signals.ignore()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
