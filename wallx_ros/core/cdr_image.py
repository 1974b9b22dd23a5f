"""Read a serialized ``sensor_msgs/Image`` or ``CompressedImage`` (CDR, as a raw rclpy subscription delivers
it) without copying the pixels.

rclpy turns every received Image into a Python message whose ``data`` is a fresh ``array.array``: for a
640x480 rgb8 frame that costs ~1-3 ms per message on a small CPU, per camera, at 30 Hz. A raw subscription
hands over the serialized bytes instead; this reads the few header fields and returns the payload as a
zero-copy view into those bytes, which ``image_decoding`` / ``grid_decoding`` turn into RGB.

Both CDR byte orders are read (the encapsulation header says which; a big-endian host writes big-endian
lengths). ``is_bigendian`` is the pixel data's own flag and is passed on unchanged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from wallx_ros.core.errors import ImageDecodeError

__all__ = ["RawCompressedImage", "RawImage", "parse_compressed_image_cdr", "parse_image_cdr"]

_ENCAPSULATIONS = {b"\x00\x00": ">", b"\x00\x01": "<"}  # CDR big / little endian
_MAX_STRING = 1 << 16  # frame_id / encoding / format: anything longer is not a camera message


@dataclass(frozen=True)
class RawImage:
    stamp_ns: int
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: memoryview


@dataclass(frozen=True)
class RawCompressedImage:
    stamp_ns: int
    frame_id: str
    format: str
    data: memoryview


class _CdrReader:
    """Reads CDR primitives from the body after the 4-byte encapsulation header (alignment is body-relative)."""

    def __init__(self, buf: bytes | bytearray | memoryview, kind: str) -> None:
        view = memoryview(buf).cast("B") if isinstance(buf, memoryview) else memoryview(buf)
        if len(view) < 4 or bytes(view[:2]) not in _ENCAPSULATIONS:
            raise ImageDecodeError(f"not a CDR-serialized {kind} message (header {bytes(view[:4])!r})")
        self.kind = kind
        self.size = len(view)
        self.order = _ENCAPSULATIONS[bytes(view[:2])]
        self.body = view[4:]
        self.pos = 0

    def _unpack(self, fmt: str, align: int) -> int:
        self.pos = (self.pos + align - 1) & ~(align - 1)
        try:
            (value,) = struct.unpack_from(self.order + fmt, self.body, self.pos)
        except struct.error as err:
            raise ImageDecodeError(f"truncated {self.kind} message ({self.size} bytes) at offset {self.pos}") from err
        self.pos += align
        return int(value)

    def i32(self) -> int:
        return self._unpack("i", 4)

    def u32(self) -> int:
        return self._unpack("I", 4)

    def u8(self) -> int:
        return self._unpack("B", 1)

    def string(self) -> str:
        n = self.u32()  # counts the terminating NUL
        if n > min(len(self.body) - self.pos, _MAX_STRING):
            raise ImageDecodeError(f"truncated {self.kind} message: string of {n} bytes at offset {self.pos}")
        text = bytes(self.body[self.pos:self.pos + max(0, n - 1)]).decode("utf-8", errors="replace")
        self.pos += n
        return text

    def octets(self) -> memoryview:
        n = self.u32()
        left = len(self.body) - self.pos
        if n > left:
            raise ImageDecodeError(f"truncated {self.kind} message: data says {n} bytes, {left} left")
        out = self.body[self.pos:self.pos + n]
        self.pos += n
        return out

    def stamp_ns(self) -> int:
        sec = self.i32()
        return sec * 1_000_000_000 + self.u32()


def parse_image_cdr(buf: bytes | bytearray | memoryview) -> RawImage:
    """Fields of a CDR-serialized ``sensor_msgs/Image``; ``data`` is a view into ``buf``."""
    r = _CdrReader(buf, "Image")
    stamp = r.stamp_ns()
    frame_id = r.string()
    height, width = r.u32(), r.u32()
    encoding = r.string()
    is_bigendian = bool(r.u8())
    step = r.u32()
    return RawImage(stamp_ns=stamp, frame_id=frame_id, height=height, width=width, encoding=encoding,
                    is_bigendian=is_bigendian, step=step, data=r.octets())


def parse_compressed_image_cdr(buf: bytes | bytearray | memoryview) -> RawCompressedImage:
    """Fields of a CDR-serialized ``sensor_msgs/CompressedImage``; ``data`` is a view into ``buf``."""
    r = _CdrReader(buf, "CompressedImage")
    stamp = r.stamp_ns()
    frame_id = r.string()
    fmt = r.string()
    return RawCompressedImage(stamp_ns=stamp, frame_id=frame_id, format=fmt, data=r.octets())
