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

__all__ = ["resize_to_grid"]


def resize_to_grid(rgb: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """(H, W, 3) uint8 -> (height, width, 3) uint8; returns the input unchanged if it already fits."""
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"target grid {width}x{height} must be positive")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageDecodeError(f"expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    if rgb.shape[0] == height and rgb.shape[1] == width:
        return rgb
    try:
        import cv2
    except ImportError:
        from PIL import Image

        return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    shrinking = rgb.shape[0] >= height and rgb.shape[1] >= width
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = cv2.resize(rgb, (width, height), interpolation=interp)
    return np.ascontiguousarray(out, dtype=np.uint8)
