"""The torch re-implementation of Pillow's BICUBIC resize is bit-exact against Pillow itself."""

from __future__ import annotations

import numpy as np
import pytest

from wallx_ros.policy.engine.pil_resize import PilBicubicResizer, bicubic_taps


@pytest.mark.parametrize(("src", "dst"), [
    ((480, 640), (192, 256)),  # VGA camera -> WallX's first resize (long side 256)
    ((192, 256), (196, 252)),  # -> multiples of 28 (second resize)
    ((120, 160), (192, 256)),  # upscaling
    ((300, 200), (256, 170)),  # portrait
    ((37, 53), (111, 29)),  # odd sizes, up in one axis and down in the other
    ((64, 80), (64, 40)),  # width only (Pillow skips the vertical pass)
    ((64, 80), (20, 80)),  # height only
])
def test_resize_is_bit_exact_against_pillow(src: tuple[int, int], dst: tuple[int, int]) -> None:
    import torch
    from PIL import Image

    rng = np.random.default_rng(sum(src) + sum(dst))
    noise = rng.integers(0, 256, (*src, 3), dtype=np.uint8)
    smooth = np.clip(np.cumsum(rng.integers(-25, 26, (*src, 3)), axis=1) + 128, 0, 255).astype(np.uint8)
    resizer = PilBicubicResizer()
    for image in (noise, smooth):
        expected = np.asarray(Image.fromarray(image).resize((dst[1], dst[0])))
        got = resizer.resize(torch.from_numpy(image), dst[0], dst[1]).numpy()
        np.testing.assert_array_equal(got, expected)


def test_same_size_is_a_copy_and_taps_sum_to_one() -> None:
    import torch

    image = torch.randint(0, 256, (8, 9, 3), dtype=torch.uint8)
    out = PilBicubicResizer().resize(image, 8, 9)
    assert torch.equal(out, image) and out.data_ptr() != image.data_ptr()
    for n_in, n_out in ((640, 256), (10, 33)):
        _, weights = bicubic_taps(n_in, n_out)
        for w in weights:  # fixed-point weights of each output pixel sum to ~1 << 22
            assert abs(sum(w) - (1 << 22)) <= len(w)
    with pytest.raises(ValueError, match="uint8"):
        PilBicubicResizer().resize(image.float(), 4, 4)
