"""Recorder node: cameras + joint states + the teleop command -> a LeRobot v3 dataset that trains WALL-OSS.

Data flow: subscriptions (same camera/joint conventions as the policy node, plus the action source)
push stamped samples into ``dataset.recording.Recorder`` -> fixed-fps frames aligned by header stamp
(``core.frame_alignment``) -> the writer thread (``dataset.writer.DatasetWriter``: LeRobot's own
``create / add_frame / save_episode / finalize``). Services ``~/start_episode``, ``~/stop_episode``
(save) and ``~/discard_episode`` (std_srvs/Trigger), or ``autostart`` (record continuously, episodes cut by
``max_episode_s`` or ``~/stop_episode``); progress in the log and on ``/diagnostics``.
SIGINT/SIGTERM save (or discard, ``on_shutdown``) the open episode and finalize the dataset.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.core.cdr_image import parse_image_cdr
from wallx_ros.core.errors import CoreError
from wallx_ros.core.image_decoding import decode_raw
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.dataset.errors import DatasetError
from wallx_ros.dataset.recording import Recorder, RecorderConfig
from wallx_ros.dataset.spec import CameraSpec, DatasetSpec
from wallx_ros.nodes.executors import MultiThreadedExecutor, spin_node
from wallx_ros.nodes.ros_conversions import image_to_rgb, stamp_to_ns

__all__ = ["ACTION_TYPES", "RecorderNode", "main"]

ACTION_TYPES = ("JointState", "JointTrajectory", "Float64MultiArray")
_DEFAULT_CAMERAS = ["face_view", "left_wrist_view", "right_wrist_view"]


def _qos_fields(profile: QoSProfile) -> dict[str, Any]:
    return {"history": profile.history, "depth": profile.depth, "reliability": profile.reliability,
            "durability": profile.durability}


def _declare(node: Node, name: str, default: object, description: str) -> None:
    node.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True))


class RecorderNode(Node):
    """Records teleoperated episodes into one LeRobot dataset."""

    def __init__(self) -> None:
        super().__init__("wallx_recorder")
        self.config, self._transport, self._action_type, self._action_topic = self._read_parameters()
        self._instruction = str(self.get_parameter("instruction").value)
        self._on_shutdown = str(self.get_parameter("on_shutdown").value)
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
        period = float(self.get_parameter("diagnostics_period_s").value)
        self.create_timer(period, self._publish_diagnostics, callback_group=timers)
        self._progress_every = float(self.get_parameter("progress_log_period_s").value)
        self._last_progress = 0.0
        self._autostart = bool(self.get_parameter("autostart").value)
        self._autostart_thread: threading.Thread | None = None
        self._next_autostart = 0.0
        self._closing = threading.Event()
        self.get_logger().info(
            f"ready: dataset {spec.root} ({spec.repo_id}, {spec.fps} fps, {'videos' if spec.use_videos else 'images'}"
            f"), cameras {list(self.config.cameras)} ({self._transport}), joints {list(spec.state_names)}, action "
            f"{self.resolve_topic_name(self._action_topic)} ({self._action_type}); "
            + ("autostart: recording continuously" if self._autostart else "call ~/start_episode"))

    # -- parameters --------------------------------------------------------------------------------------
    def _read_parameters(self) -> tuple[RecorderConfig, str, str, str]:
        _declare(self, "root", "", "dataset folder (LeRobot root); created, or appended to when it exists")
        _declare(self, "repo_id", "local/wallx_demos", "LeRobot repo_id <user>/<name>")
        _declare(self, "fps", 30, "frame rate of the dataset (integer, LeRobot)")
        _declare(self, "use_videos", True, "cameras as mp4 videos (true) or PNG images in parquet (false)")
        _declare(self, "video_codec", "libsvtav1", "libsvtav1, h264, hevc or auto (a hardware encoder)")
        _declare(self, "robot_type", "", "robot type stored in the dataset (e.g. aloha)")
        _declare(self, "cameras", _DEFAULT_CAMERAS, "camera keys; topics <camera>/image_raw[/compressed]")
        _declare(self, "camera_transport", "raw", "raw: sensor_msgs/Image; compressed: CompressedImage")
        _declare(self, "joint_names", [""], "joints of observation.state, picked by name from joint_states")
        _declare(self, "action_joint_names", [""], "joints of action (empty: joint_names)")
        _declare(self, "action_topic", "/wallx_teleop/action", "topic of the command being recorded as action")
        _declare(self, "action_type", "JointState", "JointState, JointTrajectory (first point) or Float64MultiArray")
        _declare(self, "instruction", "", "task of the next episodes; ~/instruction (std_msgs/String) replaces it")
        _declare(self, "max_age_s", 0.1, "a camera/joint sample older than this at a frame time drops the frame")
        _declare(self, "action_max_age_s", 0.5, "the same for the action stream")
        _declare(self, "watermark_delay_s", 2.0, "delivery latency allowance: frames wait this long for a late stream")
        _declare(self, "streaming_encoding", True, "encode videos while recording (LeRobot streaming encoder) "
                 "instead of writing PNG frames and encoding at save")
        _declare(self, "encoder_queue_frames", 90, "streaming: frames per camera the encoder may lag behind")
        _declare(self, "image_writer_threads", 4, "threads writing the PNG frames LeRobot encodes at save")
        _declare(self, "min_free_mb", 500.0, "refuse to record when the dataset disk has less free space")
        _declare(self, "max_episode_s", 0.0, "save an episode automatically after this long (0: never)")
        _declare(self, "autostart", False, "record continuously: start an episode as soon as every stream is there "
                 "and the next one after each save or discard")
        _declare(self, "max_queued_frames", 90, "frames waiting for the writer before new ones are dropped")
        _declare(self, "on_shutdown", "save", "what SIGINT/SIGTERM does with an open episode: save or discard")
        _declare(self, "diagnostics_period_s", 1.0, "period of /diagnostics")
        _declare(self, "progress_log_period_s", 5.0, "period of progress log lines while recording")

        def get(name: str) -> Any:
            return self.get_parameter(name).value

        root = str(get("root"))
        if not root:
            raise DatasetError("parameter root is required (the dataset folder)")
        transport = str(get("camera_transport"))
        if transport not in ("raw", "compressed"):
            raise DatasetError(f"camera_transport must be raw or compressed, got {transport!r}")
        action_type = str(get("action_type"))
        if action_type not in ACTION_TYPES:
            raise DatasetError(f"action_type must be one of {ACTION_TYPES}, got {action_type!r}")
        if str(get("on_shutdown")) not in ("save", "discard"):
            raise DatasetError(f"on_shutdown must be save or discard, got {get('on_shutdown')!r}")
        joints = tuple(n for n in get("joint_names") if n)
        if not joints:
            raise DatasetError("parameter joint_names is required (joints of observation.state)")
        action_joints = tuple(n for n in get("action_joint_names") if n) or joints
        cameras = tuple(get("cameras"))
        spec = DatasetSpec(
            root=Path(root), repo_id=str(get("repo_id")), fps=int(get("fps")),
            cameras=tuple(CameraSpec(c, 1, 1) for c in cameras),  # real sizes: dataset on disk or first images
            state_names=joints, action_names=action_joints, robot_type=str(get("robot_type")),
            use_videos=bool(get("use_videos")), video_codec=str(get("video_codec")),
            image_writer_threads=int(get("image_writer_threads")), min_free_mb=float(get("min_free_mb")),
            streaming_encoding=bool(get("streaming_encoding")), encoder_queue_frames=int(get("encoder_queue_frames")))
        config = RecorderConfig(
            dataset=spec, max_age_s=float(get("max_age_s")), action_max_age_s=float(get("action_max_age_s")),
            watermark_delay_s=float(get("watermark_delay_s")), max_queued_frames=int(get("max_queued_frames")),
            max_episode_s=float(get("max_episode_s")))
        return config, transport, action_type, str(get("action_topic"))

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
        response.success, response.message = self.recorder.stop(True, self._now_ns())
        return response

    def _on_discard(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.recorder.stop(False, self._now_ns())
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
                    f"{status.dropped} dropped, {status.overruns} overruns, {status.episodes} saved so far")

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
        elif status.dropped or status.overruns:
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
                  "queued_frames": status.queued, "last_error": status.last_error,
                  "instruction": self._instruction}
        if status.last_saved is not None:
            values["last_episode"] = (f"{status.last_saved.index}: {status.last_saved.frames} frames, encode "
                                      f"{status.last_saved.encode_s:.2f} s")
        values.update({f"samples/{k}": v for k, v in status.samples.items()})
        diag.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diag]
        self._diagnostics.publish(array)

    def shutdown(self) -> None:
        """Save or discard an open episode (``on_shutdown``), finalize, stop the writer thread."""
        self._closing.set()
        if self._autostart_thread is not None:
            self._autostart_thread.join(timeout=30)  # a start in progress opens its episode first, then it is closed
        # on_exit runs after spinning ended: no sample arrives any more, so keep only complete frames
        message = self.recorder.close(self._on_shutdown == "save", self._now_ns(), input_ended=True)
        if message:
            self.get_logger().info(f"shutdown: {message}")


def main(args: list[str] | None = None) -> int:
    # several threads: start/stop services wait for camera frames and late samples while inputs keep arriving
    return spin_node(RecorderNode, args=args, logger_name="wallx_recorder", startup_errors=(DatasetError, CoreError),
                     executor=lambda: MultiThreadedExecutor(num_threads=4), on_exit=RecorderNode.shutdown)


if __name__ == "__main__":
    raise SystemExit(main())
