"""WallX's Qwen2.5-VL vision tower without host synchronisation: the same blocks, geometry computed once.

Stock ``Qwen2_5_VisionTransformerPretrainedModel.forward`` recomputes, on every call, the rotary
position table, the window permutation and the window boundaries (Python loops over device tensors,
``.tolist()`` / ``.item()``), and its eager attention builds a block-diagonal mask by slicing with
device scalars: a few thousand device-to-host syncs per full-size chunk. All of that depends only on
the image grid (fixed for a camera set-up), so ``VisionTowerRunner`` computes it once per grid and
then runs the policy's own modules (patch embedding, block norms / qkv / proj / MLP, merger) with the
cached tensors. With ``attention="eager"`` every op is the stock eager op on the same shapes, so the
output is bit-identical to stock; ``"sdpa"`` uses ``scaled_dot_product_attention`` with the same
boolean mask (fused kernels on CUDA; equal within bf16 rounding).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch

from wallx_ros.policy import lerobot_compat

__all__ = ["VisionGeometry", "VisionTowerRunner"]

Grid = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class VisionGeometry:
    """Everything the vision tower derives from the image grid alone, on the model's device."""

    grid: Grid
    window_index: torch.Tensor  # permutation of merge units into window order
    reverse_index: torch.Tensor  # its inverse (argsort)
    cos: torch.Tensor  # rotary tables in window order, (seq, head_dim) float32
    sin: torch.Tensor
    full_mask: torch.Tensor  # per-image attention: additive (1, seq, seq) for eager, bool for sdpa
    window_mask: torch.Tensor  # per-window attention, same form


def _block_mask(bounds: list[int], seq: int, dtype: torch.dtype, additive: bool, device: torch.device) -> torch.Tensor:
    if additive:  # exactly what stock eager builds: finfo.min everywhere, 0 inside each block
        mask = torch.full((1, seq, seq), torch.finfo(dtype).min, dtype=dtype)
        fill: float | bool = 0.0
    else:
        mask = torch.zeros((1, seq, seq), dtype=torch.bool)
        fill = True
    for start, end in itertools.pairwise(bounds):
        mask[..., start:end, start:end] = fill
    return mask.to(device)


class VisionTowerRunner:
    """Runs a loaded WallX policy's vision tower (``policy.model.visual``) with cached grid geometry."""

    def __init__(self, visual: Any, attention: str) -> None:
        if attention not in ("eager", "sdpa"):
            raise ValueError(f"attention must be eager or sdpa, got {attention!r}")
        self.visual = visual
        self.attention = attention
        self._internals = lerobot_compat.wallx_internals()
        self._geometry: dict[Grid, VisionGeometry] = {}
        first = visual.blocks[0].attn
        self._num_heads = int(first.num_heads)
        self._head_dim = int(first.qkv.weight.shape[1]) // self._num_heads
        self._full_blocks = {int(i) for i in visual.fullatt_block_indexes}

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.patch_embed.proj.weight.dtype  # type: ignore[no-any-return]

    def geometry(self, grid: Grid) -> VisionGeometry:
        """Geometry of ``grid`` ((t, h, w) per image, in patches); computed on the host once per grid."""
        geo = self._geometry.get(grid)
        if geo is not None:
            return geo
        visual = self.visual
        device = visual.patch_embed.proj.weight.device
        grid_cpu = torch.tensor(grid, dtype=torch.int64)
        with torch.no_grad():
            # the stock helpers, fed host tensors: their Python loops then cost no device syncs
            rotary = visual.rot_pos_emb(grid_cpu).to(device)
            window_index, cu_window = visual.get_window_index(grid_cpu)
        unit = int(visual.spatial_merge_unit)
        seq = int(sum(t * h * w for t, h, w in grid))
        window_index = window_index.to(device)
        rotary = rotary.reshape(seq // unit, unit, -1)[window_index].reshape(seq, -1)
        emb = torch.cat((rotary, rotary), dim=-1)
        window_bounds = [int(b) for b in torch.unique_consecutive(torch.tensor(cu_window)).tolist()]
        full_bounds = [0]
        for t, h, w in grid:
            for _ in range(t):
                full_bounds.append(full_bounds[-1] + h * w)
        additive = self.attention == "eager"
        geo = VisionGeometry(
            grid=grid, window_index=window_index, reverse_index=torch.argsort(window_index),
            cos=emb.cos(), sin=emb.sin(),
            full_mask=_block_mask(full_bounds, seq, self.dtype, additive, device),
            window_mask=_block_mask(window_bounds, seq, self.dtype, additive, device),
        )
        self._geometry[grid] = geo
        return geo

    def _attention(self, attn: Any, x: torch.Tensor, geo: VisionGeometry, mask: torch.Tensor) -> torch.Tensor:
        seq = x.shape[0]
        q, k, v = attn.qkv(x).reshape(seq, 3, self._num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        q, k = self._internals.apply_rotary_pos_emb_vision(q, k, geo.cos, geo.sin)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        if self.attention == "eager":
            weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self._head_dim)
            weights = weights + mask
            weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(weights, v)
        else:
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v, mask, dropout_p=0.0)
        out = out.transpose(0, 1).reshape(seq, -1)
        return attn.proj(out)  # type: ignore[no-any-return]

    def __call__(self, pixel_values: torch.Tensor, geo: VisionGeometry) -> torch.Tensor:
        """Image embeddings (one row per merged patch, image order) for flattened ``pixel_values``."""
        visual = self.visual
        hidden = visual.patch_embed(pixel_values.to(self.dtype))
        seq = hidden.shape[0]
        unit = int(visual.spatial_merge_unit)
        hidden = hidden.reshape(seq // unit, unit, -1)[geo.window_index].reshape(seq, -1)
        for i, block in enumerate(visual.blocks):
            mask = geo.full_mask if i in self._full_blocks else geo.window_mask
            hidden = hidden + self._attention(block.attn, block.norm1(hidden), geo, mask)
            hidden = hidden + block.mlp(block.norm2(hidden))
        hidden = visual.merger(hidden)
        return hidden[geo.reverse_index]  # type: ignore[no-any-return]
