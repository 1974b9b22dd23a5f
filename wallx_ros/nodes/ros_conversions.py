"""ROS message <-> core type translation. No algorithms here: decoding lives in ``core``."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import CompressedImage, Image
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from wallx_ros.core.image_decoding import decode_compressed, decode_raw
from wallx_ros.core.types import ActionChunk

__all__ = [
    "chunk_to_joint_trajectory",
    "duration_from_s",
    "image_to_rgb",
    "stamp_to_ns",
    "time_from_ns",
]


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def time_from_ns(ns: int) -> Time:
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def duration_from_s(seconds: float) -> Duration:
    sec, nanosec = divmod(round(seconds * 1e9), 1_000_000_000)
    return Duration(sec=sec, nanosec=nanosec)


def image_to_rgb(msg: Image | CompressedImage) -> npt.NDArray[np.uint8]:
    """RGB uint8 (H, W, 3) from either image message type; raises ImageDecodeError."""
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.format, msg.data)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data)


def chunk_to_joint_trajectory(chunk: ActionChunk, stamp_ns: int, frame_id: str = "") -> JointTrajectory:
    """A JointTrajectory whose point t is action row t, reached at (t + 1) * dt after ``stamp_ns``."""
    traj = JointTrajectory()
    traj.header.stamp = time_from_ns(stamp_ns)
    traj.header.frame_id = frame_id
    traj.joint_names = list(chunk.names)
    points: list[Any] = []
    for t, row in enumerate(chunk.actions):
        point = JointTrajectoryPoint()
        point.positions = row.tolist()
        point.time_from_start = duration_from_s((t + 1) * chunk.dt_s)
        points.append(point)
    traj.points = points
    return traj
