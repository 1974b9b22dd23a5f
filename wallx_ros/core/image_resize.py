"""Resize camera frames to the policy's image grid once, where they enter the node.

The grid is the checkpoint's ``observation.images.<camera>`` feature shape (C, H, W): the resolution the
policy was trained on. Doing it at the edge keeps every later copy (hand-off to the worker thread,
float conversion, normalisation) small; WallX's own processor then only snaps to its 28-px patch grid.
Area interpolation (OpenCV) for downscaling, bilinear for upscaling; Pillow when OpenCV is absent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import ImageDecodeError

__all__ = ["resize_pixels", "resize_to_grid"]


def resize_to_grid(rgb: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """(H, W, 3) uint8 -> (height, width, 3) uint8; returns the input unchanged if it already fits."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageDecodeError(f"expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    return resize_pixels(rgb, height, width)


def resize_pixels(pixels: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """(H, W, C) uint8 with C in 1, 3, 4 -> C-contiguous (height, width, C); the input unchanged if it fits.

    Channels are resized independently, so resizing before a channel reorder (BGR -> RGB, gray -> RGB) gives
    the same pixels as after it. Rows may be ``step`` bytes apart (a view of a message payload): OpenCV reads
    them in place.
    """
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"target grid {width}x{height} must be positive")
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4) or pixels.dtype != np.uint8:
        raise ImageDecodeError(f"expected an (H, W, 1|3|4) uint8 image, got {pixels.dtype} {pixels.shape}")
    if pixels.shape[0] == height and pixels.shape[1] == width:
        return pixels
    channels = pixels.shape[2]
    try:
        import cv2
    except ImportError:
        from PIL import Image

        src = np.ascontiguousarray(pixels[:, :, 0] if channels == 1 else pixels)
        out = np.asarray(Image.fromarray(src).resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
        return out.reshape(height, width, channels)
    shrinking = pixels.shape[0] >= height and pixels.shape[1] >= width
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(pixels[:, :, 0] if channels == 1 else pixels, (width, height), interpolation=interp)
    return np.ascontiguousarray(resized, dtype=np.uint8).reshape(height, width, channels)
