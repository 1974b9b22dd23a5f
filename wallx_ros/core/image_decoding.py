"""Turn the bytes of a ``sensor_msgs/Image`` or ``CompressedImage`` into an RGB uint8 array.

The numpy path below is what runs everywhere: cv_bridge is not on PyPI, and PyPI's ``cv-bridge`` is
the ROS 1 code that fails with numpy 2. The node may use cv_bridge instead when it is importable;
the tests check both agree. Decoding a 640x480 rgb8 frame costs well under 0.1 ms (a view, no copy).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import ImageDecodeError

__all__ = ["MAX_COMPRESSED_PIXELS", "SUPPORTED_ENCODINGS", "compressed_pixels", "compressed_size", "decode_compressed",
           "decode_raw", "pixels_to_rgb", "raw_pixels"]

# encoding -> (channels, channel order to get RGB or None for gray)
_LAYOUTS: dict[str, tuple[int, tuple[int, ...] | None]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, None),
    "8UC1": (1, None),
    "8UC3": (3, (2, 1, 0)),  # OpenCV's default channel order is BGR
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)
_MAX_SIDE = 16384
# A compressed payload does not carry its decoded size: a 64-byte PNG may claim 2^31 x 2^31 pixels, and a few
# hundred kB of zeros decode to gigabytes. The header is read first; more than this is refused (8K UHD fits).
MAX_COMPRESSED_PIXELS = 1 << 25


def raw_pixels(
    encoding: str, height: int, width: int, step: int, data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint8], tuple[int, ...] | None]:
    """A (height, width, channels) view of the payload (rows ``step`` bytes apart, nothing copied) and the channel
    order that makes it RGB (None: gray). Raises ImageDecodeError for what cannot be a frame of ``encoding``.

    All supported encodings are 8-bit, so ``is_bigendian`` does not change the pixels.
    """
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageDecodeError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)} "
            "(publish rgb8/bgr8/mono8 or use a CompressedImage topic)"
        )
    channels, order = layout
    if not (0 < height <= _MAX_SIDE and 0 < width <= _MAX_SIDE):
        raise ImageDecodeError(f"image size {width}x{height} is empty or larger than {_MAX_SIDE} px")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageDecodeError(f"step {step} is smaller than width*channels = {row_bytes} for {encoding}")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    need = step * (height - 1) + row_bytes
    if buf.size < need:
        raise ImageDecodeError(
            f"truncated {encoding} image: {buf.size} bytes for {width}x{height} (step {step}) needs {need}"
        )
    pixels = np.lib.stride_tricks.as_strided(buf, shape=(height, width, channels), strides=(step, channels, 1))
    return pixels, order


def pixels_to_rgb(pixels: npt.NDArray[np.uint8], order: tuple[int, ...] | None) -> npt.NDArray[np.uint8]:
    """(H, W, C) pixels in the channel ``order`` of ``raw_pixels`` -> C-contiguous (H, W, 3) RGB."""
    if order is None:
        return np.ascontiguousarray(np.repeat(pixels[:, :, :1], 3, axis=2))
    if order == (0, 1, 2):
        return np.ascontiguousarray(pixels[:, :, :3])  # rgb8: the same array if already contiguous
    if order == (2, 1, 0):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, list(order)])


def decode_raw(
    encoding: str, height: int, width: int, step: int, data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    """Return the image as a C-contiguous (height, width, 3) RGB uint8 array.

    Honours ``step`` (row stride with padding). All supported encodings are 8-bit, so
    ``is_bigendian`` does not change the result.
    """
    return pixels_to_rgb(*raw_pixels(encoding, height, width, step, data))


def decode_compressed(fmt: str, data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Decode a jpeg/png ``CompressedImage`` payload to (H, W, 3) RGB uint8.

    ``fmt`` is the message's ``format`` field ("jpeg", "png", or image_transport's
    "rgb8; jpeg compressed bgr8"); the payload's own header decides the codec.
    """
    return pixels_to_rgb(*compressed_pixels(fmt, data))


def compressed_pixels(fmt: str, data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]
                      ) -> tuple[npt.NDArray[np.uint8], tuple[int, ...] | None]:
    """The decoded (H, W, 3) pixels as the codec returns them and the channel order that makes them RGB
    (OpenCV decodes to BGR: reordering after a resize touches fewer pixels). Checks as ``decode_compressed``."""
    kind = fmt.lower()
    if not any(k in kind for k in ("jpeg", "jpg", "png")):
        raise ImageDecodeError(f"unsupported CompressedImage format {fmt!r}: only jpeg and png are decoded")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buf.size == 0:
        raise ImageDecodeError(f"empty {fmt} payload")
    compressed_size(buf, fmt)
    try:
        import cv2
    except ImportError:  # Pillow is always there with LeRobot
        return _decode_with_pillow(fmt, buf), (0, 1, 2)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as err:  # OpenCV asserts on some malformed headers instead of returning None
        detail = str(err).strip()[-200:]
        raise ImageDecodeError(f"corrupt or truncated {fmt} payload ({buf.size} bytes): {detail}") from err
    if img is None:
        raise ImageDecodeError(f"corrupt or truncated {fmt} payload ({buf.size} bytes): the decoder rejected it")
    return np.asarray(img, dtype=np.uint8), (2, 1, 0)  # already uint8: no copy


def compressed_size(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8],
                    fmt: str = "image") -> tuple[int, int]:
    """(width, height) from a PNG or JPEG header, without decoding (a few microseconds).

    Raises ImageDecodeError for a payload that is neither PNG nor JPEG (OpenCV would decode other formats too,
    unchecked), a header that cannot be read, or a size beyond the limits.
    """
    raw: bytes | bytearray | memoryview = data.reshape(-1).data if isinstance(data, np.ndarray) else data
    buf = memoryview(raw).cast("B")
    if bytes(buf[:8]) == b"\x89PNG\r\n\x1a\n":
        if len(buf) < 24 or bytes(buf[12:16]) != b"IHDR":
            raise ImageDecodeError(f"corrupt or truncated png payload ({len(buf)} bytes): no IHDR chunk")
        width, height = int.from_bytes(buf[16:20], "big"), int.from_bytes(buf[20:24], "big")
    elif bytes(buf[:2]) == b"\xff\xd8":
        width, height = _jpeg_size(buf)
    else:
        raise ImageDecodeError(f"{fmt} payload ({len(buf)} bytes) is neither PNG nor JPEG: only those are decoded")
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE) or width * height > MAX_COMPRESSED_PIXELS:
        raise ImageDecodeError(f"{fmt} payload of {len(buf)} bytes declares {width}x{height} pixels: more than "
                               f"{_MAX_SIDE} px per side or {MAX_COMPRESSED_PIXELS} pixels is refused")
    return width, height


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(buf: memoryview) -> tuple[int, int]:
    """Walk the JPEG markers up to the first start-of-frame (SOFn) and read its size."""
    i, n = 2, len(buf)
    while i + 4 <= n:
        if buf[i] != 0xFF:
            break
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = int.from_bytes(buf[i + 2:i + 4], "big")
        if marker in _SOF:
            if length < 7 or i + 9 > n:
                break
            return int.from_bytes(buf[i + 7:i + 9], "big"), int.from_bytes(buf[i + 5:i + 7], "big")
        if length < 2:
            break
        i += 2 + length
    raise ImageDecodeError(f"corrupt or truncated jpeg payload ({n} bytes): no readable frame header")


def _decode_with_pillow(fmt: str, buf: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(buf.tobytes())) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ImageDecodeError(f"corrupt or truncated {fmt} payload ({buf.size} bytes): {err}") from err
