"""core.grid_decoding: one resize on the payload in place, channel reorder on the small image — the same pixels
as decoding to full-size RGB first, for every encoding, odd row steps and grids; no full-size copy in Python."""

from __future__ import annotations

import itertools
import tracemalloc

import cv2
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image

from wallx_ros.core.cdr_image import parse_compressed_image_cdr, parse_image_cdr
from wallx_ros.core.errors import ImageDecodeError
from wallx_ros.core.grid_decoding import compressed_to_grid, raw_to_grid
from wallx_ros.core.image_decoding import SUPPORTED_ENCODINGS, decode_compressed, decode_raw
from wallx_ros.core.image_resize import resize_to_grid
from wallx_ros.nodes.ros_conversions import ImageConverter

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3}
RNG = np.random.default_rng(5)


def _payload(encoding: str, h: int, w: int, pad: int) -> tuple[bytes, int]:
    step = w * CHANNELS[encoding] + pad
    return RNG.integers(0, 256, h * step, dtype=np.uint8).tobytes(), step


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
@pytest.mark.parametrize("pad", [0, 1, 7])  # odd steps: rows not 4-byte aligned
def test_same_pixels_as_decode_then_resize(encoding: str, pad: int) -> None:
    for (h, w), grid in itertools.product([(480, 640), (241, 319), (9, 7)],
                                          [(192, 256), (224, 224), (600, 800), (5, 3), None]):
        data, step = _payload(encoding, h, w, pad)
        plain = decode_raw(encoding, h, w, step, data)
        expected = plain if grid is None else resize_to_grid(plain, *grid)
        got = raw_to_grid(encoding, h, w, step, memoryview(data), grid)
        assert got.shape == expected.shape and got.flags.c_contiguous and got.flags.writeable
        np.testing.assert_array_equal(got, expected, err_msg=f"{encoding} {h}x{w} step {step} -> {grid}")


def test_through_cdr_equals_the_message_path() -> None:
    """What the node does with a raw subscription's bytes equals what it did with the message object."""
    numpy_path = ImageConverter("false")
    for encoding, pad in (("rgb8", 0), ("bgr8", 3), ("mono8", 1), ("bgra8", 2)):
        data, step = _payload(encoding, 480, 640, pad)
        msg = Image(height=480, width=640, encoding=encoding, step=step, data=data)
        raw = parse_image_cdr(serialize_message(msg))
        np.testing.assert_array_equal(raw_to_grid(raw.encoding, raw.height, raw.width, raw.step, raw.data, (192, 256)),
                                      resize_to_grid(numpy_path.to_rgb(msg), 192, 256))
    rgb = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for ext, fmt in ((".png", "png"), (".jpg", "jpeg")):
        ok, buf = cv2.imencode(ext, rgb)
        assert ok
        cmsg = CompressedImage(format=fmt, data=buf.tobytes())
        craw = parse_compressed_image_cdr(serialize_message(cmsg))
        np.testing.assert_array_equal(compressed_to_grid(craw.format, craw.data, (192, 256)),
                                      resize_to_grid(numpy_path.to_rgb(cmsg), 192, 256))
        np.testing.assert_array_equal(compressed_to_grid(craw.format, craw.data, None), decode_compressed(fmt, buf))


def test_unresized_frame_does_not_alias_the_payload() -> None:
    data = bytearray(RNG.integers(0, 256, 6 * 4 * 3, dtype=np.uint8).tobytes())
    out = raw_to_grid("rgb8", 6, 4, 12, memoryview(data), None)
    before = out.copy()
    data[:] = bytes(len(data))  # the next message reusing the buffer must not change a stored frame
    np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize("encoding", ["bgr8", "mono8", "rgba8"])
def test_no_full_size_copy(encoding: str) -> None:
    """Python-side (numpy) allocations stay at the grid's size; the plain path allocates the full frame."""
    data, step = _payload(encoding, 480, 640, 4)
    full = 480 * 640 * 3
    raw_to_grid(encoding, 480, 640, step, data, (192, 256))  # imports and caches outside the measurement

    def peak(fn) -> int:  # type: ignore[no-untyped-def]
        tracemalloc.start()
        try:
            fn()
            return int(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()

    ours = peak(lambda: raw_to_grid(encoding, 480, 640, step, data, (192, 256)))
    plain = peak(lambda: resize_to_grid(decode_raw(encoding, 480, 640, step, data), 192, 256))
    assert plain >= full and ours < full // 2, (ours, plain)  # the grid is 1/6 of the frame


def test_bad_frames_are_the_same_errors() -> None:
    data, step = _payload("rgb8", 6, 5, 0)
    with pytest.raises(ImageDecodeError, match="unsupported image encoding '16UC1'"):
        raw_to_grid("16UC1", 6, 5, 10, data, (4, 4))
    with pytest.raises(ImageDecodeError, match="truncated"):
        raw_to_grid("rgb8", 6, 5, step, data[:-1], (4, 4))
    with pytest.raises(ImageDecodeError, match="step"):
        raw_to_grid("rgb8", 6, 5, 14, data, (4, 4))
    with pytest.raises(ImageDecodeError, match="empty or larger"):
        raw_to_grid("rgb8", 0, 5, 15, b"", (4, 4))
    with pytest.raises(ImageDecodeError, match="must be positive"):
        raw_to_grid("rgb8", 6, 5, step, data, (0, 4))
    with pytest.raises(ImageDecodeError, match="corrupt or truncated"):
        compressed_to_grid("jpeg", b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10" + bytes(8), (4, 4))
    with pytest.raises(ImageDecodeError, match="unsupported CompressedImage format"):
        compressed_to_grid("tiff", b"II*\x00", (4, 4))
