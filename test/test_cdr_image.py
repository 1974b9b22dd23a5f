"""core.cdr_image reads exactly what rclpy serializes, for any frame_id/encoding length, without copying."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image

from wallx_ros.core.cdr_image import parse_image_cdr
from wallx_ros.core.errors import ImageDecodeError
from wallx_ros.core.image_decoding import decode_raw


@pytest.mark.parametrize(("frame_id", "encoding", "h", "w", "pad"),
                         [("", "rgb8", 4, 6, 0), ("cam", "bgr8", 3, 5, 1), ("a_longer_frame", "mono8", 7, 3, 3),
                          ("x" * 13, "rgba8", 2, 2, 0)])
def test_fields_and_pixels_match_rclpy(frame_id: str, encoding: str, h: int, w: int, pad: int) -> None:
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4}[encoding]
    step = w * channels + pad
    data = np.random.default_rng(0).integers(0, 256, h * step, dtype=np.uint8)
    msg = Image(height=h, width=w, encoding=encoding, step=step, is_bigendian=1, data=data.tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 1_700_000_123, 456_789, frame_id
    raw = parse_image_cdr(serialize_message(msg))
    assert (raw.stamp_ns, raw.frame_id, raw.height, raw.width, raw.encoding, raw.step, raw.is_bigendian) == (
        1_700_000_123_000_456_789, frame_id, h, w, encoding, step, True)
    np.testing.assert_array_equal(np.frombuffer(raw.data, np.uint8), data)
    np.testing.assert_array_equal(decode_raw(raw.encoding, raw.height, raw.width, raw.step, raw.data),
                                  decode_raw(encoding, h, w, step, msg.data))


def test_truncated_or_foreign_bytes_are_an_error() -> None:
    msg = Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(12))
    buf = serialize_message(msg)
    with pytest.raises(ImageDecodeError, match="truncated"):
        parse_image_cdr(buf[:-3])
    with pytest.raises(ImageDecodeError, match="not a CDR"):
        parse_image_cdr(b"\x07\x07" + buf[2:])
