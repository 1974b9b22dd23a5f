"""core.image_decoding: every supported encoding, row padding, and each kind of bad payload."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from wallx_ros.core.errors import ImageDecodeError
from wallx_ros.core.image_decoding import decode_compressed, decode_raw

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)


def _pack(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    h = pixels.shape[0]
    rows = pixels.reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return padded.tobytes(), padded.shape[1]


@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize(
    ("encoding", "make"),
    [
        ("rgb8", lambda x: x),
        ("bgr8", lambda x: x[:, :, ::-1]),
        ("8UC3", lambda x: x[:, :, ::-1]),
        ("rgba8", lambda x: np.concatenate([x, np.full((*x.shape[:2], 1), 9, np.uint8)], axis=2)),
        ("bgra8", lambda x: np.concatenate([x[:, :, ::-1], np.full((*x.shape[:2], 1), 9, np.uint8)], axis=2)),
    ],
)
def test_color_encodings_round_trip(encoding: str, make, pad: int) -> None:
    data, step = _pack(np.ascontiguousarray(make(RGB)), pad)
    out = decode_raw(encoding, 6, 5, step, data)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono_becomes_gray_rgb(encoding: str) -> None:
    gray = RGB[:, :, 0]
    data, step = _pack(gray[:, :, None], 2)
    out = decode_raw(encoding, 6, 5, step, data)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_bad_raw_images_are_rejected_with_a_reason() -> None:
    data = RGB.tobytes()
    with pytest.raises(ImageDecodeError, match="unsupported image encoding '16UC1'"):
        decode_raw("16UC1", 6, 5, 10, data)
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_raw("rgb8", 6, 5, 15, data[:-1])
    with pytest.raises(ImageDecodeError, match="step"):
        decode_raw("rgb8", 6, 5, 14, data)
    with pytest.raises(ImageDecodeError, match="empty or larger"):
        decode_raw("rgb8", 0, 5, 15, b"")
    with pytest.raises(ImageDecodeError, match="empty or larger"):
        decode_raw("rgb8", 100000, 5, 15, data)


@pytest.mark.parametrize("fmt", ["png", "rgb8; png compressed bgr8"])
def test_png_is_lossless(fmt: str) -> None:
    ok, buf = cv2.imencode(".png", RGB[:, :, ::-1])
    assert ok
    np.testing.assert_array_equal(decode_compressed(fmt, buf.tobytes()), RGB)


def test_jpeg_decodes_close_to_the_source() -> None:
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    ok, buf = cv2.imencode(".jpg", smooth[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    out = decode_compressed("jpeg", buf.tobytes())
    assert out.shape == smooth.shape
    assert np.abs(out.astype(int) - smooth.astype(int)).mean() < 3


def test_corrupt_compressed_payloads_are_rejected() -> None:
    ok, buf = cv2.imencode(".jpg", RGB)
    assert ok
    with pytest.raises(ImageDecodeError, match="corrupt or truncated"):
        decode_compressed("jpeg", b"\xff\xd8garbage" * 3)
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_compressed("jpeg", b"")
    with pytest.raises(ImageDecodeError, match="only jpeg and png"):
        decode_compressed("tiff", buf.tobytes())
