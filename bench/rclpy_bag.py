"""A benchmark rosbag2 whose messages are serialized by rclpy, byte for byte what `ros2 bag record` stores.

Same content as bag_generator.py (N cameras, jpeg CompressedImage or rgb8 Image, at fps, joint states at 2x fps,
a JointState teleop command at fps), but the CDR comes from ``rclpy.serialization.serialize_message``. Joint
states carry positions, velocities and efforts (rclpy pads a message that ends with an empty float64 array
in a way rosbags' reader rejects; real drivers fill them). Needs the ROS venv (rclpy + message packages).

Note for peers: rosbag-resurrector 0.8.7 cannot read raw ``sensor_msgs/Image`` from any bag: its CDR parser
aligns to 4 bytes after every string, so after ``encoding: rgb8`` it reads ``step`` where the pixel count is.
CompressedImage ("jpeg") parses, hence the default transport.

    python bench/rclpy_bag.py OUT --seconds 20 [--cameras 3] [--transport compressed|raw]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from bag_generator import ACTION_TOPIC, CAMERAS, JOINTS, NS, frame_image  # noqa: E402


def generate(out: Path, seconds: float, fps: int = 30, size: tuple[int, int] = (480, 640),
             cameras: tuple[str, ...] = CAMERAS, transport: str = "compressed") -> dict[str, float]:
    """``transport`` raw: sensor_msgs/Image rgb8; compressed: sensor_msgs/CompressedImage jpeg (quality 90)."""
    import cv2
    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import CompressedImage, Image, JointState

    store = get_typestore(Stores.ROS2_KILTED)
    h, w = size
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    n = round(seconds * fps)
    period = NS // fps
    t0 = 1_700_000_000 * NS
    start = time.monotonic()

    def stamp(ns: int) -> Time:
        return Time(sec=ns // NS, nanosec=ns % NS)

    writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        suffix, msgtype = (("image_raw/compressed", "sensor_msgs/msg/CompressedImage") if transport == "compressed"
                           else ("image_raw", "sensor_msgs/msg/Image"))
        conns = {c: writer.add_connection(f"/{c}/{suffix}", msgtype, typestore=store) for c in cameras}
        joints = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=store)
        action = writer.add_connection(ACTION_TOPIC, "sensor_msgs/msg/JointState", typestore=store)
        for k in range(n):
            t = t0 + k * period
            for c, cam in enumerate(cameras):
                rgb = frame_image(k, c, h, w, noise)
                if transport == "compressed":
                    img = CompressedImage()
                    img.format = "jpeg"
                    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
                    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
                    assert ok
                    img.data = buf.tobytes()
                else:
                    img = Image()
                    img.height, img.width, img.encoding, img.step = h, w, "rgb8", w * 3
                    img.data = rgb.tobytes()
                img.header.stamp, img.header.frame_id = stamp(t), cam
                writer.write(conns[cam], t + 2_000_000, serialize_message(img))
            for half in (0, 1):
                ts = t + half * period // 2
                js = JointState()
                js.header.stamp = stamp(ts)
                js.name = list(JOINTS)
                js.position = np.sin(ts / NS + np.arange(len(JOINTS))).tolist()
                js.velocity = np.cos(ts / NS + np.arange(len(JOINTS))).tolist()
                js.effort = [0.5] * len(JOINTS)
                writer.write(joints, ts + 1_000_000, serialize_message(js))
            cmd = JointState()
            cmd.header.stamp = stamp(t)
            cmd.name = list(JOINTS)
            cmd.position = np.cos(t / NS + np.arange(len(JOINTS))).tolist()
            cmd.velocity = [0.0] * len(JOINTS)
            cmd.effort = [0.0] * len(JOINTS)
            writer.write(action, t + 1_500_000, serialize_message(cmd))
    finally:
        writer.close()
    size_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    return {"frames": n, "seconds": seconds, "cameras": len(cameras), "transport": transport,
            "bag_mb": round(size_mb, 1), "write_s": round(time.monotonic() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--transport", choices=("raw", "compressed"), default="compressed")
    a = ap.parse_args()
    print(generate(a.out, a.seconds, a.fps, cameras=CAMERAS[:a.cameras], transport=a.transport))


if __name__ == "__main__":
    main()
