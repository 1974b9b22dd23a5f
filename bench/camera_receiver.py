"""Policy-host side of the multi-host bench: receive camera frames as the policy node does, note latency.

    python bench/camera_receiver.py CONFIG.json

Subscribes ``/<cam>/image_raw`` (Image) or ``/<cam>/image_raw/compressed`` (CompressedImage) with
SensorDataQoS like the policy node and appends one JSON line per frame to ``events_path``: camera,
header stamp, receive time (this host's clock; the bench's hosts share one clock, so
``received - stamp`` is the true transport latency). With ``"decode": true`` it also decodes each
frame with the node's own conversion (``image_to_rgb``) in the callback, as the policy node does,
and notes when the frame was usable - on a slow CPU that decode time then delays the next frames.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from wallx_ros import ros_compat
from wallx_ros.core.errors import CoreError
from wallx_ros.nodes.ros_conversions import image_to_rgb, stamp_to_ns


class CameraReceiver(Node):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__("camera_receiver")
        self._out = open(cfg["events_path"], "a", buffering=1)  # noqa: SIM115 - closed in close()
        compressed = cfg["transport"] == "compressed"
        self._decode = bool(cfg.get("decode", False))
        for cam in cfg["cameras"]:
            if compressed:
                self.create_subscription(CompressedImage, f"/{cam}/image_raw/compressed", self._cb(cam),
                                         qos_profile_sensor_data)
            else:
                self.create_subscription(Image, f"/{cam}/image_raw", self._cb(cam), qos_profile_sensor_data)

    def _cb(self, cam: str):
        def callback(msg: Image | CompressedImage) -> None:
            received = time.time_ns()
            ok = True
            if self._decode:
                try:
                    image_to_rgb(msg)
                except CoreError:
                    ok = False
            self._out.write(json.dumps({"cam": cam, "stamp_ns": stamp_to_ns(msg.header.stamp), "received_ns": received,
                                        "decoded_ns": time.time_ns(), "ok": ok, "bytes": len(msg.data)}) + "\n")
        return callback

    def close(self) -> None:
        self._out.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = json.loads(Path(argv[0]).read_text())
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with ros_compat.init():  # rclpy.init() is no context manager on Jazzy
            node = CameraReceiver(cfg)
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
