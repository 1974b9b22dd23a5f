"""Generate a benchmark rosbag2: N cameras at `fps` (rgb8 Image or jpeg CompressedImage), joint states at 2x,
and a teleop JointState command at `fps`. Written with wallx_ros's own BagWriter (rosbags' serialiser).

Images are synthetic scenes (moving gradients plus a moving noise block) so that video encoders and jpeg
decoders have realistic work; every frame differs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from wallx_ros.dataset.bag_messages import COMPRESSED_IMAGE, IMAGE, JOINT_STATE
from wallx_ros.dataset.bag_writer import BagWriter

NS = 1_000_000_000
CAMERAS = ("face_view", "left_wrist_view", "right_wrist_view")
JOINTS = tuple(f"{side}_{j}" for side in ("left", "right")
               for j in ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper"))
ACTION_TOPIC = "/teleop/joint_command"


def frame_image(k: int, cam: int, h: int, w: int, noise: np.ndarray) -> np.ndarray:
    y = np.arange(h, dtype=np.int32)[:, None]
    x = np.arange(w, dtype=np.int32)[None, :]
    img = np.empty((h, w, 3), np.uint8)
    img[:, :, 0] = (x + 3 * k + 40 * cam) % 256
    img[:, :, 1] = (y + 2 * k) % 256
    img[:, :, 2] = ((x + y) // 2 + k * (cam + 1)) % 256
    oy, ox = (5 * k) % (h - 64), (7 * k + 50 * cam) % (w - 64)
    img[oy:oy + 64, ox:ox + 64] = noise
    return img


def camera_topic(cam: str, transport: str) -> str:
    return f"/{cam}/image_raw" + ("/compressed" if transport == "compressed" else "")


def generate(out: Path, seconds: float, fps: int = 30, size: tuple[int, int] = (480, 640), transport: str = "raw",
             storage: str = "mcap", cameras: tuple[str, ...] = CAMERAS) -> dict[str, float]:
    h, w = size
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    n = round(seconds * fps)
    period = NS // fps
    t0 = 1_700_000_000 * NS
    start = time.monotonic()
    with BagWriter(out, storage) as bag:
        make = bag.factory
        for cam in cameras:
            bag.add_topic(camera_topic(cam, transport), COMPRESSED_IMAGE if transport == "compressed" else IMAGE)
        bag.add_topic("/joint_states", JOINT_STATE)
        bag.add_topic(ACTION_TOPIC, JOINT_STATE)
        for k in range(n):
            t = t0 + k * period
            for c, cam in enumerate(cameras):
                img = frame_image(k, c, h, w, noise)
                msg = make.compressed_image(img, t, cam, quality=90) if transport == "compressed" \
                    else make.image(img, t, cam)
                bag.write(camera_topic(cam, transport), t + 2_000_000, msg)
            for half in (0, 1):
                ts = t + half * period // 2
                bag.write("/joint_states", ts + 1_000_000,
                          make.joint_state(JOINTS, np.sin(ts / NS + np.arange(len(JOINTS))), ts))
            bag.write(ACTION_TOPIC, t + 1_500_000, make.joint_state(JOINTS, np.cos(t / NS + np.arange(len(JOINTS))), t))
    size_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    return {"frames": n, "seconds": seconds, "bag_mb": round(size_mb, 1), "write_s": round(time.monotonic() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--transport", choices=("raw", "compressed"), default="raw")
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    a = ap.parse_args()
    print(generate(a.out, a.seconds, a.fps, transport=a.transport, storage=a.storage))


if __name__ == "__main__":
    main()
