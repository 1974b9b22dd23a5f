"""WallX text generation (``prediction_mode: fast``) across LeRobot lines: the ``generate`` fix LeRobot 0.6 needs
with transformers >= 5.4, and the objects ``policy.engine.fast_decode``'s compiled decode step hands back to
``generate``. No LeRobot import until a function needs it.
"""

from __future__ import annotations

import functools
from typing import Any

from wallx_ros.lerobot.versions import prepare_runtime, transformers_version

__all__ = [
    "cached_layer_kv",
    "fast_decode_output",
    "generation_output",
    "generation_prefill",
    "patch_prepare_inputs_for_generation",
]


def patch_prepare_inputs_for_generation(model_cls: Any) -> None:
    """Make ``model_cls.prepare_inputs_for_generation`` compute ``cache_position`` when ``generate`` passes none
    (transformers >= 5.4 with LeRobot 0.6: see ``versions.fast_generation_patch_needed``). Idempotent."""
    original = model_cls.prepare_inputs_for_generation
    if getattr(original, "_wallx_ros_cache_position", False):
        return

    @functools.wraps(original)  # keep the signature: generate() validates model kwargs against it
    def prepare_inputs_for_generation(self: Any, input_ids: Any, past_key_values: Any = None, *args: Any,
                                      cache_position: Any = None, **kwargs: Any) -> Any:
        if cache_position is None:
            import torch

            cached = int(past_key_values.get_seq_length()) if past_key_values is not None else 0
            length = int(input_ids.shape[1])
            # Positions of the tokens not yet in the cache. generate() hands over either the full sequence
            # (prompt + generated so far: cached..length-1) or only the new tokens (cached..cached+length-1).
            end = length if length > cached else cached + length
            cache_position = torch.arange(cached, end, device=input_ids.device)
        return original(self, input_ids, past_key_values, *args, cache_position=cache_position, **kwargs)

    prepare_inputs_for_generation._wallx_ros_cache_position = True  # type: ignore[attr-defined]
    model_cls.prepare_inputs_for_generation = prepare_inputs_for_generation


def fast_decode_output(logits: Any, past_key_values: Any, rope_deltas: Any) -> Any:
    """The output object WallX's forward returns to ``generate`` (what ``fast_decode``'s step returns)."""
    prepare_runtime()
    from lerobot.policies.wall_x.qwen_model.qwen2_5_vl_moe import Qwen2_5_VLACausalLMOutputWithPast

    return Qwen2_5_VLACausalLMOutputWithPast(logits=logits, past_key_values=past_key_values, rope_deltas=rope_deltas)


def cached_layer_kv(cache: Any, index: int) -> tuple[Any, Any]:
    """(keys, values) a transformers ``DynamicCache`` holds for layer ``index`` (transformers 5: per-layer
    objects; 4.x: per-kind lists)."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return layers[index].keys, layers[index].values
    return cache.key_cache[index], cache.value_cache[index]


def generation_prefill(model: Any, input_ids: Any, generation_config: Any,
                       model_kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The first iteration of transformers' ``_sample`` (prompt forward, model kwargs updated), for
    ``policy.engine.greedy_decode``'s loop: transformers 5 has ``_prefill``; 4.x runs it as the first turn of its
    loop."""
    if transformers_version() >= (5, 0, 0):
        outputs = model._prefill(input_ids, generation_config, model_kwargs,
                                 is_first_iteration=not generation_config.is_assistant)
    else:
        model_kwargs = model._get_initial_cache_position(input_ids, model_kwargs)
        outputs = model(**model.prepare_inputs_for_generation(input_ids, **model_kwargs), return_dict=True)
    model_kwargs = model._update_model_kwargs_for_generation(outputs, model_kwargs, is_encoder_decoder=False)
    return outputs, model_kwargs


def generation_output(sequences: Any, logits: tuple[Any, ...] | None, cache: Any) -> Any:
    """What ``_sample`` returns with ``return_dict_in_generate`` for a decoder-only model."""
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    return GenerateDecoderOnlyOutput(sequences=sequences, scores=None, logits=logits, attentions=None,
                                     hidden_states=None, past_key_values=cache)
