"""WallX's Qwen2.5-VL vision tower without host synchronisation: the same blocks, geometry computed once.

Stock ``Qwen2_5_VisionTransformerPretrainedModel.forward`` recomputes, on every call, the rotary
position table, the window permutation and the window boundaries (Python loops over device tensors,
``.tolist()`` / ``.item()``), and its eager attention builds a block-diagonal mask by slicing with
device scalars: a few thousand device-to-host syncs per full-size chunk. All of that depends only on
the image grid (fixed for a camera set-up), so ``VisionTowerRunner`` computes it once per grid and
then runs the policy's own modules (patch embedding, block norms / qkv / proj / MLP, merger) with the
cached tensors. With ``attention="eager"`` every op is the stock eager op on the same shapes, so the
output is bit-identical to stock (on LeRobot 0.6, whose stock tower runs transformers 5's sdpa once per window
/ image on CPU, "eager" makes those same calls); ``"sdpa"`` uses ``scaled_dot_product_attention`` with the same
boolean mask (fused kernels on CUDA; equal within bf16 rounding).

``"sdpa"`` does not pass that mask: a block-diagonal mask keeps the fused kernels away (PyTorch falls back
to its float32 math path: ~6.5 ms of the full model's 3-camera chunk on an H200 went to it). Attention
inside a window (or an image) does not depend on where its tokens sit in the sequence, so the sdpa tower
orders merge units window by window, grouped by window size, and runs each group of equal-size windows
as one batched, unmasked ``scaled_dot_product_attention`` (flash / cuDNN kernels). The few
full-attention blocks gather their tokens image by image the same way. The result is the same attention
as stock's block-diagonal mask (tested against eager on CPU); ``reverse_index`` restores stock's output
order.

With ``compile_blocks`` the vision MLP's gate and up projections also run as one GEMM, with the
intermediate width padded with zero rows/columns to a multiple of 64 (Qwen2.5-VL's 3,420 makes cuBLAS
fall back to slow 2-byte-aligned kernels); zeros add nothing, so the output is unchanged.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch

from wallx_ros.lerobot import internals

__all__ = ["BlockLayout", "VisionGeometry", "VisionTowerRunner"]

Grid = tuple[tuple[int, int, int], ...]
_MLP_ALIGN = 64  # pad the fused vision MLP's intermediate width to this multiple


@dataclass(frozen=True)
class BlockLayout:
    """Block-diagonal attention as dense batched attention: the tokens, gathered by ``order`` (None: already
    in that order), form ``groups`` of (count, length) equal blocks one after another; ``inverse`` puts the
    results back in sequence order."""

    order: torch.Tensor | None
    inverse: torch.Tensor | None
    groups: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class VisionGeometry:
    """Everything the vision tower derives from the image grid alone, on the model's device."""

    grid: Grid
    window_index: torch.Tensor  # permutation of merge units into the tower's order (stock: window order)
    reverse_index: torch.Tensor  # its inverse (argsort)
    cos: torch.Tensor  # rotary tables in the tower's order, (seq, head_dim) float32
    sin: torch.Tensor
    full_mask: torch.Tensor | None  # eager: additive (1, seq, seq) per-image attention mask as stock builds it
    window_mask: torch.Tensor | None  # eager: per-window, same form
    full_layout: BlockLayout | None  # sdpa: per-image blocks
    window_layout: BlockLayout | None  # sdpa: per-window blocks
    # eager where stock runs one sdpa call per image / window (LeRobot 0.6): the block lengths, in order
    full_splits: tuple[int, ...] | None = None
    window_splits: tuple[int, ...] | None = None


def _block_mask(bounds: list[int], seq: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Exactly what stock eager builds: finfo.min everywhere, 0 inside each block."""
    mask = torch.full((1, seq, seq), torch.finfo(dtype).min, dtype=dtype)
    for start, end in itertools.pairwise(bounds):
        mask[..., start:end, start:end] = 0.0
    return mask.to(device)


def _groups(lengths: list[int]) -> tuple[tuple[int, int], ...]:
    """(count, length) runs of equal consecutive lengths."""
    return tuple((len(list(run)), length) for length, run in itertools.groupby(lengths))


def _grouped_window_order(bounds: list[int], unit: int) -> tuple[torch.Tensor, list[int]]:
    """Stock-window-order merge units reordered window by window, longest windows first (stable), and the
    window lengths (tokens) in that order. Windows never split a merge unit."""
    windows = sorted(itertools.pairwise(bounds), key=lambda w: w[0] - w[1])  # stable: longest first
    units = [torch.arange(start // unit, end // unit) for start, end in windows]
    return torch.cat(units), [end - start for start, end in windows]


def _image_layout(unit_image: torch.Tensor, image_tokens: list[int], unit: int) -> BlockLayout:
    """Layout of the per-image (full attention) blocks for a tower whose merge units belong to images
    ``unit_image`` (in tower order): tokens gathered image by image, longest images first."""
    rank = sorted(range(len(image_tokens)), key=lambda i: -image_tokens[i])
    position = torch.empty(len(image_tokens), dtype=torch.int64)
    position[torch.tensor(rank)] = torch.arange(len(rank))
    unit_order = torch.sort(position[unit_image], stable=True).indices
    lengths = [image_tokens[i] for i in rank]
    if torch.equal(unit_order, torch.arange(unit_order.numel())):
        return BlockLayout(None, None, _groups(lengths))
    order = (unit_order.view(-1, 1) * unit + torch.arange(unit).view(1, -1)).reshape(-1)
    return BlockLayout(order, torch.argsort(order), _groups(lengths))


class VisionTowerRunner:
    """Runs a loaded WallX policy's vision tower (``policy.model.visual``) with cached grid geometry."""

    def __init__(self, visual: Any, attention: str, compile_blocks: bool = False,
                 compile_backend: str = "inductor") -> None:
        if attention not in ("eager", "sdpa"):
            raise ValueError(f"attention must be eager or sdpa, got {attention!r}")
        self.visual = visual
        self.attention = attention
        self._internals = internals.wallx_internals()
        self._geometry: dict[Grid, VisionGeometry] = {}
        first = visual.blocks[0].attn
        self._num_heads = int(first.num_heads)
        self._head_dim = int(first.qkv.weight.shape[1]) // self._num_heads
        self._full_blocks = {int(i) for i in visual.fullatt_block_indexes}
        self._run_block = self._block
        # with compile_blocks: each block's MLP as (gate|up weight, gate|up bias, down weight), padded
        self._mlps: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None] = [
            fused_vision_mlp(block.mlp) if compile_blocks else None for block in visual.blocks]
        if compile_blocks:
            self._run_block = torch.compile(self._block, dynamic=False, backend=compile_backend)

    def _block(self, block: Any, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
               mask: torch.Tensor | None, layout: BlockLayout | None,
               mlp: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None,
               splits: tuple[int, ...] | None = None) -> torch.Tensor:
        """One vision block; its module and the geometry tensors are arguments, so one compiled version
        (``compile_blocks``) serves every block of a kind (window / full attention)."""
        hidden = hidden + self._attention(block.attn, block.norm1(hidden), cos, sin, mask, layout, splits)
        x = block.norm2(hidden)
        if mlp is None:
            return hidden + block.mlp(x)  # type: ignore[no-any-return]
        gate, up = torch.nn.functional.linear(x, mlp[0], mlp[1]).chunk(2, dim=-1)
        return hidden + torch.nn.functional.linear(block.mlp.act_fn(gate) * up, mlp[2], block.mlp.down_proj.bias)

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
            rotary = visual.rot_pos_emb(grid_cpu)
            window_index, cu_window = visual.get_window_index(grid_cpu)
        unit = int(visual.spatial_merge_unit)
        seq = int(sum(t * h * w for t, h, w in grid))
        window_bounds = [int(b) for b in torch.unique_consecutive(torch.tensor(cu_window)).tolist()]
        frame_tokens = [h * w for t, h, w in grid for _ in range(t)]  # stock's full attention: per frame
        full_bounds = [0, *itertools.accumulate(frame_tokens)]
        full_mask = window_mask = None
        full_layout = window_layout = None
        full_splits = window_splits = None
        if self.attention == "eager" and self._internals.vision_chunk_attention is not None:
            # stock's order and its attention call per image / window: bit-identical to stock
            full_splits = tuple(b - a for a, b in itertools.pairwise(full_bounds))
            window_splits = tuple(b - a for a, b in itertools.pairwise(window_bounds))
        elif self.attention == "eager":  # stock's order and masks: bit-identical to stock
            full_mask = _block_mask(full_bounds, seq, self.dtype, device)
            window_mask = _block_mask(window_bounds, seq, self.dtype, device)
        else:
            units, window_tokens = _grouped_window_order(window_bounds, unit)
            window_index = window_index[units]
            window_layout = BlockLayout(None, None, _groups(window_tokens))
            frame_of_unit = torch.repeat_interleave(torch.arange(len(frame_tokens)),
                                                    torch.tensor(frame_tokens) // unit)
            full_layout = _image_layout(frame_of_unit[window_index], frame_tokens, unit)
        rotary = rotary.reshape(seq // unit, unit, -1)[window_index].reshape(seq, -1)
        emb = torch.cat((rotary, rotary), dim=-1)
        geo = VisionGeometry(
            grid=grid, window_index=window_index.to(device), reverse_index=torch.argsort(window_index).to(device),
            cos=emb.cos().to(device), sin=emb.sin().to(device), full_mask=full_mask, window_mask=window_mask,
            full_layout=_on(full_layout, device), window_layout=_on(window_layout, device),
            full_splits=full_splits, window_splits=window_splits,
        )
        self._geometry[grid] = geo
        return geo

    def _attention(self, attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   mask: torch.Tensor | None, layout: BlockLayout | None,
                   splits: tuple[int, ...] | None = None) -> torch.Tensor:
        seq = x.shape[0]
        q, k, v = attn.qkv(x).reshape(seq, 3, self._num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        q, k = self._internals.apply_rotary_pos_emb_vision(q, k, cos, sin)
        if layout is not None:
            return attn.proj(_blocked_attention(q, k, v, layout))  # type: ignore[no-any-return]
        if splits is not None:  # stock (transformers 5): one attention call per image / window
            return attn.proj(self._chunked_attention(attn, q, k, v, splits))  # type: ignore[no-any-return]
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self._head_dim)
        assert mask is not None, "eager attention needs the block mask"
        weights = weights + mask
        weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(weights, v).transpose(0, 1).reshape(seq, -1)
        return attn.proj(out)  # type: ignore[no-any-return]

    def _chunked_attention(self, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           splits: tuple[int, ...]) -> torch.Tensor:
        """Stock's non-flash vision attention, op for op: (seq, heads, dim) q/k/v split into the blocks and
        attended block by block with the line's attention function; returns (seq, heads * dim)."""
        fn = self._internals.vision_chunk_attention
        parts = [torch.split(t.transpose(0, 1).unsqueeze(0), list(splits), dim=2) for t in (q, k, v)]
        outs = [fn(attn, qs, ks, vs, attention_mask=None, scaling=attn.scaling, dropout=0.0, is_causal=False)[0]
                for qs, ks, vs in zip(*parts, strict=True)]
        return torch.cat(outs, dim=1).reshape(q.shape[0], -1).contiguous()

    def __call__(self, pixel_values: torch.Tensor, geo: VisionGeometry) -> torch.Tensor:
        """Image embeddings (one row per merged patch, image order) for flattened ``pixel_values``."""
        visual = self.visual
        hidden = visual.patch_embed(pixel_values.to(self.dtype))
        seq = hidden.shape[0]
        unit = int(visual.spatial_merge_unit)
        hidden = hidden.reshape(seq // unit, unit, -1)[geo.window_index].reshape(seq, -1)
        for i, (block, mlp) in enumerate(zip(visual.blocks, self._mlps, strict=True)):
            full = i in self._full_blocks
            mask = geo.full_mask if full else geo.window_mask
            layout = geo.full_layout if full else geo.window_layout
            splits = geo.full_splits if full else geo.window_splits
            hidden = self._run_block(block, hidden, geo.cos, geo.sin, mask, layout, mlp, splits)
        hidden = visual.merger(hidden)
        return hidden[geo.reverse_index]  # type: ignore[no-any-return]


def _on(layout: BlockLayout | None, device: torch.device) -> BlockLayout | None:
    if layout is None or layout.order is None:
        return layout
    assert layout.inverse is not None
    return BlockLayout(layout.order.to(device), layout.inverse.to(device), layout.groups)


def _blocked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout) -> torch.Tensor:
    """Block-diagonal attention of (seq, heads, head_dim) q/k/v as one unmasked batched
    ``scaled_dot_product_attention`` per group of equal blocks; returns (seq, heads * head_dim)."""
    if layout.order is not None:
        q, k, v = q[layout.order], k[layout.order], v[layout.order]
    heads, dim = q.shape[1], q.shape[2]
    outs = []
    start = 0
    for count, length in layout.groups:
        rows = slice(start, start + count * length)
        start += count * length

        def blocks(t: torch.Tensor, rows: slice = rows, count: int = count, length: int = length) -> torch.Tensor:
            return t[rows].reshape(count, length, heads, dim).transpose(1, 2)

        out = torch.nn.functional.scaled_dot_product_attention(blocks(q), blocks(k), blocks(v))
        outs.append(out.transpose(1, 2).reshape(count * length, heads * dim))
    out = outs[0] if len(outs) == 1 else torch.cat(outs)
    return out if layout.inverse is None else out[layout.inverse]


def fused_vision_mlp(mlp: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """A Qwen2.5-VL MLP's weights as (gate|up weight, gate|up bias, down weight) with the intermediate width
    padded with zeros to a multiple of 64: padded gate/up rows give up = 0, so act(gate) * up = 0, and the
    padded down columns multiply those zeros: the output is the MLP's own."""
    width = int(mlp.gate_proj.weight.shape[0])
    pad = -width % _MLP_ALIGN

    def rows(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(t.detach(), (0, 0, 0, pad) if t.dim() == 2 else (0, pad))

    gate_up = torch.cat([rows(mlp.gate_proj.weight), rows(mlp.up_proj.weight)])
    bias = None
    if mlp.gate_proj.bias is not None and mlp.up_proj.bias is not None:
        bias = torch.cat([rows(mlp.gate_proj.bias), rows(mlp.up_proj.bias)])
    elif mlp.gate_proj.bias is not None or mlp.up_proj.bias is not None:
        raise ValueError("vision MLP with a bias on only one of gate/up projections")
    down = torch.nn.functional.pad(mlp.down_proj.weight.detach(), (0, pad))
    return gate_up, bias, down
