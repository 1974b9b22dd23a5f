"""Generate rosbag2 recordings for tests with rosbags' own writer and CDR serialiser (never rclpy's:
``serialize_message`` appends 8 bytes to messages with empty float64 arrays, which readers reject).

``make_recording`` writes a robot recording whose every value is known: cameras at ``fps`` with images that
encode the frame number, joint states at twice the rate in a shuffled order with an extra joint, and an
action topic of the chosen type; it returns what a correct conversion must produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

STORE = get_typestore(Stores.ROS2_KILTED)
T = STORE.types
NS = 1_000_000_000
CAMERAS = ("face_view", "left_wrist_view")
JOINTS = ("left_waist", "left_shoulder", "left_elbow", "right_waist", "right_shoulder", "right_elbow")
H, W = 24, 32


def header(stamp_ns: int) -> Any:
    sec, nsec = divmod(stamp_ns, NS)
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id="f")


def image_of(index: int, cam: int, size: tuple[int, int] = (H, W)) -> np.ndarray:
    """A deterministic, smooth RGB image (video codecs keep it recognisable) that differs per frame and camera,
    plus a little noise so that no two frames are equal."""
    y, x = np.mgrid[0:size[0], 0:size[1]].astype(np.float64)
    img = np.stack([127 + 100 * np.sin(x / 6 + index / 3 + cam), 127 + 100 * np.cos(y / 5 - index / 4),
                    127 + 100 * np.sin((x + y) / 9 + 2 * cam)], axis=2)
    noise = np.random.default_rng(1000 * cam + index).integers(-3, 4, img.shape)
    return np.clip(np.rint(img) + noise, 0, 255).astype(np.uint8)


def image_msg(rgb: np.ndarray, stamp_ns: int, transport: str) -> Any:
    if transport == "raw":
        h, w = rgb.shape[:2]
        bgr = np.ascontiguousarray(rgb[:, :, ::-1]).reshape(-1)  # bgr8: the converter must swap channels
        return T["sensor_msgs/msg/Image"](header=header(stamp_ns), height=h, width=w, encoding="bgr8",
                                          is_bigendian=0, step=w * 3, data=bgr)
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok
    return T["sensor_msgs/msg/CompressedImage"](header=header(stamp_ns), format="png",
                                                data=np.asarray(buf, np.uint8).reshape(-1))


def joint_state_msg(names: list[str], positions: np.ndarray, stamp_ns: int) -> Any:
    empty = np.zeros(0, np.float64)
    return T["sensor_msgs/msg/JointState"](header=header(stamp_ns), name=names,
                                           position=np.asarray(positions, np.float64), velocity=empty, effort=empty)


def action_msg(kind: str, joints: tuple[str, ...], positions: np.ndarray, stamp_ns: int) -> Any:
    empty = np.zeros(0, np.float64)
    if kind == "JointTrajectory":
        point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
            positions=np.asarray(positions, np.float64), velocities=empty, accelerations=empty, effort=empty,
            time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=20_000_000))
        return T["trajectory_msgs/msg/JointTrajectory"](header=header(stamp_ns), joint_names=list(joints),
                                                        points=[point])
    if kind == "JointState":
        return joint_state_msg(list(joints), positions, stamp_ns)
    return T["std_msgs/msg/Float64MultiArray"](layout=T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
                                               data=np.asarray(positions, np.float64))


ACTION_TYPES = {"JointTrajectory": "trajectory_msgs/msg/JointTrajectory",
                "JointState": "sensor_msgs/msg/JointState",
                "Float64MultiArray": "std_msgs/msg/Float64MultiArray"}


def state_at(t_s: float, n: int = len(JOINTS)) -> np.ndarray:
    return np.array([np.sin(t_s + i) + 0.1 * i for i in range(n)])


def action_at(t_s: float, n: int = len(JOINTS)) -> np.ndarray:
    return np.array([np.cos(2 * t_s + i) - 0.2 * i for i in range(n)])


@dataclass
class Recording:
    """What was written, per frame of each expected episode (values as the converter must output them)."""

    path: Path
    fps: int
    episodes: list[dict[str, Any]] = field(default_factory=list)


class BagBuilder:
    """Thin wrapper over rosbags' Writer with connections by topic."""

    def __init__(self, path: Path, storage: str = "mcap", compression: str = "none") -> None:
        self.writer = Writer(path, version=9,
                             storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
        if compression != "none":
            self.writer.set_compression(CompressionMode[compression.upper()], CompressionFormat.ZSTD)
        self.writer.open()
        self.conns: dict[str, Any] = {}

    def write(self, topic: str, msgtype: str, log_ns: int, msg: Any) -> None:
        if topic not in self.conns:
            self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=STORE)
        self.writer.write(self.conns[topic], log_ns, STORE.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        self.writer.close()


def make_recording(path: Path, *, storage: str = "mcap", compression: str = "none", transport: str = "raw",
                   action: str = "JointTrajectory", fps: int = 10, segments: tuple[int, ...] = (8,),
                   split: str = "bag", start_s: float = 100.0, instruction: str | None = None,
                   size_change_at: int | None = None, backwards_at: int | None = None,
                   cameras: tuple[str, ...] = CAMERAS, joints: tuple[str, ...] = JOINTS,
                   size: tuple[int, int] = (H, W), camera_jitter_ms: float = 0.0,
                   camera_gap: tuple[int, int] | None = None) -> Recording:
    """Write a bag; ``segments`` are frame counts of successive episodes (split by markers or 2 s gaps).

    Cameras publish at exactly ``fps`` (frame k stamped on the grid, or within +-``camera_jitter_ms`` of it,
    as a driver stamping at capture does), joint states at ``2 * fps`` in a shuffled order with an extra
    ``gripper_aux`` joint, the action at ``fps``. ``camera_gap``: the first camera sends nothing for those
    (global) frame numbers ``[a, b)``. Log times lag stamps by 3 ms.
    """
    rec = Recording(path, fps)
    bag = BagBuilder(path, storage, compression)
    rng = np.random.default_rng(5)
    jitter = np.random.default_rng(11)
    period = NS // fps
    assert period * fps == NS, "use an fps that divides 1e9 ns exactly"
    t_ep = round(start_s * NS)
    suffix = "image_raw" if transport == "raw" else "image_raw/compressed"
    img_type = "sensor_msgs/msg/Image" if transport == "raw" else "sensor_msgs/msg/CompressedImage"
    global_frame = 0
    for seg, n in enumerate(segments):
        task = f"{instruction} #{seg}" if instruction else None
        if task is not None:
            bag.write("/task", "std_msgs/msg/String", t_ep - 50_000_000, T["std_msgs/msg/String"](data=task))
        if split == "marker":
            bag.write("/episode", "std_msgs/msg/String", t_ep - 10_000_000, T["std_msgs/msg/String"](data="start"))
        frames = []
        for k in range(n):
            t = t_ep + k * period
            log = t + 3_000_000
            imgs = {}
            for c, cam in enumerate(cameras):
                grown = size_change_at is not None and global_frame >= size_change_at and c == 0
                imgs[cam] = image_of(global_frame, c, (size[0] + 8, size[1]) if grown else size)
                stamp = t + round(float(jitter.uniform(-1, 1)) * camera_jitter_ms * 1e6) if camera_jitter_ms else t
                if backwards_at is not None and global_frame == backwards_at and c == 0:
                    stamp = t - 2 * period
                if c == 0 and camera_gap is not None and camera_gap[0] <= global_frame < camera_gap[1]:
                    continue
                bag.write(f"/{cam}/{suffix}", img_type, max(log, stamp + 1_000_000),
                          image_msg(imgs[cam], stamp, transport))
            for half in (0, 1):
                ts = t + half * period // 2
                order = rng.permutation(len(joints))
                names = [joints[i] for i in order] + ["gripper_aux"]
                values = np.append(state_at(ts / NS, len(joints))[order], 42.0)
                bag.write("/joint_states", "sensor_msgs/msg/JointState", ts + 3_000_000,
                          joint_state_msg(names, values, ts))
            bag.write("/teleop/command", ACTION_TYPES[action], log,
                      action_msg(action, joints, action_at(t / NS, len(joints)), t))
            frames.append({"stamp_ns": t, "images": imgs, "state": state_at(t / NS, len(joints)),
                           "action": action_at(t / NS, len(joints))})
            global_frame += 1
        end = t_ep + (n - 1) * period
        if split == "marker":
            bag.write("/episode", "std_msgs/msg/String", end + period // 2, T["std_msgs/msg/String"](data="stop"))
            # a discarded take between episodes: must not appear in the dataset
            t_d = end + period
            bag.write("/episode", "std_msgs/msg/String", t_d, T["std_msgs/msg/String"](data="start"))
            bag.write("/episode", "std_msgs/msg/String", t_d + 5 * period, T["std_msgs/msg/String"](data="discard"))
        rec.episodes.append({"frames": frames, "task": task})
        t_ep = end + 2 * NS + 7 * period
    bag.close()
    return rec


def params_yaml(path: Path, **overrides: Any) -> Path:
    """A bag2dataset params file (recorder parameter names) for recordings from ``make_recording``."""
    import yaml

    params: dict[str, Any] = {
        "cameras": list(CAMERAS), "camera_transport": "raw", "joint_names": list(JOINTS),
        "action_topic": "/teleop/command", "action_type": "JointTrajectory", "fps": 10,
        "instruction": "pick up the cube", "repo_id": "local/bag_test", "use_videos": False, "max_age_s": 0.2,
        "min_free_mb": 0.0,
    }
    params.update(overrides)
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    return path
