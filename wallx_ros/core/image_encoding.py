"""Encode RGB frames for ``sensor_msgs/CompressedImage`` (the inverse of ``image_decoding``).

JPEG with a quality setting is what a robot sends over a network link to a policy on another host:
a 640x480 camera frame is 921,600 bytes raw and typically 20-80 kB as JPEG at quality 80-90.
OpenCV does the work (always installed with this package); Pillow is the fallback.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import ImageEncodeError

__all__ = ["JPEG_FORMAT", "encode_jpeg"]

# image_transport's compressed plugin names the format this way: the source encoding, then the codec
JPEG_FORMAT = "rgb8; jpeg compressed bgr8"


def encode_jpeg(rgb: npt.NDArray[np.uint8], quality: int = 80) -> bytes:
    """JPEG bytes of an (H, W, 3) RGB uint8 image; ``quality`` 1 (smallest) .. 100 (best)."""
    if not 1 <= int(quality) <= 100:
        raise ImageEncodeError(f"jpeg quality must be 1..100, got {quality}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageEncodeError(f"expected a non-empty (H, W, 3) uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    try:
        import cv2
    except ImportError:
        return _encode_with_pillow(rgb, int(quality))
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageEncodeError(f"OpenCV could not encode a {rgb.shape} image as jpeg")
    return bytes(buf.tobytes())


def _encode_with_pillow(rgb: npt.NDArray[np.uint8], quality: int) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
