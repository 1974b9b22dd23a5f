"""core.cdr_image reads exactly what rclpy serializes, for any frame_id/encoding length and both CDR byte orders,
without copying the payload; truncated or foreign bytes are a clear ImageDecodeError, never another exception."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image

from wallx_ros.core.cdr_image import parse_compressed_image_cdr, parse_image_cdr
from wallx_ros.core.errors import ImageDecodeError
from wallx_ros.core.image_decoding import decode_raw


class _Cdr:
    """A tiny independent CDR writer (body-relative alignment), to build big-endian messages rclpy never writes."""

    def __init__(self, order: str) -> None:
        self.order, self.body = order, bytearray()

    def _align(self, n: int) -> None:
        self.body += b"\x00" * (-len(self.body) % n)

    def u32(self, value: int, fmt: str = "I") -> _Cdr:
        self._align(4)
        self.body += struct.pack(self.order + fmt, value)
        return self

    def u8(self, value: int) -> _Cdr:
        self.body += bytes([value])
        return self

    def string(self, text: str) -> _Cdr:
        raw = text.encode() + b"\x00"
        self.u32(len(raw))
        self.body += raw
        return self

    def octets(self, data: bytes) -> _Cdr:
        self.u32(len(data))
        self.body += data
        return self

    def message(self) -> bytes:
        return (b"\x00\x00" if self.order == ">" else b"\x00\x01") + b"\x00\x00" + bytes(self.body)


def _image_cdr(order: str, msg: Image) -> bytes:
    w = _Cdr(order).u32(msg.header.stamp.sec, "i").u32(msg.header.stamp.nanosec).string(msg.header.frame_id)
    w.u32(msg.height).u32(msg.width).string(msg.encoding).u8(msg.is_bigendian).u32(msg.step)
    return w.octets(bytes(msg.data)).message()


def _compressed_cdr(order: str, msg: CompressedImage) -> bytes:
    w = _Cdr(order).u32(msg.header.stamp.sec, "i").u32(msg.header.stamp.nanosec).string(msg.header.frame_id)
    return w.string(msg.format).octets(bytes(msg.data)).message()


def _image(frame_id: str, encoding: str, h: int, w: int, pad: int, bigendian: int = 1) -> tuple[Image, np.ndarray]:
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4}[encoding]
    step = w * channels + pad
    data = np.random.default_rng(0).integers(0, 256, h * step, dtype=np.uint8)
    msg = Image(height=h, width=w, encoding=encoding, step=step, is_bigendian=bigendian, data=data.tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 1_700_000_123, 456_789, frame_id
    return msg, data


CASES = [("", "rgb8", 4, 6, 0), ("cam", "bgr8", 3, 5, 1), ("a_longer_frame", "mono8", 7, 3, 3),
         ("x" * 13, "rgba8", 2, 2, 0), ("odd", "rgb8", 5, 7, 5)]


@pytest.mark.parametrize(("frame_id", "encoding", "h", "w", "pad"), CASES)
def test_fields_and_pixels_match_rclpy(frame_id: str, encoding: str, h: int, w: int, pad: int) -> None:
    msg, data = _image(frame_id, encoding, h, w, pad)
    buf = serialize_message(msg)
    mine = _image_cdr("<", msg)  # the test's writer lays out rclpy's CDR (padding bytes may hold anything)
    assert len(mine) == len(buf) and mine[-len(data):] == buf[-len(data):] and parse_image_cdr(mine) == \
        parse_image_cdr(buf)
    raw = parse_image_cdr(buf)
    assert (raw.stamp_ns, raw.frame_id, raw.height, raw.width, raw.encoding, raw.step, raw.is_bigendian) == (
        1_700_000_123_000_456_789, frame_id, h, w, encoding, msg.step, True)
    np.testing.assert_array_equal(np.frombuffer(raw.data, np.uint8), data)
    assert raw.data.obj is buf  # a view into the received bytes, not a copy
    np.testing.assert_array_equal(decode_raw(raw.encoding, raw.height, raw.width, raw.step, raw.data),
                                  decode_raw(encoding, h, w, msg.step, msg.data))


@pytest.mark.parametrize(("frame_id", "encoding", "h", "w", "pad"), CASES)
def test_big_endian_cdr_reads_the_same_fields(frame_id: str, encoding: str, h: int, w: int, pad: int) -> None:
    """A big-endian host writes big-endian lengths and stamps; the pixel bytes and is_bigendian pass unchanged."""
    for bigendian in (0, 1):
        msg, data = _image(frame_id, encoding, h, w, pad, bigendian)
        little, big = parse_image_cdr(serialize_message(msg)), parse_image_cdr(_image_cdr(">", msg))
        for field in ("stamp_ns", "frame_id", "height", "width", "encoding", "step", "is_bigendian"):
            assert getattr(big, field) == getattr(little, field), field
        assert big.is_bigendian == bool(bigendian)
        np.testing.assert_array_equal(np.frombuffer(big.data, np.uint8), data)


def test_negative_stamp_seconds() -> None:
    msg, _ = _image("", "rgb8", 1, 1, 0)
    msg.header.stamp.sec, msg.header.stamp.nanosec = -2, 5
    for buf in (serialize_message(msg), _image_cdr(">", msg)):
        assert parse_image_cdr(buf).stamp_ns == -2_000_000_000 + 5


@pytest.mark.parametrize("order", ["<", ">"])
def test_compressed_image_fields_and_payload(order: str) -> None:
    payload = bytes(range(256)) * 3 + b"\x01"
    msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=payload)
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 12, 34, "wrist"
    buf = serialize_message(msg) if order == "<" else _compressed_cdr(">", msg)
    if order == "<":
        assert len(_compressed_cdr("<", msg)) == len(buf)
    raw = parse_compressed_image_cdr(buf)
    assert (raw.stamp_ns, raw.frame_id, raw.format) == (12_000_000_034, "wrist", msg.format)
    assert bytes(raw.data) == payload and raw.data.obj is buf


def test_every_truncation_is_a_clear_error() -> None:
    """Cut anywhere (header, strings, sizes, payload), the parser says 'truncated', never IndexError/struct.error."""
    msg, _ = _image("frame", "bgr8", 2, 3, 1)
    image = serialize_message(msg)
    jpeg = serialize_message(CompressedImage(format="jpeg", data=b"\xff\xd8" + bytes(40)))
    for buf, parse in ((image, parse_image_cdr), (jpeg, parse_compressed_image_cdr)):
        for cut in range(4, len(buf)):
            with pytest.raises(ImageDecodeError, match="truncated"):
                parse(buf[:cut])


def test_foreign_bytes_and_absurd_lengths_are_an_error() -> None:
    msg, _ = _image("", "rgb8", 2, 2, 0)
    buf = serialize_message(msg)
    with pytest.raises(ImageDecodeError, match="not a CDR"):
        parse_image_cdr(b"\x07\x07" + buf[2:])
    with pytest.raises(ImageDecodeError, match="not a CDR"):
        parse_compressed_image_cdr(b"\x00")
    huge = bytearray(buf)
    huge[12:16] = struct.pack("<I", 2**31)  # frame_id length
    with pytest.raises(ImageDecodeError, match="truncated"):
        parse_image_cdr(bytes(huge))
