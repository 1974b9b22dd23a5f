"""Write rosbag2 recordings without ROS: ``rosbags``' writer and CDR serialiser, mcap or sqlite3 storage.

Messages are built from the Kilted type store and serialised by rosbags itself (rclpy's
``serialize_message`` appends 8 bytes to messages with empty float64 arrays, which readers reject).
The bag is written into a temporary sibling folder and renamed into place on success, so an interrupted
write never leaves something at ``path`` that looks like a complete bag.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from rosbags.interfaces import Connection
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from wallx_ros.dataset.bag_messages import (
    COMPRESSED_IMAGE,
    FLOAT64_MULTI_ARRAY,
    IMAGE,
    JOINT_STATE,
    JOINT_TRAJECTORY,
    STD_BOOL,
    STD_STRING,
)
from wallx_ros.dataset.errors import BagError

__all__ = ["STORAGES", "BagWriter", "MessageFactory"]

STORAGES = ("mcap", "sqlite3")
_NS = 1_000_000_000


class MessageFactory:
    """Build the message objects wallx_ros reads and writes, from numpy arrays and stamps (ns)."""

    def __init__(self) -> None:
        self.store = get_typestore(Stores.ROS2_KILTED)
        t = self.store.types
        self._Time = t["builtin_interfaces/msg/Time"]
        self._Duration = t["builtin_interfaces/msg/Duration"]
        self._Header = t["std_msgs/msg/Header"]
        self._Image = t[IMAGE]
        self._Compressed = t[COMPRESSED_IMAGE]
        self._JointState = t[JOINT_STATE]
        self._Trajectory = t[JOINT_TRAJECTORY]
        self._Point = t["trajectory_msgs/msg/JointTrajectoryPoint"]
        self._MultiArray = t[FLOAT64_MULTI_ARRAY]
        self._Layout = t["std_msgs/msg/MultiArrayLayout"]
        self._String = t[STD_STRING]
        self._Bool = t[STD_BOOL]

    def header(self, stamp_ns: int, frame_id: str = "") -> Any:
        sec, nanosec = divmod(int(stamp_ns), _NS)
        return self._Header(stamp=self._Time(sec=sec, nanosec=nanosec), frame_id=frame_id)

    def image(self, rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str = "", encoding: str = "rgb8") -> Any:
        """sensor_msgs/Image of an (H, W, 3) RGB array, as ``rgb8`` or ``bgr8``."""
        if encoding not in ("rgb8", "bgr8"):
            raise BagError(f"image encoding must be rgb8 or bgr8, got {encoding!r}")
        pixels = rgb if encoding == "rgb8" else rgb[:, :, ::-1]
        h, w = rgb.shape[:2]
        return self._Image(header=self.header(stamp_ns, frame_id), height=h, width=w, encoding=encoding,
                           is_bigendian=0, step=w * 3, data=np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1))

    def compressed_image(self, rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str = "", fmt: str = "jpeg",
                         quality: int = 95) -> Any:
        """sensor_msgs/CompressedImage (jpeg or png) of an (H, W, 3) RGB array."""
        import cv2

        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        if fmt == "jpeg":
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        elif fmt == "png":
            ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        else:
            raise BagError(f"compressed format must be jpeg or png, got {fmt!r}")
        if not ok:
            raise BagError(f"cannot encode a {rgb.shape} image as {fmt}")
        return self._Compressed(header=self.header(stamp_ns, frame_id), format=fmt,
                                data=np.asarray(buf, dtype=np.uint8).reshape(-1))

    def joint_state(self, names: Sequence[str], positions: Sequence[float] | npt.NDArray[Any], stamp_ns: int) -> Any:
        pos = np.asarray(positions, dtype=np.float64)
        empty = np.zeros(0, dtype=np.float64)
        return self._JointState(header=self.header(stamp_ns), name=list(names), position=pos, velocity=empty,
                                effort=empty)

    def joint_trajectory(self, names: Sequence[str], positions: Sequence[float] | npt.NDArray[Any],
                         stamp_ns: int, time_from_start_s: float = 0.0) -> Any:
        """A one-point JointTrajectory: the commanded target ``positions``."""
        empty = np.zeros(0, dtype=np.float64)
        sec, nanosec = divmod(round(time_from_start_s * _NS), _NS)
        point = self._Point(positions=np.asarray(positions, dtype=np.float64), velocities=empty,
                            accelerations=empty, effort=empty,
                            time_from_start=self._Duration(sec=sec, nanosec=nanosec))
        return self._Trajectory(header=self.header(stamp_ns), joint_names=list(names), points=[point])

    def float64_multi_array(self, values: Sequence[float] | npt.NDArray[Any]) -> Any:
        return self._MultiArray(layout=self._Layout(dim=[], data_offset=0),
                                data=np.asarray(values, dtype=np.float64))

    def string(self, text: str) -> Any:
        return self._String(data=text)

    def boolean(self, value: bool) -> Any:
        return self._Bool(data=bool(value))


class BagWriter:
    """Write one rosbag2 folder at ``path`` (created on :meth:`close`; must not exist)."""

    def __init__(self, path: str | Path, storage: str = "mcap", compression: str = "none",
                 factory: MessageFactory | None = None) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"storage must be one of {STORAGES}, got {storage!r}")
        if compression not in ("none", "message", "file"):
            raise BagError(f"compression must be none, message or file, got {compression!r}")
        if self.path.exists():
            raise BagError(f"{self.path} exists already: choose a new output path (bags are never overwritten)")
        self.factory = factory or MessageFactory()
        # written as <parent>/.<name>.partial/<name> (storage files are named after the folder), then moved
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True)
        self._writer = Writer(self._tmp / self.path.name, version=9,
                              storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
        if compression != "none":
            self._writer.set_compression(CompressionMode[compression.upper()], CompressionFormat.ZSTD)
        self._writer.open()
        self._connections: dict[str, Connection] = {}
        self.counts: dict[str, int] = {}
        self._closed = False

    def add_topic(self, topic: str, msgtype: str) -> None:
        if topic in self._connections:
            raise BagError(f"topic {topic} added twice")
        store = self.factory.store
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=store)
        self.counts[topic] = 0

    def write(self, topic: str, log_ns: int, message: Any) -> None:
        """Serialise ``message`` with rosbags' CDR serialiser and write it with receive time ``log_ns``."""
        conn = self._connections[topic]
        self._writer.write(conn, int(log_ns), self.factory.store.serialize_cdr(message, conn.msgtype))
        self.counts[topic] += 1

    def write_raw(self, topic: str, log_ns: int, raw: bytes) -> None:
        self._writer.write(self._connections[topic], int(log_ns), raw)
        self.counts[topic] += 1

    def add_side_file(self, name: str, text: str) -> None:
        """A small extra file inside the bag folder (rosbag2 readers ignore files metadata.yaml does not list)."""
        if "/" in name or name in ("metadata.yaml", "") or name.endswith((".mcap", ".db3")):
            raise BagError(f"side file name {name!r} is not allowed")
        (self._tmp / self.path.name / name).write_text(text)

    def close(self) -> Path:
        """Finish the bag and move it into place."""
        if not self._closed:
            self._writer.close()
            self._closed = True
            (self._tmp / self.path.name).rename(self.path)
            self._tmp.rmdir()
        return self.path

    def abort(self) -> None:
        """Drop everything written (nothing appears at ``path``)."""
        if not self._closed:
            self._closed = True
            try:
                self._writer.close()
            finally:
                shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
