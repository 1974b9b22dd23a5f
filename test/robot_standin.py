"""Robot-side stand-in for two-host tests and benches: cameras + joint states out, trajectories in.

    python test/robot_standin.py CONFIG.json

Publishes, like a robot would, synchronised cameras (``/<cam>/image_raw`` as sensor_msgs/Image, or
``/<cam>/image_raw/compressed`` as JPEG CompressedImage with a quality setting) and ``/joint_states``,
stamped with the robot's clock (``clock_offset_s`` shifts it, to emulate an unsynchronised robot
clock), and listens like a joint_trajectory_controller (RELIABLE) to the policy's trajectory topic,
plus ``/diagnostics``. Every event is appended to ``events_path`` as one JSON line (received
trajectories with their stamps and receive times, diagnostics key/values, a publish summary every
second), so a test in another network namespace can follow it live.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory

from wallx_ros import ros_compat
from wallx_ros.core.image_encoding import JPEG_FORMAT, encode_jpeg
from wallx_ros.nodes.ros_conversions import stamp_to_ns, time_from_ns

DEFAULTS: dict[str, Any] = {
    "cameras": ["face_view", "left_wrist_view", "right_wrist_view"],
    "width": 320, "height": 240, "camera_hz": 30.0,
    "transport": "compressed", "jpeg_quality": 80, "frame_variants": 8,
    "joints": [], "joint_hz": 50.0,
    "clock_offset_s": 0.0,
    "trajectory_topic": "/wallx_policy/joint_trajectory",
    "events_path": "robot_events.jsonl",
}


def synthetic_frames(n: int, height: int, width: int, seed: int) -> list[np.ndarray]:
    """Camera-like frames: smooth gradients, a moving block and sensor noise (JPEG sizes like real scenes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n):
        base = np.stack([xx / width * 200, yy / height * 180, (xx + yy) / (width + height) * 160], axis=2)
        y0, x0 = (i * 7) % max(1, height - 40), (i * 11) % max(1, width - 40)
        base[y0:y0 + 40, x0:x0 + 40] = (230, 40, 40)
        base += rng.normal(0, 6, base.shape)
        frames.append(np.clip(base, 0, 255).astype(np.uint8))
    return frames


class RobotStandIn(Node):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__("robot_standin")
        self.cfg = cfg
        self._events = open(cfg["events_path"], "a", buffering=1)  # noqa: SIM115 - closed in close()
        self._offset_ns = round(float(cfg["clock_offset_s"]) * 1e9)
        self._published: dict[str, int] = {}
        self._payload_bytes: dict[str, int] = {}
        self._frame_index = 0
        self._stamp_log: deque[tuple[int, str]] = deque(maxlen=20000)  # (stamp, source) of what was published
        self._stamp_source: dict[int, str] = {}
        self._frames: dict[str, list[Any]] = {}
        compressed = cfg["transport"] == "compressed"
        self._cam_pubs = {}
        for k, cam in enumerate(cfg["cameras"]):
            rgb = synthetic_frames(int(cfg["frame_variants"]), int(cfg["height"]), int(cfg["width"]), seed=k)
            if compressed:
                self._frames[cam] = [encode_jpeg(f, int(cfg["jpeg_quality"])) for f in rgb]
                self._cam_pubs[cam] = self.create_publisher(CompressedImage, f"/{cam}/image_raw/compressed",
                                                            qos_profile_sensor_data)
            else:
                self._frames[cam] = [f.tobytes() for f in rgb]
                self._cam_pubs[cam] = self.create_publisher(Image, f"/{cam}/image_raw", qos_profile_sensor_data)
        self._joint_pub = self.create_publisher(JointState, "/joint_states", 10)
        self._joint_phase = 0.0
        self.create_subscription(JointTrajectory, cfg["trajectory_topic"], self._guarded(self._on_trajectory), 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._guarded(self._on_diagnostics), 10)
        self.create_timer(1.0 / float(cfg["camera_hz"]), self._publish_cameras)
        self.create_timer(1.0 / float(cfg["joint_hz"]), self._publish_joints)
        self.create_timer(1.0, self._summary)
        self._event({"kind": "start", "config": cfg})

    def _guarded(self, callback: Any) -> Any:
        """A listener must not die of a message it cannot log: record the error as an event instead."""
        def wrapper(msg: Any) -> None:
            try:
                callback(msg)
            except Exception:  # reported in the event log, which the test checks
                self._event({"kind": "error", "callback": callback.__name__, "traceback": traceback.format_exc()})
        return wrapper

    def robot_now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds) + self._offset_ns

    def _event(self, obj: dict[str, Any]) -> None:
        obj["wall_ns"] = time.time_ns()
        self._events.write(json.dumps(obj) + "\n")

    def _remember(self, stamp_ns: int, source: str) -> None:
        if len(self._stamp_log) == self._stamp_log.maxlen:
            old, _ = self._stamp_log[0]
            self._stamp_source.pop(old, None)
        self._stamp_log.append((stamp_ns, source))
        self._stamp_source[stamp_ns] = source

    def _count(self, topic: str, nbytes: int) -> None:
        self._published[topic] = self._published.get(topic, 0) + 1
        self._payload_bytes[topic] = self._payload_bytes.get(topic, 0) + nbytes

    def _publish_cameras(self) -> None:
        now = self.robot_now_ns()
        self._remember(now, "cameras")
        stamp = time_from_ns(now)
        i = self._frame_index % int(self.cfg["frame_variants"])
        # one stamp for all (synchronised cameras), but the order rotates: camera drivers are separate writers,
        # and a fixed order made the last camera the one a full link queue always dropped (CI saw
        # right_wrist_view starve for 120 s on the 10 Mbit/s link while the other two got through)
        cams = list(self._cam_pubs.items())
        shift = self._frame_index % len(cams)
        self._frame_index += 1
        for cam, pub in cams[shift:] + cams[:shift]:
            data = self._frames[cam][i]
            if self.cfg["transport"] == "compressed":
                msg: Any = CompressedImage()
                msg.format = JPEG_FORMAT
            else:
                msg = Image()
                msg.height, msg.width = int(self.cfg["height"]), int(self.cfg["width"])
                msg.encoding, msg.step = "rgb8", int(self.cfg["width"]) * 3
            msg.header.stamp = stamp
            msg.header.frame_id = cam
            msg.data = data
            pub.publish(msg)
            self._count(cam, len(data))

    def _publish_joints(self) -> None:
        names = list(self.cfg["joints"])
        if not names:
            return
        self._joint_phase += 1.0 / float(self.cfg["joint_hz"])
        msg = JointState()
        now = self.robot_now_ns()
        self._remember(now, "joint_states")
        msg.header.stamp = time_from_ns(now)
        msg.name = names
        msg.position = [0.1 * float(np.sin(self._joint_phase + j)) for j in range(len(names))]
        self._joint_pub.publish(msg)
        self._count("joint_states", 8 * len(names))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        received = self.robot_now_ns()
        positions = np.array([p.positions for p in msg.points], dtype=np.float64) if msg.points else np.zeros((0, 0))
        stamp = stamp_to_ns(msg.header.stamp)
        self._event({
            "kind": "trajectory", "received_robot_ns": received, "stamp_ns": stamp,
            "stamp_source": self._stamp_source.get(stamp),
            "joint_names": list(msg.joint_names), "points": len(msg.points),
            "first_time_from_start_s": (msg.points[0].time_from_start.sec + msg.points[0].time_from_start.nanosec
                                        * 1e-9) if msg.points else None,
            "last_time_from_start_s": (msg.points[-1].time_from_start.sec + msg.points[-1].time_from_start.nanosec
                                       * 1e-9) if msg.points else None,
            "finite": bool(np.all(np.isfinite(positions))),
        })

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self._event({"kind": "diagnostics", "name": status.name, "level": int.from_bytes(status.level, "little")
                         if isinstance(status.level, bytes) else int(status.level), "message": status.message,
                         "values": {kv.key: kv.value for kv in status.values}})

    def _summary(self) -> None:
        self._event({"kind": "published", "counts": dict(self._published), "payload_bytes": dict(self._payload_bytes)})

    def close(self) -> None:
        self._summary()
        self._events.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = dict(DEFAULTS)
    cfg.update(json.loads(Path(argv[0]).read_text()))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with ros_compat.init():  # rclpy.init() is no context manager on Jazzy
            node = RobotStandIn(cfg)
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            try:
                executor.spin()
            finally:
                node.close()
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
