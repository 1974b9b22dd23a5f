"""ROS message <-> core type translation. No algorithms here: decoding lives in ``core``."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import CompressedImage, Image
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from wallx_ros.core.errors import ImageDecodeError
from wallx_ros.core.image_decoding import SUPPORTED_ENCODINGS, compressed_size, decode_compressed, decode_raw

__all__ = [
    "ImageConverter",
    "duration_from_s",
    "image_to_rgb",
    "stamp_to_ns",
    "time_from_ns",
    "trajectory_from_arrays",
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


class ImageConverter:
    """Image / CompressedImage -> RGB uint8 through ROS 2 cv_bridge when it is importable and works, else numpy.

    ``mode``: "auto" (cv_bridge if usable), "true" (require it), "false" (numpy only). cv_bridge is not on
    PyPI; PyPI's ``cv-bridge`` package is the ROS 1 code that fails with numpy 2, so "auto" probes it once
    with a 2x2 frame and falls back to the numpy path if the probe fails. Errors are ImageDecodeError
    either way (cv_bridge's own exceptions are translated).
    """

    def __init__(self, mode: str = "auto") -> None:
        if mode not in ("auto", "true", "false"):
            raise ImageDecodeError(f"use_cv_bridge must be auto, true or false, got {mode!r}")
        self.bridge: Any = None
        self.note = "numpy"
        if mode != "false":
            self.bridge, self.note = _probe_cv_bridge()
            if self.bridge is None and mode == "true":
                raise ImageDecodeError(f"use_cv_bridge is true but cv_bridge is unusable: {self.note}")

    @property
    def backend(self) -> str:
        return "cv_bridge" if self.bridge is not None else "numpy"

    def to_rgb(self, msg: Image | CompressedImage) -> npt.NDArray[np.uint8]:
        if self.bridge is None:
            return image_to_rgb(msg)
        try:
            if isinstance(msg, CompressedImage):
                kind = msg.format.lower()
                if not any(k in kind for k in ("jpeg", "jpg", "png")):
                    return image_to_rgb(msg)  # raises the clear unsupported-format error
                if len(msg.data) == 0:
                    raise ImageDecodeError(f"empty {msg.format} payload")
                compressed_size(msg.data, msg.format)  # header checks (size limits) before decoding
                out = self.bridge.compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8")
            else:
                if msg.encoding not in SUPPORTED_ENCODINGS:
                    return image_to_rgb(msg)  # raises the clear unsupported-encoding error
                decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data)  # size checks, no copy
                out = self.bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
        except ImageDecodeError:
            raise
        except Exception as err:  # cv_bridge raises CvBridgeError / cv2.error / TypeError
            raise ImageDecodeError(f"cv_bridge could not convert the image: {err}") from err
        if out is None or out.ndim != 3 or out.shape[2] != 3:
            raise ImageDecodeError("cv_bridge returned no RGB image (corrupt or truncated payload)")
        return np.ascontiguousarray(out, dtype=np.uint8)


def _probe_cv_bridge() -> tuple[Any, str]:
    try:
        from cv_bridge import CvBridge
    except ImportError as err:
        return None, f"cv_bridge not importable ({err})"
    try:
        bridge = CvBridge()
        probe = Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(range(12)))
        out = bridge.imgmsg_to_cv2(probe, desired_encoding="rgb8")
        if out.shape != (2, 2, 3) or out.reshape(-1).tolist() != list(range(12)):
            return None, "cv_bridge probe returned wrong pixels"
    except Exception as err:  # the ROS 1 cv-bridge from PyPI fails here with numpy 2
        return None, f"cv_bridge probe failed ({type(err).__name__}: {err})"
    return bridge, "cv_bridge"


def trajectory_from_arrays(names: tuple[str, ...] | list[str], stamp_ns: int, times_from_start_ns: Any,
                           positions: Any, velocities: Any | None = None, frame_id: str = "") -> JointTrajectory:
    """A JointTrajectory from arrays: point i at ``times_from_start_ns[i]`` after ``stamp_ns`` (0 = now)."""
    traj = JointTrajectory()
    traj.header.stamp = time_from_ns(stamp_ns)
    traj.header.frame_id = frame_id
    traj.joint_names = list(names)
    pos = np.asarray(positions, dtype=np.float64)
    vel = None if velocities is None else np.asarray(velocities, dtype=np.float64)
    points: list[Any] = []
    for i, t in enumerate(np.asarray(times_from_start_ns, dtype=np.int64).tolist()):
        point = JointTrajectoryPoint()
        point.positions = pos[i].tolist()
        if vel is not None:
            point.velocities = vel[i].tolist()
        sec, nanosec = divmod(int(t), 1_000_000_000)
        point.time_from_start = Duration(sec=sec, nanosec=nanosec)
        points.append(point)
    traj.points = points
    return traj

