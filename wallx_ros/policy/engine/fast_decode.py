"""Fast-mode (autoregressive FAST action tokens) decoding without Hugging Face's per-token model overhead.

Stock fast mode is LeRobot's ``predict`` -> transformers ``generate``: one prefill forward over the prompt,
then one full model forward per generated token (up to 100). Every one of those forwards goes through
WallX's generic training forward: it rebuilds the 4-D attention mask, recomputes positions, routes the one
new token to its MoE expert with boolean indexing (host syncs) and runs each layer through the generic
modules. On an H200 a full-size chunk takes 5.4 s, ~50 ms per token; on this project's CPU the tiny model
spends seconds on it.

``FastDecoder`` keeps everything of stock's generation — LeRobot's ``predict`` (prompt, prefill, action
decoding), transformers' ``generate`` loop with its logits processors (suppressed tokens, minimum length),
stopping rules and KV cache — and replaces only the model forward of the single-token decode steps by a
lean one built from the policy's own modules: token embedding, then per layer RMSNorm -> q/k/v -> the
multimodal rotary embedding -> the same ``DynamicCache.update`` -> stock's eager attention -> o_proj ->
the text expert (generated tokens are routed to expert 0, as stock routes them), final norm, lm_head.
Nothing in it syncs with the host. Steps it does not cover (a generated proprioception token, whose
embedding stock replaces; any non-text expert; a masked prompt) run stock's forward, so the result is
always stock's. On CPU the generated tokens and chunks are bit-identical to stock's (tested), on LeRobot 0.4.x
and 0.6.x: where 0.6's stock step (transformers 5 Qwen2.5-VL) computes differently — ``* scaling`` in eager
attention, mrope sections and sliding windows from ``text_config`` — ``wallx_ros.lerobot.internals.wallx_internals``
says how.

More of stock's fast-mode costs go with it, all to the same tokens:

* the images are embedded once, in the prefill, through ``VisionTowerRunner`` (the flow engine's
  sync-free vision tower: eager attention on CPU, bit-identical to stock; sdpa on CUDA) — stock's
  ``predict`` also embeds them for a prompt embedding it then discards, which gets zeros here;

* logits are computed for the last prompt position only (stock's prefill projects every prompt position
  onto the 151k-token vocabulary and ``generate`` keeps the last row);
* with ``suppress_tokens`` set (``fast_action_tokens_only`` suppresses the ~149k non-action tokens) the
  logits of suppressed tokens are -inf straight from the engine, which computes only the allowed rows of
  the vocabulary projection, instead of transformers testing a 149k-entry list against the vocabulary on
  every token and deep-copying it with the generation config on every chunk. Suppressed tokens get -inf
  either way, so the greedy choice is the same.

On CUDA (``cuda_graphs``) the decode step runs over fixed-length key/value buffers and is replayed as one
CUDA graph per token (``static_decode``); the transformers cache still gets every key/value.

Where stock's loop would do nothing else per token than greedy choice over the allowed tokens and the
end-of-sequence rules, the decode steps run in ``greedy_decode``'s own loop instead of ``generate``'s
(``lean_loop``, default on): no per-token processors, criteria, input preparation or host syncs; same tokens.

It is installed only while a prediction runs (``active``): the model's ``forward`` is wrapped on the
instance, ``model.visual`` stood in for, the generation config's ``suppress_tokens`` lifted, and all three
restored afterwards.
"""

# size: one decode step replacing the model forward, with its cache buffers and the choice between stock's loop
#   and the lean greedy loop; the pieces share the decoder's per-chunk state

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch

from wallx_ros.lerobot import generation, internals, versions
from wallx_ros.policy.config import BackendConfig
from wallx_ros.policy.engine.flow_engine import FlowEngine
from wallx_ros.policy.engine.flow_inputs import mrope_tables
from wallx_ros.policy.engine.greedy_decode import greedy_plan, run_greedy
from wallx_ros.policy.engine.static_decode import Attend, StaticDecodeStep
from wallx_ros.policy.engine.vision_tower import VisionTowerRunner

__all__ = ["FAST_DECODE_VALIDATED_LINES", "FastDecoder", "fast_decode_line_reason", "fast_decode_unsupported_reason",
           "select_fast_decoder"]

_LOG = logging.getLogger("wallx_ros.policy")


# LeRobot lines on which FastDecoder was validated: bit-identical tokens, per-step logits and chunks to stock
# generation on CPU (test/test_fast_decode.py; 0.4.x with transformers 4.49, 0.6.x with transformers 5.5)
FAST_DECODE_VALIDATED_LINES = ((0, 4), (0, 6))


def fast_decode_line_reason() -> str | None:
    """None if ``FastDecoder`` was validated on the installed LeRobot line (``FAST_DECODE_VALIDATED_LINES``),
    else why not. A new line: map what its decode step does differently in
    ``wallx_ros.lerobot.internals.wallx_internals`` and validate with test/test_fast_decode.py before adding it."""
    version = versions.lerobot_version()
    if version[:2] not in FAST_DECODE_VALIDATED_LINES:
        lines = " and ".join(f"{major}.{minor}.x" for major, minor in FAST_DECODE_VALIDATED_LINES)
        return f"fast_decode is validated on LeRobot {lines} only (installed: {'.'.join(map(str, version))})"
    return None


def fast_decode_unsupported_reason(policy: Any) -> str | None:
    """None if ``FastDecoder`` can run this loaded policy, else why not."""
    reason = fast_decode_line_reason()
    if reason:
        return reason
    model = policy.model
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        return f"the checkpoint's language model runs {model.config._attn_implementation!r} attention, not eager"
    if not getattr(model.config, "mlp_moe", False):
        return "the checkpoint has no MoE MLP layers"
    try:
        internals.wallx_internals().sliding_window(model.config)
    except ValueError as err:
        return str(err).replace("fast_flow", "fast_decode")
    return None


def select_fast_decoder(config: BackendConfig, policy: Any, mode: str) -> FastDecoder | None:
    """The fast-mode decoder ``config.engine`` asks for: ``auto`` uses it in fast mode wherever it can run,
    ``stock`` never; flow mode never needs it."""
    if mode != "fast" or config.engine == "stock":
        return None
    reason = fast_decode_unsupported_reason(policy)
    if reason:
        _LOG.info("fast mode runs LeRobot's stock generation step by step: %s", reason)
        return None
    return FastDecoder(policy, cuda_graphs=config.cuda_graphs)


class FastDecoder:
    """Runs the decode steps of a loaded WallX policy's fast-mode generation (batch size 1)."""

    def __init__(self, policy: Any, cuda_graphs: bool = False, static_cache: bool | None = None,
                 lean_loop: bool = True, eos_check_every: int | None = None) -> None:
        """``cuda_graphs``: on CUDA, run decode steps over fixed-length KV buffers as one replayed CUDA graph
        (``static_decode``); ``static_cache`` forces those buffers on or off (the CPU tests run them eagerly).
        ``lean_loop``: run the decode steps in ``greedy_decode``'s loop where it gives stock's tokens;
        ``eos_check_every``: read the tokens back every so many steps there (default 1 on CPU, 8 on CUDA)."""
        reason = fast_decode_unsupported_reason(policy)
        if reason:
            raise ValueError(f"fast_decode cannot run this policy: {reason}")
        self.policy = policy
        model = policy.model
        self._model = model
        self._lm = model.model
        self._internals = internals.wallx_internals()
        cfg = model.config
        self._mrope = list(self._internals.mrope_section(cfg))
        # keys beyond a sliding window are masked (0.6: only for layers of type sliding_attention, all or none)
        self._window = self._internals.sliding_window(cfg)
        self._propri_id = int(model.action_token_id_set["propri_token_id"])
        self.decode_steps = 0  # decode steps this engine ran (the rest ran stock's forward)
        self.stock_steps = 0
        self._head = model.lm_head
        self._vocab = int(model.lm_head.weight.shape[0])
        self._allowed: torch.Tensor | None = None  # vocabulary rows not suppressed, while active
        self._allowed_key: tuple[int, int] | None = None
        self._allowed_weight: torch.Tensor | None = None
        self._in_stock_step = False
        on_cuda = model.lm_head.weight.is_cuda
        self.cuda_graphs = cuda_graphs and on_cuda
        self._use_static = self.cuda_graphs if static_cache is None else static_cache
        self._static: StaticDecodeStep | None = None
        self.lean_loop = lean_loop
        self.eos_check_every = max(1, eos_check_every or (8 if on_cuda else 1))
        self.greedy_runs = 0  # generations whose decode steps ran in greedy_decode's loop
        self.overshoot_steps = 0  # steps computed past an end-of-sequence found at a later read-back
        self._lean_class: type | None = None
        # the prefill's vision tower without host syncs (eager: stock's math; flow_engine's runner)
        self.vision = VisionTowerRunner(model.visual, "sdpa" if model.visual.patch_embed.proj.weight.is_cuda
                                        else "eager")

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Route the model's forwards through this engine while the block runs (one prediction)."""
        model = self._model
        if "forward" in vars(model):  # already wrapped (nested activation, or someone else's wrapper): leave it
            yield
            return
        original = type(model).forward.__get__(model)
        config = model.generation_config
        suppressed = config.suppress_tokens
        self._set_allowed(suppressed)

        def forward(mode: str | None = None, predict_mode: str | None = "text", **kwargs: Any) -> Any:
            if mode is None and self._covers(kwargs):
                return self._decode_step(kwargs)
            if self._static is not None:  # this forward changes the cache: refill the buffers from it
                self._static.filled = None
            if mode is None:
                self.stock_steps += 1
                return self._stock_step(original, kwargs)
            return original(mode=mode, predict_mode=predict_mode, **kwargs)

        model.forward = forward
        config.suppress_tokens = None
        visual = model.visual
        model.visual = _VisionStandIn(visual, self)
        model_class = type(model)
        if self.lean_loop:  # generate() looks _sample up on the class (transformers 5): a subclass supplies it
            model.__class__ = self._greedy_class(model_class)
        try:
            yield
        finally:
            model.__class__ = model_class
            del model.forward
            model.visual = visual
            config.suppress_tokens = suppressed

    def _greedy_class(self, model_class: type) -> type:
        """``model_class`` with ``_sample`` running ``greedy_decode``'s loop where it can (stock's otherwise)."""
        if self._lean_class is None or self._lean_class.__bases__ != (model_class,):
            decoder = self
            stock_sample = model_class._sample  # type: ignore[attr-defined]

            def _sample(model: Any, input_ids: torch.Tensor, logits_processor: Any, stopping_criteria: Any,
                        generation_config: Any, synced_gpus: bool = False, streamer: Any = None,
                        **model_kwargs: Any) -> Any:
                plan = greedy_plan(decoder, input_ids, logits_processor, stopping_criteria, generation_config,
                                   synced_gpus, streamer, model_kwargs)
                if plan is None:
                    return stock_sample(model, input_ids, logits_processor=logits_processor,
                                        stopping_criteria=stopping_criteria, generation_config=generation_config,
                                        synced_gpus=synced_gpus, streamer=streamer, **model_kwargs)
                decoder.greedy_runs += 1
                return run_greedy(decoder, model, plan, input_ids, logits_processor, stopping_criteria,
                                  generation_config, model_kwargs)

            self._lean_class = type(model_class.__name__, (model_class,),
                                    {"_sample": _sample, "__module__": model_class.__module__})
        return self._lean_class

    # -- greedy_decode's loop -------------------------------------------------------------------------------
    def covers_every_generated_token(self) -> bool:
        """Every token the restricted vocabulary can yield is a decode step this engine computes: not the
        proprioception token (stock replaces its embedding), also not as the token 0 of an all -inf step."""
        return self._allowed is not None and self._propri_id != 0 and not bool((self._allowed == self._propri_id).any())

    def window_allows(self, max_length: int) -> bool:
        """No decode step of a sequence up to ``max_length`` tokens has keys beyond the sliding window."""
        return self._window is None or max_length - 2 < self._window

    def greedy_step(self, cache: Any, cached: int, steps: int) -> tuple[Any, torch.Tensor | None]:
        """(step, index): ``step(ids, position, position_ids)`` gives the logits (1, W) of the next token, W being
        the allowed vocabulary rows listed by ``index``, or the whole vocabulary (``index`` None)."""
        if self._use_static:
            static = self._static_buffers(cached, cached + steps)
            if static.filled != cached:
                static.fill(lambda index: generation.cached_layer_kv(cache, index), cached)

            def static_step(ids: torch.Tensor, position: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
                logits = static.run(ids, position, position_ids)
                self.cuda_graphs = static.use_graph  # false once a capture failed
                return logits.view(1, -1)

            return static_step, None
        current: list[torch.Tensor] = []

        def attend(index: int, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return self._cached_attention(cache, current[0], index, attn, q, k, v)

        def eager_step(ids: torch.Tensor, position: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
            current[:] = [position]
            return self._forward(ids, position_ids, attend, rows_only=True).view(1, -1)

        return eager_step, self._allowed

    def full_logits(self, scores: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        """What stock's forward returns for a step: the whole vocabulary, suppressed tokens -inf."""
        if index is None:
            return scores
        return scores.new_full((scores.shape[0], self._vocab), float("-inf")).index_copy_(-1, index, scores)

    def finish_greedy(self, cache: Any, cached: int, fed: int, computed: int) -> None:
        """Leave the transformers cache as stock's: the keys/values of the ``fed`` tokens after ``cached``."""
        self.decode_steps += computed
        self.overshoot_steps += computed - fed
        static = self._static
        if self._use_static and static is not None:
            position = torch.arange(cached, cached + fed, device=static.position.device)
            for index in range(len(static.keys)):
                cache.update(static.keys[index][:, :, cached:cached + fed],
                             static.values[index][:, :, cached:cached + fed], index, {"cache_position": position})
            static.filled = cached + fed
        elif computed > fed:
            cache.crop(cached + fed)

    def _set_allowed(self, suppressed: list[int] | None) -> None:
        """Vocabulary rows that may be generated (None: all), cached per suppress list."""
        if not suppressed:
            self._allowed = self._allowed_weight = None
            self._allowed_key = None
            return
        key = (id(suppressed), len(suppressed))
        if key == self._allowed_key:
            return
        weight = self._model.lm_head.weight
        keep = torch.ones(self._vocab, dtype=torch.bool)
        ids = torch.tensor([int(t) for t in suppressed], dtype=torch.int64)
        keep[ids[(ids >= 0) & (ids < self._vocab)]] = False
        self._allowed = keep.nonzero().flatten().to(weight.device)
        self._allowed_weight = weight.detach()[self._allowed]
        self._allowed_key = key

    def _rows(self, h: torch.Tensor) -> torch.Tensor:
        """lm_head logits of ``h`` for the allowed vocabulary rows only (all rows if nothing is suppressed)."""
        lm_head = self._head
        if self._allowed is None or self._allowed_weight is None:
            return lm_head(h)  # type: ignore[no-any-return]
        return torch.nn.functional.linear(h, self._allowed_weight, lm_head.bias[self._allowed]
                                          if lm_head.bias is not None else None)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        """lm_head logits of ``h`` (already in the head's dtype); suppressed tokens -inf, not computed."""
        if self._allowed is None or self._allowed_weight is None:
            return self._head(h)  # type: ignore[no-any-return]
        logits = h.new_full((*h.shape[:-1], self._vocab), float("-inf"))
        return logits.index_copy_(-1, self._allowed, self._rows(h))  # index_copy_: no host sync, CUDA-graph safe

    def _stock_step(self, original: Any, kwargs: dict[str, Any]) -> Any:
        """Stock's forward (the prefill, or a step this engine does not cover) with the vocabulary projection
        of the last position only: ``generate`` reads nothing else."""
        if kwargs.get("labels") is not None or kwargs.get("action_chunk") is not None:
            return original(**kwargs)
        model = self._model
        head = model.lm_head
        model.lm_head = _LastPositionHead(head, self._logits)
        self._in_stock_step = True
        try:
            return original(**kwargs)
        finally:
            model.lm_head = head
            self._in_stock_step = False

    # -- which forwards are decode steps this engine computes exactly ------------------------------------
    def _covers(self, kw: dict[str, Any]) -> bool:
        ids = kw.get("input_ids")
        cache = kw.get("past_key_values")
        position = kw.get("cache_position")
        mask = kw.get("attention_mask")
        types = kw.get("moe_token_types")
        if ids is None or cache is None or position is None or types is None or mask is None:
            return False
        if tuple(ids.shape) != (1, 1) or tuple(position.shape) != (1,) or mask.dim() != 2:
            return False
        if any(kw.get(k) is not None for k in ("inputs_embeds", "pixel_values", "pixel_values_videos",
                                                 "position_ids", "labels", "action_chunk")):
            return False
        if kw.get("output_attentions") or kw.get("output_hidden_states") or self._model.rope_deltas is None:
            return False
        cached = int(cache.get_seq_length())
        if cached != int(mask.shape[1]) - 1:
            return False
        if self._window is not None and cached >= self._window:  # the window would hide the oldest keys
            return False
        # one host read per token (generate itself syncs every token for its stopping check)
        token, kind, masked = (int(v) for v in torch.stack(
            [ids[0, 0], types[0, -1].to(ids.dtype), (mask[0] == 0).sum().to(ids.dtype)]).tolist())
        # stock replaces a proprioception token's embedding; only expert 0 is re-implemented; no padding
        return token != self._propri_id and kind == 0 and masked == 0

    # -- the step --------------------------------------------------------------------------------------------
    def _decode_step(self, kw: dict[str, Any]) -> Any:
        model = self._model
        ids, cache, position = kw["input_ids"], kw["past_key_values"], kw["cache_position"]
        # stock: positions continue from the prompt's rope deltas, the same on all three mrope axes
        delta = (position[0] + model.rope_deltas).to(ids.device)
        position_ids = (torch.arange(1, device=ids.device).view(1, -1) + delta).unsqueeze(0).expand(3, -1, -1)
        if self._use_static:
            logits = self._static_step(ids, cache, position, position_ids)
        else:
            def attend(index: int, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                return self._cached_attention(cache, position, index, attn, q, k, v)

            logits = self._forward(ids, position_ids, attend)
        self.decode_steps += 1
        return generation.fast_decode_output(logits=logits, past_key_values=cache, rope_deltas=model.rope_deltas)

    def _forward(self, ids: torch.Tensor, position_ids: torch.Tensor, attend: Attend,
                 rows_only: bool = False) -> torch.Tensor:
        """Logits of one new token; ``attend(layer index, attn, q, k, v)`` is the attention over the cache.
        ``rows_only``: only the allowed vocabulary rows (``_allowed`` order), as ``_logits`` computes them."""
        lm = self._lm
        h = lm.embed_tokens(ids)
        cos, sin = lm.rotary_emb(h, position_ids)
        cos, sin = mrope_tables(cos, self._mrope), mrope_tables(sin, self._mrope)
        for index, layer in enumerate(lm.layers):
            h = self._layer(layer, index, h, cos, sin, attend)
        h = lm.norm(h).to(self._head.weight.dtype)
        return self._rows(h) if rows_only else self._logits(h)

    def _static_step(self, ids: torch.Tensor, cache: Any, position: torch.Tensor,
                     position_ids: torch.Tensor) -> torch.Tensor:
        """The step over fixed-length buffers (one CUDA graph on CUDA); the cache gets the new key/value too."""
        cached = int(cache.get_seq_length())
        step = self._static_buffers(cached, cached + 1)
        if step.filled != cached:
            step.fill(lambda index: generation.cached_layer_kv(cache, index), cached)
        logits = step.run(ids, position, position_ids)
        self.cuda_graphs = step.use_graph  # false once a capture failed
        for index in range(len(step.new_keys)):
            cache.update(step.new_keys[index], step.new_values[index], index, {"cache_position": position})
        return logits

    def _static_buffers(self, cached: int, needed: int) -> StaticDecodeStep:
        """The fixed-length step, rebuilt if its buffers cannot hold ``needed`` keys or the vocabulary changed."""
        step = self._static
        if step is None or step.allowed_key != self._allowed_key or needed > step.length:
            length = StaticDecodeStep.length_for(cached)
            if needed > length:
                length = StaticDecodeStep.length_for(needed)
            weight = self._lm.layers[0].self_attn.k_proj.weight
            step = self._static = StaticDecodeStep(self._lm, length, weight.device, weight.dtype, self._forward,
                                                   self._allowed_key, self.cuda_graphs)
        return step

    def _layer(self, layer: Any, index: int, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
               attend: Attend) -> torch.Tensor:
        residual = h
        x = layer.input_layernorm(h.to(layer.input_layernorm.weight.dtype)).to(layer.self_attn.q_proj.weight.dtype)
        h = residual + self._attention(layer.self_attn, index, x, cos, sin, attend)
        residual = h
        x = layer.post_attention_layernorm(h.to(layer.post_attention_layernorm.weight.dtype))
        expert = layer.mlp if layer.mlp is not None else layer.moe.experts[0]
        x = x.to(expert.down_proj.weight.dtype)
        dim = x.shape[-1] if layer.mlp is not None else int(layer.moe.dim_inputs[0])
        return residual + FlowEngine._expert(expert, dim, x)  # the flow engine's expert call, as stock routes it

    def _attention(self, attn: Any, index: int, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   attend: Attend) -> torch.Tensor:
        """Stock's attention block for one new token: projections, multimodal rope, ``attend``, o_proj."""
        bsz, q_len, _ = x.shape
        head_dim = int(attn.head_dim)
        q = attn.q_proj(x).view(bsz, q_len, -1, head_dim).transpose(1, 2)
        k = attn.k_proj(x).view(bsz, q_len, -1, head_dim).transpose(1, 2)
        v = attn.v_proj(x).view(bsz, q_len, -1, head_dim).transpose(1, 2)
        rotate_half = self._internals.rotate_half
        q = (q * cos) + (rotate_half(q) * sin)
        k = (k * cos) + (rotate_half(k) * sin)
        out = attend(index, attn, q, k, v).transpose(1, 2).contiguous().reshape(bsz, q_len, -1)
        return attn.o_proj(out)  # type: ignore[no-any-return]

    def _cached_attention(self, cache: Any, position: torch.Tensor, index: int, attn: Any, q: torch.Tensor,
                          k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Stock's eager attention for one new token over the transformers cache, op for op (its causal mask
        row is all zeros, so it adds nothing)."""
        k, v = cache.update(k, v, index, {"cache_position": position})
        groups = int(attn.num_key_value_groups)
        k = self._internals.repeat_kv(k, groups)
        v = self._internals.repeat_kv(v, groups)
        return self._internals.eager_attention(q, k, v, attn, int(attn.head_dim))  # type: ignore[no-any-return]


class _LastPositionHead(torch.nn.Module):
    """Stands in for ``lm_head`` during a stock forward: logits of the last position only."""

    def __init__(self, head: torch.nn.Module, logits: Any) -> None:
        super().__init__()
        self.head = head
        self.weight = head.weight
        self._logits = logits

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self._logits(hidden[:, -1:])  # type: ignore[no-any-return]


class _VisionStandIn(torch.nn.Module):
    """Stands in for ``model.visual`` during a fast-mode prediction.

    LeRobot's fast-mode ``predict`` embeds the images once for a prompt embedding it then discards
    (``generate`` gets the token ids and embeds them again in the prefill): that first call gets zeros of
    the right shape. The prefill's call runs the policy's own vision blocks through ``VisionTowerRunner``
    (geometry cached per image grid, no host syncs; with eager attention bit-identical to stock)."""

    def __init__(self, visual: Any, decoder: FastDecoder) -> None:
        super().__init__()
        self.visual: Any = visual
        self._decoder = decoder

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.dtype  # type: ignore[no-any-return]

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> Any:
        """Stock's return value for these merged embeddings (0.6: a model output, ``wallx_ros.lerobot.internals``)."""
        grid = tuple((int(t), int(h), int(w)) for t, h, w in grid_thw.tolist())
        if not self._decoder._in_stock_step:  # predict()'s own, discarded embedding
            rows = sum(t * h * w for t, h, w in grid) // int(self.visual.spatial_merge_unit)
            width = int(self.visual.merger.mlp[-1].out_features)
            return internals.vision_tower_output(pixel_values.new_zeros(rows, width, dtype=self.dtype))
        runner = self._decoder.vision
        return internals.vision_tower_output(runner(pixel_values, runner.geometry(grid)))
