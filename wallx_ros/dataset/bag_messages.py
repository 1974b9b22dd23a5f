"""Turn deserialised bag messages into what a dataset frame holds: RGB images, joint vectors, text.

Messages come from ``rosbags`` (no rclpy): they carry the same field names as the ROS message classes,
so these functions are plain attribute access. Image decoding and joint selection by name are the
core's (``wallx_ros.core.image_decoding``, ``wallx_ros.core.joint_mapping``), as in the nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from wallx_ros.core.image_decoding import decode_compressed, decode_raw
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.dataset.errors import BagReadError

__all__ = [
    "ACTION_TYPES",
    "COMPRESSED_IMAGE",
    "FLOAT64_MULTI_ARRAY",
    "IMAGE",
    "IMAGE_TYPES",
    "INSTRUCTION_TYPES",
    "JOINT_STATE",
    "JOINT_TRAJECTORY",
    "MARKER_TYPES",
    "STATE_TYPES",
    "STD_BOOL",
    "STD_STRING",
    "header_stamp_ns",
    "image_rgb",
    "joint_vector",
    "text_of",
]

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
FLOAT64_MULTI_ARRAY = "std_msgs/msg/Float64MultiArray"
STD_STRING = "std_msgs/msg/String"
STD_BOOL = "std_msgs/msg/Bool"

IMAGE_TYPES = frozenset({IMAGE, COMPRESSED_IMAGE})
STATE_TYPES = frozenset({JOINT_STATE})
ACTION_TYPES = frozenset({JOINT_TRAJECTORY, JOINT_STATE, FLOAT64_MULTI_ARRAY})
INSTRUCTION_TYPES = frozenset({STD_STRING})
MARKER_TYPES = frozenset({STD_STRING, STD_BOOL})
_HEADER_FIRST = frozenset({IMAGE, COMPRESSED_IMAGE, JOINT_STATE, JOINT_TRAJECTORY})


def header_stamp_ns(msgtype: str, raw: bytes | memoryview, log_ns: int) -> int:
    """``header.stamp`` of a serialized message without deserialising it; the log time when the type has no
    header (Float64MultiArray, String) or the stamp is zero ("now", as a JointTrajectory may be sent).

    A CDR payload is a 4-byte encapsulation header then the fields: for these types the first field is
    std_msgs/Header, whose stamp (int32 sec, uint32 nanosec) sits at bytes 4..12.
    """
    if msgtype not in _HEADER_FIRST:
        return log_ns
    if len(raw) < 12:
        raise BagReadError(f"{msgtype} payload of {len(raw)} bytes is too short to hold a header")
    head = bytes(raw[:12])
    order = "<" if head[1] & 1 else ">"
    sec = int.from_bytes(head[4:8], "little" if order == "<" else "big", signed=True)
    nanosec = int.from_bytes(head[8:12], "little" if order == "<" else "big", signed=False)
    stamp = sec * 1_000_000_000 + nanosec
    return stamp if stamp > 0 else log_ns


def image_rgb(msgtype: str, msg: Any) -> npt.NDArray[np.uint8]:
    """RGB uint8 (H, W, 3) of an Image or CompressedImage message (raises ImageDecodeError)."""
    if msgtype == COMPRESSED_IMAGE:
        return decode_compressed(str(msg.format), msg.data)
    return decode_raw(str(msg.encoding), int(msg.height), int(msg.width), int(msg.step), msg.data)


def joint_vector(msgtype: str, msg: Any, selector: JointSelector) -> npt.NDArray[np.float64]:
    """The selector's joints, by name, from a JointState (positions), a JointTrajectory (its first point's
    positions: the commanded target) or a Float64MultiArray (``data`` in the configured joint order)."""
    if msgtype == JOINT_STATE:
        return selector.select(list(msg.name), np.asarray(msg.position, dtype=np.float64))
    if msgtype == JOINT_TRAJECTORY:
        if not len(msg.points):
            raise BagReadError("JointTrajectory without points: it commands nothing")
        return selector.select(list(msg.joint_names), np.asarray(msg.points[0].positions, dtype=np.float64))
    if msgtype == FLOAT64_MULTI_ARRAY:
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != (len(selector.wanted),):
            raise BagReadError(f"Float64MultiArray has {data.size} values but {len(selector.wanted)} action joints "
                               f"are configured ({list(selector.wanted)}); it is read in that order")
        return selector.select(selector.wanted, data)
    raise BagReadError(f"{msgtype} carries no joint values")


def text_of(msgtype: str, msg: Any) -> str:
    """The text of a std_msgs/String; ``true``/``false`` for a std_msgs/Bool."""
    if msgtype == STD_BOOL:
        return "true" if bool(msg.data) else "false"
    return str(msg.data)
