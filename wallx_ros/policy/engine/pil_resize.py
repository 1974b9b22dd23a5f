"""Pillow's default (BICUBIC) ``Image.resize`` of uint8 RGB images, bit for bit, as torch ops on any device.

LeRobot's WallX resizes every camera image twice with PIL on the CPU (long side to 256 px, then to
multiples of 28) before the Qwen2.5-VL image processor runs. To keep images on the GPU and still feed
the model exactly the pixels stock LeRobot feeds it, this module re-implements Pillow's separable
8-bit resampling (``libImaging/Resample.c``: ``precompute_coeffs``, ``normalize_coeffs_8bpc``, the
horizontal-then-vertical passes with 22-bit fixed-point taps and ``clip8``) with integer tensor ops.
The filter taps are computed once per (input size, output size) on the host, in double precision as
Pillow does; the per-image work is two gathers, integer multiply-adds and a shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["PilBicubicResizer", "bicubic_taps"]

_PRECISION_BITS = 32 - 8 - 2
_SUPPORT = 2.0  # bicubic filter support


def _bicubic(x: float) -> float:
    a = -0.5
    if x < 0.0:
        x = -x
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _c_int(x: float) -> int:
    """C's ``(int)`` conversion: truncation toward zero."""
    return int(x)


def bicubic_taps(in_size: int, out_size: int) -> tuple[list[int], list[list[int]]]:
    """Pillow's fixed-point BICUBIC taps for one axis: (first source index, integer weights) per output.

    Mirrors ``precompute_coeffs`` (box = whole image) followed by ``normalize_coeffs_8bpc``.
    """
    if in_size <= 0 or out_size <= 0:
        raise ValueError(f"sizes must be positive, got {in_size} -> {out_size}")
    scale = float(in_size) / out_size  # (double)(in1 - in0) / outSize with in0 = 0, in1 = inSize (floats)
    filterscale = max(scale, 1.0)
    support = _SUPPORT * filterscale
    starts: list[int] = []
    weights: list[list[int]] = []
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(_c_int(center - support + 0.5), 0)
        xmax = min(_c_int(center + support + 0.5), in_size) - xmin
        k = [_bicubic((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for w in k:
            ww += w
        if ww != 0.0:
            k = [w / ww for w in k]
        one = 1 << _PRECISION_BITS
        fixed = [_c_int(-0.5 + w * one) if w < 0 else _c_int(0.5 + w * one) for w in k]
        starts.append(xmin)
        weights.append(fixed)
    return starts, weights


@dataclass(frozen=True)
class _AxisTaps:
    index: torch.Tensor  # (out, ksize) int64 source indices (padding taps point at 0 with weight 0)
    weight: torch.Tensor  # (out, ksize) int64 fixed-point weights


class PilBicubicResizer:
    """Resize uint8 images like ``PIL.Image.resize(size)`` (BICUBIC) does, on the images' device.

    Taps are cached per (axis length in, axis length out, device); all ops are integer, so results
    are identical on CPU and GPU and equal to Pillow's.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, str], _AxisTaps] = {}

    def _taps(self, in_size: int, out_size: int, device: torch.device) -> _AxisTaps:
        import torch

        key = (in_size, out_size, str(device))
        taps = self._cache.get(key)
        if taps is None:
            starts, weights = bicubic_taps(in_size, out_size)
            ksize = max(len(w) for w in weights)
            index = torch.zeros(out_size, ksize, dtype=torch.int64)
            weight = torch.zeros(out_size, ksize, dtype=torch.int64)
            for i, (start, w) in enumerate(zip(starts, weights, strict=True)):
                index[i, : len(w)] = torch.arange(start, start + len(w))
                weight[i, : len(w)] = torch.tensor(w, dtype=torch.int64)
            taps = _AxisTaps(index.to(device), weight.to(device))
            self._cache[key] = taps
        return taps

    @staticmethod
    def _pass(x: torch.Tensor, taps: _AxisTaps, dim: int) -> torch.Tensor:
        """One separable pass along ``dim`` of an int64 tensor; returns int64 values in [0, 255]."""
        moved = x.movedim(dim, -1)  # (..., in)
        gathered = moved[..., taps.index]  # (..., out, ksize)
        acc = (gathered * taps.weight).sum(-1) + (1 << (_PRECISION_BITS - 1))
        out = (acc >> _PRECISION_BITS).clamp_(0, 255)
        return out.movedim(-1, dim)

    def resize(self, image: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """``image``: uint8 (..., H, W, C) channels-last; returns uint8 (..., height, width, C)."""
        import torch

        if image.dtype != torch.uint8 or image.dim() < 3:
            raise ValueError(f"expected a uint8 (..., H, W, C) tensor, got {image.dtype} {tuple(image.shape)}")
        in_h, in_w = int(image.shape[-3]), int(image.shape[-2])
        if (in_h, in_w) == (height, width):
            return image.clone()  # Pillow returns a copy
        x = image.to(torch.int64)
        if width != in_w:  # Pillow: horizontal pass first, only when the width changes
            x = self._pass(x, self._taps(in_w, width, image.device), dim=-2)
        if height != in_h:
            x = self._pass(x, self._taps(in_h, height, image.device), dim=-3)
        return x.to(torch.uint8)

