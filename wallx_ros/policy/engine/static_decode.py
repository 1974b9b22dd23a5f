"""fast_decode's decode step over a fixed-size KV cache, so that one CUDA graph can replay it.

``FastDecoder``'s default step appends each new key/value to transformers' ``DynamicCache`` (a new, longer
tensor every token), so no two steps have the same shapes and each of the ~100 tokens of a chunk launches
every kernel of a 36-layer forward from Python: on an H100 that is ~47 ms per token, with the GPU mostly
idle. This step keeps its own key/value buffers of a fixed length per layer; the new token's key/value is
written at its position (``index_copy_`` with a device index) and attention runs over the whole buffer with
positions after the token masked, as stock masks padding (the dtype's minimum added to the scores). Every
tensor then has the same shape and address at every step, and the step is captured once as a CUDA graph and
replayed per token.

The transformers cache stays the source of truth: the buffers are filled from it after every forward this
step did not run (the prefill, any step stock computes), and each step appends its key/value to it as well,
so ``generate``, ``get_seq_length`` and a stock step in between see what they would without this step.

The math is ``FastDecoder``'s (its layer, the policy's modules, stock's eager attention core); the only
difference is the length of the attention reductions (masked keys add exact zeros, but sums are blocked
differently), so logits match stock to rounding rather than bit for bit (test/test_fast_decode.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from wallx_ros.lerobot import internals

__all__ = ["Attend", "StaticDecodeStep"]

_LOG = logging.getLogger("wallx_ros.policy")

# attention of one new token in one layer: (layer index, attention module, q, k, v) -> attention output
Attend = Callable[[int, Any, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

_LENGTH_QUANTUM = 128  # buffer lengths are multiples of this, with at least this much room for new tokens


class StaticDecodeStep:
    """One single-token decode step of a WallX model over fixed-length key/value buffers.

    ``forward(ids, position_ids, attend)`` is ``FastDecoder``'s step from token to logits, with attention
    delegated to ``attend(layer_index, attn, q, k, v)``; this class supplies ``attend`` over its buffers."""

    def __init__(self, lm: Any, length: int, device: torch.device, dtype: torch.dtype,
                 forward: Callable[[torch.Tensor, torch.Tensor, Attend], torch.Tensor],
                 allowed_key: tuple[int, int] | None, use_graph: bool) -> None:
        layers = lm.layers
        attn = layers[0].self_attn
        kv_heads = int(attn.k_proj.weight.shape[0]) // int(attn.head_dim)
        shape = (1, kv_heads, length, int(attn.head_dim))
        self.length = length
        self.allowed_key = allowed_key
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in layers]  # zeros: masked rows stay finite
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in layers]
        self.new_keys = [torch.zeros((*shape[:2], 1, shape[3]), device=device, dtype=dtype) for _ in layers]
        self.new_values = [torch.zeros_like(k) for k in self.new_keys]
        self.ids = torch.zeros((1, 1), device=device, dtype=torch.int64)
        self.position = torch.zeros((1,), device=device, dtype=torch.int64)  # cache index of the new token
        self.position_ids = torch.zeros((3, 1, 1), device=device, dtype=torch.int64)  # its rope positions
        self._key_index = torch.arange(length, device=device)
        self._mask: torch.Tensor | None = None  # per step: 0 up to the new token's position, dtype min after
        self._internals = internals.wallx_internals()
        self._forward = forward
        self.filled: int | None = None  # positions of the buffers that hold the transformers cache's keys
        self.use_graph = use_graph and device.type == "cuda"
        self._graph: Any = None
        self.logits: torch.Tensor | None = None

    @staticmethod
    def length_for(cached: int) -> int:
        """Buffer length for a cache of ``cached`` keys: room for at least one quantum of new tokens."""
        return (cached // _LENGTH_QUANTUM + 2) * _LENGTH_QUANTUM

    # -- the captured body --------------------------------------------------------------------------------
    def _attend(self, index: int, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Write the token's key/value at its position, then stock's eager attention over the whole buffer:
        query heads folded per key/value head (stock repeats the keys instead: the same dot products)."""
        keys, values = self.keys[index], self.values[index]
        keys.index_copy_(2, self.position, k)
        values.index_copy_(2, self.position, v)
        self.new_keys[index].copy_(k)
        self.new_values[index].copy_(v)
        heads, head_dim = q.shape[1], q.shape[-1]
        kv_heads = keys.shape[1]
        folded = q.reshape(1, kv_heads, heads // kv_heads, head_dim)
        out = self._internals.eager_attention(folded, keys, values, attn, head_dim, self._mask)
        return out.reshape(1, heads, 1, head_dim)  # type: ignore[no-any-return]

    def _body(self) -> None:
        dtype = self.keys[0].dtype
        visible = self._key_index <= self.position
        self._mask = torch.where(visible, 0.0, torch.finfo(dtype).min).to(dtype).view(1, 1, 1, -1)  # all layers
        self.logits = self._forward(self.ids, self.position_ids, self._attend)

    # -- per token ------------------------------------------------------------------------------------------
    def fill(self, cached_kv: Callable[[int], tuple[torch.Tensor, torch.Tensor]], cached: int) -> None:
        """Copy the transformers cache's ``cached`` keys/values into the buffers."""
        for index in range(len(self.keys)):
            k, v = cached_kv(index)
            self.keys[index][:, :, :cached].copy_(k[:, :, :cached])
            self.values[index][:, :, :cached].copy_(v[:, :, :cached])
        self.filled = cached

    def run(self, ids: torch.Tensor, position: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """Logits of the token ``ids`` at cache index ``position`` (device tensors; no host sync)."""
        self.ids.copy_(ids)
        self.position.copy_(position)
        self.position_ids.copy_(position_ids)
        if self.use_graph and self._graph is None:
            self._capture()
        if self._graph is not None:
            self._graph.replay()
        else:
            self._body()
        assert self.logits is not None
        if self.filled is not None:
            self.filled += 1
        return self.logits.clone()  # the graph's output buffer is overwritten by the next token

    def _capture(self) -> None:
        """Capture the step (after two warm-up runs that compute this very token: same writes, same values)."""
        try:
            stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # allocator and cuBLAS warm-up outside the capture
                    self._body()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._body()
            self._graph = graph
        except RuntimeError as err:
            _LOG.warning("fast_decode: CUDA graph capture failed (%s); decode steps run eagerly", err)
            self.use_graph = False
            self._graph = None
