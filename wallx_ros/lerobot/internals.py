"""LeRobot WallX internals the fast flow engine (``wallx_ros.policy.engine``) re-uses instead of re-implementing:
the Qwen2.5-VL helpers and constants of the installed line (``wallx_internals``), the vision tower's return
convention, and stock's attention mask (what the engine's tests compare against). No LeRobot import until a
function needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from wallx_ros.lerobot.versions import installed_line, prepare_runtime

__all__ = [
    "WallXInternals",
    "flow_steps",
    "stock_attention_mask",
    "vision_tower_forward",
    "vision_tower_output",
    "wallx_internals",
]


@dataclass(frozen=True)
class WallXInternals:
    """LeRobot WallX functions and constants the fast flow engine and fast_decode re-use (they re-implement none).

    The engine calls the loaded policy's own modules (projections, norms, experts, action head, vision
    blocks) and these helpers; only the glue between them (KV-cache reuse, static shapes) is its own.
    Where the two lines compute differently, the field says how this line's stock code does it:

    ==============================  ===============================  ======================================
    field                           0.4.4 (LeRobot's own Qwen copy)  0.6.x (transformers 5 native Qwen)
    ==============================  ===============================  ======================================
    ``attention_scale_multiplies``  ``qk / sqrt(head_dim)``          ``qk * attn.scaling``
    ``vision_chunk_attention``      None: one masked eager op        sdpa per window / image (``split``)
    ``resize_image``                None: Pillow BICUBIC             LeRobot's torchvision BICUBIC+antialias
    ``proprioception_proj``         ``use_history`` keyword          no ``use_history``
    ``mrope_section``               ``config.rope_scaling``          ``text_config.rope_parameters``
    ``sliding_window``              whenever set                     per ``layer_types``
    ``image_pixel_limits``          ``min_pixels``/``max_pixels``    ``size.shortest_edge/longest_edge``
    ==============================  ===============================  ======================================
    """

    rotate_half: Any
    apply_rotary_pos_emb_vision: Any
    repeat_kv: Any
    get_wallx_normal_text: Any
    process_grounding_points: Any
    replace_action_token: Any
    preprocesser_call: Any
    smart_resize: Any
    resolution: int
    image_factor: int
    min_pixels: int
    max_pixels: int
    priority_order: Any
    generate_subtask_ratio: float
    model_type: str
    tokenizer_max_length: int
    flow_steps: int
    attention_scale_multiplies: bool
    vision_chunk_attention: Any
    resize_image: Any
    proprioception_proj: Any
    mrope_section: Any
    sliding_window: Any
    image_pixel_limits: Any

    def eager_attention(self, q: Any, k: Any, v: Any, attn: Any, head_dim: int, mask: Any = None) -> Any:
        """Stock's eager attention core, op for op on this line: scaled scores (+ additive mask), float32
        softmax cast back to q's dtype, times v. (batch, heads, q_len, head_dim) -> same; k/v already repeated."""
        import math

        import torch

        scores = torch.matmul(q, k.transpose(2, 3))
        # transformers 5 (LeRobot 0.6) multiplies by attn.scaling; LeRobot 0.4.4 divides by sqrt(head_dim)
        weights = scores * attn.scaling if self.attention_scale_multiplies else scores / math.sqrt(head_dim)
        if mask is not None:
            weights = weights + mask
        weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(weights, v)


@cache
def flow_steps() -> int:
    """Flow-matching integration steps of LeRobot's WallX ``predict`` (its default; 10 on 0.4.4 and 0.6.1)."""
    import inspect

    prepare_runtime()
    from lerobot.policies.wall_x.modeling_wall_x import Qwen2_5_VLMoEForAction

    steps = inspect.signature(Qwen2_5_VLMoEForAction.predict).parameters["num_inference_timesteps"].default
    return int(steps if steps is not None else 10)


def _proprioception_proj_04(head: Any, proprioception: Any, mask: Any) -> Any:
    return head.proprioception_proj(proprioception, mask, use_history=proprioception.shape[1] > 1)


def _proprioception_proj_06(head: Any, proprioception: Any, mask: Any) -> Any:
    return head.proprioception_proj(proprioception, mask)


def _mrope_section_04(config: Any) -> list[int]:
    return list(config.rope_scaling["mrope_section"])


def _mrope_section_06(config: Any) -> list[int]:
    return list(config.text_config.rope_parameters["mrope_section"])


def _sliding_window_04(config: Any) -> int | None:
    """0.4.4's mask applies ``config.sliding_window`` whenever it is set."""
    window = getattr(config, "sliding_window", None)
    return None if window is None else int(window)


def _sliding_window_06(config: Any) -> int | None:
    """0.6 (transformers 5) applies a sliding window only to layers of type ``sliding_attention``."""
    text = config.text_config
    kinds = set(getattr(text, "layer_types", None) or ["full_attention"])
    if kinds == {"full_attention"}:
        return None
    if kinds == {"sliding_attention"} and text.sliding_window is not None:
        return int(text.sliding_window)
    raise ValueError(f"decoder layers of mixed attention types {sorted(kinds)} are not supported by fast_flow")


def _image_pixel_limits_04(image_processor: Any) -> tuple[int, int]:
    return int(image_processor.min_pixels), int(image_processor.max_pixels)


def _image_pixel_limits_06(image_processor: Any) -> tuple[int, int]:
    size = image_processor.size
    return int(size.shortest_edge), int(size.longest_edge)


def _resize_image_06(image: Any) -> Any:
    """One camera image (h, w, 3) uint8 through 0.6's own resize (``_resize_wall_x_image_batch``: torchvision
    BICUBIC with antialias, on the image's device, as a batch of one in the layout stock gets), (h', w', 3)."""
    from lerobot.policies.wall_x.modeling_wall_x import _resize_wall_x_image_batch

    resized, _ = _resize_wall_x_image_batch(image.permute(2, 0, 1).unsqueeze(0))
    return resized[0].permute(1, 2, 0)


@cache
def wallx_internals() -> WallXInternals:
    """The WallX internals of the installed LeRobot line (0.4.4: LeRobot's own Qwen2.5-VL copy; 0.6: the
    transformers 5 modules WallX was rebuilt on)."""
    prepare_runtime()
    from lerobot.policies.wall_x import constant
    from lerobot.policies.wall_x.utils import (
        get_wallx_normal_text,
        preprocesser_call,
        process_grounding_points,
        replace_action_token,
    )
    from qwen_vl_utils.vision_process import smart_resize

    line_04 = installed_line() == "0.4"
    if line_04:
        from lerobot.policies.wall_x.qwen_model import qwen2_5_vl_moe as qwen

        line: dict[str, Any] = {
            "attention_scale_multiplies": False, "vision_chunk_attention": None, "resize_image": None,
            "proprioception_proj": _proprioception_proj_04, "mrope_section": _mrope_section_04,
            "sliding_window": _sliding_window_04, "image_pixel_limits": _image_pixel_limits_04,
        }
    else:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

        line = {
            "attention_scale_multiplies": True, "vision_chunk_attention": sdpa_attention_forward,
            "resize_image": _resize_image_06, "proprioception_proj": _proprioception_proj_06,
            "mrope_section": _mrope_section_06, "sliding_window": _sliding_window_06,
            "image_pixel_limits": _image_pixel_limits_06,
        }
    return WallXInternals(
        rotate_half=qwen.rotate_half,
        apply_rotary_pos_emb_vision=qwen.apply_rotary_pos_emb_vision,
        repeat_kv=qwen.repeat_kv,
        get_wallx_normal_text=get_wallx_normal_text,
        process_grounding_points=process_grounding_points,
        replace_action_token=replace_action_token,
        preprocesser_call=preprocesser_call,
        smart_resize=smart_resize,
        resolution=int(constant.RESOLUTION),
        image_factor=int(constant.IMAGE_FACTOR),
        min_pixels=int(constant.MIN_PIXELS),
        max_pixels=int(constant.MAX_PIXELS),
        priority_order=constant.PRIORITY_ORDER,
        generate_subtask_ratio=float(constant.GENERATE_SUBTASK_RATIO),
        model_type=str(constant.MODEL_TYPE),
        tokenizer_max_length=int(constant.TOKENIZER_MAX_LENGTH),
        flow_steps=flow_steps(),
        **line,
    )


def vision_tower_forward(visual: Any, pixel_values: Any, grid_thw: Any) -> Any:
    """Stock ``visual(pixel_values, grid_thw)``: the merged image embeddings (0.6 returns them as
    ``pooler_output`` of a model output)."""
    out = visual(pixel_values, grid_thw)
    return out if installed_line() == "0.4" else out.pooler_output


def vision_tower_output(merged: Any) -> Any:
    """What stock ``visual(pixel_values, grid_thw)`` returns for the merged image embeddings ``merged`` (the
    inverse of ``vision_tower_forward``): 0.4.4 the tensor itself, 0.6 a model output whose ``pooler_output``
    stock reads (its ``last_hidden_state``, the unmerged states, is not read by WallX and left None)."""
    if installed_line() == "0.4":
        return merged
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    return BaseModelOutputWithPooling(pooler_output=merged)


def stock_attention_mask(model: Any, input_ids: Any, inputs_embeds: Any, action_tokens: Any) -> Any:
    """The additive 4-D attention mask stock WallX's text model builds for one unpadded prompt whose action
    tokens are ``action_tokens`` (bool, like ``input_ids``): 0 where attention is allowed."""
    import torch

    lm = model.model
    ones = torch.ones_like(input_ids)
    if installed_line() == "0.4":
        positions = torch.arange(input_ids.shape[1])
        return lm._update_causal_mask(ones, inputs_embeds, positions, None, False, action_tokens)
    from transformers.masking_utils import create_causal_mask

    return create_causal_mask(config=lm.config, inputs_embeds=inputs_embeds, attention_mask=ones,
                              past_key_values=None, or_mask_function=lm._action_island_mask(action_tokens))
